// cli/show.c: `llem show FILE.gguf [-v]`: a model's headline facts like `ollama show`
// (architecture, parameters, quantization, context/embedding length, layers, heads, rope,
// tokenizer, chat template); -v adds every metadata pair (long arrays abbreviated) and the
// tensor list. Reads metadata only: no tensor bytes are mapped.
// `llem show MODEL [--modelfile|--parameters|--template|--system|--license] [-v]` asks the
// server (POST /api/show) and prints Ollama's layout (cli_show_info, also used by the REPL).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "gguf/gguf.h"

static const char *const usage_text =
    "Usage: llem show MODEL [--modelfile|--parameters|--template|--system|--license] [-v]\n"
    "       llem show FILE.gguf [-v]\n\n"
    "Shows information for a model the server has, or reads a GGUF file directly.\n\n"
    "Options:\n"
    "  --modelfile     print the model's Modelfile\n"
    "  --parameters    print the model's parameters\n"
    "  --template      print the model's prompt template\n"
    "  --system        print the model's system message\n"
    "  --license       print the model's license\n"
    "  -v, --verbose   also print all metadata and the tensor list\n"
    "  -h, --help      this help\n" CLI_ENV_HELP;


// "15.2M", "1.1B", "292.5K", "512".
static void human_count(char *buf, size_t n, uint64_t v)
{
    if (v >= 1000000000ull) {
        snprintf(buf, n, "%.1fB", (double)v / 1e9);
    } else if (v >= 1000000ull) {
        snprintf(buf, n, "%.1fM", (double)v / 1e6);
    } else if (v >= 1000ull) {
        snprintf(buf, n, "%.1fK", (double)v / 1e3);
    } else {
        snprintf(buf, n, "%" PRIu64, v);
    }
}

static void row(const char *label, const char *value)
{
    printf("    %-22s %s\n", label, value);
}

// Prints s with control characters escaped, at most `max` bytes (then "...(N bytes)").
static void put_escaped(const char *s, size_t max)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            fputs("\\n", stdout);
        } else if (c == '\t') {
            fputs("\\t", stdout);
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\x%02x", c);
        } else {
            putchar(c);
        }
    }
    if (len > max) {
        printf("...(%zu bytes)", len);
    }
}

static void put_scalar(const struct gguf_value *v)
{
    switch (v->type) {
    case GGUF_VALUE_UINT8:
    case GGUF_VALUE_UINT16:
    case GGUF_VALUE_UINT32:
    case GGUF_VALUE_UINT64: printf("%" PRIu64, v->u64); break;
    case GGUF_VALUE_INT8:
    case GGUF_VALUE_INT16:
    case GGUF_VALUE_INT32:
    case GGUF_VALUE_INT64: printf("%" PRId64, v->i64); break;
    case GGUF_VALUE_FLOAT32:
    case GGUF_VALUE_FLOAT64: printf("%.9g", v->f64); break;
    case GGUF_VALUE_BOOL: fputs(v->b ? "true" : "false", stdout); break;
    case GGUF_VALUE_STRING: put_escaped(v->str, 200); break;
    case GGUF_VALUE_ARRAY:
    case GGUF_VALUE_COUNT:
    default: break;
    }
}

