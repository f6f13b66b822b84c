// cli/cli.h: entry points of the llem verbs (see verbs.h) and helpers shared by them.
// Verbs print user-facing output on stdout and one-line errors on stderr ("llem show: ...").
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define LLEM_VERB(name, help) int cli_##name(int argc, char **argv);
#include "cli/verbs.h"
#undef LLEM_VERB

// Prints "llem <verb>: <message>" on stderr; returns 1 (the exit status for errors).
int cli_fail(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// True if argv[i] is -h or --help.
bool cli_is_help(const char *arg);

// Parses a whole decimal integer / float argument; false if malformed or out of range.
bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
bool cli_parse_f64(const char *s, double *out);
