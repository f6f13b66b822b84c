// template/jinja_parse.c: recursive-descent parser from tokens to the syntax tree, following
// jinja2's grammar and operator precedence (or < and < not < comparisons (chained, `in`) <
// + - < ~ < * / // % < ** < unary - + < postfix . [] () and filters | / tests `is`).
// Node field use per kind is documented at each builder below.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "template/jinja_int.h"

struct parser {
    struct jctx *cx;
    const struct jtok *t;
    size_t n, i;
    int nest;       // syntax nesting, bounded by JINJA_MAX_NEST
    int soft;       // > 0 inside an if statement or inline if (unknown filters fail late)
    int loop_depth; // > 0 inside a for body (break/continue allowed)
};

static const struct jtok *cur(const struct parser *ps)
{
    return &ps->t[ps->i];
}

static const struct jtok *peek(const struct parser *ps, size_t k)
{
    return ps->i + k < ps->n ? &ps->t[ps->i + k] : &ps->t[ps->n - 1];
}

static void next(struct parser *ps)
{
    if (ps->i + 1 < ps->n) {
        ps->i++;
    }
}

static bool tok_op(const struct jtok *t, const char *op)
{
    return t->kind == TK_OP && t->n == strlen(op) && memcmp(t->p, op, t->n) == 0;
}

static bool tok_name(const struct jtok *t, const char *name)
{
    return t->kind == TK_NAME && t->n == strlen(name) && memcmp(t->p, name, t->n) == 0;
}

static const char *tok_desc(const struct jtok *t)
{
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "end of statement block";
    case TK_NAME: return "name";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    default: return "operator";
    }
}

static _Noreturn LLEM_PRINTF(2, 3) void pfail(struct parser *ps, const char *fmt, ...)
{
    const struct jtok *t = cur(ps);
    ps->cx->line = t->line;
    ps->cx->col = t->col;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t->kind == TK_NAME || t->kind == TK_OP) {
        jx_fail(ps->cx, LLEM_EINVAL, "TemplateSyntaxError: %s (at '%.*s')", msg,
                (int)LLEM_MIN(t->n, 40u), t->p);
    }
    jx_fail(ps->cx, LLEM_EINVAL, "TemplateSyntaxError: %s (at %s)", msg, tok_desc(t));
}

static void expect_op(struct parser *ps, const char *op)
{
    if (!tok_op(cur(ps), op)) {
        pfail(ps, "expected '%s'", op);
    }
    next(ps);
}

static const char *tok_cstr(struct parser *ps, const struct jtok *t)
{
    return jx_strndup(ps->cx, t->p, t->n);
}

static const char *expect_name(struct parser *ps)
{
    if (cur(ps)->kind != TK_NAME) {
        pfail(ps, "expected a %s", "name");
    }
    const char *s = tok_cstr(ps, cur(ps));
    next(ps);
    return s;
}

static void expect_block_end(struct parser *ps)
{
    if (cur(ps)->kind != TK_BLOCK_END) {
        pfail(ps, "expected %s", "end of statement block");
    }
    next(ps);
}

static struct jnode *node_at(struct parser *ps, int kind, const struct jtok *t)
{
    struct jnode *n = jx_alloc(ps->cx, sizeof(*n));
    memset(n, 0, sizeof(*n));
    n->kind = (uint8_t)kind;
    n->line = t->line;
    n->col = t->col;
    return n;
}

static struct jnode *node(struct parser *ps, int kind)
{
    return node_at(ps, kind, cur(ps));
}

// Growable node list in the region.
static void nl_push(struct parser *ps, struct jnlist *l, uint32_t *cap, struct jnode *x)
{
    if (l->n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 4;
        struct jnode **nv = jx_alloc_array(ps->cx, nc, sizeof(*nv));
        if (l->n) {
            memcpy(nv, l->v, l->n * sizeof(*nv));
        }
        l->v = nv;
        *cap = nc;
    }
    l->v[l->n++] = x;
}

static void kw_push(struct parser *ps, const char ***kw, uint32_t *n, uint32_t *cap,
                    const char *name)
{
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 4;
        const char **nv = jx_alloc_array(ps->cx, nc, sizeof(*nv));
        if (*n) {
            memcpy(nv, *kw, *n * sizeof(*nv));
        }
        *kw = nv;
        *cap = nc;
    }
    (*kw)[(*n)++] = name;
}