// One array element as a scalar value of the array's element type.
static struct gguf_value array_elem(const struct gguf_value *a, uint64_t i)
{
    struct gguf_value e = {.type = a->arr.type};
    const void *d = a->arr.data;
    switch (a->arr.type) {
    case GGUF_VALUE_UINT8: e.u64 = ((const uint8_t *)d)[i]; break;
    case GGUF_VALUE_INT8: e.i64 = ((const int8_t *)d)[i]; break;
    case GGUF_VALUE_UINT16: e.u64 = ((const uint16_t *)d)[i]; break;
    case GGUF_VALUE_INT16: e.i64 = ((const int16_t *)d)[i]; break;
    case GGUF_VALUE_UINT32: e.u64 = ((const uint32_t *)d)[i]; break;
    case GGUF_VALUE_INT32: e.i64 = ((const int32_t *)d)[i]; break;
    case GGUF_VALUE_FLOAT32: e.f64 = (double)((const float *)d)[i]; break;
    case GGUF_VALUE_BOOL: e.b = ((const uint8_t *)d)[i] != 0; break;
    case GGUF_VALUE_UINT64: e.u64 = ((const uint64_t *)d)[i]; break;
    case GGUF_VALUE_INT64: e.i64 = ((const int64_t *)d)[i]; break;
    case GGUF_VALUE_FLOAT64: e.f64 = ((const double *)d)[i]; break;
    case GGUF_VALUE_STRING: e.str = ((const char *const *)d)[i]; break;
    case GGUF_VALUE_ARRAY: e = ((const struct gguf_value *)d)[i]; break;
    case GGUF_VALUE_COUNT:
    default: break;
    }
    return e;
}

// Arrays like ollama abbreviates them: the first few items, then "...(N items)".
static void put_value(const struct gguf_value *v)
{
    if (v->type != GGUF_VALUE_ARRAY) {
        put_scalar(v);
        return;
    }
    const uint64_t shown = 5;
    putchar('[');
    for (uint64_t i = 0; i < v->arr.n && i < shown; i++) {
        struct gguf_value e = array_elem(v, i);
        if (i) {
            fputs(", ", stdout);
        }
        if (e.type == GGUF_VALUE_STRING) {
            putchar('"');
            put_escaped(e.str, 60);
            putchar('"');
        } else {
            put_value(&e);
        }
    }
    if (v->arr.n > shown) {
        printf(", ...(%" PRIu64 " items)", v->arr.n);
    }
    putchar(']');
}

// Value of `<arch>.<suffix>` as text, or NULL when absent.
static const char *arch_value(const struct gguf_file *f, const char *arch, const char *suffix,
                              char *buf, size_t n)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    const struct gguf_value *v = gguf_get(f, key);
    if (!v) {
        return NULL;
    }
    switch (v->type) {
    case GGUF_VALUE_UINT8:
    case GGUF_VALUE_UINT16:
    case GGUF_VALUE_UINT32:
    case GGUF_VALUE_UINT64: snprintf(buf, n, "%" PRIu64, v->u64); break;
    case GGUF_VALUE_INT8:
    case GGUF_VALUE_INT16:
    case GGUF_VALUE_INT32:
    case GGUF_VALUE_INT64: snprintf(buf, n, "%" PRId64, v->i64); break;
    case GGUF_VALUE_FLOAT32:
    case GGUF_VALUE_FLOAT64: snprintf(buf, n, "%.9g", v->f64); break;
    case GGUF_VALUE_STRING: snprintf(buf, n, "%s", v->str); break;
    case GGUF_VALUE_BOOL: snprintf(buf, n, "%s", v->b ? "true" : "false"); break;
    case GGUF_VALUE_ARRAY: { // per-layer values (e.g. head_count_kv): show the range
        if (v->arr.n == 0 || v->arr.type == GGUF_VALUE_STRING || v->arr.type == GGUF_VALUE_ARRAY) {
            snprintf(buf, n, "(%" PRIu64 " items)", v->arr.n);
            break;
        }
        struct gguf_value lo = array_elem(v, 0), hi = lo;
        for (uint64_t i = 1; i < v->arr.n; i++) {
            struct gguf_value e = array_elem(v, i);
            if (e.u64 < lo.u64) { // element counts here are small non-negative integers
                lo = e;
            }
            if (e.u64 > hi.u64) {
                hi = e;
            }
        }
        snprintf(buf, n, "%" PRIu64 "..%" PRIu64 " (per layer)", lo.u64, hi.u64);
        break;
    }
    case GGUF_VALUE_COUNT:
    default: return NULL;
    }
    return buf;
}

