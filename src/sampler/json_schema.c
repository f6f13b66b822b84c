// sampler/json_schema.c: JSON Schema (and Ollama's format / OpenAI's response_format) ->
// GBNF text -> grammar_rules. One rule per sub-schema; $ref targets get one rule each, named
// before their body is written, so recursive schemas work. Keywords that would change validity
// and that we cannot express are LLEM_EUNSUPPORTED: the output must never silently violate the
// schema. Whitespace between JSON tokens is optional but bounded (see JSON_WS).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/alloc.h"
#include "sampler/grammar_int.h"

#define SCHEMA_MAX_DEPTH 64
#define SCHEMA_MAX_REFS 4096
#define INT_MAX_DIGITS 16 // integers have at most 16 digits (as the number rule below)

// Primitives shared by every generated grammar. A value is followed by its own ws inside
// containers; ws is " " or a newline plus up to 20 spaces/tabs of indentation: optional but
// bounded, so a model cannot emit whitespace forever.
static const char JSON_BASE[] =
    "ws ::= ( \" \" | \"\\n\" [ \\t]{0,20} )?\n"
    "value ::= object | array | string | number | \"true\" | \"false\" | \"null\"\n"
    "object ::= \"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* "
    ")? \"}\"\n"
    "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n"
    "string ::= \"\\\"\" char* \"\\\"\"\n"
    "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" hexu )\n"
    "hex ::= [0-9a-fA-F]\n"
    "hexu ::= [0-9a-cA-Ce-fE-F] hex hex hex | [dD] [0-7] hex hex\n"
    "number ::= \"-\"? int ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?\n"
    "int ::= \"0\" | [1-9] [0-9]{0,15}\n"
    "integer ::= \"-\"? int\n"
    "boolean ::= \"true\" | \"false\"\n"
    "null ::= \"null\"\n"
    "pchar ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" [\"\\\\/bfrt]\n";

const char *json_schema_json_gbnf(void)
{
    return JSON_BASE;
}

struct sc {
    struct strbuf rules; // generated rule lines
    const cJSON *root;
    struct llem_errbuf *eb;
    int32_t n_rules;
    int depth;
    struct {
        char *ref;
        char name[24];
    } refs[SCHEMA_MAX_REFS];
    int32_t n_refs;
};

static enum llem_err sc_oom(struct sc *s)
{
    return llem_errf(s->eb, LLEM_ENOMEM, "schema: out of memory");
}

static enum llem_err visit(struct sc *s, const cJSON *sch, struct strbuf *expr);

// Appends the GBNF literal matching exactly the bytes of `text` (a compact JSON text).
static enum llem_err put_literal(struct strbuf *o, const char *text)
{
    enum llem_err e = strbuf_append_char(o, '"');
    for (const char *p = text; *p && !e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            e = strbuf_append_char(o, '\\');
            if (!e) {
                e = strbuf_append_char(o, (char)c);
            }
        } else if (c < 0x20) {
            e = strbuf_appendf(o, "\\x%02X", c);
        } else {
            e = strbuf_append_char(o, (char)c);
        }
    }
    return e ? e : strbuf_append_char(o, '"');
}

static enum llem_err put_json_literal(struct sc *s, const cJSON *v, struct strbuf *o)
{
    char *t = cJSON_PrintUnformatted(v);
    if (!t) {
        return sc_oom(s);
    }
    enum llem_err e = put_literal(o, t);
    cJSON_free(t);
    return e;
}

// New rule name "sN" (written into name[24]).
static void new_name(struct sc *s, char name[24])
{
    snprintf(name, 24, "s%d", (int)s->n_rules++);
}

static enum llem_err emit_rule(struct sc *s, const char *name, const struct strbuf *body)
{
    enum llem_err e = strbuf_appendf(&s->rules, "%s ::= %s\n", name, strbuf_cstr(body));
    return e == LLEM_ENOMEM ? sc_oom(s) : e;
}

// Wraps a sub-schema in its own rule and appends the rule's name to expr.
static enum llem_err visit_rule(struct sc *s, const cJSON *sch, struct strbuf *expr)
{
    struct strbuf body;
    strbuf_init(&body, 0);
    char name[24];
    new_name(s, name);
    enum llem_err e = visit(s, sch, &body);
    if (!e) {
        e = emit_rule(s, name, &body);
    }
    strbuf_deinit(&body);
    return e ? e : strbuf_append_str(expr, name);
}

// ---- $ref ----------------------------------------------------------------------------------

static const cJSON *resolve_pointer(const cJSON *root, const char *ref)
{
    if (ref[0] != '#') {
        return NULL;
    }
    const cJSON *cur = root;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char seg[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof seg) {
            if (p[0] == '~' && p[1] == '0') {
                seg[n++] = '~';
                p += 2;
            } else if (p[0] == '~' && p[1] == '1') {
                seg[n++] = '/';
                p += 2;
            } else {
                seg[n++] = *p++;
            }
        }
        seg[n] = 0;
        if (cJSON_IsArray(cur)) {
            char *end;
            long idx = strtol(seg, &end, 10);
            cur = *end ? NULL : cJSON_GetArrayItem(cur, (int)idx);
        } else {
            cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
        }
        if (!cur) {
            return NULL;
        }
    }
    return *p ? NULL : cur;
}

