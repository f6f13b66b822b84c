// cli/verbs.h: one line per `llem` verb: LLEM_VERB(name, one-line help). The verb's entry
// point is `int cli_<name>(int argc, char **argv)` (argv[0] is the verb), in cli/<name>.c,
// returning the process exit status. main.c is the only file that expands this list.
LLEM_VERB(version, "print the llem version")