static void enter(struct parser *ps)
{
    if (++ps->nest > JINJA_MAX_NEST) {
        pfail(ps, "template nested deeper than %d levels", JINJA_MAX_NEST);
    }
}

static struct jnode *parse_expression(struct parser *ps, bool with_condexpr);
static struct jnode *parse_tuple(struct parser *ps, bool with_condexpr, bool simplified,
                                 const char *extra_end, bool explicit_parens);
static struct jnode *parse_unary(struct parser *ps, bool with_filter);
static struct jnode *parse_primary(struct parser *ps);
static struct jnode *parse_postfix(struct parser *ps, struct jnode *n);
static struct jnode *parse_body(struct parser *ps, const char *const *ends, size_t n_ends);

// Call arguments "(a, b, k=v)": positional into n->l1, keywords into n->kw / n->l2.
static void parse_call_args(struct parser *ps, struct jnode *n)
{
    expect_op(ps, "(");
    uint32_t cap1 = 0, cap2 = 0, capk = 0;
    while (!tok_op(cur(ps), ")")) {
        if (n->l1.n || n->l2.n) {
            expect_op(ps, ",");
            if (tok_op(cur(ps), ")")) {
                break;
            }
        }
        if (tok_op(cur(ps), "*") || tok_op(cur(ps), "**")) {
            pfail(ps, "%s", "*args and **kwargs in calls are not supported");
        }
        if (cur(ps)->kind == TK_NAME && tok_op(peek(ps, 1), "=")) {
            const char *k = expect_name(ps);
            next(ps);
            kw_push(ps, &n->kw, &n->n_kw, &capk, k);
            nl_push(ps, &n->l2, &cap2, parse_expression(ps, true));
        } else {
            if (n->l2.n) {
                pfail(ps, "%s", "positional argument after keyword argument");
            }
            nl_push(ps, &n->l1, &cap1, parse_expression(ps, true));
        }
    }
    expect_op(ps, ")");
}

// N_FILTER: a = input (NULL for the first filter of a filter block), name, args as a call.
static struct jnode *parse_filter(struct parser *ps, struct jnode *in, bool start_inline)
{
    while (tok_op(cur(ps), "|") || start_inline) {
        if (!start_inline) {
            next(ps);
        }
        start_inline = false;
        struct jnode *f = node(ps, N_FILTER);
        const struct jtok *nt = cur(ps);
        const char *name = expect_name(ps);
        while (tok_op(cur(ps), ".")) { // dotted filter names: never known, kept for the message
            next(ps);
            const char *part = expect_name(ps);
            size_t a = strlen(name), b = strlen(part);
            char *joined = jx_alloc(ps->cx, a + b + 2);
            memcpy(joined, name, a);
            joined[a] = '.';
            memcpy(joined + a + 1, part, b + 1);
            name = joined;
        }
        f->name = name;
        f->a = in;
        if (tok_op(cur(ps), "(")) {
            parse_call_args(ps, f);
        }
        if (!jinja_filter_exists(name)) {
            if (ps->soft == 0) {
                ps->cx->line = nt->line;
                ps->cx->col = nt->col;
                jx_fail(ps->cx, LLEM_EINVAL, "TemplateAssertionError: No filter named '%s'.",
                        name);
            }
            f->soft = true;
        }
        in = f;
    }
    return in;
}