static enum llem_err visit_ref(struct sc *s, const char *ref, struct strbuf *expr)
{
    for (int32_t i = 0; i < s->n_refs; i++) {
        if (strcmp(s->refs[i].ref, ref) == 0) {
            return strbuf_append_str(expr, s->refs[i].name);
        }
    }
    const cJSON *target = resolve_pointer(s->root, ref);
    if (!target) {
        return llem_errf(s->eb, ref[0] == '#' ? LLEM_EINVAL : LLEM_EUNSUPPORTED,
                         "schema: cannot resolve $ref \"%.80s\" (only local \"#/...\" refs)",
                         ref);
    }
    if (s->n_refs >= SCHEMA_MAX_REFS) {
        return llem_errf(s->eb, LLEM_ELIMIT, "schema: too many $ref targets");
    }
    int32_t k = s->n_refs++;
    s->refs[k].ref = llem_strdup(ref);
    if (!s->refs[k].ref) {
        return sc_oom(s);
    }
    new_name(s, s->refs[k].name);
    struct strbuf body;
    strbuf_init(&body, 0);
    enum llem_err e = visit(s, target, &body);
    if (!e) {
        e = emit_rule(s, s->refs[k].name, &body);
    }
    strbuf_deinit(&body);
    return e ? e : strbuf_append_str(expr, s->refs[k].name);
}

// ---- numbers -------------------------------------------------------------------------------

// Digits of lo..hi (same length n, as strings) as a GBNF expression.
static enum llem_err digits_range(struct strbuf *o, const char *a, const char *b, int n)
{
    enum llem_err e;
    if (n == 0) {
        return LLEM_OK;
    }
    bool a_zero = true, b_nine = true;
    for (int i = 0; i < n; i++) {
        a_zero &= a[i] == '0';
        b_nine &= b[i] == '9';
    }
    if (a_zero && b_nine) {
        return strbuf_appendf(o, " [0-9]{%d}", n);
    }
    if (a[0] == b[0]) {
        if ((e = strbuf_appendf(o, " \"%c\"", a[0]))) {
            return e;
        }
        return digits_range(o, a + 1, b + 1, n - 1);
    }
    char nines[INT_MAX_DIGITS + 1], zeros[INT_MAX_DIGITS + 1];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    if ((e = strbuf_append_str(o, " ( \"")) || (e = strbuf_append_char(o, a[0])) ||
        (e = strbuf_append_char(o, '"')) || (e = digits_range(o, a + 1, nines, n - 1))) {
        return e;
    }
    if (a[0] + 1 <= b[0] - 1) {
        if ((e = strbuf_appendf(o, " | [%c-%c]", a[0] + 1, b[0] - 1))) {
            return e;
        }
        if (n > 1 && (e = strbuf_appendf(o, " [0-9]{%d}", n - 1))) {
            return e;
        }
    }
    if ((e = strbuf_appendf(o, " | \"%c\"", b[0])) || (e = digits_range(o, zeros, b + 1, n - 1))) {
        return e;
    }
    return strbuf_append_str(o, " )");
}

