// server/models.c: request model names -> GGUF paths. A name is looked up in the model store
// first (store/store.h: LLEM_MODELS, then Ollama's store read-only), then among the names
// registered with `llem serve --model NAME=PATH`, the file stems of LLEM_MODELS_DIR
// (<dir>/NAME.gguf), with or without ":latest" and in any case, and last as a path to a
// .gguf file. Also the metadata answers of /api/show, /api/tags, /api/ps and /v1/models.
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "gguf/gguf.h"
#include "server/server_int.h"
#include "store/store.h"
#include "template/gotmpl.h"

static void lower_strip_latest(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; in[n] && n + 1 < cap; n++) {
        out[n] = (char)tolower((unsigned char)in[n]);
    }
    out[n] = '\0';
    if (n > 7 && !strcmp(out + n - 7, ":latest")) {
        out[n - 7] = '\0';
    }
}

static bool looks_like_path(const char *name)
{
    return strchr(name, '/') != NULL || (strlen(name) > 5 &&
                                         !strcasecmp(name + strlen(name) - 5, ".gguf"));
}

static bool ends_gguf(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && !strcasecmp(name + n - 5, ".gguf");
}

enum llem_err models_store_lookup(struct srv *s, const char *name, struct store_model **out,
                                  struct llem_errbuf *eb)
{
    *out = NULL;
    if (!s->store) {
        return llem_errf(eb, LLEM_ENOTFOUND, "model '%s' not found", name);
    }
    return store_resolve(s->store, name, out, eb);
}

void models_canonical(const struct srv *s, const char *name, char *out, size_t cap)
{
    // A store model is keyed by its stored display name ("m:latest", "me/m:v1").
    struct store_model *m = NULL;
    struct llem_errbuf eb;
    if (models_store_lookup((struct srv *)(uintptr_t)s, name, &m, &eb) == LLEM_OK) {
        snprintf(out, cap, "%s", m->name);
        store_model_free(m);
        return;
    }
    if (looks_like_path(name)) {
        snprintf(out, cap, "%s", name);
        return;
    }
    lower_strip_latest(name, out, cap);
}

