// template/gotmpl_ollama.c: what Ollama puts around Go's text/template: its data model (api.Message,
// api.Tool and friends as typed structs, so field errors, zero values, String() methods and JSON
// match Go), the request-to-values conversion, Template.Execute's three paths (fill-in-the-middle,
// templates over .Messages, legacy per-turn .System/.Prompt/.Response with the cut after
// .Response) and the built-in template table (Levenshtein match of a GGUF's Jinja template).
// Entry points: gotmpl_render_chat, gotmpl_execute_json, gotmpl_builtin_for, gotmpl_builtin_load.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/limits.h"
#include "template/gotmpl_int.h"

// ---- Ollama's types (api/types.go at the data's commit) ----------------------------------
static const struct gtype t_int = {.name = "int", .kind = GK_INT};
static const struct gtype t_bool = {.name = "bool", .kind = GK_BOOL};
#define T_STR (&gotmpl_t_string)
static const struct gtype t_strlist = {.name = "[]string", .kind = GK_LIST, .elem = T_STR};
static const struct gtype t_anylist = {.name = "[]interface {}", .kind = GK_LIST};
static const struct gtype t_imagedata = {.name = "api.ImageData", .kind = GK_STRING};
static const struct gtype t_images = {.name = "[]api.ImageData", .kind = GK_LIST,
                                      .elem = &t_imagedata};
static const struct gtype t_args = {.name = "api.ToolCallFunctionArguments", .kind = GK_MAP,
                                    .stringer = GS_JSON_PTR};

static const struct gfield f_tcfunc[] = {
    {"Index", "index", false, &t_int},
    {"Name", "name", false, T_STR},
    {"Arguments", "arguments", false, &t_args},
};
static const struct gtype t_tcfunc = {.name = "api.ToolCallFunction", .kind = GK_STRUCT,
                                      .fields = f_tcfunc, .n_fields = 3};
static const struct gfield f_toolcall[] = {
    {"ID", "id", true, T_STR},
    {"Function", "function", false, &t_tcfunc},
};
static const struct gtype t_toolcall = {.name = "api.ToolCall", .kind = GK_STRUCT,
                                        .fields = f_toolcall, .n_fields = 2};
static const struct gtype t_toolcalls = {.name = "[]api.ToolCall", .kind = GK_LIST,
                                         .elem = &t_toolcall};

enum { MF_ROLE, MF_CONTENT, MF_THINKING, MF_IMAGES, MF_TOOLCALLS, MF_TOOLNAME, MF_TOOLCALLID };
static const struct gfield f_message[] = {
    {"Role", "role", false, T_STR},
    {"Content", "content", false, T_STR},
    {"Thinking", "thinking", true, T_STR},
    {"Images", "images", true, &t_images},
    {"ToolCalls", "tool_calls", true, &t_toolcalls},
    {"ToolName", "tool_name", true, T_STR},
    {"ToolCallID", "tool_call_id", true, T_STR},
};
static const struct gtype t_message = {.name = "*api.Message", .kind = GK_STRUCT, .ptr = true,
                                       .fields = f_message, .n_fields = 7};
static const struct gtype t_messages = {.name = "[]*api.Message", .kind = GK_LIST,
                                        .elem = &t_message};

static const struct gtype t_proptype = {.name = "api.PropertyType", .kind = GK_LIST,
                                        .elem = T_STR, .stringer = GS_PROPTYPE,
                                        .marshal_proptype = true};
extern const struct gtype gotmpl_t_prop_;
static const struct gtype t_proplist = {.name = "[]api.ToolProperty", .kind = GK_LIST,
                                        .elem = &gotmpl_t_prop_};
enum { PF_ANYOF, PF_TYPE, PF_ITEMS, PF_DESC, PF_ENUM };
static const struct gfield f_prop[] = {
    {"AnyOf", "anyOf", true, &t_proplist},
    {"Type", "type", true, &t_proptype},
    {"Items", "items", true, NULL},
    {"Description", "description", true, T_STR},
    {"Enum", "enum", true, &t_anylist},
};
const struct gtype gotmpl_t_prop_ = {.name = "api.ToolProperty", .kind = GK_STRUCT,
                                     .fields = f_prop, .n_fields = 5};
static const struct gtype t_props = {.name = "map[string]api.ToolProperty", .kind = GK_MAP,
                                     .elem = &gotmpl_t_prop_};