static int ndigits(int64_t v)
{
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static int64_t pow10i(int n)
{
    int64_t p = 1;
    while (n-- > 0) {
        p *= 10;
    }
    return p;
}

// v (>= 0, at most d <= INT_MAX_DIGITS digits) as exactly d digits, zero-padded.
static void put_padded(char *buf, int64_t v, int d)
{
    buf[d] = 0;
    for (int i = d - 1; i >= 0; i--) {
        buf[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

// Non-negative integers lo..hi without leading zeros, as alternatives appended to o.
static enum llem_err nonneg_range(struct strbuf *o, int64_t lo, int64_t hi, bool *first)
{
    enum llem_err e;
    for (int d = ndigits(lo); d <= ndigits(hi); d++) {
        int64_t a = d == 1 ? 0 : pow10i(d - 1), b = pow10i(d) - 1;
        a = lo > a ? lo : a;
        b = hi < b ? hi : b;
        if (a > b) {
            continue;
        }
        char sa[INT_MAX_DIGITS + 2], sb[INT_MAX_DIGITS + 2];
        put_padded(sa, a, d);
        put_padded(sb, b, d);
        if ((e = strbuf_append_str(o, *first ? " (" : " |")) || (e = digits_range(o, sa, sb, d))) {
            return e;
        }
        *first = false;
    }
    return LLEM_OK;
}

static enum llem_err integer_range(struct sc *s, int64_t lo, int64_t hi, struct strbuf *o)
{
    if (lo > hi) {
        return llem_errf(s->eb, LLEM_EINVAL, "schema: integer range is empty");
    }
    enum llem_err e;
    bool first = true;
    if ((e = strbuf_append_str(o, " ("))) {
        return e;
    }
    if (lo < 0) { // negatives as "-" and their magnitudes (never "-0")
        int64_t nlo = hi < 0 ? -hi : 1, nhi = -lo;
        if ((e = strbuf_append_str(o, " \"-\"")) || (e = nonneg_range(o, nlo, nhi, &first)) ||
            (e = strbuf_append_str(o, " )"))) {
            return e;
        }
        if (hi >= 0) {
            first = true;
            if ((e = strbuf_append_str(o, " |")) || (e = nonneg_range(o, 0, hi, &first)) ||
                (e = strbuf_append_str(o, " )"))) {
                return e;
            }
        }
        return strbuf_append_str(o, " )");
    }
    if ((e = nonneg_range(o, lo, hi, &first))) {
        return e;
    }
    return strbuf_append_str(o, " ) )");
}

static bool get_num(const cJSON *sch, const char *key, double *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(sch, key);
    if (cJSON_IsNumber(x)) {
        *v = x->valuedouble;
        return true;
    }
    return false;
}

static enum llem_err visit_number(struct sc *s, const cJSON *sch, bool integer, struct strbuf *o)
{
    double mn = 0, mx = 0, ex = 0;
    bool has_min = get_num(sch, "minimum", &mn), has_max = get_num(sch, "maximum", &mx);
    const double lim = (double)(pow10i(INT_MAX_DIGITS) - 1);
    if (get_num(sch, "exclusiveMinimum", &ex)) {
        if (!integer) {
            return llem_errf(s->eb, LLEM_EUNSUPPORTED,
                             "schema: exclusiveMinimum on a number is not supported");
        }
        mn = has_min && mn > ex + 1 ? mn : ex + 1;
        has_min = true;
    }
    if (get_num(sch, "exclusiveMaximum", &ex)) {
        if (!integer) {
            return llem_errf(s->eb, LLEM_EUNSUPPORTED,
                             "schema: exclusiveMaximum on a number is not supported");
        }
        mx = has_max && mx < ex - 1 ? mx : ex - 1;
        has_max = true;
    }
    if (!has_min && !has_max) {
        return strbuf_append_str(o, integer ? "integer" : "number");
    }
    if (!integer) {
        return llem_errf(s->eb, LLEM_EUNSUPPORTED,
                         "schema: minimum/maximum on a (non-integer) number is not supported; "
                         "use type integer");
    }
    if ((has_min && (mn < -lim || mn > lim)) || (has_max && (mx < -lim || mx > lim))) {
        return llem_errf(s->eb, LLEM_EUNSUPPORTED, "schema: integer bounds beyond 16 digits");
    }
    // integer bounds: round inwards
    int64_t lo = has_min ? (int64_t)mn : -(int64_t)lim, hi = has_max ? (int64_t)mx : (int64_t)lim;
    if (has_min && (double)lo < mn) {
        lo++;
    }
    if (has_max && (double)hi > mx) {
        hi--;
    }
    return integer_range(s, lo, hi, o);
}

// ---- strings -------------------------------------------------------------------------------

static enum llem_err visit_string(struct sc *s, const cJSON *sch, struct strbuf *o)
{
    double mn = 0, mx = -1;
    bool has_min = get_num(sch, "minLength", &mn), has_max = get_num(sch, "maxLength", &mx);
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(sch, "pattern");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(sch, "format");
    enum llem_err e;
    if (cJSON_IsString(pat)) {
        if (has_min || has_max) {
            return llem_errf(s->eb, LLEM_EUNSUPPORTED,
                             "schema: pattern together with minLength/maxLength");
        }
        if ((e = strbuf_append_str(o, "\"\\\"\" ( "))) {
            return e;
        }
        if ((e = json_regex_to_gbnf(pat->valuestring, strlen(pat->valuestring), o, s->eb))) {
            return e;
        }
        return strbuf_append_str(o, " ) \"\\\"\"");
    }
    if (cJSON_IsString(fmt) && !has_min && !has_max) {
        static const struct {
            const char *name, *gbnf;
        } fmts[] = {
            {"date", "[0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [12] "
                     "[0-9] | \"3\" [01] )"},
            {"time", "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" "
                     "[0-9]{1,6} )? ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] "
                     "[0-9] )"},
            {"uuid", "hex{8} \"-\" hex{4} \"-\" hex{4} \"-\" hex{4} \"-\" hex{12}"},
            {"email", "[a-zA-Z0-9._%+-]{1,64} \"@\" [a-zA-Z0-9] [a-zA-Z0-9-]{0,62} ( \".\" "
                      "[a-zA-Z0-9] [a-zA-Z0-9-]{0,62} ){1,4}"},
            {"ipv4", "( [0-9] | [1-9] [0-9] | \"1\" [0-9] [0-9] | \"2\" [0-4] [0-9] | \"25\" "
                     "[0-5] ) ( \".\" ( [0-9] | [1-9] [0-9] | \"1\" [0-9] [0-9] | \"2\" [0-4] "
                     "[0-9] | \"25\" [0-5] ) ){3}"},
        };
        const char *f = fmt->valuestring;
        bool dt = strcmp(f, "date-time") == 0;
        for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
            if (dt ? (i == 0) : strcmp(f, fmts[i].name) == 0) {
                if ((e = strbuf_append_str(o, "\"\\\"\" ")) ||
                    (e = strbuf_append_str(o, fmts[i].gbnf))) {
                    return e;
                }
                if (dt && ((e = strbuf_append_str(o, " \"T\" ")) ||
                           (e = strbuf_append_str(o, fmts[1].gbnf)))) {
                    return e;
                }
                return strbuf_append_str(o, " \"\\\"\"");
            }
        }
        // other formats are annotations (JSON Schema 2020-12 default): a plain string
    }
    if (!has_min && !has_max) {
        return strbuf_append_str(o, "string");
    }
    if (mn < 0 || (has_max && mx < mn) || mn > GRAMMAR_MAX_REPEAT || mx > GRAMMAR_MAX_REPEAT) {
        return llem_errf(s->eb, has_max && mx < mn ? LLEM_EINVAL : LLEM_EUNSUPPORTED,
                         "schema: string length bounds out of range");
    }
    if (has_max) {
        return strbuf_appendf(o, "\"\\\"\" char{%d,%d} \"\\\"\"", (int)mn, (int)mx);
    }
    return strbuf_appendf(o, "\"\\\"\" char{%d,} \"\\\"\"", (int)mn);
}

// ---- arrays --------------------------------------------------------------------------------

static enum llem_err visit_array(struct sc *s, const cJSON *sch, struct strbuf *o)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(sch, "items");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(sch, "prefixItems");
    double mn = 0, mx = -1;
    get_num(sch, "minItems", &mn);
    bool has_max = get_num(sch, "maxItems", &mx);
    if (mn < 0 || mn > 10000 || (has_max && (mx < mn || mx > 10000))) {
        return llem_errf(s->eb, LLEM_EUNSUPPORTED, "schema: minItems/maxItems out of range");
    }
    enum llem_err e;
    struct strbuf item;
    strbuf_init(&item, 0);
    if (cJSON_IsArray(prefix)) { // a tuple: the prefix items in order, then `items` (or none)
        int n = cJSON_GetArraySize(prefix);
        if (mn > n || (items && !cJSON_IsFalse(items))) {
            strbuf_deinit(&item);
            return llem_errf(s->eb, LLEM_EUNSUPPORTED,
                             "schema: prefixItems with extra items or minItems beyond them");
        }
        int upto = has_max && mx < n ? (int)mx : n;
        e = strbuf_append_str(o, "\"[\" ws");
        // items 0..mn-1 required, the rest optional and nested so they stay in order
        int opened = 0;
        for (int i = 0; i < upto && !e; i++) {
            if (i >= (int)mn) {
                e = strbuf_append_str(o, " (");
                opened++;
            }
            if (!e && i > 0) {
                e = strbuf_append_str(o, " \",\" ws");
            }
            if (!e) {
                e = strbuf_append_char(o, ' ');
            }
            if (!e) {
                e = visit_rule(s, cJSON_GetArrayItem(prefix, i), o);
            }
            if (!e) {
                e = strbuf_append_str(o, " ws");
            }
        }
        for (int i = 0; i < opened && !e; i++) {
            e = strbuf_append_str(o, " )?");
        }
        strbuf_deinit(&item);
        return e ? e : strbuf_append_str(o, " \"]\"");
    }
    if (items && !cJSON_IsObject(items) && !cJSON_IsTrue(items)) {
        strbuf_deinit(&item);
        return llem_errf(s->eb, LLEM_EUNSUPPORTED, "schema: this form of items is not supported");
    }
    e = items && cJSON_IsObject(items) ? visit_rule(s, items, &item)
                                       : strbuf_append_str(&item, "value");
    if (e) {
        strbuf_deinit(&item);
        return e;
    }
    const char *it = strbuf_cstr(&item);
    if (has_max && mx == 0) {
        e = strbuf_append_str(o, "\"[\" ws \"]\"");
    } else if (mn == 0) {
        e = has_max ? strbuf_appendf(o, "\"[\" ws ( %s ws ( \",\" ws %s ws ){0,%d} )? \"]\"", it,
                                     it, (int)mx - 1)
                    : strbuf_appendf(o, "\"[\" ws ( %s ws ( \",\" ws %s ws )* )? \"]\"", it, it);
    } else {
        e = has_max ? strbuf_appendf(o, "\"[\" ws %s ws ( \",\" ws %s ws ){%d,%d} \"]\"", it, it,
                                     (int)mn - 1, (int)mx - 1)
                    : strbuf_appendf(o, "\"[\" ws %s ws ( \",\" ws %s ws ){%d,} \"]\"", it, it,
                                     (int)mn - 1);
    }
    strbuf_deinit(&item);
    return e;
}

// ---- objects -------------------------------------------------------------------------------

static bool is_required(const cJSON *req, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, req)
    {
        if (cJSON_IsString(r) && strcmp(r->valuestring, name) == 0) {
            return true;
        }
    }
    return false;
}

// Properties in declared order; required ones always, optional ones may be skipped. Rule A_i:
// nothing emitted yet, at property i; B_i: something emitted (so a comma comes first).
static enum llem_err visit_object(struct sc *s, const cJSON *sch, struct strbuf *o)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(sch, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(sch, "required");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(sch, "additionalProperties");
    if (props && !cJSON_IsObject(props)) {
        return llem_errf(s->eb, LLEM_EINVAL, "schema: properties is not an object");
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, req)
    {
        if (!cJSON_IsString(r) || !cJSON_GetObjectItemCaseSensitive(props, r->valuestring)) {
            return llem_errf(s->eb, LLEM_EUNSUPPORTED,
                             "schema: required property \"%.60s\" is not in properties",
                             cJSON_IsString(r) ? r->valuestring : "?");
        }
    }
    if (!props && !addl) {
        return strbuf_append_str(o, "object");
    }
    enum llem_err e = LLEM_OK;
    // extra key/value pairs: additionalProperties true or a schema (not false / absent)
    struct strbuf extra;
    strbuf_init(&extra, 0);
    bool has_extra = addl && !cJSON_IsFalse(addl);
    if (has_extra) {
        if (props && cJSON_GetArraySize(props) > 0) {
            strbuf_deinit(&extra);
            return llem_errf(s->eb, LLEM_EUNSUPPORTED,
                             "schema: additionalProperties together with properties");
        }
        e = strbuf_append_str(&extra, "string ws \":\" ws ");
        if (!e) {
            e = cJSON_IsObject(addl) ? visit_rule(s, addl, &extra)
                                     : strbuf_append_str(&extra, "value");
        }
        if (!e) {
            e = strbuf_append_str(&extra, " ws");
        }
        if (!e) {
            const char *x = strbuf_cstr(&extra);
            e = strbuf_appendf(o, "\"{\" ws ( %s ( \",\" ws %s )* )? \"}\"", x, x);
        }
        strbuf_deinit(&extra);
        return e;
    }
    strbuf_deinit(&extra);
    int n = cJSON_GetArraySize(props);
    char base[24];
    new_name(s, base);
    // kv_i rules, then A_i / B_i from the end
    struct strbuf body;
    strbuf_init(&body, 0);
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, props)
    {
        strbuf_reset(&body);
        char *key = cJSON_PrintUnformatted(&(cJSON){.type = cJSON_String, .valuestring =
                                                                               p->string});
        if (!key) {
            e = sc_oom(s);
            break;
        }
        e = put_literal(&body, key);
        cJSON_free(key);
        if (!e) {
            e = strbuf_append_str(&body, " ws \":\" ws ");
        }
        if (!e) {
            e = visit_rule(s, p, &body);
        }
        if (!e) {
            e = strbuf_append_str(&body, " ws");
        }
        char kv[48];
        snprintf(kv, sizeof kv, "%s-kv%d", base, i);
        if (!e) {
            e = emit_rule(s, kv, &body);
        }
        if (e) {
            break;
        }
        i++;
    }
    for (i = n; i >= 0 && !e; i--) {
        char a[48], b[48];
        snprintf(a, sizeof a, "%s-a%d", base, i);
        snprintf(b, sizeof b, "%s-b%d", base, i);
        const cJSON *pi = i < n ? cJSON_GetArrayItem(props, i) : NULL;
        bool reqd = pi && is_required(req, pi->string);
        for (int k = 0; k < 2 && !e; k++) { // k == 0: A_i, k == 1: B_i
            strbuf_reset(&body);
            if (!pi) {
                e = strbuf_append_str(&body, "\"\"");
            } else {
                e = strbuf_appendf(&body, "%s%s-kv%d %s-b%d", k ? "\",\" ws " : "", base, i,
                                   base, i + 1);
                if (!e && !reqd) {
                    e = strbuf_appendf(&body, " | %s-%c%d", base, k ? 'b' : 'a', i + 1);
                }
            }
            if (!e) {
                e = emit_rule(s, k ? b : a, &body);
            }
        }
    }
    strbuf_deinit(&body);
    return e ? e : strbuf_appendf(o, "\"{\" ws %s-a0 \"}\"", base);
}

