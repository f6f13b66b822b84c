// template/gotmpl_int.h: private structures of the Go-template engine: the syntax tree built
// by gotmpl_parse.c, the value model (Go's reflect kinds reduced to what Ollama's data uses,
// with type descriptors for Ollama's structs) and the formatting helpers of gotmpl_value.c.
// Nothing here is visible outside src/template/gotmpl*.c.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "template/gotmpl.h"

// ---- memory: a chunked bump pool with a byte cap -------------------------------------------
struct gpool_block;
struct gpool {
    struct gpool_block *head;
    size_t total;     // bytes taken from the heap
    size_t max_total; // cap; 0 = none
    bool over_cap;    // the last failure was the cap, not the heap
};
void gpool_init(struct gpool *p, size_t max_total);
void gpool_deinit(struct gpool *p);
void *gpool_alloc(struct gpool *p, size_t n); // zero-filled, 16-aligned; NULL on cap/ENOMEM
char *gpool_strndup(struct gpool *p, const char *s, size_t n);

// ---- tokens (gotmpl_lex.c) ----------------------------------------------------------------
enum tok_type {
    T_EOF, T_ERROR, T_TEXT, T_LDELIM, T_RDELIM, T_SPACE, T_IDENT, T_FIELD, T_VAR, T_DOT,
    T_STRING, T_RAWSTRING, T_CHAR, T_NUMBER, T_BOOL, T_NIL, T_PIPE, T_LPAREN, T_RPAREN,
    T_DECLARE, T_ASSIGN, T_OTHERCHAR,
    // keywords
    T_BLOCK, T_BREAK, T_CONTINUE, T_DEFINE, T_ELSE, T_END, T_IF, T_RANGE, T_TEMPLATE, T_WITH
};

struct gtok {
    uint8_t type;
    uint32_t pos; // source offset
    uint32_t len; // source bytes (TEXT: after trimming)
    const char *msg; // T_ERROR
};

// Tokenizes src[0..n) (Go's lexer, run to the end up front). The token array ends with T_EOF,
// or with a T_ERROR token whose msg lives in *errbuf. Returns false only when out of memory.
// *toks is heap memory: llem_free it.
bool gotmpl_lex(const char *src, size_t n, struct gtok **toks, size_t *n_toks, char *errbuf,
                size_t errbuf_size);

// ---- syntax tree ---------------------------------------------------------------------------
enum gfunc {
    GF_AND, GF_OR, GF_NOT, GF_LEN, GF_INDEX, GF_SLICE, GF_PRINT, GF_PRINTF, GF_PRINTLN,
    GF_HTML, GF_JS, GF_URLQUERY, GF_CALL, GF_EQ, GF_NE, GF_LT, GF_LE, GF_GT, GF_GE,
    GF_JSON, GF_CURRENTDATE, GF_YESTERDAYDATE, GF_TOTSTYPE, GF_COUNT
};
extern const char *const gotmpl_func_names[GF_COUNT];

enum garg_type { GA_FIELD, GA_CHAIN, GA_VAR, GA_DOT, GA_NIL, GA_BOOL, GA_NUMBER, GA_STRING,
                 GA_FUNC, GA_PIPE };

struct gpipe;
struct garg {
    uint8_t type;      // enum garg_type
    uint32_t pos, end; // source span, for error messages
    union {
        struct { const char **idents; size_t n; } field;  // FIELD .A.B; VAR: [0] is "$x"
        struct { struct garg *node; const char **idents; size_t n; } chain;
        bool b;
        struct {
            bool is_int, is_float, ideal_float; // ideal_float: used as a float64 when untyped
            int64_t i;
            double f;
        } num;
        struct { const char *p; size_t n; } str;
        int func;           // enum gfunc
        struct gpipe *pipe; // parenthesized pipeline
    } u;
};

struct gcmd {
    struct garg **args;
    size_t n_args;
};

struct gpipe {
    uint32_t pos, end;
    bool is_assign;     // "=" rather than ":="
    const char **decl;  // variable names ("$x"), 0..2
    size_t n_decl;
    struct gcmd *cmds;
    size_t n_cmds;
};

enum gnode_type { GN_TEXT, GN_ACTION, GN_IF, GN_RANGE, GN_WITH, GN_TEMPLATE, GN_BREAK,
                  GN_CONTINUE };

struct gnode;
struct glist_node {
    struct gnode **items;
    size_t n;
};

struct gnode {
    uint8_t type; // enum gnode_type
    uint32_t pos;
    union {
        struct { const char *p; size_t n; } text;
        struct gpipe *pipe; // ACTION
        struct {
            struct gpipe *pipe;
            struct glist_node list, else_list;
            bool has_else;
        } br;               // IF, RANGE, WITH
        struct {
            const char *name;
            struct gpipe *pipe; // may be NULL
        } tmpl;
    } u;
};

struct gdefine {
    const char *name;
    struct glist_node root;
};

struct gotmpl {
    struct gpool pool; // every node and string of the tree
    char *src;         // copy of the source, for line/column in messages
    size_t src_len;
    struct glist_node root;
    struct gdefine *defs;
    size_t n_defs;
    // Ollama's view (template.Parse/Vars): lowercased identifiers, and the trees used by the
    // per-turn path of templates without .Messages.
    const char **vars;
    size_t n_vars;
    bool undefined_template; // a {{template}} without a pipeline: Ollama's Parse rejects it
    struct glist_node root_resp; // root plus {{ .Response }} when Ollama appends it
    struct glist_node root_cut;  // root_resp with everything after .Response removed
};