// N_TEST: a = input, name, neg, args (l1; keywords as for calls).
static struct jnode *parse_test(struct parser *ps, struct jnode *in)
{
    struct jnode *t = node(ps, N_TEST);
    next(ps); // 'is'
    if (tok_name(cur(ps), "not")) {
        next(ps);
        t->neg = true;
    }
    const struct jtok *nt = cur(ps);
    t->name = expect_name(ps);
    t->a = in;
    const struct jtok *c = cur(ps);
    if (tok_op(c, "(")) {
        parse_call_args(ps, t);
    } else if ((c->kind == TK_NAME || c->kind == TK_STRING || c->kind == TK_INT ||
                c->kind == TK_FLOAT || tok_op(c, "[") || tok_op(c, "{")) &&
               !tok_name(c, "else") && !tok_name(c, "or") && !tok_name(c, "and")) {
        if (tok_name(c, "is")) {
            pfail(ps, "%s", "You cannot chain multiple tests with is");
        }
        struct jnode *arg = parse_postfix(ps, parse_primary(ps));
        t->l1.v = jx_alloc(ps->cx, sizeof(struct jnode *));
        t->l1.v[0] = arg;
        t->l1.n = 1;
    }
    if (!jinja_test_exists(t->name)) {
        if (ps->soft == 0) {
            ps->cx->line = nt->line;
            ps->cx->col = nt->col;
            jx_fail(ps->cx, LLEM_EINVAL, "TemplateAssertionError: No test named '%s'.", t->name);
        }
        t->soft = true;
    }
    return t;
}

// Slice or index inside [ ]: N_SLICE has b = start, c = stop, d = step (each may be NULL).
static struct jnode *parse_subscribed(struct parser *ps)
{
    struct jnode *args[3] = {NULL, NULL, NULL};
    struct jnode *s = node(ps, N_SLICE);
    if (tok_op(cur(ps), ":")) {
        next(ps);
    } else {
        struct jnode *e = parse_expression(ps, true);
        if (!tok_op(cur(ps), ":")) {
            return e;
        }
        next(ps);
        args[0] = e;
    }
    if (!tok_op(cur(ps), ":") && !tok_op(cur(ps), "]") && !tok_op(cur(ps), ",")) {
        args[1] = parse_expression(ps, true);
    }
    if (tok_op(cur(ps), ":")) {
        next(ps);
        if (!tok_op(cur(ps), "]") && !tok_op(cur(ps), ",")) {
            args[2] = parse_expression(ps, true);
        }
    }
    s->b = args[0];
    s->c = args[1];
    s->d = args[2];
    return s;
}

// N_ATTR: a = object, name. N_ITEM: a = object, b = key. N_SLICE: a = object.
// N_CALL: a = callee, args.
static struct jnode *parse_postfix(struct parser *ps, struct jnode *n)
{
    for (;;) {
        const struct jtok *t = cur(ps);
        if (tok_op(t, ".")) {
            next(ps);
            const struct jtok *a = cur(ps);
            if (a->kind == TK_NAME) {
                struct jnode *g = node_at(ps, N_ATTR, t);
                g->a = n;
                g->name = tok_cstr(ps, a);
                next(ps);
                n = g;
            } else if (a->kind == TK_INT) {
                struct jnode *g = node_at(ps, N_ITEM, t);
                struct jnode *k = node(ps, N_CONST);
                k->cval = jv_int(a->i);
                g->a = n;
                g->b = k;
                next(ps);
                n = g;
            } else {
                pfail(ps, "%s", "expected a name or number after '.'");
            }
        } else if (tok_op(t, "[")) {
            next(ps);
            struct jnode *first = parse_subscribed(ps);
            if (tok_op(cur(ps), ",")) {
                struct jnode *tup = node(ps, N_TUPLE);
                uint32_t cap = 0;
                nl_push(ps, &tup->l1, &cap, first);
                while (tok_op(cur(ps), ",")) {
                    next(ps);
                    if (tok_op(cur(ps), "]")) {
                        break;
                    }
                    nl_push(ps, &tup->l1, &cap, parse_subscribed(ps));
                }
                for (uint32_t k = 0; k < tup->l1.n; k++) {
                    if (tup->l1.v[k]->kind == N_SLICE) {
                        pfail(ps, "%s", "slices inside a tuple subscript are not supported");
                    }
                }
                first = tup;
            }
            expect_op(ps, "]");
            if (first->kind == N_SLICE) {
                first->a = n;
                n = first;
            } else {
                struct jnode *g = node_at(ps, N_ITEM, t);
                g->a = n;
                g->b = first;
                n = g;
            }
        } else if (tok_op(t, "(")) {
            struct jnode *c = node(ps, N_CALL);
            c->a = n;
            parse_call_args(ps, c);
            n = c;
        } else {
            return n;
        }
    }
}