// ---- dispatch ------------------------------------------------------------------------------

static const char *const UNSUPPORTED[] = {
    "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies",
    "patternProperties", "propertyNames", "unevaluatedProperties", "unevaluatedItems",
    "contains", "minContains", "maxContains", "multipleOf", "minProperties", "maxProperties",
    "$dynamicRef", "$recursiveRef", "contentSchema",
};

static enum llem_err visit_type(struct sc *s, const cJSON *sch, const char *t, struct strbuf *o)
{
    if (strcmp(t, "string") == 0) {
        return visit_string(s, sch, o);
    }
    if (strcmp(t, "number") == 0 || strcmp(t, "integer") == 0) {
        return visit_number(s, sch, t[1] == 'n', o);
    }
    if (strcmp(t, "boolean") == 0) {
        return strbuf_append_str(o, "boolean");
    }
    if (strcmp(t, "null") == 0) {
        return strbuf_append_str(o, "null");
    }
    if (strcmp(t, "object") == 0) {
        return visit_object(s, sch, o);
    }
    if (strcmp(t, "array") == 0) {
        return visit_array(s, sch, o);
    }
    return llem_errf(s->eb, LLEM_EINVAL, "schema: unknown type \"%.40s\"", t);
}

// allOf: merged into one object schema (properties and required joined) when every part is an
// object schema; a single part is just that part.
static enum llem_err visit_all_of(struct sc *s, const cJSON *sch, const cJSON *all,
                                  struct strbuf *o)
{
    if (cJSON_GetArraySize(all) == 1 && cJSON_GetArraySize(sch) == 1) {
        return visit(s, cJSON_GetArrayItem(all, 0), o);
    }
    cJSON *merged = cJSON_CreateObject();
    cJSON *props = cJSON_AddObjectToObject(merged, "properties");
    cJSON *req = cJSON_AddArrayToObject(merged, "required");
    if (!merged || !props || !req) {
        cJSON_Delete(merged);
        return sc_oom(s);
    }
    enum llem_err e = LLEM_OK;
    const cJSON *parts[2] = {sch, all};
    for (int k = 0; k < 2 && !e; k++) {
        const cJSON *part;
        int idx = 0;
        for (part = k == 0 ? sch : all->child; part && !e; part = k == 0 ? NULL : part->next) {
            const cJSON *ps = part;
            for (int hops = 0; ps && cJSON_GetObjectItemCaseSensitive(ps, "$ref") && hops < 16;
                 hops++) {
                const cJSON *ref = cJSON_GetObjectItemCaseSensitive(ps, "$ref");
                ps = cJSON_IsString(ref) ? resolve_pointer(s->root, ref->valuestring) : NULL;
            }
            if (!ps || !cJSON_IsObject(ps)) {
                e = llem_errf(s->eb, LLEM_EUNSUPPORTED, "schema: allOf part %d unsupported", idx);
                break;
            }
            const cJSON *c;
            cJSON_ArrayForEach(c, ps)
            {
                const char *key = c->string;
                if (strcmp(key, "properties") == 0) {
                    const cJSON *pp;
                    cJSON_ArrayForEach(pp, c)
                    {
                        if (!cJSON_GetObjectItemCaseSensitive(props, pp->string)) {
                            cJSON_AddItemReferenceToObject(props, pp->string, (cJSON *)pp);
                        }
                    }
                } else if (strcmp(key, "required") == 0) {
                    const cJSON *rr;
                    cJSON_ArrayForEach(rr, c)
                    {
                        cJSON_AddItemReferenceToArray(req, (cJSON *)rr);
                    }
                } else if (strcmp(key, "type") == 0) {
                    if (!cJSON_IsString(c) || strcmp(c->valuestring, "object") != 0) {
                        e = llem_errf(s->eb, LLEM_EUNSUPPORTED,
                                      "schema: allOf of non-object schemas");
                    }
                } else if (strcmp(key, "allOf") != 0 && strcmp(key, "title") != 0 &&
                           strcmp(key, "description") != 0 && strcmp(key, "$defs") != 0 &&
                           strcmp(key, "definitions") != 0 &&
                           strcmp(key, "additionalProperties") != 0 &&
                           strcmp(key, "$schema") != 0) {
                    e = llem_errf(s->eb, LLEM_EUNSUPPORTED,
                                  "schema: \"%.40s\" inside allOf is not supported", key);
                }
                if (e) {
                    break;
                }
            }
            idx++;
        }
    }
    (void)parts;
    if (!e) {
        e = visit_object(s, merged, o);
    }
    cJSON_Delete(merged);
    return e;
}

