// llem.h: the one public C API of llem, a local LLM runtime.
// Error values are stable once shipped (append only). The rest of the API (model, context,
// tokenize, decode, sample, chat) grows with the engine; no ABI promise before v1.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LLEM_ERR_LIST(X)                                                \
    X(OK, "success")                                                    \
    X(EINVAL, "invalid argument")                                       \
    X(ENOMEM, "out of memory")                                          \
    X(EIO, "input/output error")                                        \
    X(EFORMAT, "malformed or unsupported file")                         \
    X(ELIMIT, "input exceeds a configured limit")                       \
    X(ENOTFOUND, "not found")                                           \
    X(EUNSUPPORTED, "not supported by this build or model")             \
    X(EFULL, "no free KV cache cell")                                   \
    X(EBUSY, "busy: queue full, try again")                             \
    X(ECANCELED, "canceled")                                            \
    X(EINTERNAL, "internal error")                                      \
    X(EEXIST, "already exists")                                         \
    X(ETIMEDOUT, "timed out")

enum llem_err {
#define X(name, msg) LLEM_##name,
    LLEM_ERR_LIST(X)
#undef X
};

// Details of a failure, in storage the caller owns. `code` repeats the returned value.
struct llem_errbuf {
    enum llem_err code;
    char msg[256];
};

const char *llem_err_name(enum llem_err e); // "EFORMAT"; "?" for an unknown value
const char *llem_err_str(enum llem_err e);  // "malformed or unsupported file"
const char *llem_version(void);             // "0.1.0"

typedef int32_t llem_token;
typedef int32_t llem_pos;
typedef int32_t llem_seq;

#ifdef __cplusplus
}
#endif