void models_display(const char *canonical, char *out, size_t cap)
{
    if (looks_like_path(canonical) || strchr(canonical, ':')) {
        snprintf(out, cap, "%s", canonical);
    } else {
        snprintf(out, cap, "%s:latest", canonical);
    }
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

enum llem_err models_resolve(void *user, const char *name, char *path, size_t cap,
                             struct llem_errbuf *eb)
{
    struct srv *s = user;
    struct store_model *m = NULL;
    struct llem_errbuf seb = {0};
    enum llem_err se = models_store_lookup(s, name, &m, &seb);
    if (se == LLEM_OK) {
        enum llem_err e = LLEM_OK;
        if (m->adapter_path) {
            e = llem_errf(eb, LLEM_EINVAL, "model '%s' has an ADAPTER layer: adapters (LoRA) "
                          "are not supported yet", m->name);
        } else if (strlen(m->model_path) >= cap) {
            e = llem_errf(eb, LLEM_ELIMIT, "model path too long");
        } else {
            snprintf(path, cap, "%s", m->model_path);
        }
        store_model_free(m);
        return e;
    }
    if (se != LLEM_ENOTFOUND && se != LLEM_EINVAL) {
        *eb = seb; // a damaged manifest or a missing blob: say so
        return se;
    }
    char canon[1024];
    models_canonical(s, name, canon, sizeof canon);
    for (int32_t i = 0; i < s->p.n_aliases; i++) {
        if (!strcmp(s->p.aliases[i].name, canon)) {
            if (strlen(s->p.aliases[i].path) >= cap) {
                return llem_errf(eb, LLEM_ELIMIT, "model path too long");
            }
            snprintf(path, cap, "%s", s->p.aliases[i].path);
            return LLEM_OK;
        }
    }
    if (!looks_like_path(canon) && s->p.models_dir[0] && !strchr(canon, '.')) {
        char p[2048];
        int k = snprintf(p, sizeof p, "%s/%s.gguf", s->p.models_dir, canon);
        if (k > 0 && (size_t)k < sizeof p && is_file(p) && strlen(p) < cap) {
            snprintf(path, cap, "%s", p);
            return LLEM_OK;
        }
    }
    // A GGUF path: only names ending in .gguf, so that a request cannot open arbitrary files.
    if (ends_gguf(canon) && is_file(canon) && strlen(canon) < cap) {
        snprintf(path, cap, "%s", canon);
        return LLEM_OK;
    }
    if (se == LLEM_EINVAL && !ends_gguf(name)) {
        return llem_errf(eb, LLEM_EINVAL, "%s", seb.msg);
    }
    return llem_errf(eb, LLEM_ENOTFOUND, "model '%s' not found", name);
}

static void add_entry(struct model_entry *out, int32_t *n, int32_t cap, const char *canon,
                      const char *path)
{
    for (int32_t i = 0; i < *n; i++) {
        char disp[256];
        models_display(canon, disp, sizeof disp);
        if (!strcasecmp(out[i].name, disp)) {
            return; // a store model of the same name hides an alias
        }
    }
    if (*n >= cap) {
        return;
    }
    struct stat st;
    struct model_entry *e = &out[*n];
    memset(e, 0, sizeof *e);
    models_display(canon, e->name, sizeof e->name);
    snprintf(e->path, sizeof e->path, "%s", path);
    if (stat(path, &st) == 0) {
        e->size = (uint64_t)st.st_size;
        e->mtime_unix = (int64_t)st.st_mtime;
    }
    (*n)++;
}

static void add_store_entries(struct srv *s, struct model_entry *out, int32_t *n, int32_t cap)
{
    struct store_entry *se = NULL;
    size_t ns = 0;
    struct llem_errbuf eb;
    if (!s->store || store_list(s->store, &se, &ns, &eb) != LLEM_OK) {
        return;
    }
    for (size_t i = 0; i < ns && *n < cap; i++) {
        struct model_entry *e = &out[*n];
        memset(e, 0, sizeof *e);
        e->from_store = true;
        snprintf(e->name, sizeof e->name, "%s", se[i].name);
        e->size = se[i].size;
        e->mtime_unix = se[i].modified;
        const char *d = se[i].digest;
        snprintf(e->digest, sizeof e->digest, "%s", strncmp(d, "sha256:", 7) ? d : d + 7);
        const struct store_details *dt = &se[i].details;
        snprintf(e->family, sizeof e->family, "%s", dt->family ? dt->family : "");
        snprintf(e->parameter_size, sizeof e->parameter_size, "%s",
                 dt->parameter_size ? dt->parameter_size : "");
        snprintf(e->quantization_level, sizeof e->quantization_level, "%s",
                 dt->quantization_level ? dt->quantization_level : "");
        snprintf(e->parent_model, sizeof e->parent_model, "%s",
                 dt->parent_model ? dt->parent_model : "");
        (*n)++;
    }
    store_list_free(se, ns);
}

void models_entry_details(const struct model_entry *m, cJSON *details)
{
    if (!details) {
        return;
    }
    if (!m->from_store) {
        models_details(m->path, details);
        return;
    }
    cJSON_AddStringToObject(details, "parent_model", m->parent_model);
    cJSON_AddStringToObject(details, "format", "gguf");
    cJSON_AddStringToObject(details, "family", m->family);
    cJSON *fams = cJSON_AddArrayToObject(details, "families");
    if (fams && m->family[0]) {
        cJSON_AddItemToArray(fams, cJSON_CreateString(m->family));
    }
    cJSON_AddStringToObject(details, "parameter_size", m->parameter_size);
    cJSON_AddStringToObject(details, "quantization_level", m->quantization_level);
}

int32_t models_list(struct srv *s, struct model_entry *out, int32_t cap)
{
    int32_t n = 0;
    add_store_entries(s, out, &n, cap);
    for (int32_t i = 0; i < s->p.n_aliases; i++) {
        add_entry(out, &n, cap, s->p.aliases[i].name, s->p.aliases[i].path);
    }
    if (s->p.models_dir[0]) {
        DIR *d = opendir(s->p.models_dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            size_t L = strlen(de->d_name);
            if (L <= 5 || strcasecmp(de->d_name + L - 5, ".gguf") || de->d_name[0] == '.') {
                continue;
            }
            char stem[256], path[2048];
            snprintf(stem, sizeof stem, "%.*s", (int)(L - 5), de->d_name);
            char canon[256];
            lower_strip_latest(stem, canon, sizeof canon);
            if (strchr(canon, '.')) {
                continue; // such a stem cannot be named without looking like a path
            }
            int k = snprintf(path, sizeof path, "%s/%s", s->p.models_dir, de->d_name);
            if (k < 0 || (size_t)k >= sizeof path) {
                continue;
            }
            add_entry(out, &n, cap, canon, path);
        }
        if (d) {
            closedir(d);
        }
    }
    // Models loaded by path.
    struct sched_model_info *info = llem_calloc(16, sizeof *info);
    if (info) {
        int32_t k = sched_list(s->sched, info, 16);
        for (int32_t i = 0; i < LLEM_MIN(k, 16); i++) {
            if (looks_like_path(info[i].name)) {
                add_entry(out, &n, cap, info[i].name, info[i].path);
            }
        }
        llem_free(info);
    }
    return n;
}

// ---- GGUF metadata ---------------------------------------------------------------------------


// Ollama's format.HumanNumber.
static void human_number(uint64_t b, char *out, size_t cap)
{
    double v;
    const char *unit;
    if (b >= 1000000000ull) {
        v = (double)b / 1e9;
        unit = "B";
    } else if (b >= 1000000ull) {
        v = (double)b / 1e6;
        unit = "M";
    } else if (b >= 1000ull) {
        v = (double)b / 1e3;
        snprintf(out, cap, "%.0fK", v);
        return;
    } else {
        snprintf(out, cap, "%llu", (unsigned long long)b);
        return;
    }
    if (v == floor(v)) {
        snprintf(out, cap, "%.0f%s", v, unit);
    } else {
        snprintf(out, cap, unit[0] == 'B' ? "%.1f%s" : "%.2f%s", v, unit);
    }
}

static void fill_details(const struct gguf_file *f, cJSON *details)
{
    const char *arch = gguf_get_str(f, "general.architecture");
    cJSON_AddStringToObject(details, "parent_model", "");
    cJSON_AddStringToObject(details, "format", "gguf");
    cJSON_AddStringToObject(details, "family", arch ? arch : "");
    cJSON *fams = cJSON_AddArrayToObject(details, "families");
    if (arch && fams) {
        cJSON_AddItemToArray(fams, cJSON_CreateString(arch));
    }
    uint64_t nparams = 0;
    int64_t pc;
    if (gguf_get_i64(f, "general.parameter_count", &pc) && pc > 0) {
        nparams = (uint64_t)pc;
    } else {
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            const struct gguf_tensor_info *t = gguf_tensor(f, i);
            uint64_t ne = 1;
            for (uint32_t d = 0; d < t->n_dims; d++) {
                ne *= (uint64_t)t->ne[d];
            }
            nparams += ne;
        }
    }
    char ps[32];
    human_number(nparams, ps, sizeof ps);
    cJSON_AddStringToObject(details, "parameter_size", ps);
    uint32_t ft = 0;
    const char *q = gguf_get_u32(f, "general.file_type", &ft) ? gguf_ftype_name(ft) : NULL;
    cJSON_AddStringToObject(details, "quantization_level", q ? q : "unknown");
}