static const struct gfield f_params[] = {
    {"Type", "type", false, T_STR},
    {"Defs", "$defs", true, NULL},
    {"Items", "items", true, NULL},
    {"Required", "required", true, &t_strlist},
    {"Properties", "properties", false, &t_props},
};
static const struct gtype t_params = {.name = "api.ToolFunctionParameters", .kind = GK_STRUCT,
                                      .stringer = GS_JSON_PTR, .fields = f_params,
                                      .n_fields = 5};
static const struct gfield f_toolfunc[] = {
    {"Name", "name", false, T_STR},
    {"Description", "description", true, T_STR},
    {"Parameters", "parameters", false, &t_params},
};
static const struct gtype t_toolfunc = {.name = "api.ToolFunction", .kind = GK_STRUCT,
                                        .stringer = GS_JSON_PTR, .fields = f_toolfunc,
                                        .n_fields = 3};
static const struct gfield f_tool[] = {
    {"Type", "type", false, T_STR},
    {"Items", "items", true, NULL},
    {"Function", "function", false, &t_toolfunc},
};
static const struct gtype t_tool = {.name = "api.Tool", .kind = GK_STRUCT,
                                    .stringer = GS_JSON_VAL, .fields = f_tool, .n_fields = 3};
static const struct gtype t_tools = {.name = "api.Tools", .kind = GK_LIST, .elem = &t_tool,
                                     .stringer = GS_JSON_VAL};

// ---- request conversion (json.Unmarshal into the typed structs) ---------------------------
struct conv {
    struct gpool *pool;
    struct llem_errbuf *eb;
};

static enum llem_err cerr_mem(struct conv *c)
{
    if (c->pool->over_cap) {
        return llem_errf(c->eb, LLEM_ELIMIT, "template: request data exceeds the memory cap");
    }
    return llem_errf(c->eb, LLEM_ENOMEM, "template: out of memory");
}

static const char *json_kind(const cJSON *j)
{
    if (cJSON_IsString(j)) return "string";
    if (cJSON_IsNumber(j)) return "number";
    if (cJSON_IsBool(j)) return "bool";
    if (cJSON_IsArray(j)) return "array";
    if (cJSON_IsObject(j)) return "object";
    return "value";
}

static enum llem_err bad_type(struct conv *c, const cJSON *j, const char *field, const char *want)
{
    return llem_errf(c->eb, LLEM_EINVAL, "json: cannot unmarshal %s into field %s of type %s",
                     json_kind(j), field, want);
}

static enum llem_err conv_value(struct conv *c, const cJSON *j, const struct gtype *t,
                                const char *field, struct gval *out, int depth);

static enum llem_err conv_struct(struct conv *c, const cJSON *j, const struct gtype *t,
                                 struct gval *out, int depth)
{
    if (!gval_zero(c->pool, t, out)) return cerr_mem(c);
    if (!j || cJSON_IsNull(j)) return LLEM_OK;
    if (!cJSON_IsObject(j)) return bad_type(c, j, t->name, t->name);
    for (size_t k = 0; k < t->n_fields; k++) {
        // cJSON_GetObjectItem ignores case, as Go's json does for struct fields.
        const cJSON *f = cJSON_GetObjectItem(j, t->fields[k].json);
        if (!f) continue;
        enum llem_err e = conv_value(c, f, t->fields[k].type, t->fields[k].name,
                                     &out->u.fields[k], depth + 1);
        if (e) return e;
    }
    return LLEM_OK;
}