static struct jnode *parse_filter_expr(struct parser *ps, struct jnode *n)
{
    for (;;) {
        const struct jtok *t = cur(ps);
        if (tok_op(t, "|")) {
            n = parse_filter(ps, n, false);
        } else if (tok_name(t, "is")) {
            n = parse_test(ps, n);
        } else if (tok_op(t, "(")) {
            struct jnode *c = node(ps, N_CALL);
            c->a = n;
            parse_call_args(ps, c);
            n = c;
        } else {
            return n;
        }
    }
}

// N_CONST: cval. N_NAME: name. N_LIST/N_TUPLE: items in l1. N_DICT: keys l1, values l2.
static struct jnode *parse_primary(struct parser *ps)
{
    const struct jtok *t = cur(ps);
    struct jnode *n;
    if (t->kind == TK_NAME) {
        n = node(ps, N_CONST);
        if (tok_name(t, "true") || tok_name(t, "True")) {
            n->cval = jv_bool(true);
        } else if (tok_name(t, "false") || tok_name(t, "False")) {
            n->cval = jv_bool(false);
        } else if (tok_name(t, "none") || tok_name(t, "None")) {
            n->cval = jv_none();
        } else {
            n->kind = N_NAME;
            n->name = tok_cstr(ps, t);
        }
        next(ps);
        return n;
    }
    if (t->kind == TK_STRING) {
        n = node(ps, N_CONST);
        const char *p = t->p;
        size_t len = t->n;
        next(ps);
        while (cur(ps)->kind == TK_STRING) { // adjacent literals concatenate
            const struct jtok *u = cur(ps);
            char *j = jx_alloc(ps->cx, len + u->n + 1);
            memcpy(j, p, len);
            memcpy(j + len, u->p, u->n);
            j[len + u->n] = '\0';
            p = j;
            len += u->n;
            next(ps);
        }
        n->cval = jv_str(p, len);
        return n;
    }
    if (t->kind == TK_INT || t->kind == TK_FLOAT) {
        n = node(ps, N_CONST);
        n->cval = t->kind == TK_INT ? jv_int(t->i) : jv_float(t->f);
        next(ps);
        return n;
    }
    if (tok_op(t, "(")) {
        next(ps);
        n = parse_tuple(ps, true, false, NULL, true);
        expect_op(ps, ")");
        return n;
    }
    if (tok_op(t, "[")) {
        n = node(ps, N_LIST);
        next(ps);
        uint32_t cap = 0;
        while (!tok_op(cur(ps), "]")) {
            if (n->l1.n) {
                expect_op(ps, ",");
                if (tok_op(cur(ps), "]")) {
                    break;
                }
            }
            nl_push(ps, &n->l1, &cap, parse_expression(ps, true));
        }
        next(ps);
        return n;
    }
    if (tok_op(t, "{")) {
        n = node(ps, N_DICT);
        next(ps);
        uint32_t cap1 = 0, cap2 = 0;
        while (!tok_op(cur(ps), "}")) {
            if (n->l1.n) {
                expect_op(ps, ",");
                if (tok_op(cur(ps), "}")) {
                    break;
                }
            }
            nl_push(ps, &n->l1, &cap1, parse_expression(ps, true));
            expect_op(ps, ":");
            nl_push(ps, &n->l2, &cap2, parse_expression(ps, true));
        }
        next(ps);
        return n;
    }
    pfail(ps, "unexpected %s", tok_desc(t));
}

// N_NEG / N_POS: a = operand.
static struct jnode *parse_unary(struct parser *ps, bool with_filter)
{
    enter(ps);
    const struct jtok *t = cur(ps);
    struct jnode *n;
    if (tok_op(t, "-") || tok_op(t, "+")) {
        n = node(ps, tok_op(t, "-") ? N_NEG : N_POS);
        next(ps);
        n->a = parse_unary(ps, false);
    } else {
        n = parse_primary(ps);
    }
    n = parse_postfix(ps, n);
    if (with_filter) {
        n = parse_filter_expr(ps, n);
    }
    ps->nest--;
    return n;
}

// N_BINOP: op, a, b.
static struct jnode *binop(struct parser *ps, const struct jtok *t, int op, struct jnode *l,
                           struct jnode *r)
{
    struct jnode *n = node_at(ps, N_BINOP, t);
    n->op = (uint8_t)op;
    n->a = l;
    n->b = r;
    return n;
}