void models_details(const char *path, cJSON *details)
{
    struct gguf_open_opts oo = {.metadata_only = true};
    struct gguf_file *f = NULL;
    if (gguf_open(&f, path, &oo, NULL) != LLEM_OK) {
        cJSON_AddStringToObject(details, "format", "gguf");
        return;
    }
    fill_details(f, details);
    gguf_close(f);
}

static cJSON *value_json(const struct gguf_value *v, bool verbose)
{
    switch (v->type) {
    case GGUF_VALUE_UINT8:
    case GGUF_VALUE_UINT16:
    case GGUF_VALUE_UINT32:
    case GGUF_VALUE_UINT64:
        return cJSON_CreateNumber((double)v->u64);
    case GGUF_VALUE_INT8:
    case GGUF_VALUE_INT16:
    case GGUF_VALUE_INT32:
    case GGUF_VALUE_INT64:
        return cJSON_CreateNumber((double)v->i64);
    case GGUF_VALUE_FLOAT32:
    case GGUF_VALUE_FLOAT64:
        return cJSON_CreateNumber(v->f64);
    case GGUF_VALUE_BOOL:
        return cJSON_CreateBool(v->b);
    case GGUF_VALUE_STRING:
        return cJSON_CreateString(v->str);
    case GGUF_VALUE_ARRAY:
        break;
    default:
        return cJSON_CreateNull();
    }
    // Arrays longer than 5 are left empty unless verbose (Ollama's /api/show).
    if (v->arr.n > 5 && !verbose) {
        return cJSON_CreateNull();
    }
    cJSON *a = cJSON_CreateArray();
    for (uint64_t i = 0; a && i < v->arr.n; i++) {
        cJSON *it = NULL;
        switch (v->arr.type) {
        case GGUF_VALUE_STRING:
            it = cJSON_CreateString(((const char *const *)v->arr.data)[i]);
            break;
        case GGUF_VALUE_UINT8: it = cJSON_CreateNumber(((const uint8_t *)v->arr.data)[i]); break;
        case GGUF_VALUE_INT8: it = cJSON_CreateNumber(((const int8_t *)v->arr.data)[i]); break;
        case GGUF_VALUE_UINT16: it = cJSON_CreateNumber(((const uint16_t *)v->arr.data)[i]); break;
        case GGUF_VALUE_INT16: it = cJSON_CreateNumber(((const int16_t *)v->arr.data)[i]); break;
        case GGUF_VALUE_UINT32: it = cJSON_CreateNumber(((const uint32_t *)v->arr.data)[i]); break;
        case GGUF_VALUE_INT32: it = cJSON_CreateNumber(((const int32_t *)v->arr.data)[i]); break;
        case GGUF_VALUE_UINT64:
            it = cJSON_CreateNumber((double)((const uint64_t *)v->arr.data)[i]);
            break;
        case GGUF_VALUE_INT64:
            it = cJSON_CreateNumber((double)((const int64_t *)v->arr.data)[i]);
            break;
        case GGUF_VALUE_FLOAT32: it = cJSON_CreateNumber(((const float *)v->arr.data)[i]); break;
        case GGUF_VALUE_FLOAT64: it = cJSON_CreateNumber(((const double *)v->arr.data)[i]); break;
        case GGUF_VALUE_BOOL: it = cJSON_CreateBool(((const uint8_t *)v->arr.data)[i]); break;
        default: it = cJSON_CreateNull(); break;
        }
        cJSON_AddItemToArray(a, it);
    }
    return a;
}