// The file's quantization: general.file_type when known, else the type holding the most
// bytes among matrices (n_dims >= 2), else among all tensors.
static const char *quantization(const struct gguf_file *f)
{
    uint32_t ft;
    if (gguf_get_u32(f, "general.file_type", &ft) && gguf_ftype_name(ft)) {
        return gguf_ftype_name(ft);
    }
    uint64_t bytes[GGML_TYPE_COUNT] = {0}, all[GGML_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        all[t->type] += t->n_bytes;
        if (t->n_dims >= 2) {
            bytes[t->type] += t->n_bytes;
        }
    }
    int best = -1;
    for (int pass = 0; pass < 2 && best < 0; pass++) {
        const uint64_t *b = pass == 0 ? bytes : all;
        for (int t = 0; t < GGML_TYPE_COUNT; t++) {
            if (b[t] && (best < 0 || b[t] > b[best])) {
                best = t;
            }
        }
    }
    return best >= 0 ? gguf_type_name((uint32_t)best) : "unknown";
}

static void show_model(const struct gguf_file *f)
{
    const char *arch = gguf_get_str(f, "general.architecture");
    char buf[128];
    printf("  Model\n");
    row("architecture", arch ? arch : "unknown");
    uint64_t params = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        params += (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
    }
    human_count(buf, sizeof buf, params);
    row("parameters", buf);
    row("quantization", quantization(f));
    static const struct {
        const char *label, *suffix;
    } hp[] = {
        {"context length", "context_length"},   {"embedding length", "embedding_length"},
        {"block count", "block_count"},         {"feed forward length", "feed_forward_length"},
        {"head count", "attention.head_count"}, {"head count kv", "attention.head_count_kv"},
        {"rope freq base", "rope.freq_base"},   {"rope dimension", "rope.dimension_count"},
        {"rope scaling", "rope.scaling.type"},  {"expert count", "expert_count"},
    };
    for (size_t i = 0; arch && i < sizeof hp / sizeof hp[0]; i++) {
        const char *v = arch_value(f, arch, hp[i].suffix, buf, sizeof buf);
        if (v) {
            row(hp[i].label, v);
        }
    }
    const char *tok = gguf_get_str(f, "tokenizer.ggml.model");
    if (tok) {
        row("tokenizer", tok);
    }
    uint64_t n_vocab = 0;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &n_vocab)) {
        snprintf(buf, sizeof buf, "%" PRIu64, n_vocab);
        row("vocab size", buf);
    } else if (arch && arch_value(f, arch, "vocab_size", buf, sizeof buf)) {
        row("vocab size", buf);
    }
    row("chat template", gguf_get_str(f, "tokenizer.chat_template") ? "yes" : "no");
}

static void show_verbose(const struct gguf_file *f)
{
    printf("\n  Metadata\n");
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        printf("    %-40s ", gguf_kv_key(f, i));
        put_value(gguf_kv_value(f, i));
        putchar('\n');
    }
    printf("\n  Tensors\n");
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        printf("    %-40s %-8s [", t->name, gguf_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++) {
            printf(d ? " %" PRId64 : "%" PRId64, t->ne[d]);
        }
        printf("]\n");
    }
}

// ---- MODEL names, through the server ------------------------------------------------------

bool cli_is_model_file(const char *arg)
{
    struct stat st;
    size_t n = strlen(arg);
    return (n > 5 && !strcasecmp(arg + n - 5, ".gguf")) ||
           (stat(arg, &st) == 0 && S_ISREG(st.st_mode));
}

static const char *str_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

// Ollama's %g-like rendering of a JSON number (integers without a decimal point).
static void number_text(double v, char *buf, size_t cap)
{
    if (v == (double)(long long)v && v < 1e15 && v > -1e15) {
        snprintf(buf, cap, "%lld", (long long)v);
    } else {
        snprintf(buf, cap, "%g", v);
    }
}