static struct jnode *parse_pow(struct parser *ps)
{
    struct jnode *l = parse_unary(ps, true);
    while (tok_op(cur(ps), "**")) {
        const struct jtok *t = cur(ps);
        next(ps);
        l = binop(ps, t, OP_POW, l, parse_unary(ps, true));
    }
    return l;
}

static struct jnode *parse_math2(struct parser *ps)
{
    struct jnode *l = parse_pow(ps);
    for (;;) {
        const struct jtok *t = cur(ps);
        int op = tok_op(t, "*") ? OP_MUL : tok_op(t, "/") ? OP_DIV : tok_op(t, "//") ? OP_FLOORDIV
               : tok_op(t, "%") ? OP_MOD : -1;
        if (op < 0) {
            return l;
        }
        next(ps);
        l = binop(ps, t, op, l, parse_pow(ps));
    }
}

static struct jnode *parse_concat(struct parser *ps)
{
    struct jnode *l = parse_math2(ps);
    while (tok_op(cur(ps), "~")) {
        const struct jtok *t = cur(ps);
        next(ps);
        l = binop(ps, t, OP_CONCAT, l, parse_math2(ps));
    }
    return l;
}

static struct jnode *parse_math1(struct parser *ps)
{
    struct jnode *l = parse_concat(ps);
    for (;;) {
        const struct jtok *t = cur(ps);
        int op = tok_op(t, "+") ? OP_ADD : tok_op(t, "-") ? OP_SUB : -1;
        if (op < 0) {
            return l;
        }
        next(ps);
        l = binop(ps, t, op, l, parse_concat(ps));
    }
}

// N_COMPARE: a = first operand, l1 = further operands, ops in the bytes of cval.u.s.
static struct jnode *parse_compare(struct parser *ps)
{
    struct jnode *first = parse_math1(ps);
    struct jnode *n = NULL;
    uint32_t cap = 0;
    char *ops = NULL;
    for (;;) {
        const struct jtok *t = cur(ps);
        int op = tok_op(t, "==") ? OP_EQ : tok_op(t, "!=") ? OP_NE : tok_op(t, "<") ? OP_LT
               : tok_op(t, "<=") ? OP_LE : tok_op(t, ">") ? OP_GT : tok_op(t, ">=") ? OP_GE
               : tok_name(t, "in") ? OP_IN
               : (tok_name(t, "not") && tok_name(peek(ps, 1), "in")) ? OP_NOTIN : -1;
        if (op < 0) {
            break;
        }
        next(ps);
        if (op == OP_NOTIN) {
            next(ps);
        }
        if (!n) {
            n = node_at(ps, N_COMPARE, t);
            n->a = first;
        }
        nl_push(ps, &n->l1, &cap, parse_math1(ps));
        if (n->l1.n > 64) {
            pfail(ps, "%s", "comparison chain too long");
        }
        if (!ops) {
            ops = jx_alloc(ps->cx, 65);
        }
        ops[n->l1.n - 1] = (char)op;
    }
    if (!n) {
        return first;
    }
    n->cval = jv_str(ops, n->l1.n);
    return n;
}

static struct jnode *parse_not(struct parser *ps)
{
    if (tok_name(cur(ps), "not")) {
        enter(ps);
        struct jnode *n = node(ps, N_NOT);
        next(ps);
        n->a = parse_not(ps);
        ps->nest--;
        return n;
    }
    return parse_compare(ps);
}

static struct jnode *parse_and(struct parser *ps)
{
    struct jnode *l = parse_not(ps);
    while (tok_name(cur(ps), "and")) {
        struct jnode *n = node(ps, N_AND);
        next(ps);
        n->a = l;
        n->b = parse_not(ps);
        l = n;
    }
    return l;
}

static struct jnode *parse_or(struct parser *ps)
{
    struct jnode *l = parse_and(ps);
    while (tok_name(cur(ps), "or")) {
        struct jnode *n = node(ps, N_OR);
        next(ps);
        n->a = l;
        n->b = parse_and(ps);
        l = n;
    }
    return l;
}

