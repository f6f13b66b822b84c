// cli/template.c: `llem template FILE [--messages F] [--tools F] [--no-generation-prompt]
// [--var k=v ...] [--bos T] [--eos T] [--now T]`: renders a chat template to stdout exactly as
// the server would (no trailing newline added). FILE is a .jinja file, a .gguf (its
// tokenizer.chat_template, with bos/eos from its vocabulary) or a .gotmpl (Ollama template).
// A debugging tool for users and the hook for template tests.
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/strbuf.h"
#include "gguf/gguf.h"
#include "template/gotmpl.h"
#include "template/template.h"

#define TEMPLATE_MAX_FILE (64u << 20) // conversations with base64 images stay far below this

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: llem template FILE [options]\n\n"
            "Renders a chat template (FILE.jinja, FILE.gguf's tokenizer.chat_template, or\n"
            "FILE.gotmpl) to stdout.\n"
            "  --messages F            JSON file: a list of messages, or an object with\n"
            "                          \"messages\" (and optionally \"tools\")\n"
            "  --tools F               JSON file: a list of OpenAI-style tools\n"
            "  --no-generation-prompt  add_generation_prompt = false (default true)\n"
            "  --var K=V               extra variable; V is parsed as JSON if valid, else a\n"
            "                          string (e.g. --var enable_thinking=false)\n"
            "  --bos TEXT, --eos TEXT  bos_token / eos_token (default: the GGUF's, else \"\")\n"
            "  --now YYYY-MM-DDTHH:MM:SS  the instant strftime_now formats (default: now)\n");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

// Reads a whole file (NUL-terminated, llem_free). NULL on error or past the cap.
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t n = 0, cap = 1 << 16;
    char *b = llem_malloc(cap);
    while (b) {
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            break;
        }
        if (n + 1 == cap) {
            if (cap >= TEMPLATE_MAX_FILE) {
                llem_free(b);
                b = NULL;
                break;
            }
            char *nb = llem_realloc(b, cap * 2);
            if (!nb) {
                llem_free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    if (b && ferror(f)) {
        llem_free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = n;
    }
    return b;
}

static cJSON *read_json(const char *path, const char **why)
{
    size_t n;
    char *text = read_file(path, &n);
    if (!text) {
        *why = "cannot read the file";
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(text, n);
    llem_free(text);
    if (!j) {
        *why = "not valid JSON";
    }
    return j;
}

// Token text of vocabulary id `key` (e.g. tokenizer.ggml.bos_token_id), or NULL.
static const char *gguf_token_text(const struct gguf_file *g, const char *key)
{
    uint32_t id;
    uint64_t n = 0;
    if (!gguf_get_u32(g, key, &id)) {
        return NULL;
    }
    const char *const *toks = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_VALUE_STRING, &n);
    return toks && id < n ? toks[id] : NULL;
}

static bool parse_now(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, se = 0;
    char tail;
    int k = sscanf(s, "%d-%d-%dT%d:%d:%d%c", &y, &mo, &d, &h, &mi, &se, &tail);
    if (k != 3 && k != 6) {
        return false;
    }
    if (y < 1900 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || se < 0 || se > 60) {
        return false;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *out = (int64_t)timegm(&tm);
    return *out != 0;
}

struct tpl_args {
    const char *file, *messages, *tools, *bos, *eos;
    bool no_gen;
    int64_t now;
};

// Builds the variables object; NULL (after printing the error) on failure.
static cJSON *build_vars(const struct tpl_args *ta, int argc, char **argv, const char *bos,
                         const char *eos)
{
    cJSON *vars = cJSON_CreateObject();
    cJSON *messages = NULL, *tools = NULL;
    const char *why = NULL;
    if (ta->messages) {
        cJSON *m = read_json(ta->messages, &why);
        if (!m) {
            cli_fail("template", "%s: %s", ta->messages, why);
            cJSON_Delete(vars);
            return NULL;
        }
        if (cJSON_IsObject(m)) {
            messages = cJSON_DetachItemFromObject(m, "messages");
            tools = cJSON_DetachItemFromObject(m, "tools");
            cJSON_Delete(m);
        } else {
            messages = m;
        }
        if (!cJSON_IsArray(messages)) {
            cli_fail("template", "%s: expected a list of messages", ta->messages);
            cJSON_Delete(messages);
            cJSON_Delete(tools);
            cJSON_Delete(vars);
            return NULL;
        }
    }
    if (ta->tools) {
        cJSON_Delete(tools);
        tools = read_json(ta->tools, &why);
        if (!tools) {
            cli_fail("template", "%s: %s", ta->tools, why);
            cJSON_Delete(messages);
            cJSON_Delete(vars);
            return NULL;
        }
    }
    cJSON_AddItemToObject(vars, "messages", messages ? messages : cJSON_CreateArray());
    cJSON_AddItemToObject(vars, "tools", tools ? tools : cJSON_CreateNull());
    cJSON_AddBoolToObject(vars, "add_generation_prompt", !ta->no_gen);
    cJSON_AddStringToObject(vars, "bos_token", bos);
    cJSON_AddStringToObject(vars, "eos_token", eos);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--var") != 0 || i + 1 >= argc) {
            continue;
        }
        const char *kv = argv[++i];
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            cli_fail("template", "--var expects K=V, got '%s'", kv);
            cJSON_Delete(vars);
            return NULL;
        }
        char key[256];
        size_t kl = (size_t)(eq - kv);
        if (kl >= sizeof(key)) {
            cli_fail("template", "--var name too long");
            cJSON_Delete(vars);
            return NULL;
        }
        memcpy(key, kv, kl);
        key[kl] = '\0';
        cJSON *v = cJSON_Parse(eq + 1);
        if (!v) {
            v = cJSON_CreateString(eq + 1);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(vars, key);
        cJSON_AddItemToObject(vars, key, v);
    }
    return vars;
}