enum llem_err models_show(struct srv *s, const char *path, bool verbose, cJSON *out,
                          struct llem_errbuf *eb)
{
    (void)s;
    struct gguf_open_opts oo = {.metadata_only = true};
    struct gguf_file *f = NULL;
    enum llem_err e = gguf_open(&f, path, &oo, eb);
    if (e != LLEM_OK) {
        return e;
    }
    const char *tpl = gguf_get_str(f, "tokenizer.chat_template");
    bool chatml = false;
    uint64_t ntok = 0;
    const char *const *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &ntok);
    for (uint64_t i = 0; toks && i < ntok && !chatml; i++) {
        chatml = !strcmp(toks[i], "<|im_start|>");
    }
    cJSON_AddStringToObject(out, "license", gguf_get_str(f, "general.license") ?
                                                gguf_get_str(f, "general.license") : "");
    char mf[1400];
    snprintf(mf, sizeof mf,
             "# Modelfile generated by \"llem show\"\n# To build a new Modelfile based on this, "
             "replace FROM with:\n# FROM %s\n\nFROM %s\n", path, path);
    cJSON_AddStringToObject(out, "modelfile", mf);
    cJSON_AddStringToObject(out, "parameters", "");
    cJSON_AddStringToObject(out, "template",
                            tpl ? tpl : chatml ? prompt_chatml_doc : prompt_plain_doc);
    cJSON *details = cJSON_AddObjectToObject(out, "details");
    if (details) {
        fill_details(f, details);
    }
    cJSON *mi = cJSON_AddObjectToObject(out, "model_info");
    for (int64_t i = 0; mi && i < gguf_n_kv(f); i++) {
        const char *k = gguf_kv_key(f, i);
        if (!strcmp(k, "general.name") || !strcmp(k, "tokenizer.chat_template")) {
            continue;
        }
        cJSON_AddItemToObject(mi, k, value_json(gguf_kv_value(f, i), verbose));
    }
    if (verbose) {
        cJSON *ts = cJSON_AddArrayToObject(out, "tensors");
        for (int64_t i = 0; ts && i < gguf_n_tensors(f); i++) {
            const struct gguf_tensor_info *t = gguf_tensor(f, i);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", t->name);
            cJSON_AddStringToObject(o, "type", gguf_type_name(t->type));
            cJSON *shape = cJSON_AddArrayToObject(o, "shape");
            for (uint32_t d = 0; d < t->n_dims; d++) {
                cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->ne[d]));
            }
            cJSON_AddItemToArray(ts, o);
        }
    }
    cJSON *caps = cJSON_AddArrayToObject(out, "capabilities");
    cJSON_AddItemToArray(caps, cJSON_CreateString("completion"));
    if (prompt_supports_tools(tpl)) {
        cJSON_AddItemToArray(caps, cJSON_CreateString("tools"));
    }
    struct stat st;
    char ts[64] = "";
    if (stat(path, &st) == 0) {
        json_time_rfc3339((int64_t)st.st_mtime * 1000000000LL, ts, sizeof ts);
    }
    cJSON_AddStringToObject(out, "modified_at", ts);
    gguf_close(f);
    return LLEM_OK;
}