static enum llem_err conv_value(struct conv *c, const cJSON *j, const struct gtype *t,
                                const char *field, struct gval *out, int depth)
{
    if (depth > (int)LLEM_JSON_MAX_DEPTH) {
        return llem_errf(c->eb, LLEM_ELIMIT, "template: request nests deeper than %u",
                         LLEM_JSON_MAX_DEPTH);
    }
    if (!t) { // interface{}
        enum llem_err e = gval_from_json(c->pool, j, out, depth);
        if (e == LLEM_ELIMIT) {
            return llem_errf(c->eb, e, "template: request nests deeper than %u",
                             LLEM_JSON_MAX_DEPTH);
        }
        return e ? cerr_mem(c) : LLEM_OK;
    }
    if (t->kind == GK_STRUCT) return conv_struct(c, j, t, out, depth);
    if (!gval_zero(c->pool, t, out)) return cerr_mem(c);
    if (!j || cJSON_IsNull(j)) return LLEM_OK;
    switch (t->kind) {
    case GK_STRING:
        if (!cJSON_IsString(j)) return bad_type(c, j, field, "string");
        out->u.s.p = j->valuestring ? j->valuestring : "";
        out->u.s.n = strlen(out->u.s.p);
        return LLEM_OK;
    case GK_INT:
        if (!cJSON_IsNumber(j) || j->valuedouble != (double)(int64_t)j->valuedouble) {
            return bad_type(c, j, field, "int");
        }
        out->u.i = (int64_t)j->valuedouble;
        return LLEM_OK;
    case GK_BOOL:
        if (!cJSON_IsBool(j)) return bad_type(c, j, field, "bool");
        out->u.b = cJSON_IsTrue(j);
        return LLEM_OK;
    case GK_LIST: {
        if (t->marshal_proptype && cJSON_IsString(j)) {
            // PropertyType accepts a single string as a one-element list.
            struct glist *l = gpool_alloc(c->pool, sizeof(*l));
            if (!l || !(l->items = gpool_alloc(c->pool, sizeof(struct gval)))) return cerr_mem(c);
            l->n = 1;
            l->items[0] = gval_str(j->valuestring, strlen(j->valuestring));
            l->items[0].type = T_STR;
            out->u.list = l;
            return LLEM_OK;
        }
        if (!cJSON_IsArray(j)) return bad_type(c, j, field, t->name);
        size_t n = (size_t)cJSON_GetArraySize(j);
        struct glist *l = gpool_alloc(c->pool, sizeof(*l));
        if (!l || !(l->items = gpool_alloc(c->pool, (n + 1) * sizeof(struct gval)))) {
            return cerr_mem(c);
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, j) {
            enum llem_err rc = conv_value(c, e, t->elem, field, &l->items[l->n++], depth + 1);
            if (rc) return rc;
        }
        out->u.list = l;
        return LLEM_OK;
    }
    case GK_MAP: {
        if (!cJSON_IsObject(j)) return bad_type(c, j, field, t->name);
        struct gval generic;
        enum llem_err e = gval_from_json(c->pool, j, &generic, depth);
        if (e) return e == LLEM_ELIMIT ? llem_errf(c->eb, e, "template: request too deep")
                                       : cerr_mem(c);
        struct gmap *m = generic.u.map;
        if (t->elem) { // typed values: convert again from the JSON members, in sorted order
            for (size_t k = 0; k < m->n; k++) {
                const cJSON *mj = cJSON_GetObjectItemCaseSensitive(j, m->keys[k]);
                e = conv_value(c, mj, t->elem, field, &m->vals[k], depth + 1);
                if (e) return e;
            }
        }
        out->u.map = m;
        return LLEM_OK;
    }
    default:
        return LLEM_OK;
    }
}

static bool str_contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(s + i, needle, k) == 0) return true;
    }
    return false;
}

// chatPrompt's image tags: each image becomes "[img-N]", replacing the first literal "[img]"
// or prefixed to the content.
static enum llem_err tag_images(struct conv *c, struct gval *msg, size_t *next_id)
{
    const struct glist *imgs = msg->u.fields[MF_IMAGES].u.list;
    if (!imgs || imgs->n == 0) return LLEM_OK;
    struct strbuf prefix, prompt;
    strbuf_init(&prefix, 0);
    strbuf_init(&prompt, 0);
    const struct gval *content = &msg->u.fields[MF_CONTENT];
    enum llem_err e = strbuf_append(&prompt, content->u.s.p, content->u.s.n);
    for (size_t k = 0; k < imgs->n && !e; k++) {
        char tag[32];
        int tl = snprintf(tag, sizeof(tag), "[img-%zu]", (*next_id)++);
        if (!str_contains(prompt.data ? prompt.data : "", prompt.len, "[img]")) {
            e = strbuf_append(&prefix, tag, (size_t)tl);
        } else {
            const char *s = strbuf_cstr(&prompt);
            size_t at = 0;
            while (memcmp(s + at, "[img]", 5) != 0) at++;
            struct strbuf nb;
            strbuf_init(&nb, 0);
            e = strbuf_append(&nb, s, at);
            if (!e) e = strbuf_append(&nb, tag, (size_t)tl);
            if (!e) e = strbuf_append(&nb, s + at + 5, prompt.len - at - 5);
            strbuf_deinit(&prompt);
            prompt = nb;
        }
    }
    if (!e) e = strbuf_append(&prefix, strbuf_cstr(&prompt), prompt.len);
    char *s = e ? NULL : gpool_strndup(c->pool, strbuf_cstr(&prefix), prefix.len);
    size_t n = prefix.len;
    strbuf_deinit(&prefix);
    strbuf_deinit(&prompt);
    if (!s) return cerr_mem(c);
    msg->u.fields[MF_CONTENT].u.s.p = s;
    msg->u.fields[MF_CONTENT].u.s.n = n;
    return LLEM_OK;
}