static int render(const struct tpl_args *ta, const char *src, size_t len, const char *bos,
                  const char *eos, int argc, char **argv)
{
    cJSON *vars = build_vars(ta, argc, argv, bos, eos);
    if (!vars) {
        return 1;
    }
    char *text = cJSON_PrintUnformatted(vars);
    cJSON_Delete(vars);
    if (!text) {
        return cli_fail("template", "out of memory");
    }
    struct strbuf out;
    strbuf_init(&out, 0);
    struct llem_errbuf eb = {0};
    struct tpl_jinja_opts opts = {.now_unix = ta->now};
    enum llem_err e = tpl_jinja_render_src(src, len, text, strlen(text), &opts, &out, &eb);
    cJSON_free(text);
    int rc = 0;
    if (e != LLEM_OK) {
        rc = cli_fail("template", "%s: %s", ta->file, eb.msg);
    } else {
        fwrite(strbuf_cstr(&out), 1, out.len, stdout);
        fflush(stdout);
    }
    strbuf_deinit(&out);
    return rc;
}

// An Ollama Go template renders the chat as Ollama's server does: the request object is the
// messages and tools plus the --var values (think, prompt, suffix, ...).
static int render_gotmpl(const struct tpl_args *ta, int argc, char **argv)
{
    size_t len;
    char *src = read_file(ta->file, &len);
    if (!src) {
        return cli_fail("template", "cannot read %s", ta->file);
    }
    struct gotmpl *t = NULL;
    struct llem_errbuf eb = {0};
    if (gotmpl_parse(&t, src, len, &eb) != LLEM_OK) {
        llem_free(src);
        return cli_fail("template", "%s: %s", ta->file, eb.msg);
    }
    llem_free(src);
    cJSON *req = build_vars(ta, argc, argv, "", "");
    if (!req) {
        gotmpl_free(t);
        return 1;
    }
    // Jinja-only variables mean nothing to Ollama's renderer.
    cJSON_DeleteItemFromObjectCaseSensitive(req, "add_generation_prompt");
    cJSON_DeleteItemFromObjectCaseSensitive(req, "bos_token");
    cJSON_DeleteItemFromObjectCaseSensitive(req, "eos_token");
    struct strbuf out;
    strbuf_init(&out, 0);
    int rc = 0;
    if (gotmpl_render_chat(t, req, NULL, &out, &eb) != LLEM_OK) {
        rc = cli_fail("template", "%s: %s", ta->file, eb.msg);
    } else {
        fwrite(strbuf_cstr(&out), 1, out.len, stdout);
        fflush(stdout);
    }
    strbuf_deinit(&out);
    cJSON_Delete(req);
    gotmpl_free(t);
    return rc;
}

int cli_template(int argc, char **argv)
{
    struct tpl_args ta = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-generation-prompt") == 0) {
            ta.no_gen = true;
        } else if (strcmp(a, "--messages") == 0 && has_val) {
            ta.messages = argv[++i];
        } else if (strcmp(a, "--tools") == 0 && has_val) {
            ta.tools = argv[++i];
        } else if (strcmp(a, "--bos") == 0 && has_val) {
            ta.bos = argv[++i];
        } else if (strcmp(a, "--eos") == 0 && has_val) {
            ta.eos = argv[++i];
        } else if (strcmp(a, "--var") == 0 && has_val) {
            i++; // read again by build_vars
        } else if (strcmp(a, "--now") == 0 && has_val) {
            if (!parse_now(argv[++i], &ta.now)) {
                return cli_fail("template", "--now expects YYYY-MM-DDTHH:MM:SS, got '%s'",
                                argv[i]);
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            usage(stderr);
            return cli_fail("template", "unknown or incomplete option '%s'", a);
        } else if (!ta.file) {
            ta.file = a;
        } else {
            return cli_fail("template", "more than one FILE given");
        }
    }
    if (!ta.file) {
        usage(stderr);
        return 1;
    }
    if (ends_with(ta.file, ".gguf")) {
        struct gguf_file *g = NULL;
        struct llem_errbuf eb = {0};
        struct gguf_open_opts oo = {.metadata_only = true};
        if (gguf_open(&g, ta.file, &oo, &eb) != LLEM_OK) {
            return cli_fail("template", "%s", eb.msg);
        }
        const char *src = gguf_get_str(g, "tokenizer.chat_template");
        if (!src) {
            gguf_close(g);
            return cli_fail("template", "%s has no tokenizer.chat_template", ta.file);
        }
        const char *bos = ta.bos ? ta.bos : gguf_token_text(g, "tokenizer.ggml.bos_token_id");
        const char *eos = ta.eos ? ta.eos : gguf_token_text(g, "tokenizer.ggml.eos_token_id");
        int rc = render(&ta, src, strlen(src), bos ? bos : "", eos ? eos : "", argc, argv);
        gguf_close(g);
        return rc;
    }
    if (ends_with(ta.file, ".gotmpl")) {
        return render_gotmpl(&ta, argc, argv);
    }
    size_t len;
    char *src = read_file(ta.file, &len);
    if (!src) {
        return cli_fail("template", "cannot read %s", ta.file);
    }
    int rc = render(&ta, src, len, ta.bos ? ta.bos : "", ta.eos ? ta.eos : "", argc, argv);
    llem_free(src);
    return rc;
}