// N_COND: a = value if true, b = test, c = value if false (NULL: undefined).
static struct jnode *parse_expression(struct parser *ps, bool with_condexpr)
{
    enter(ps);
    struct jnode *e = parse_or(ps);
    while (with_condexpr && tok_name(cur(ps), "if")) {
        struct jnode *c = node(ps, N_COND);
        next(ps);
        ps->soft++;
        c->a = e;
        c->b = parse_or(ps);
        if (tok_name(cur(ps), "else")) {
            next(ps);
            c->c = parse_expression(ps, true);
        }
        ps->soft--;
        e = c;
    }
    ps->nest--;
    return e;
}

static bool tuple_end(struct parser *ps, const char *extra_end)
{
    const struct jtok *t = cur(ps);
    return t->kind == TK_VAR_END || t->kind == TK_BLOCK_END || t->kind == TK_EOF ||
           tok_op(t, ")") || (extra_end && tok_name(t, extra_end));
}

static struct jnode *parse_tuple(struct parser *ps, bool with_condexpr, bool simplified,
                                 const char *extra_end, bool explicit_parens)
{
    struct jnode *tup = node(ps, N_TUPLE);
    uint32_t cap = 0;
    bool is_tuple = false;
    for (;;) {
        if (tup->l1.n) {
            expect_op(ps, ",");
        }
        if (tuple_end(ps, extra_end)) {
            break;
        }
        nl_push(ps, &tup->l1, &cap, simplified ? parse_primary(ps)
                                               : parse_expression(ps, with_condexpr));
        if (tok_op(cur(ps), ",")) {
            is_tuple = true;
        } else {
            break;
        }
    }
    if (!is_tuple) {
        if (tup->l1.n) {
            return tup->l1.v[0];
        }
        if (!explicit_parens) {
            pfail(ps, "expected an expression, got %s", tok_desc(cur(ps)));
        }
    }
    return tup;
}

// Assignment target: a name, `ns.attr` (N_ATTR on N_NAME), or a tuple of names.
static struct jnode *parse_assign_target(struct parser *ps, const char *extra_end, bool ns)
{
    if (ns && cur(ps)->kind == TK_NAME && tok_op(peek(ps, 1), ".")) {
        struct jnode *a = node(ps, N_ATTR);
        struct jnode *base = node(ps, N_NAME);
        base->name = expect_name(ps);
        next(ps);
        a->name = expect_name(ps);
        a->a = base;
        return a;
    }
    struct jnode *t = parse_tuple(ps, true, true, extra_end, false);
    if (t->kind == N_TUPLE) {
        for (uint32_t i = 0; i < t->l1.n; i++) {
            if (t->l1.v[i]->kind != N_NAME) {
                pfail(ps, "%s", "can't assign to this target");
            }
        }
    } else if (t->kind != N_NAME) {
        pfail(ps, "%s", "can't assign to this target");
    }
    return t;
}

// Parameters "(a, b=default)": names in n->kw, defaults (or NULL) in n->l2.
static void parse_params(struct parser *ps, struct jnode *n)
{
    expect_op(ps, "(");
    uint32_t capk = 0, cap2 = 0;
    while (!tok_op(cur(ps), ")")) {
        if (n->n_kw) {
            expect_op(ps, ",");
            if (tok_op(cur(ps), ")")) {
                break;
            }
        }
        kw_push(ps, &n->kw, &n->n_kw, &capk, expect_name(ps));
        struct jnode *def = NULL;
        if (tok_op(cur(ps), "=")) {
            next(ps);
            def = parse_expression(ps, true);
        }
        nl_push(ps, &n->l2, &cap2, def);
    }
    next(ps);
}

static bool at_end_name(struct parser *ps, const char *name)
{
    if (!tok_name(cur(ps), name)) {
        pfail(ps, "expected '%s'", name);
    }
    next(ps);
    return true;
}

