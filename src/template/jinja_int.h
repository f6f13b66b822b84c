// template/jinja_int.h: private types of the Jinja engine shared by jinja_*.c: the value
// type (Python-like: None, bool, int, float, str, list/tuple, ordered dict, namespace,
// callables), the region allocator every value lives in, the token and syntax-tree types,
// and the error path. Errors unwind with longjmp to the one setjmp in the entry point: every
// object a compile or a render creates lives in that call's region, so unwinding leaks nothing.
#pragma once
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/err.h"
#include "base/limits.h"

// Caps private to the engine (the public ones are LLEM_TEMPLATE_* in base/limits.h).
// Bytes one render may allocate: values are immutable and never freed before the render
// ends, so this bounds quadratic growth such as `set ns.s = ns.s + x` in a long loop.
#define JINJA_MAX_RENDER_BYTES (256u << 20)
// Bytes a compiled template may use (syntax tree, tokens): templates are < 100 KiB.
#define JINJA_MAX_COMPILE_BYTES (64u << 20)
// Syntax nesting (blocks inside blocks, operands inside operators): bounds parser recursion.
#define JINJA_MAX_NEST 200
// Evaluator recursion (statements + expressions, across macro calls): bounds the C stack.
#define JINJA_MAX_EVAL_DEPTH 1500
// Template source bytes: the longest real chat templates are ~30 KiB.
#define JINJA_MAX_SOURCE_BYTES (1u << 20)

// ---- region allocator ------------------------------------------------------------------------
struct jchunk;
struct jmem {
    struct jchunk *head;
    size_t total; // bytes obtained from llem_malloc
    size_t cap;   // ceiling for total
};

// ---- values ----------------------------------------------------------------------------------
enum jv_type {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS,      // namespace(): the one mutable object (attributes set by `set ns.x = ...`)
    JV_MACRO,   // a {% macro %} or the caller of a {% call %} block
    JV_BUILTIN, // a global function (range, namespace, raise_exception, ...)
    JV_METHOD,  // a bound method of a str/list/dict, looked up by attribute
    JV_LOOP,    // the `loop` variable of a for loop
};

enum {
    JVF_MARKUP = 1, // str: a Markup (|safe); `+` with a plain str HTML-escapes the other side
    JVF_TUPLE = 2,  // list: a Python tuple
    JVF_GEN = 4,    // list: a generator (select/map/...): always truthy, not JSON-serializable
};

struct jlist;
struct jdict;
struct jmacro;
struct jmethod;
struct jloop;

struct jv {
    uint8_t t;  // enum jv_type
    uint8_t fl; // JVF_*
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p; // not NUL-terminated in general; for JV_UNDEF the name, may be NULL
            size_t n;
        } s;
        struct jlist *l;
        struct jdict *d; // JV_DICT and JV_NS
        struct jmacro *m;
        struct jmethod *meth;
        struct jloop *loop;
        int builtin;
    } u;
};

struct jlist {
    size_t n, cap;
    struct jv *v;
};

struct jdict { // insertion-ordered; linear lookup (chat-template dicts are small)
    size_t n, cap;
    struct jv *k, *v;
};

struct jmethod {
    struct jv self;
    const char *name;
};

struct jloop {
    const struct jv *items;
    size_t n, i;
    unsigned depth0;
};

struct jscope;
struct jnode;
struct jmacro {
    const struct jnode *def;     // N_MACRO or N_CALLBLOCK
    struct jscope *closure;      // scope the macro was defined in
    struct jv caller;            // for a macro called from {% call %}: the caller macro
};

// ---- tokens and syntax tree ------------------------------------------------------------------
enum jtok_kind {
    TK_EOF, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP,
};

struct jtok {
    uint8_t kind;
    int line, col;
    const char *p; // DATA/NAME/OP text, STRING value (unescaped, in the compile region)
    size_t n;
    int64_t i;     // TK_INT
    double f;      // TK_FLOAT
};

enum jnode_kind {
    // expressions
    N_CONST, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER,
    N_TEST, N_BINOP, N_AND, N_OR, N_NOT, N_NEG, N_POS, N_COMPARE, N_COND,
    // statements
    N_DATA, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK,
    N_BREAK, N_CONTINUE, N_BODY, N_WITH,
};

