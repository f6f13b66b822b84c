// cli/main.c: the `llem` executable: dispatches argv[1] to a verb from cli/verbs.h. The only
// place in llem that calls exit (through main's return).
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

struct verb {
    const char *name;
    const char *help;
    int (*run)(int argc, char **argv);
};

static const struct verb verbs[] = {
#define LLEM_VERB(n, h) {#n, h, cli_##n},
#include "cli/verbs.h"
#undef LLEM_VERB
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: llem COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        fprintf(out, "  %-12s %s\n", verbs[i].name, verbs[i].help);
    }
    fprintf(out, "\nRun 'llem COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0) {
        return cli_version(argc - 1, argv + 1);
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strcmp(argv[1], verbs[i].name) == 0) {
            return verbs[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "llem: unknown command '%s' (try 'llem --help')\n", argv[1]);
    return 1;
}