static enum llem_err visit(struct sc *s, const cJSON *sch, struct strbuf *o)
{
    if (cJSON_IsTrue(sch)) {
        return strbuf_append_str(o, "value");
    }
    if (cJSON_IsFalse(sch)) {
        return llem_errf(s->eb, LLEM_EINVAL, "schema: false matches nothing");
    }
    if (!cJSON_IsObject(sch)) {
        return llem_errf(s->eb, LLEM_EINVAL, "schema: a schema must be an object or boolean");
    }
    if (++s->depth > SCHEMA_MAX_DEPTH) {
        return llem_errf(s->eb, LLEM_ELIMIT, "schema: nested deeper than %d", SCHEMA_MAX_DEPTH);
    }
    enum llem_err e = LLEM_OK;
    for (size_t i = 0; i < sizeof UNSUPPORTED / sizeof UNSUPPORTED[0]; i++) {
        if (cJSON_GetObjectItemCaseSensitive(sch, UNSUPPORTED[i])) {
            e = llem_errf(s->eb, LLEM_EUNSUPPORTED, "schema: keyword \"%s\" is not supported",
                          UNSUPPORTED[i]);
            goto out;
        }
    }
    const cJSON *uniq = cJSON_GetObjectItemCaseSensitive(sch, "uniqueItems");
    if (cJSON_IsTrue(uniq)) {
        e = llem_errf(s->eb, LLEM_EUNSUPPORTED, "schema: keyword \"uniqueItems\" is not supported");
        goto out;
    }
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(sch, "$ref");
    const cJSON *cst = cJSON_GetObjectItemCaseSensitive(sch, "const");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(sch, "enum");
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(sch, "anyOf");
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(sch, "oneOf");
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(sch, "allOf");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(sch, "type");
    const cJSON *nullable = cJSON_GetObjectItemCaseSensitive(sch, "nullable");
    bool add_null = cJSON_IsTrue(nullable);
    if (add_null && (e = strbuf_append_str(o, "( null | "))) {
        goto out;
    }
    if (cJSON_IsString(ref)) {
        e = visit_ref(s, ref->valuestring, o);
    } else if (cst) {
        e = put_json_literal(s, cst, o);
    } else if (en) {
        if (!cJSON_IsArray(en) || cJSON_GetArraySize(en) == 0) {
            e = llem_errf(s->eb, LLEM_EINVAL, "schema: enum must be a non-empty array");
            goto out;
        }
        e = strbuf_append_str(o, "(");
        const cJSON *v;
        bool first = true;
        cJSON_ArrayForEach(v, en)
        {
            if (!e && !first) {
                e = strbuf_append_str(o, " |");
            }
            if (!e) {
                e = strbuf_append_char(o, ' ');
            }
            if (!e) {
                e = put_json_literal(s, v, o);
            }
            first = false;
        }
        if (!e) {
            e = strbuf_append_str(o, " )");
        }
    } else if (any || one) {
        const cJSON *list = any ? any : one;
        if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
            e = llem_errf(s->eb, LLEM_EINVAL, "schema: anyOf/oneOf must be a non-empty array");
            goto out;
        }
        e = strbuf_append_str(o, "(");
        const cJSON *v;
        bool first = true;
        cJSON_ArrayForEach(v, list)
        {
            if (!e && !first) {
                e = strbuf_append_str(o, " |");
            }
            if (!e) {
                e = strbuf_append_char(o, ' ');
            }
            if (!e) {
                e = visit_rule(s, v, o);
            }
            first = false;
        }
        if (!e) {
            e = strbuf_append_str(o, " )");
        }
    } else if (all) {
        e = cJSON_IsArray(all) ? visit_all_of(s, sch, all, o)
                               : llem_errf(s->eb, LLEM_EINVAL, "schema: allOf must be an array");
    } else if (cJSON_IsArray(type)) {
        e = strbuf_append_str(o, "(");
        const cJSON *t;
        bool first = true;
        cJSON_ArrayForEach(t, type)
        {
            if (!cJSON_IsString(t)) {
                e = llem_errf(s->eb, LLEM_EINVAL, "schema: type list holds a non-string");
                goto out;
            }
            if (!e && !first) {
                e = strbuf_append_str(o, " |");
            }
            if (!e) {
                e = strbuf_append_char(o, ' ');
            }
            if (!e) {
                e = visit_type(s, sch, t->valuestring, o);
            }
            first = false;
        }
        if (!e) {
            e = strbuf_append_str(o, " )");
        }
    } else if (cJSON_IsString(type)) {
        e = visit_type(s, sch, type->valuestring, o);
    } else if (type) {
        e = llem_errf(s->eb, LLEM_EINVAL, "schema: type must be a string or an array");
    } else if (cJSON_GetObjectItemCaseSensitive(sch, "properties") ||
               cJSON_GetObjectItemCaseSensitive(sch, "additionalProperties")) {
        e = visit_object(s, sch, o);
    } else if (cJSON_GetObjectItemCaseSensitive(sch, "items") ||
               cJSON_GetObjectItemCaseSensitive(sch, "prefixItems")) {
        e = visit_array(s, sch, o);
    } else {
        e = strbuf_append_str(o, "value");
    }
    if (!e && add_null) {
        e = strbuf_append_str(o, " )");
    }