static void value_text(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsBool(v)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsString(v)) {
        snprintf(buf, cap, "%s", v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        number_text(v->valuedouble, buf, cap);
    } else if (cJSON_IsArray(v)) {
        // The first few items, then how many more.
        size_t used = 0;
        int n = cJSON_GetArraySize(v), shown = 0;
        used += (size_t)snprintf(buf, cap, "[");
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if (shown == 5 || used + 2 >= cap) {
                break;
            }
            char one[64];
            value_text(it, one, sizeof one);
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", shown ? " " : "", one);
            shown++;
        }
        if (used < cap) {
            snprintf(buf + used, cap - used, n > shown ? " ...+%d more]" : "]", n - shown);
        }
    } else {
        snprintf(buf, cap, "%s", cJSON_IsNull(v) ? "[...]" : "?");
    }
}

static void section(const char *title, struct cli_table *t)
{
    printf("  %s\n", title);
    cli_table_print(t, "    ");
    putchar('\n');
    cli_table_deinit(t);
}

// The first n non-empty lines of s (trimmed), then "..." when there are more.
static void head_rows(struct cli_table *t, const char *s, int n)
{
    int count = 0;
    while (*s) {
        size_t len = strcspn(s, "\n");
        const char *b = s, *e = s + len;
        while (b < e && (*b == ' ' || *b == '\t' || *b == '\r')) {
            b++;
        }
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
            e--;
        }
        if (e > b) {
            count++;
            if (count <= n) {
                char line[512];
                snprintf(line, sizeof line, "%.*s", (int)(e - b), b);
                cli_table_add(t, line);
            }
        }
        s += len + (s[len] == '\n');
    }
    if (count > n) {
        cli_table_add(t, "...");
    }
}

void cli_show_info(const cJSON *resp, bool verbose)
{
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(resp, "details");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(resp, "model_info");
    struct cli_table t;
    char buf[256];
    cli_table_init(&t, 2);
    const char *arch = str_field(info, "general.architecture");
    cli_table_add(&t, "architecture");
    cli_table_add(&t, arch[0] ? arch : str_field(details, "family"));
    cli_table_add(&t, "parameters");
    cli_table_add(&t, str_field(details, "parameter_size"));
    static const char *const keys[][2] = {{"context_length", "context length"},
                                          {"embedding_length", "embedding length"}};
    for (int i = 0; arch[0] && i < 2; i++) {
        char k[160];
        snprintf(k, sizeof k, "%s.%s", arch, keys[i][0]);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(info, k);
        if (cJSON_IsNumber(v)) {
            number_text(v->valuedouble, buf, sizeof buf);
            cli_table_add(&t, keys[i][1]);
            cli_table_add(&t, buf);
        }
    }
    cli_table_add(&t, "quantization");
    cli_table_add(&t, str_field(details, "quantization_level"));
    section("Model", &t);
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(resp, "capabilities"), *it;
    if (cJSON_GetArraySize(caps) > 0) {
        cli_table_init(&t, 1);
        cJSON_ArrayForEach(it, caps)
        {
            cli_table_add(&t, cJSON_IsString(it) ? it->valuestring : "?");
        }
        section("Capabilities", &t);
    }
    const char *params = str_field(resp, "parameters");
    if (params[0]) {
        // Each line "name   value...": the name, then the rest with runs of blanks folded.
        cli_table_init(&t, 2);
        while (*params) {
            size_t len = strcspn(params, "\n");
            char line[1024];
            snprintf(line, sizeof line, "%.*s", (int)LLEM_MIN(len, sizeof line - 1), params);
            char *name = line + strspn(line, " \t");
            char *rest = name + strcspn(name, " \t");
            if (*name) {
                if (*rest) {
                    *rest++ = '\0';
                    rest += strspn(rest, " \t");
                }
                cli_table_add(&t, name);
                cli_table_add(&t, rest);
            }
            params += len + (params[len] == '\n');
        }
        section("Parameters", &t);
    }
    if (verbose && cJSON_IsObject(info)) {
        // Sorted keys, as Ollama prints them.
        int n = cJSON_GetArraySize(info);
        const cJSON **items = n > 0 ? llem_calloc((size_t)n, sizeof *items) : NULL;
        int k = 0;
        cJSON_ArrayForEach(it, info)
        {
            if (items && k < n) {
                items[k++] = it;
            }
        }
        for (int i = 1; i < k; i++) { // insertion sort: a few hundred keys at most
            const cJSON *x = items[i];
            int j = i - 1;
            for (; j >= 0 && strcmp(items[j]->string, x->string) > 0; j--) {
                items[j + 1] = items[j];
            }
            items[j + 1] = x;
        }
        cli_table_init(&t, 2);
        for (int i = 0; i < k; i++) {
            value_text(items[i], buf, sizeof buf);
            cli_table_add(&t, items[i]->string);
            cli_table_add(&t, buf);
        }
        llem_free(items);
        section("Metadata", &t);
    }
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(resp, "tensors");
    if (verbose && cJSON_GetArraySize(tensors) > 0) {
        cli_table_init(&t, 3);
        cJSON_ArrayForEach(it, tensors)
        {
            cli_table_add(&t, str_field(it, "name"));
            cli_table_add(&t, str_field(it, "type"));
            value_text(cJSON_GetObjectItemCaseSensitive(it, "shape"), buf, sizeof buf);
            cli_table_add(&t, buf);
        }
        section("Tensors", &t);
    }
    const char *sys = str_field(resp, "system"), *lic = str_field(resp, "license");
    if (sys[0]) {
        cli_table_init(&t, 1);
        head_rows(&t, sys, 2);
        section("System", &t);
    }
    if (lic[0]) {
        cli_table_init(&t, 1);
        head_rows(&t, lic, 2);
        section("License", &t);
    }
}