static bool role_is(const struct gval *msg, const char *role)
{
    const struct gval *r = &msg->u.fields[MF_ROLE];
    return r->u.s.n == strlen(role) && memcmp(r->u.s.p, role, r->u.s.n) == 0;
}

static struct gval str_val(const char *s, size_t n)
{
    struct gval v = gval_str(s, n);
    v.type = T_STR;
    return v;
}

// Joins a and b with a blank line (collate's merge and the system join).
static enum llem_err join2(struct conv *c, struct gval *a, const struct gval *b)
{
    size_t n = a->u.s.n + 2 + b->u.s.n;
    char *s = gpool_alloc(c->pool, n + 1);
    if (!s) return cerr_mem(c);
    memcpy(s, a->u.s.p, a->u.s.n);
    memcpy(s + a->u.s.n, "\n\n", 2);
    memcpy(s + a->u.s.n + 2, b->u.s.p, b->u.s.n);
    a->u.s.p = s;
    a->u.s.n = n;
    return LLEM_OK;
}

struct kv {
    const char *k;
    struct gval v;
};

// A map[string]any from pairs already in sorted key order.
static enum llem_err make_map(struct conv *c, const struct kv *kvs, size_t n, struct gval *out)
{
    struct gmap *m = gpool_alloc(c->pool, sizeof(*m));
    if (!m || !(m->keys = gpool_alloc(c->pool, n * sizeof(char *))) ||
        !(m->klens = gpool_alloc(c->pool, n * sizeof(size_t))) ||
        !(m->vals = gpool_alloc(c->pool, n * sizeof(struct gval)))) {
        return cerr_mem(c);
    }
    for (size_t k = 0; k < n; k++) {
        m->keys[k] = kvs[k].k;
        m->klens[k] = strlen(kvs[k].k);
        m->vals[k] = kvs[k].v;
    }
    m->n = n;
    memset(out, 0, sizeof(*out));
    out->kind = GK_MAP;
    out->u.map = m;
    return LLEM_OK;
}

static enum llem_err run(const struct gotmpl *t, const struct glist_node *root,
                         const struct gval *data, struct gpool *pool,
                         const struct gotmpl_limits *lim, struct strbuf *out,
                         struct llem_errbuf *eb)
{
    return gotmpl_exec(t, root, data, pool, lim, out, eb);
}