// Line (1-based) and column (0-based byte offset in the line) of a source offset.
void gotmpl_line_col(const struct gotmpl *t, uint32_t pos, int *line, int *col);
// The defined template called name, or NULL.
const struct glist_node *gotmpl_lookup(const struct gotmpl *t, const char *name);

// ---- values --------------------------------------------------------------------------------
// Kinds follow reflect: INVALID is Go's zero reflect.Value (prints "<no value>"), NIL a nil
// interface{} (a missing key of map[string]any under missingkey=zero, JSON null).
enum gkind { GK_INVALID, GK_NIL, GK_BOOL, GK_INT, GK_FLOAT, GK_STRING, GK_LIST, GK_MAP,
             GK_STRUCT };

enum gstringer {
    GS_NONE,
    GS_JSON_VAL, // String() on the value: json.Marshal (applies at any depth)
    GS_JSON_PTR, // String() on the pointer: applies only to the operand being printed
    GS_PROPTYPE  // api.PropertyType: "" / the one string / "[a b]"
};

struct gtype;
struct gfield {
    const char *name;       // Go field name
    const char *json;       // json key
    bool omitempty;
    const struct gtype *type; // NULL = interface{}
};

struct gtype {
    const char *name;       // Go type name for messages ("*api.Message")
    uint8_t kind;           // enum gkind of the underlying type (GK_NIL for interface{})
    uint8_t stringer;       // enum gstringer
    bool ptr;               // a pointer to the struct
    bool marshal_proptype;  // MarshalJSON of api.PropertyType
    const struct gtype *elem; // list/map elements; NULL = interface{}
    const struct gfield *fields;
    size_t n_fields;
};

struct glist;
struct gmap;
struct gval {
    uint8_t kind;             // enum gkind
    const struct gtype *type; // NULL: the generic Go type of the kind (string, int, float64,
                              // bool, []interface {}, map[string]interface {})
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;
        struct glist *list;   // NULL = nil slice
        struct gmap *map;     // NULL = nil map
        struct gval *fields;  // GK_STRUCT: type->n_fields values
    } u;
};

struct glist {
    size_t n;
    struct gval *items;
};

struct gmap {
    size_t n;
    const char **keys; // sorted bytewise (Go's fmtsort order for string keys)
    size_t *klens;
    struct gval *vals;
};

extern const struct gtype gotmpl_t_string;

static inline struct gval gval_invalid(void)
{
    struct gval v = {0};
    return v;
}
static inline struct gval gval_str(const char *p, size_t n)
{
    struct gval v = {.kind = GK_STRING};
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}
static inline struct gval gval_bool(bool b)
{
    struct gval v = {.kind = GK_BOOL};
    v.u.b = b;
    return v;
}
static inline struct gval gval_int(int64_t i)
{
    struct gval v = {.kind = GK_INT};
    v.u.i = i;
    return v;
}

// The Go type name of v for messages ("string", "*api.Message", "<nil>").
const char *gval_type_name(const struct gval *v);
// The zero value of a type (NULL type: nil interface).
bool gval_zero(struct gpool *p, const struct gtype *t, struct gval *out);
// Length of a string/list/map; -1 for other kinds.
int64_t gval_len(const struct gval *v);
// Go's truth (isTrue) for if/with/and/or/not.
bool gval_truth(const struct gval *v);
// Map lookup: index of key or -1.
long gmap_find(const struct gmap *m, const char *key, size_t klen);

// fmt: appends v as fmt.Fprint would (verb 'v' at the top; depth 0 is the printed operand).
enum llem_err gval_fmt_v(struct strbuf *sb, const struct gval *v, int depth);
// fmt.Sprint(args...) (spaces between operands when neither is a string), or Sprintln.
enum llem_err gval_sprint(struct strbuf *sb, const struct gval *args, size_t n, bool ln);
// fmt.Sprintf(format, args...).
enum llem_err gval_sprintf(struct strbuf *sb, const char *fmt, size_t fmt_len,
                           const struct gval *args, size_t n);
// encoding/json Marshal (HTML-escaped); false when Go's would fail (NaN, Inf).
enum llem_err gval_json(struct strbuf *sb, const struct gval *v, bool *ok);
// Go strconv.Quote.
enum llem_err gotmpl_quote(struct strbuf *sb, const char *s, size_t n);
// Go's shortest float formatting: fmt 'g' (%v) or encoding/json's rule.
enum llem_err gotmpl_fmt_float_g(struct strbuf *sb, double f);
enum llem_err gotmpl_fmt_float_json(struct strbuf *sb, double f);

// Generic conversion of JSON (Go's json.Unmarshal into interface{}).
enum llem_err gval_from_json(struct gpool *p, const cJSON *j, struct gval *out, int depth);

// ---- execution -----------------------------------------------------------------------------
// Executes root (NULL = t->root) with dot = data, appending to out. Used by the Ollama layer.
enum llem_err gotmpl_exec(const struct gotmpl *t, const struct glist_node *root,
                          const struct gval *data, struct gpool *pool,
                          const struct gotmpl_limits *lim, struct strbuf *out,
                          struct llem_errbuf *eb);
// toTypeScriptType for an api.ToolProperty value (Ollama's helper); defined in gotmpl_ollama.c.
enum llem_err gotmpl_ts_type(struct strbuf *sb, const struct gval *v);