static int show_model_name(const char *name, const char *field, bool verbose)
{
    struct cli_client c;
    if (!cli_client_open(&c, "show")) {
        return 1;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", name);
    if (verbose) {
        cJSON_AddBoolToObject(req, "verbose", true);
    }
    cJSON *resp = NULL;
    struct llem_errbuf eb = {0};
    enum llem_err e = cli_call(&c, "POST", "/api/show", req, &resp, &eb);
    cJSON_Delete(req);
    if (e != LLEM_OK) {
        return cli_fail("show", "%s", eb.msg);
    }
    if (!field) {
        cli_show_info(resp, verbose);
    } else {
        // Ollama prints these fields as they are (license, modelfile and parameters with a
        // newline after them, system and template without).
        const char *v = str_field(resp, field);
        bool nl = !strcmp(field, "license") || !strcmp(field, "modelfile") ||
                  !strcmp(field, "parameters");
        fputs(v, stdout);
        if (nl) {
            putchar('\n');
        }
    }
    cJSON_Delete(resp);
    return 0;
}

int cli_show(int argc, char **argv)
{
    bool verbose = false;
    const char *path = NULL, *field = NULL;
    static const char *const fields[] = {"license", "modelfile", "parameters", "system",
                                         "template"};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage_text, stdout);
            return 0;
        }
        bool is_field = false;
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
            if (!strncmp(argv[i], "--", 2) && !strcmp(argv[i] + 2, fields[k])) {
                if (field && strcmp(field, fields[k])) {
                    return cli_fail("show", "only one of '--license', '--modelfile', "
                                    "'--parameters', '--system', or '--template' can be "
                                    "specified");
                }
                field = fields[k];
                is_field = true;
            }
        }
        if (is_field) {
            continue;
        }
        if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_fail("show", "unknown flag '%s' (try 'llem show --help')", argv[i]);
        } else if (path) {
            return cli_fail("show", "one model at a time (got '%s' and '%s')", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        return cli_fail("show", "missing MODEL or FILE.gguf (try 'llem show --help')");
    }
    if (!cli_is_model_file(path)) {
        return show_model_name(path, field, verbose);
    }
    if (field) {
        return cli_fail("show", "--%s needs a model name, not a file (see 'llem show --help')",
                        field);
    }
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    struct gguf_open_opts opts = {.metadata_only = true};
    if (gguf_open(&f, path, &opts, &eb) != LLEM_OK) {
        return cli_fail("show", "%s", eb.msg);
    }
    show_model(f);
    if (verbose) {
        show_verbose(f);
    }
    gguf_close(f);
    return 0;
}