// Statement after "{%" with the tag name current.
static struct jnode *parse_statement(struct parser *ps)
{
    const struct jtok *t = cur(ps);
    struct jnode *n;
    static const char *const if_ends[] = {"elif", "else", "endif"};
    static const char *const for_ends[] = {"else", "endfor"};
    if (tok_name(t, "if")) {
        // N_IF: a = test, b = body, c = else body or nested N_IF for elif (may be NULL).
        n = node(ps, N_IF);
        next(ps);
        ps->soft++;
        struct jnode *top = n;
        for (;;) {
            n->a = parse_tuple(ps, false, false, NULL, false);
            expect_block_end(ps);
            n->b = parse_body(ps, if_ends, 3);
            if (tok_name(cur(ps), "elif")) {
                struct jnode *e = node(ps, N_IF);
                next(ps);
                n->c = e;
                n = e;
                continue;
            }
            if (tok_name(cur(ps), "else")) {
                next(ps);
                expect_block_end(ps);
                static const char *const endif[] = {"endif"};
                n->c = parse_body(ps, endif, 1);
            }
            at_end_name(ps, "endif");
            break;
        }
        ps->soft--;
        expect_block_end(ps);
        return top;
    }
    if (tok_name(t, "for")) {
        // N_FOR: a = target, b = iterable, c = filter (NULL), d = body, e = else body (NULL),
        // op = 1 when `recursive`.
        n = node(ps, N_FOR);
        next(ps);
        n->a = parse_assign_target(ps, "in", false);
        at_end_name(ps, "in");
        n->b = parse_tuple(ps, false, false, "recursive", false);
        int soft = ps->soft;
        ps->soft = 0;
        if (tok_name(cur(ps), "if")) {
            next(ps);
            n->c = parse_expression(ps, true);
        }
        if (tok_name(cur(ps), "recursive")) {
            pfail(ps, "%s", "recursive loops are not supported");
        }
        expect_block_end(ps);
        ps->loop_depth++;
        n->d = parse_body(ps, for_ends, 2);
        ps->loop_depth--;
        if (tok_name(cur(ps), "else")) {
            next(ps);
            expect_block_end(ps);
            static const char *const endfor[] = {"endfor"};
            n->e = parse_body(ps, endfor, 1);
        }
        at_end_name(ps, "endfor");
        ps->soft = soft;
        expect_block_end(ps);
        return n;
    }
    if (tok_name(t, "set")) {
        // N_SET: a = target, b = value. N_SETBLOCK: a = target, d = body, c = filter chain.
        n = node(ps, N_SET);
        next(ps);
        n->a = parse_assign_target(ps, NULL, true);
        if (tok_op(cur(ps), "=")) {
            next(ps);
            n->b = parse_tuple(ps, true, false, NULL, false);
            expect_block_end(ps);
            return n;
        }
        n->kind = N_SETBLOCK;
        if (tok_op(cur(ps), "|")) {
            n->c = parse_filter(ps, NULL, false);
        }
        expect_block_end(ps);
        static const char *const endset[] = {"endset"};
        n->d = parse_body(ps, endset, 1);
        next(ps);
        expect_block_end(ps);
        return n;
    }
    if (tok_name(t, "macro")) {
        // N_MACRO: name, params (kw, defaults in l2), d = body.
        n = node(ps, N_MACRO);
        next(ps);
        n->name = expect_name(ps);
        parse_params(ps, n);
        expect_block_end(ps);
        int soft = ps->soft, loops = ps->loop_depth;
        ps->soft = 0;
        ps->loop_depth = 0;
        static const char *const endmacro[] = {"endmacro"};
        n->d = parse_body(ps, endmacro, 1);
        ps->soft = soft;
        ps->loop_depth = loops;
        next(ps);
        if (cur(ps)->kind == TK_NAME) {
            next(ps);
        }
        expect_block_end(ps);
        return n;
    }
    if (tok_name(t, "call")) {
        // N_CALLBLOCK: a = the call, params of the caller (kw, l2), d = body.
        n = node(ps, N_CALLBLOCK);
        next(ps);
        if (tok_op(cur(ps), "(")) {
            parse_params(ps, n);
        }
        n->a = parse_expression(ps, true);
        if (n->a->kind != N_CALL) {
            pfail(ps, "%s", "expected a call");
        }
        expect_block_end(ps);
        static const char *const endcall[] = {"endcall"};
        int loops = ps->loop_depth;
        ps->loop_depth = 0;
        n->d = parse_body(ps, endcall, 1);
        ps->loop_depth = loops;
        next(ps);
        expect_block_end(ps);
        return n;
    }
    if (tok_name(t, "filter")) {
        // N_FILTERBLOCK: a = filter chain whose innermost input is NULL, d = body.
        n = node(ps, N_FILTERBLOCK);
        next(ps);
        n->a = parse_filter(ps, NULL, true);
        expect_block_end(ps);
        static const char *const endfilter[] = {"endfilter"};
        n->d = parse_body(ps, endfilter, 1);
        next(ps);
        expect_block_end(ps);
        return n;
    }
    if (tok_name(t, "break") || tok_name(t, "continue")) {
        if (ps->loop_depth == 0) {
            pfail(ps, "%s", "break or continue outside of a loop");
        }
        n = node(ps, tok_name(t, "break") ? N_BREAK : N_CONTINUE);
        next(ps);
        expect_block_end(ps);
        return n;
    }
    if (tok_name(t, "generation") || tok_name(t, "block")) {
        bool block = tok_name(t, "block");
        next(ps);
        if (block) {
            expect_name(ps);
        }
        expect_block_end(ps);
        static const char *const endgen[] = {"endgeneration"};
        static const char *const endblock[] = {"endblock"};
        n = parse_body(ps, block ? endblock : endgen, 1);
        next(ps);
        if (block && cur(ps)->kind == TK_NAME) {
            next(ps);
        }
        expect_block_end(ps);
        return n;
    }
    if (tok_name(t, "with")) {
        // N_WITH: names (kw), values (l2), d = body.
        n = node(ps, N_WITH);
        next(ps);
        uint32_t capk = 0, cap2 = 0;
        while (cur(ps)->kind != TK_BLOCK_END) {
            if (n->n_kw) {
                expect_op(ps, ",");
            }
            kw_push(ps, &n->kw, &n->n_kw, &capk, expect_name(ps));
            expect_op(ps, "=");
            nl_push(ps, &n->l2, &cap2, parse_expression(ps, true));
        }
        expect_block_end(ps);
        static const char *const endwith[] = {"endwith"};
        n->d = parse_body(ps, endwith, 1);
        next(ps);
        expect_block_end(ps);
        return n;
    }
    if (t->kind == TK_NAME) {
        pfail(ps, "Encountered unknown tag '%s'.", tok_cstr(ps, t));
    }
    pfail(ps, "%s", "expected a statement name");
}