// ---- store models in /api/show ----------------------------------------------------------------

// Go's %#v of a JSON-decoded number (float64): shortest round-trip digits, exponent form when
// the decimal exponent is < -4 or >= 6 ("1e+06"), as strconv's shortest %g does.
static void go_float(double v, char *out, size_t cap)
{
    char buf[64];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    const char *ep = strchr(buf, 'e');
    int exp = ep ? (int)strtol(ep + 1, NULL, 10) : 0;
    if (exp < -4 || exp >= 6) {
        // C writes at least two exponent digits, as Go does ("1e+06").
        char mant[64];
        size_t mn = ep ? (size_t)(ep - buf) : strlen(buf);
        snprintf(mant, sizeof mant, "%.*s", (int)mn, buf);
        snprintf(out, cap, "%s%s", mant, ep ? ep : "");
    } else {
        int decimals = prec - 1 - exp;
        snprintf(out, cap, "%.*f", decimals > 0 ? decimals : 0, v);
    }
}

// Go's strconv.Quote for the printable ASCII/UTF-8 we get (escapes ", \ and controls).
static void go_quote(const char *s, struct strbuf *out)
{
    strbuf_append_str(out, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': strbuf_append_str(out, "\\\""); break;
        case '\\': strbuf_append_str(out, "\\\\"); break;
        case '\n': strbuf_append_str(out, "\\n"); break;
        case '\t': strbuf_append_str(out, "\\t"); break;
        case '\r': strbuf_append_str(out, "\\r"); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                strbuf_appendf(out, "\\x%02x", *p);
            } else {
                strbuf_append(out, (const char *)p, 1);
            }
        }
    }
    strbuf_append_str(out, "\"");
}

static void param_line(struct strbuf *out, const char *key, const cJSON *v)
{
    if (out->len > 0) {
        strbuf_append_str(out, "\n");
    }
    strbuf_appendf(out, "%-30s ", key); // Ollama: fmt.Sprintf("%-*s %#v", 30, k, v)
    if (cJSON_IsString(v)) {
        go_quote(v->valuestring, out);
    } else if (cJSON_IsBool(v)) {
        strbuf_append_str(out, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        char num[64];
        go_float(v->valuedouble, num, sizeof num);
        strbuf_append_str(out, num);
    } else {
        strbuf_append_str(out, "<nil>");
    }
}

void models_params_text(const char *params_json, struct strbuf *out)
{
    cJSON *p = params_json ? cJSON_Parse(params_json) : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, p)
    {
        if (cJSON_IsArray(it)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, it)
            {
                param_line(out, it->string, e);
            }
        } else {
            param_line(out, it->string, it);
        }
    }
    cJSON_Delete(p);
}

