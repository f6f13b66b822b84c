// base/err.h: error values (enum llem_err, listed once in include/llem.h) and the
// caller-owned message buffer. A fallible function returns enum llem_err and, when given an
// errbuf, explains the failure there in one line naming the object (file, key, tensor).
#pragma once
#include "llem.h"
#include "base/compiler.h"

// Formats the message into eb (if not NULL), sets eb->code and returns code, so a failure reads
//     return llem_errf(eb, LLEM_EFORMAT, "tensor '%s': bad dim %d", name, i);
enum llem_err llem_errf(struct llem_errbuf *eb, enum llem_err code, const char *fmt, ...)
    LLEM_PRINTF(3, 4);

// Prefixes eb->msg with "prefix: " (e.g. the file name) keeping the code; returns eb->code.
enum llem_err llem_err_prefix(struct llem_errbuf *eb, const char *prefix);