// Binary and comparison operators (N_BINOP op, N_COMPARE ops[]).
enum jop {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN,
};

struct jnlist {
    struct jnode **v;
    uint32_t n;
};

// One node type for every construct; the fields each kind uses are listed by the parser
// where it builds the node (jinja_parse.c).
struct jnode {
    uint8_t kind;
    uint8_t op;
    bool neg;       // N_TEST: `is not`
    bool soft;      // N_FILTER/N_TEST: unknown name inside a conditional: fails only if run
    int line, col;
    const char *name; // NUL-terminated: variable, attribute, filter/test, macro name
    struct jv cval;   // N_CONST
    struct jnode *a, *b, *c, *d, *e;
    struct jnlist l1;  // arguments, items, body, targets
    struct jnlist l2;  // keyword-argument values, dict values, else-body, defaults
    const char **kw;   // keyword names for l2 (N_CALL/N_FILTER/N_TEST), macro params
    uint32_t n_kw;
};

// ---- context ---------------------------------------------------------------------------------
struct jctx {
    jmp_buf jb;
    struct llem_errbuf *eb;
    struct jmem *mem;
    int line, col;      // location of the construct being evaluated (for error messages)
    // render state
    uint64_t iters;     // loop iterations so far
    int depth;          // evaluator recursion
    int macro_depth;
    struct tm now;      // what strftime_now formats
    size_t out_cap;     // max bytes of any string and of the output
};

// Reports an error at cx->line:cx->col (or without location when line is 0) and unwinds.
_Noreturn void jx_fail(struct jctx *cx, enum llem_err code, const char *fmt, ...)
    LLEM_PRINTF(3, 4);

// Region allocator (jinja_value.c). jmem_alloc never returns NULL: it unwinds with ENOMEM or
// ELIMIT past mem->cap.
void jmem_init(struct jmem *m, size_t cap);
void jmem_deinit(struct jmem *m);
void *jx_alloc(struct jctx *cx, size_t n);
void *jx_alloc_array(struct jctx *cx, size_t n, size_t size);
char *jx_strndup(struct jctx *cx, const char *s, size_t n);

// String builder in the region; capped at cx->out_cap bytes.
struct jsb {
    char *p;
    size_t n, cap;
};
void jsb_put(struct jctx *cx, struct jsb *b, const char *s, size_t n);
void jsb_putc(struct jctx *cx, struct jsb *b, char c);
void jsb_puts(struct jctx *cx, struct jsb *b, const char *s);
void jsb_printf(struct jctx *cx, struct jsb *b, const char *fmt, ...) LLEM_PRINTF(3, 4);

// Value constructors and helpers (jinja_value.c).
struct jv jv_undef(const char *name);
struct jv jv_none(void);
struct jv jv_bool(bool b);
struct jv jv_int(int64_t i);
struct jv jv_float(double f);
struct jv jv_str(const char *p, size_t n);
struct jv jv_cstr(const char *p);
struct jv jv_sb(struct jsb *b); // takes the builder's bytes
struct jv jv_list_new(struct jctx *cx, size_t cap);
void jv_list_push(struct jctx *cx, struct jv *list, struct jv item);
struct jv jv_dict_new(struct jctx *cx, size_t cap);
void jv_dict_set(struct jctx *cx, struct jv *dict, struct jv key, struct jv val);
const struct jv *jv_dict_get(const struct jv *dict, struct jv key);
const struct jv *jv_dict_gets(const struct jv *dict, const char *key, size_t n);
bool jv_is_str(struct jv v);
bool jv_is_num(struct jv v); // int, float or bool
bool jv_truthy(struct jv v);
bool jv_eq(struct jv a, struct jv b);
// Python ordering of two values (<0, 0, >0); unwinds with a TypeError for unorderable types.
int jv_cmp(struct jctx *cx, struct jv a, struct jv b);
const char *jv_type_name(struct jv v); // Python type name for messages: 'str', 'NoneType'
// Python str() / repr() of a value, appended to b.
void jv_str_into(struct jctx *cx, struct jsb *b, struct jv v);
void jv_repr_into(struct jctx *cx, struct jsb *b, struct jv v);
struct jv jv_to_str(struct jctx *cx, struct jv v);
// Python float repr ("1.0", "1e+16", "0.1") into buf[32].
void jv_float_repr(double f, char buf[32]);
// json.dumps(v, ensure_ascii, indent (NULL: none), separators, sort_keys) appended to b.
struct json_opts {
    bool ensure_ascii;
    bool sort_keys;
    const char *indent; // NULL: single line
    size_t indent_n;
    const char *item_sep, *key_sep;
};
void jv_tojson_into(struct jctx *cx, struct jsb *b, struct jv v, const struct json_opts *o);
// Converts a JSON document (object expected) into a dict; ints stay ints, "1.0" stays float.
struct jv jv_from_json(struct jctx *cx, const char *json, size_t n);
// Items of an iterable as a list (list/tuple/generator: itself; dict: keys; str: characters;
// undefined: empty); unwinds with a TypeError for anything else.
struct jv jv_iter_list(struct jctx *cx, struct jv v);
// Number of code points of s[0..n) (bytes when not UTF-8).
size_t jv_utf8_len(const char *s, size_t n);
// Byte offset of code point index ci in s[0..n) (n if ci is past the end).
size_t jv_utf8_off(const char *s, size_t n, size_t ci);