static void set_str(cJSON *o, const char *key, const char *v)
{
    cJSON *n = cJSON_CreateString(v ? v : "");
    if (n && !cJSON_ReplaceItemInObjectCaseSensitive(o, key, n)) {
        cJSON_AddItemToObject(o, key, n);
    }
}

enum llem_err models_show_store(struct srv *s, const struct store_model *m, bool verbose,
                                cJSON *out, struct llem_errbuf *eb)
{
    // model_info, tensors and the GGUF's own template come from the weights' metadata.
    enum llem_err e = models_show(s, m->model_path, verbose, out, eb);
    if (e != LLEM_OK) {
        return e;
    }
    char *mf = store_model_modelfile(m);
    struct strbuf params, lic;
    strbuf_init(&params, 0);
    strbuf_init(&lic, 0);
    models_params_text(m->params_json, &params);
    for (size_t i = 0; i < m->n_licenses; i++) {
        if (i > 0) {
            strbuf_append_str(&lic, "\n");
        }
        strbuf_append_str(&lic, m->licenses[i]);
    }
    set_str(out, "modelfile", mf);
    set_str(out, "parameters", strbuf_cstr(&params));
    if (m->template_text) {
        set_str(out, "template", m->template_text);
    }
    set_str(out, "system", m->system_text);
    if (m->n_licenses > 0) {
        set_str(out, "license", strbuf_cstr(&lic));
    }
    llem_free(mf);
    strbuf_deinit(&params);
    strbuf_deinit(&lic);
    cJSON *msgs = m->messages_json ? cJSON_Parse(m->messages_json) : NULL;
    if (cJSON_IsArray(msgs)) {
        cJSON_AddItemToObject(out, "messages", msgs);
    } else {
        cJSON_Delete(msgs);
    }
    cJSON *details = cJSON_CreateObject();
    if (details) {
        const struct store_details *d = &m->details;
        cJSON_AddStringToObject(details, "parent_model", d->parent_model ? d->parent_model : "");
        cJSON_AddStringToObject(details, "format", d->format && d->format[0] ? d->format : "gguf");
        cJSON_AddStringToObject(details, "family", d->family ? d->family : "");
        cJSON *fams = cJSON_AddArrayToObject(details, "families");
        for (size_t i = 0; fams && i < d->n_families; i++) {
            cJSON_AddItemToArray(fams, cJSON_CreateString(d->families[i]));
        }
        cJSON_AddStringToObject(details, "parameter_size",
                                d->parameter_size ? d->parameter_size : "");
        cJSON_AddStringToObject(details, "quantization_level",
                                d->quantization_level ? d->quantization_level : "");
        cJSON_ReplaceItemInObjectCaseSensitive(out, "details", details);
    }
    if (m->template_text) {
        // Capabilities follow the Go template, as Ollama infers them (§4.2).
        struct gotmpl *t = NULL;
        struct llem_errbuf teb;
        cJSON *caps = cJSON_CreateArray();
        cJSON_AddItemToArray(caps, cJSON_CreateString("completion"));
        if (gotmpl_parse(&t, m->template_text, strlen(m->template_text), &teb) == LLEM_OK) {
            if (gotmpl_uses(t, "tools")) {
                cJSON_AddItemToArray(caps, cJSON_CreateString("tools"));
            }
            if (gotmpl_uses(t, "suffix")) {
                cJSON_AddItemToArray(caps, cJSON_CreateString("insert"));
            }
        }
        gotmpl_free(t);
        cJSON_ReplaceItemInObjectCaseSensitive(out, "capabilities", caps);
    }
    char ts[64];
    json_time_rfc3339(m->modified * 1000000000LL, ts, sizeof ts);
    set_str(out, "modified_at", ts);
    return LLEM_OK;
}