// N_BODY: statements in l1. Stops (without consuming) at a block tag named in `ends`, whose
// name token is then current; at the end of the template only when `ends` is empty.
static struct jnode *parse_body(struct parser *ps, const char *const *ends, size_t n_ends)
{
    enter(ps);
    struct jnode *body = node(ps, N_BODY);
    uint32_t cap = 0;
    for (;;) {
        const struct jtok *t = cur(ps);
        if (t->kind == TK_EOF) {
            if (n_ends) {
                pfail(ps, "unexpected end of template, expected '%s'", ends[n_ends - 1]);
            }
            break;
        }
        if (t->kind == TK_DATA) {
            struct jnode *d = node(ps, N_DATA);
            d->cval = jv_str(t->p, t->n);
            nl_push(ps, &body->l1, &cap, d);
            next(ps);
            continue;
        }
        if (t->kind == TK_VAR_BEGIN) {
            next(ps);
            struct jnode *o = node(ps, N_OUTPUT);
            o->a = parse_tuple(ps, true, false, NULL, false);
            if (cur(ps)->kind != TK_VAR_END) {
                pfail(ps, "expected %s", "end of print statement");
            }
            next(ps);
            nl_push(ps, &body->l1, &cap, o);
            continue;
        }
        if (t->kind == TK_BLOCK_BEGIN) {
            next(ps);
            for (size_t k = 0; k < n_ends; k++) {
                if (tok_name(cur(ps), ends[k])) {
                    ps->nest--;
                    return body;
                }
            }
            nl_push(ps, &body->l1, &cap, parse_statement(ps));
            continue;
        }
        pfail(ps, "unexpected %s", tok_desc(t));
    }
    ps->nest--;
    return body;
}

struct jnode *jinja_parse(struct jctx *cx, const struct jtoks *toks)
{
    struct parser ps = {.cx = cx, .t = toks->v, .n = toks->n};
    return parse_body(&ps, NULL, 0);
}
