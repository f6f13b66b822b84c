// template/jinja.c: entry points of the Jinja engine (template/template.h): compile (lex +
// parse into the template's own region) and render (variables from JSON into a per-render
// region, evaluate, copy the output out). The only setjmp of the engine is here: any error
// below unwinds to it, and freeing the region releases everything the failed call made.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "template/jinja_int.h"
#include "template/template.h"

struct tpl_jinja {
    struct jmem mem;
    struct jnode *root;
};

_Noreturn void jx_fail(struct jctx *cx, enum llem_err code, const char *fmt, ...)
{
    struct llem_errbuf *eb = cx->eb;
    eb->code = code;
    int k = 0;
    if (cx->line > 0) {
        k = snprintf(eb->msg, sizeof(eb->msg), "line %d:%d: ", cx->line, cx->col);
        if (k < 0 || (size_t)k >= sizeof(eb->msg)) {
            k = 0;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(eb->msg + k, sizeof(eb->msg) - (size_t)k, fmt, ap);
    va_end(ap);
    longjmp(cx->jb, 1);
}

// Binds every key of the variables object in the root scope.
static void bind_vars(struct jctx *cx, struct jscope *sc, struct jv vars)
{
    for (size_t i = 0; i < vars.u.d->n; i++) {
        struct jv k = vars.u.d->k[i];
        const char *name = jx_strndup(cx, k.u.s.p, k.u.s.n);
        jscope_set(cx, sc, name, vars.u.d->v[i]);
    }
}

// The setjmp frames: nothing here changes after setjmp, so nothing is clobbered.
static enum llem_err compile_guarded(struct jctx *cx, struct tpl_jinja *t, const char *src,
                                     size_t len)
{
    if (setjmp(cx->jb) != 0) {
        return cx->eb->code;
    }
    struct jtoks toks = {0};
    jinja_lex(cx, src, len, &toks);
    t->root = jinja_parse(cx, &toks);
    return LLEM_OK;
}

static enum llem_err render_guarded(struct jctx *cx, const struct tpl_jinja *t,
                                    const char *vars_json, size_t vars_len, struct jsb *buf)
{
    if (setjmp(cx->jb) != 0) {
        return cx->eb->code;
    }
    struct jv vars = jv_from_json(cx, vars_json, vars_len);
    struct jscope *root = jscope_new(cx, NULL);
    bind_vars(cx, root, vars);
    jinja_exec_root(cx, t->root, root, buf);
    return LLEM_OK;
}

enum llem_err tpl_jinja_compile(const char *src, size_t len, struct tpl_jinja **out,
                                struct llem_errbuf *eb)
{
    struct llem_errbuf local;
    if (!eb) {
        eb = &local;
    }
    *out = NULL;
    if (len > JINJA_MAX_SOURCE_BYTES) {
        return llem_errf(eb, LLEM_ELIMIT, "template source is %zu bytes (limit %u)", len,
                         JINJA_MAX_SOURCE_BYTES);
    }
    struct tpl_jinja *t = llem_calloc(1, sizeof(*t));
    struct jctx *cx = llem_calloc(1, sizeof(*cx));
    if (!t || !cx) {
        llem_free(t);
        llem_free(cx);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory compiling a template");
    }
    jmem_init(&t->mem, JINJA_MAX_COMPILE_BYTES);
    cx->eb = eb;
    cx->mem = &t->mem;
    cx->out_cap = LLEM_TEMPLATE_MAX_OUTPUT_BYTES;
    enum llem_err e = compile_guarded(cx, t, src, len);
    llem_free(cx);
    if (e != LLEM_OK) {
        jmem_deinit(&t->mem);
        llem_free(t);
        return e;
    }
    *out = t;
    return LLEM_OK;
}

void tpl_jinja_free(struct tpl_jinja *t)
{
    if (!t) {
        return;
    }
    jmem_deinit(&t->mem);
    llem_free(t);
}

enum llem_err tpl_jinja_render(const struct tpl_jinja *t, const char *vars_json, size_t vars_len,
                               const struct tpl_jinja_opts *opts, struct strbuf *out,
                               struct llem_errbuf *eb)
{
    struct llem_errbuf local;
    if (!eb) {
        eb = &local;
    }
    struct jmem mem;
    jmem_init(&mem, JINJA_MAX_RENDER_BYTES);
    struct jctx *cx = llem_calloc(1, sizeof(*cx));
    if (!cx) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory rendering a template");
    }
    cx->eb = eb;
    cx->mem = &mem;
    cx->out_cap = opts && opts->max_output ? opts->max_output : LLEM_TEMPLATE_MAX_OUTPUT_BYTES;
    if (opts && opts->now_unix) {
        time_t tt = (time_t)opts->now_unix;
        gmtime_r(&tt, &cx->now);
    } else {
        time_t tt = time(NULL);
        localtime_r(&tt, &cx->now);
    }
    struct jsb buf = {0};
    enum llem_err e = render_guarded(cx, t, vars_json, vars_len, &buf);
    if (e == LLEM_OK) {
        e = strbuf_append(out, buf.p ? buf.p : "", buf.n);
        if (e != LLEM_OK) {
            llem_errf(eb, e, "rendered template (%zu bytes) does not fit the output buffer",
                      buf.n);
        }
    }
    jmem_deinit(&mem);
    llem_free(cx);
    return e;
}

enum llem_err tpl_jinja_render_src(const char *src, size_t len, const char *vars_json,
                                   size_t vars_len, const struct tpl_jinja_opts *opts,
                                   struct strbuf *out, struct llem_errbuf *eb)
{
    struct tpl_jinja *t;
    enum llem_err e = tpl_jinja_compile(src, len, &t, eb);
    if (e != LLEM_OK) {
        return e;
    }
    e = tpl_jinja_render(t, vars_json, vars_len, opts, out, eb);
    tpl_jinja_free(t);
    return e;
}