static enum llem_err render(const struct gotmpl *t, const cJSON *req, struct gpool *pool,
                            const struct gotmpl_limits *lim, struct strbuf *out,
                            struct llem_errbuf *eb)
{
    struct conv c = {.pool = pool, .eb = eb};
    if (req && !cJSON_IsObject(req)) {
        return llem_errf(eb, LLEM_EINVAL, "template: the request must be a JSON object");
    }
    const cJSON *jm = req ? cJSON_GetObjectItem(req, "messages") : NULL;
    const cJSON *jt = req ? cJSON_GetObjectItem(req, "tools") : NULL;
    const cJSON *jthink = req ? cJSON_GetObjectItem(req, "think") : NULL;
    struct gval prompt, suffix;
    enum llem_err e = conv_value(&c, req ? cJSON_GetObjectItem(req, "prompt") : NULL, T_STR,
                                 "prompt", &prompt, 0);
    if (!e) e = conv_value(&c, req ? cJSON_GetObjectItem(req, "suffix") : NULL, T_STR,
                           "suffix", &suffix, 0);
    if (e) return e;
    if (jm && !cJSON_IsNull(jm) && !cJSON_IsArray(jm)) {
        return bad_type(&c, jm, "messages", "[]api.Message");
    }
    size_t n_in = jm ? (size_t)cJSON_GetArraySize(jm) : 0;
    if (n_in > LLEM_HTTP_MAX_MESSAGES) {
        return llem_errf(eb, LLEM_ELIMIT, "template: more than %u messages",
                         LLEM_HTTP_MAX_MESSAGES);
    }
    // think: bool or "high"/"medium"/"low" (api.ThinkValue)
    bool think = false, think_set = false;
    const char *level = "";
    if (jthink && !cJSON_IsNull(jthink)) {
        think_set = true;
        if (cJSON_IsBool(jthink)) {
            think = cJSON_IsTrue(jthink);
            level = think ? "medium" : "";
        } else if (cJSON_IsString(jthink) && (strcmp(jthink->valuestring, "high") == 0 ||
                                              strcmp(jthink->valuestring, "medium") == 0 ||
                                              strcmp(jthink->valuestring, "low") == 0)) {
            think = true;
            level = jthink->valuestring;
        } else {
            return llem_errf(eb, LLEM_EINVAL, "invalid think value: must be \"high\", "
                             "\"medium\", \"low\", true, or false");
        }
    }
    // messages: convert, lowercase roles, tag images, collate.
    struct gval *msgs = gpool_alloc(pool, (n_in + 1) * sizeof(*msgs));
    if (!msgs) return cerr_mem(&c);
    size_t n_msgs = 0, img_id = 0;
    struct gval system = str_val("", 0);
    bool have_system = false;
    const cJSON *jmsg;
    cJSON_ArrayForEach(jmsg, jm) {
        struct gval m;
        e = conv_struct(&c, jmsg, &t_message, &m, 1);
        if (e) return e;
        struct gval *role = &m.u.fields[MF_ROLE];
        char *low = gpool_strndup(pool, role->u.s.p, role->u.s.n);
        if (!low) return cerr_mem(&c);
        for (size_t k = 0; k < role->u.s.n; k++) {
            if (low[k] >= 'A' && low[k] <= 'Z') low[k] = (char)(low[k] + 32);
        }
        role->u.s.p = low;
        e = tag_images(&c, &m, &img_id);
        if (e) return e;
        if (role_is(&m, "system")) {
            if (have_system) e = join2(&c, &system, &m.u.fields[MF_CONTENT]);
            else system = m.u.fields[MF_CONTENT];
            have_system = true;
            if (e) return e;
        }
        if (n_msgs > 0 && !role_is(&m, "tool") &&
            msgs[n_msgs - 1].u.fields[MF_ROLE].u.s.n == role->u.s.n &&
            memcmp(msgs[n_msgs - 1].u.fields[MF_ROLE].u.s.p, low, role->u.s.n) == 0) {
            e = join2(&c, &msgs[n_msgs - 1].u.fields[MF_CONTENT], &m.u.fields[MF_CONTENT]);
            if (e) return e;
        } else {
            msgs[n_msgs++] = m;
        }
    }
    struct gval tools;
    e = conv_value(&c, jt, &t_tools, "tools", &tools, 0);
    if (e) return e;

    struct gval vthink = gval_bool(think), vset = gval_bool(think_set);
    vthink.type = vset.type = &t_bool;
    struct gval vlevel = str_val(level, strlen(level));
    struct gval empty = str_val("", 0);
    struct gval data;
    if (prompt.u.s.n && suffix.u.s.n) {
        struct kv kvs[] = {{"IsThinkSet", vset}, {"Prompt", prompt}, {"Response", empty},
                           {"Suffix", suffix}, {"Think", vthink}, {"ThinkLevel", vlevel}};
        e = make_map(&c, kvs, LLEM_ARRAY_LEN(kvs), &data);
        return e ? e : run(t, &t->root_resp, &data, pool, lim, out, eb);
    }
    if (gotmpl_uses(t, "messages")) {
        struct glist *l = gpool_alloc(pool, sizeof(*l));
        if (!l) return cerr_mem(&c);
        l->items = msgs;
        l->n = n_msgs;
        struct gval vmsgs = {.kind = GK_LIST, .type = &t_messages};
        vmsgs.u.list = l;
        struct kv kvs[] = {{"IsThinkSet", vset}, {"Messages", vmsgs}, {"Response", empty},
                           {"System", system}, {"Think", vthink}, {"ThinkLevel", vlevel},
                           {"Tools", tools}};
        e = make_map(&c, kvs, LLEM_ARRAY_LEN(kvs), &data);
        return e ? e : run(t, &t->root_resp, &data, pool, lim, out, eb);
    }
    // Legacy templates: one execution per turn; the last one stops after .Response.
    struct gval sys = empty, pr = empty, resp = empty;
    for (size_t k = 0; k <= n_msgs; k++) {
        bool last = k == n_msgs;
        bool exec_now = last;
        const struct gval *m = last ? NULL : &msgs[k];
        if (m && role_is(m, "system")) exec_now = pr.u.s.n || resp.u.s.n;
        else if (m && role_is(m, "user")) exec_now = resp.u.s.n > 0;
        if (exec_now) {
            struct kv kvs[] = {{"IsThinkSet", vset}, {"Prompt", pr}, {"Response", resp},
                               {"System", sys}, {"Think", vthink}, {"ThinkLevel", vlevel}};
            e = make_map(&c, kvs, LLEM_ARRAY_LEN(kvs), &data);
            if (!e) e = run(t, last ? &t->root_cut : &t->root_resp, &data, pool, lim, out, eb);
            if (e) return e;
            sys = pr = resp = empty;
        }
        if (!m) break;
        if (role_is(m, "system")) sys = m->u.fields[MF_CONTENT];
        else if (role_is(m, "user")) pr = m->u.fields[MF_CONTENT];
        else if (role_is(m, "assistant")) resp = m->u.fields[MF_CONTENT];
    }
    return LLEM_OK;
}