out:
    s->depth--;
    return e == LLEM_ENOMEM ? sc_oom(s) : e;
}

enum llem_err json_schema_to_gbnf(const char *schema, size_t len, struct strbuf *out,
                                  struct llem_errbuf *eb)
{
    cJSON *root = cJSON_ParseWithLength(schema, len);
    if (!root) {
        return llem_errf(eb, LLEM_EINVAL, "schema: not valid JSON");
    }
    struct sc *s = llem_calloc(1, sizeof *s);
    if (!s) {
        cJSON_Delete(root);
        return llem_errf(eb, LLEM_ENOMEM, "schema: out of memory");
    }
    s->root = root;
    s->eb = eb;
    strbuf_init(&s->rules, 64u << 20);
    struct strbuf top;
    strbuf_init(&top, 0);
    enum llem_err e = visit(s, root, &top);
    if (!e) {
        e = strbuf_appendf(out, "root ::= %s\n%s%s", strbuf_cstr(&top), strbuf_cstr(&s->rules),
                           JSON_BASE);
    }
    if (e == LLEM_ELIMIT && eb->code != LLEM_ELIMIT) {
        llem_errf(eb, LLEM_ELIMIT, "schema: the grammar is too large");
    }
    strbuf_deinit(&top);
    strbuf_deinit(&s->rules);
    for (int32_t i = 0; i < s->n_refs; i++) {
        llem_free(s->refs[i].ref);
    }
    llem_free(s);
    cJSON_Delete(root);
    return e;
}