// Lexer and parser (jinja_lex.c, jinja_parse.c). The source must already have its newlines
// normalized (see jinja_normalize_source).
struct jtoks {
    struct jtok *v;
    size_t n, cap;
};
void jinja_lex(struct jctx *cx, const char *src, size_t n, struct jtoks *out);
struct jnode *jinja_parse(struct jctx *cx, const struct jtoks *toks);

// Evaluator (jinja_eval.c).
struct jscope {
    struct jscope *parent;
    size_t n, cap;
    const char **names;
    struct jv *vals;
};
struct jscope *jscope_new(struct jctx *cx, struct jscope *parent);
void jscope_set(struct jctx *cx, struct jscope *s, const char *name, struct jv v);
void jinja_exec_root(struct jctx *cx, const struct jnode *root, struct jscope *sc,
                     struct jsb *out);
// Calls a callable value (macro, builtin, method) with evaluated arguments.
struct jargs {
    const struct jv *pos;
    size_t n_pos;
    const char **kw;
    const struct jv *kwv;
    size_t n_kw;
};
struct jv jinja_call_value(struct jctx *cx, struct jv fn, const struct jargs *a);
// x.name and x[key] with jinja2's lookup order (attribute first / item first).
struct jv jinja_getattr(struct jctx *cx, struct jv obj, const char *name, size_t n);
struct jv jinja_getitem(struct jctx *cx, struct jv obj, struct jv key);

// Builtins (jinja_builtins.c).
bool jinja_filter_exists(const char *name);
bool jinja_test_exists(const char *name);
struct jv jinja_apply_filter(struct jctx *cx, const char *name, struct jv in,
                             const struct jargs *a);
bool jinja_apply_test(struct jctx *cx, const char *name, struct jv in, const struct jargs *a);
// Global functions: id for a name (or -1), and the call.
int jinja_builtin_id(const char *name);
const char *jinja_builtin_name(int id);
struct jv jinja_call_builtin(struct jctx *cx, int id, const struct jargs *a);
// Methods of str/list/dict: true if `name` is one (so x.name is a bound method).
bool jinja_has_method(struct jv self, const char *name, size_t n);
struct jv jinja_call_method(struct jctx *cx, const struct jmethod *m, const struct jargs *a);
// Python str helpers (jinja_methods.c): strip (which: 1 left, 2 right, 3 both; chars NULL
// or None = whitespace), replace (count < 0: all), ASCII case mapping (mode 'u' upper,
// 'l' lower, 't' title, 'c' capitalize, 's' swapcase).
struct jv jinja_py_strip(struct jctx *cx, struct jv s, const struct jv *chars, int which);
struct jv jinja_py_replace(struct jctx *cx, struct jv s, struct jv old, struct jv new_,
                           int64_t count);
struct jv jinja_py_case(struct jctx *cx, struct jv s, char mode);
// Lookup of an argument by position or keyword; NULL if absent.
const struct jv *jargs_get(const struct jargs *a, size_t pos, const char *kw);