static void limits_or_default(const struct gotmpl_limits *lim, struct gotmpl_limits *out)
{
    if (lim) *out = *lim;
    else gotmpl_limits_default(out);
}

enum llem_err gotmpl_render_chat(const struct gotmpl *t, const cJSON *req,
                                 const struct gotmpl_limits *lim, struct strbuf *out,
                                 struct llem_errbuf *eb)
{
    struct gotmpl_limits l;
    limits_or_default(lim, &l);
    struct gpool pool;
    gpool_init(&pool, l.max_memory_bytes);
    size_t before = out->len;
    enum llem_err e = render(t, req, &pool, &l, out, eb);
    gpool_deinit(&pool);
    if (e) strbuf_truncate(out, before);
    return e;
}

enum llem_err gotmpl_execute_json(const struct gotmpl *t, const cJSON *data,
                                  const struct gotmpl_limits *lim, struct strbuf *out,
                                  struct llem_errbuf *eb)
{
    struct gotmpl_limits l;
    limits_or_default(lim, &l);
    struct gpool pool;
    gpool_init(&pool, l.max_memory_bytes);
    struct gval v;
    size_t before = out->len;
    enum llem_err e = gval_from_json(&pool, data, &v, 0);
    if (e == LLEM_ELIMIT) {
        llem_errf(eb, e, "template: data nests deeper than %u", LLEM_JSON_MAX_DEPTH);
    } else if (e) {
        llem_errf(eb, e, "template: out of memory");
    } else {
        if (v.kind == GK_NIL) v = gval_invalid(); // Execute(w, nil): dot is no value
        e = gotmpl_exec(t, NULL, &v, &pool, &l, out, eb);
    }
    gpool_deinit(&pool);
    if (e) strbuf_truncate(out, before);
    return e;
}

// ---- toTypeScriptType ----------------------------------------------------------------------
static const char *ts_map(const struct gval *s)
{
    static const struct { const char *j, *ts; } m[] = {
        {"string", "string"}, {"number", "number"}, {"integer", "number"},
        {"boolean", "boolean"}, {"array", "any[]"}, {"object", "Record<string, any>"},
        {"null", "null"}};
    for (size_t k = 0; k < LLEM_ARRAY_LEN(m); k++) {
        if (s->u.s.n == strlen(m[k].j) && memcmp(s->u.s.p, m[k].j, s->u.s.n) == 0) return m[k].ts;
    }
    return "any";
}

static enum llem_err ts_prop(struct strbuf *sb, const struct gval *p, int depth)
{
    if (depth > (int)LLEM_JSON_MAX_DEPTH) return strbuf_append_str(sb, "any");
    const struct glist *any = p->u.fields[PF_ANYOF].u.list;
    const struct glist *ty = p->u.fields[PF_TYPE].u.list;
    enum llem_err e = LLEM_OK;
    if (any && any->n) {
        for (size_t k = 0; k < any->n && !e; k++) {
            if (k) e = strbuf_append_str(sb, " | ");
            if (!e) e = ts_prop(sb, &any->items[k], depth + 1);
        }
        return e;
    }
    if (!ty || ty->n == 0) return strbuf_append_str(sb, "any");
    for (size_t k = 0; k < ty->n && !e; k++) {
        if (k) e = strbuf_append_str(sb, " | ");
        if (!e) e = strbuf_append_str(sb, ts_map(&ty->items[k]));
    }
    return e;
}

enum llem_err gotmpl_ts_type(struct strbuf *sb, const struct gval *v)
{
    if (v->kind == GK_STRUCT && v->type == &gotmpl_t_prop_) return ts_prop(sb, v, 0);
    return strbuf_append_str(sb, "any");
}

// ---- built-in templates --------------------------------------------------------------------
struct builtin {
    char *name;
    uint32_t *cps; // the Jinja template as code points
    size_t n;
};

struct builtin_table {
    struct builtin *items;
    size_t n;
};