// ---- entry points --------------------------------------------------------------------------

enum llem_err grammar_rules_json(struct grammar_rules **out, struct llem_errbuf *eb)
{
    struct strbuf g;
    strbuf_init(&g, 0);
    enum llem_err e = strbuf_appendf(&g, "root ::= object\n%s", JSON_BASE);
    if (!e) {
        e = grammar_rules_gbnf(out, g.data, g.len, "root", eb);
    } else {
        e = llem_errf(eb, e, "grammar: out of memory");
    }
    strbuf_deinit(&g);
    return e;
}

enum llem_err grammar_rules_schema(struct grammar_rules **out, const char *schema, size_t len,
                                   struct llem_errbuf *eb)
{
    *out = NULL;
    struct strbuf g;
    strbuf_init(&g, 0);
    enum llem_err e = json_schema_to_gbnf(schema, len, &g, eb);
    if (!e) {
        e = grammar_rules_gbnf(out, g.data, g.len, "root", eb);
    }
    strbuf_deinit(&g);
    return e;
}

enum llem_err grammar_rules_format(struct grammar_rules **out, const char *format, size_t len,
                                   struct llem_errbuf *eb)
{
    *out = NULL;
    if (len == 0) {
        return LLEM_OK;
    }
    cJSON *f = cJSON_ParseWithLength(format, len);
    if (!f) {
        return llem_errf(eb, LLEM_EINVAL, "invalid format: not JSON");
    }
    enum llem_err e = LLEM_OK;
    if (cJSON_IsNull(f) || (cJSON_IsString(f) && f->valuestring[0] == 0)) {
        e = LLEM_OK;
    } else if (cJSON_IsString(f) && strcmp(f->valuestring, "json") == 0) {
        e = grammar_rules_json(out, eb);
    } else if (cJSON_IsObject(f)) {
        e = grammar_rules_schema(out, format, len, eb);
    } else {
        e = llem_errf(eb, LLEM_EINVAL, "invalid format: expected \"json\" or a JSON schema");
    }
    cJSON_Delete(f);
    return e;
}