// Decodes UTF-8 into code points as Go's []rune(s) does (an invalid byte is one U+FFFD).
static uint32_t *to_runes(const char *s, size_t n, size_t *out_n)
{
    uint32_t *r = llem_malloc((n + 1) * sizeof(*r));
    if (!r) return NULL;
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t k = 0; k < n;) {
        unsigned char c = u[k];
        int len = 1;
        uint32_t v = 0xFFFD;
        if (c < 0x80) { v = c; }
        else {
            int need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            if (need && k + (size_t)need <= n) {
                uint32_t cp = c & (0x7F >> need);
                bool ok = true;
                for (int i = 1; i < need; i++) {
                    if ((u[k + (size_t)i] & 0xC0) != 0x80) { ok = false; break; }
                    cp = (cp << 6) | (u[k + (size_t)i] & 0x3F);
                }
                if (ok && !((need == 2 && cp < 0x80) || (need == 3 && cp < 0x800) ||
                            (need == 4 && cp < 0x10000) || cp > 0x10FFFF ||
                            (cp >= 0xD800 && cp < 0xE000))) {
                    v = cp;
                    len = need;
                }
            }
        }
        r[o++] = v;
        k += (size_t)len;
    }
    *out_n = o;
    return r;
}

// Levenshtein distance if it is <= k, else k + 1 (Ukkonen's band: O(k * n)).
static int lev_bounded(const uint32_t *a, size_t la, const uint32_t *b, size_t lb, int k,
                       int *rows)
{
    size_t diff = la > lb ? la - lb : lb - la;
    if (diff > (size_t)k) return k + 1;
    int inf = k + 1;
    int *prev = rows, *cur = rows + lb + 1;
    for (size_t j = 0; j <= lb; j++) prev[j] = j <= (size_t)k ? (int)j : inf;
    for (size_t i = 1; i <= la; i++) {
        size_t lo = i > (size_t)k ? i - (size_t)k : 1;
        size_t hi = i + (size_t)k < lb ? i + (size_t)k : lb;
        cur[0] = i <= (size_t)k ? (int)i : inf;
        if (lo > 1) cur[lo - 1] = inf;
        int rowmin = lo == 1 ? cur[0] : inf;
        for (size_t j = lo; j <= hi; j++) {
            int v = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < v) v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
            if (v > inf) v = inf;
            cur[j] = v;
            if (v < rowmin) rowmin = v;
        }
        if (hi < lb) cur[hi + 1] = inf;
        if (rowmin > k) return inf;
        int *t = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > inf ? inf : prev[lb];
}

static void table_free(struct builtin_table *t)
{
    for (size_t k = 0; k < t->n; k++) {
        llem_free(t->items[k].name);
        llem_free(t->items[k].cps);
    }
    llem_free(t->items);
    t->items = NULL;
    t->n = 0;
}

static enum llem_err table_load(const char *dir, struct builtin_table *t, struct llem_errbuf *eb)
{
    memset(t, 0, sizeof(*t));
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/index.json", dir) >= sizeof(path)) {
        return llem_errf(eb, LLEM_EINVAL, "template: folder name too long");
    }
    char *buf = NULL;
    size_t len = 0;
    struct llem_errbuf tmp;
    if (fs_read_file(path, 64u << 20, &buf, &len, &tmp)) {
        return llem_errf(eb, LLEM_ENOTFOUND, "template: cannot read %s", path);
    }
    cJSON *j = cJSON_ParseWithLength(buf, len);
    llem_free(buf);
    if (!j || !cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return llem_errf(eb, LLEM_EFORMAT, "template: %s is not a JSON array", path);
    }
    size_t n = (size_t)cJSON_GetArraySize(j);
    t->items = llem_calloc(n + 1, sizeof(*t->items));
    if (!t->items) {
        cJSON_Delete(j);
        return llem_errf(eb, LLEM_ENOMEM, "template: out of memory");
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        const cJSON *jn = cJSON_GetObjectItem(e, "name");
        const cJSON *jt = cJSON_GetObjectItem(e, "template");
        if (!cJSON_IsString(jn) || !cJSON_IsString(jt)) continue;
        struct builtin *b = &t->items[t->n];
        b->name = llem_strdup(jn->valuestring);
        b->cps = to_runes(jt->valuestring, strlen(jt->valuestring), &b->n);
        if (!b->name || !b->cps) {
            llem_free(b->name);
            llem_free(b->cps);
            cJSON_Delete(j);
            table_free(t);
            return llem_errf(eb, LLEM_ENOMEM, "template: out of memory");
        }
        t->n++;
    }
    cJSON_Delete(j);
    return LLEM_OK;
}

// Index of the closest entry with distance < 100, -1 if none; -2 when out of memory.
static long table_match(const struct builtin_table *t, const char *src)
{
    size_t na;
    uint32_t *a = to_runes(src, strlen(src), &na);
    if (!a) return -2;
    int best = 100;
    long best_i = -1;
    for (size_t k = 0; k < t->n; k++) {
        const struct builtin *b = &t->items[k];
        int *rows = llem_malloc(2 * (b->n + 1) * sizeof(int));
        if (!rows) {
            llem_free(a);
            return -2;
        }
        int d = lev_bounded(a, na, b->cps, b->n, best - 1, rows);
        llem_free(rows);
        if (d < best) {
            best = d;
            best_i = (long)k;
        }
    }
    llem_free(a);
    return best_i;
}

static const char *default_dir(char *buf, size_t n)
{
    const char *d = getenv("LLEM_GOTEMPLATES_DIR");
    if (d && *d) return d;
    const char *sh = getenv("LLEM_SHARED");
    if (sh && *sh && (size_t)snprintf(buf, n, "%s/testdata/gotemplates", sh) < n) return buf;
    return NULL;
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static struct builtin_table default_table;

static void load_default(void)
{
    char buf[4096];
    const char *dir = default_dir(buf, sizeof(buf));
    struct llem_errbuf eb;
    if (dir && table_load(dir, &default_table, &eb)) {
        memset(&default_table, 0, sizeof(default_table));
    }
}

const char *gotmpl_builtin_for(const char *jinja_src)
{
    if (!jinja_src) return NULL;
    pthread_once(&default_once, load_default);
    long i = table_match(&default_table, jinja_src);
    return i >= 0 ? default_table.items[i].name : NULL;
}

enum llem_err gotmpl_builtin_for_dir(const char *dir, const char *jinja_src, char *name,
                                     size_t name_size, struct llem_errbuf *eb)
{
    if (name_size) name[0] = '\0';
    if (!dir || !jinja_src || !name || !name_size) {
        return llem_errf(eb, LLEM_EINVAL, "template: missing argument");
    }
    struct builtin_table t;
    enum llem_err e = table_load(dir, &t, eb);
    if (e) return e;
    long i = table_match(&t, jinja_src);
    if (i == -2) {
        e = llem_errf(eb, LLEM_ENOMEM, "template: out of memory");
    } else if (i >= 0) {
        if (strlen(t.items[i].name) >= name_size) {
            e = llem_errf(eb, LLEM_ELIMIT, "template: name buffer too small");
        } else {
            memcpy(name, t.items[i].name, strlen(t.items[i].name) + 1);
        }
    }
    table_free(&t);
    return e;
}

enum llem_err gotmpl_builtin_load(const char *dir, const char *name, struct strbuf *text,
                                  struct strbuf *params, struct llem_errbuf *eb)
{
    char dbuf[4096], path[4096];
    if (!dir) dir = default_dir(dbuf, sizeof(dbuf));
    if (!dir) return llem_errf(eb, LLEM_ENOTFOUND, "template: no built-in template folder");
    if (!name || !*name || strchr(name, '/') || strchr(name, '\\') || name[0] == '.') {
        return llem_errf(eb, LLEM_EINVAL, "template: bad built-in template name");
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s.gotmpl", dir, name) >= sizeof(path)) {
        return llem_errf(eb, LLEM_EINVAL, "template: path too long");
    }
    char *buf = NULL;
    size_t len = 0;
    struct llem_errbuf tmp;
    if (fs_read_file(path, LLEM_GGUF_MAX_STRING_BYTES, &buf, &len, &tmp)) {
        return llem_errf(eb, LLEM_ENOTFOUND, "template: no built-in template \"%s\"", name);
    }
    enum llem_err e = LLEM_OK;
    for (size_t k = 0; k < len && !e; k++) {
        if (buf[k] == '\r' && k + 1 < len && buf[k + 1] == '\n') continue;
        e = strbuf_append_char(text, buf[k]);
    }
    llem_free(buf);
    if (e) return llem_errf(eb, e, "template: out of memory");
    if (params) {
        int pl = snprintf(path, sizeof(path), "%s/%s.json", dir, name);
        if (pl > 0 && (size_t)pl < sizeof(path) &&
            !fs_read_file(path, 1u << 20, &buf, &len, &tmp)) {
            e = strbuf_append(params, buf, len);
            llem_free(buf);
            if (e) return llem_errf(eb, e, "template: out of memory");
        }
    }
    return LLEM_OK;
}