enum llem_err grammar_rules_openai(struct grammar_rules **out, const char *response_format,
                                   size_t len, struct llem_errbuf *eb)
{
    *out = NULL;
    cJSON *f = cJSON_ParseWithLength(response_format, len);
    if (!cJSON_IsObject(f)) {
        cJSON_Delete(f);
        return llem_errf(eb, LLEM_EINVAL, "response_format: expected an object");
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
    enum llem_err e = LLEM_OK;
    if (!cJSON_IsString(type)) {
        e = llem_errf(eb, LLEM_EINVAL, "response_format: missing type");
    } else if (strcmp(type->valuestring, "text") == 0) {
        e = LLEM_OK;
    } else if (strcmp(type->valuestring, "json_object") == 0) {
        e = grammar_rules_json(out, eb);
    } else if (strcmp(type->valuestring, "json_schema") == 0) {
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(f, "json_schema");
        const cJSON *sch = cJSON_GetObjectItemCaseSensitive(js, "schema");
        if (!cJSON_IsObject(sch)) {
            e = llem_errf(eb, LLEM_EINVAL, "response_format: json_schema.schema is missing");
        } else {
            char *txt = cJSON_PrintUnformatted(sch);
            e = txt ? grammar_rules_schema(out, txt, strlen(txt), eb)
                    : llem_errf(eb, LLEM_ENOMEM, "response_format: out of memory");
            cJSON_free(txt);
        }
    } else {
        e = llem_errf(eb, LLEM_EINVAL, "response_format: unknown type \"%.40s\"",
                      type->valuestring);
    }
    cJSON_Delete(f);
    return e;
}
