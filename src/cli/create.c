// cli/create.c: `llem create NAME [-f Modelfile] [-q TYPE]`, as Ollama's client does it: the
// Modelfile is parsed here (store/'s parser, so errors name the line), the local files that
// FROM and ADAPTER name are hashed and uploaded once (HEAD, then POST /api/blobs/sha256:<hex>),
// and POST /api/create gets {model, files | from, adapters, template, system, parameters,
// license, messages, quantize}, whose streamed progress is drawn like pull's.
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/sha256.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "store/store.h"

static const char *const usage_text =
    "Usage: llem create MODEL [-f FILE] [-q TYPE]\n\n"
    "Creates a model from a Modelfile.\n\n"
    "Options:\n"
    "  -f, --file FILE       the Modelfile (default: ./Modelfile; without one, FROM .)\n"
    "  -q, --quantize TYPE   quantize an F32/F16/BF16 model (e.g. q4_K_M, q8_0)\n" CLI_ENV_HELP;

#define MODELFILE_MAX (16u << 20)

static bool on_line(void *ctx, const cJSON *obj)
{
    cli_progress_update(ctx, obj);
    return true;
}

// "sha256:<hex>" of a file's bytes.
static enum llem_err file_digest(const char *path, char out[STORE_DIGEST_BYTES], uint64_t *size,
                                 struct llem_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return llem_errf(eb, LLEM_EIO, "%s: %s", path, strerror(errno));
    }
    struct sha256 h;
    enum llem_err e = sha256_init(&h);
    size_t cap = 1u << 20, n;
    unsigned char *buf = e == LLEM_OK ? llem_malloc(cap) : NULL;
    *size = 0;
    if (e == LLEM_OK && !buf) {
        e = llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    while (e == LLEM_OK && (n = fread(buf, 1, cap, f)) > 0) {
        e = sha256_update(&h, buf, n);
        *size += n;
    }
    if (e == LLEM_OK && ferror(f)) {
        e = llem_errf(eb, LLEM_EIO, "%s: read error", path);
    }
    uint8_t d[SHA256_BYTES];
    if (e == LLEM_OK && (e = sha256_final(&h, d)) == LLEM_OK) {
        char hex[SHA256_HEX_BYTES];
        sha256_hex(d, hex);
        snprintf(out, STORE_DIGEST_BYTES, "sha256:%s", hex);
    }
    sha256_deinit(&h);
    llem_free(buf);
    fclose(f);
    return e;
}

// Uploads path unless the server has it; adds basename -> digest to map.
static enum llem_err upload(const struct cli_client *c, struct cli_progress *p, const char *path,
                            cJSON *map, struct llem_errbuf *eb)
{
    char digest[STORE_DIGEST_BYTES], url[128];
    uint64_t size = 0;
    enum llem_err e = file_digest(path, digest, &size, eb);
    if (e != LLEM_OK) {
        return e;
    }
    snprintf(url, sizeof url, "/api/blobs/%s", digest);
    long status = 0;
    e = cli_call_file(c, "HEAD", url, NULL, 0, &status, eb);
    if (e == LLEM_OK && status != 200) {
        char line[160];
        snprintf(line, sizeof line, "copying file %s", digest);
        cJSON *st = cJSON_CreateObject();
        cJSON_AddStringToObject(st, "status", line);
        cli_progress_update(p, st);
        FILE *f = fopen(path, "rb");
        if (!f) {
            e = llem_errf(eb, LLEM_EIO, "%s: %s", path, strerror(errno));
        } else {
            e = cli_call_file(c, "POST", url, f, size, &status, eb);
            fclose(f);
            if (e == LLEM_OK && status != 200 && status != 201) {
                e = llem_errf(eb, LLEM_EIO, "uploading %s: %s", path,
                              eb && eb->msg[0] ? eb->msg : "the server refused the blob");
            }
        }
        if (e == LLEM_OK) {
            cJSON_AddNumberToObject(st, "total", (double)size);
            cJSON_AddNumberToObject(st, "completed", (double)size);
            cli_progress_update(p, st);
        }
        cJSON_Delete(st);
    }
    if (e == LLEM_OK) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        cJSON_DeleteItemFromObjectCaseSensitive(map, base);
        cJSON_AddStringToObject(map, base, digest);
    }
    return e;
}

// A FROM/ADAPTER argument as a local path (relative to the Modelfile's folder, ~ expanded).
static void local_path(const char *v, const char *dir, char *out, size_t cap)
{
    const char *home = getenv("HOME");
    if (v[0] == '~' && (v[1] == '/' || !v[1]) && home) {
        snprintf(out, cap, "%s%s", home, v + 1);
    } else if (v[0] == '/' || !dir[0]) {
        snprintf(out, cap, "%s", v);
    } else {
        snprintf(out, cap, "%s/%s", dir, v);
    }
}

static bool looks_like_path(const char *v)
{
    size_t n = strlen(v);
    return v[0] == '/' || v[0] == '.' || v[0] == '~' ||
           (n > 5 && !strcasecmp(v + n - 5, ".gguf"));
}

// FROM or ADAPTER: uploads the file, or every *.gguf of a folder, into map; else sets "from".
static enum llem_err add_source(const struct cli_client *c, struct cli_progress *p,
                                const struct store_mf_line *l, const char *dir, cJSON *req,
                                cJSON *map, struct llem_errbuf *eb)
{
    char path[4096];
    struct stat st;
    local_path(l->value, dir, path, sizeof path);
    if (stat(path, &st) != 0) {
        if (l->cmd == STORE_MF_FROM && !looks_like_path(l->value)) {
            cJSON_AddStringToObject(req, "from", l->value); // an existing model
            return LLEM_OK;
        }
        return llem_errf(eb, LLEM_EIO, "Modelfile line %d: %s: %s", l->line, path,
                         strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return upload(c, p, path, map, eb);
    }
    DIR *d = opendir(path);
    struct dirent *de;
    int found = 0;
    enum llem_err e = LLEM_OK;
    while (e == LLEM_OK && d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n <= 5 || strcasecmp(de->d_name + n - 5, ".gguf")) {
            continue;
        }
        char f[4400];
        snprintf(f, sizeof f, "%s/%s", path, de->d_name);
        e = upload(c, p, f, map, eb);
        found++;
    }
    if (d) {
        closedir(d);
    }
    if (e == LLEM_OK && !found) {
        e = llem_errf(eb, LLEM_ENOTFOUND, "Modelfile line %d: no .gguf file in %s", l->line,
                      path);
    }
    return e;
}

// Builds the /api/create request from the parsed Modelfile (uploading files on the way).
static enum llem_err build_request(const struct cli_client *c, struct cli_progress *p,
                                   const struct store_modelfile *mf, const char *dir,
                                   cJSON *req, struct llem_errbuf *eb)
{
    // PARAMETER lines first: a bad one fails before anything is uploaded or printed.
    char *params = NULL;
    enum llem_err e = store_modelfile_params_json(mf, &params, eb);
    if (e != LLEM_OK) {
        return e;
    }
    if (params) {
        cJSON *pj = cJSON_Parse(params);
        if (pj && cJSON_GetArraySize(pj) > 0) {
            cJSON_AddItemToObject(req, "parameters", pj);
        } else {
            cJSON_Delete(pj);
        }
        llem_free(params);
    }
    cJSON *st0 = cJSON_CreateObject();
    cJSON_AddStringToObject(st0, "status", "gathering model components");
    cli_progress_update(p, st0);
    cJSON_Delete(st0);
    cJSON *files = cJSON_CreateObject(), *adapters = cJSON_CreateObject();
    cJSON *licenses = cJSON_CreateArray(), *messages = cJSON_CreateArray();
    for (size_t i = 0; e == LLEM_OK && i < mf->n; i++) {
        const struct store_mf_line *l = &mf->lines[i];
        switch (l->cmd) {
        case STORE_MF_FROM: e = add_source(c, p, l, dir, req, files, eb); break;
        case STORE_MF_ADAPTER: e = add_source(c, p, l, dir, req, adapters, eb); break;
        case STORE_MF_TEMPLATE:
            cJSON_DeleteItemFromObjectCaseSensitive(req, "template");
            cJSON_AddStringToObject(req, "template", l->value);
            break;
        case STORE_MF_SYSTEM:
            cJSON_DeleteItemFromObjectCaseSensitive(req, "system");
            cJSON_AddStringToObject(req, "system", l->value);
            break;
        case STORE_MF_RENDERER:
        case STORE_MF_PARSER: {
            const char *k = l->cmd == STORE_MF_RENDERER ? "renderer" : "parser";
            cJSON_DeleteItemFromObjectCaseSensitive(req, k);
            cJSON_AddStringToObject(req, k, l->value);
            break;
        }
        case STORE_MF_LICENSE: cJSON_AddItemToArray(licenses, cJSON_CreateString(l->value)); break;
        case STORE_MF_MESSAGE: {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", l->name ? l->name : "user");
            cJSON_AddStringToObject(m, "content", l->value);
            cJSON_AddItemToArray(messages, m);
            break;
        }
        case STORE_MF_PARAMETER:
        default: break;
        }
    }
    cJSON *items[] = {files, adapters, licenses, messages};
    const char *keys[] = {"files", "adapters", "license", "messages"};
    for (int i = 0; i < 4; i++) {
        if (e == LLEM_OK && cJSON_GetArraySize(items[i]) > 0) {
            cJSON_AddItemToObject(req, keys[i], items[i]);
        } else {
            cJSON_Delete(items[i]);
        }
    }
    return e;
}

int cli_create(int argc, char **argv)
{
    const char *name = NULL, *file = NULL, *quant = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            fputs(usage_text, stdout);
            return 0;
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && v) {
            file = v;
            i++;
        } else if ((!strcmp(a, "-q") || !strcmp(a, "--quantize")) && v) {
            quant = v;
            i++;
        } else if (a[0] == '-') {
            return cli_fail("create", "unknown flag or missing value: '%s' (try 'llem create "
                            "--help')", a);
        } else if (name) {
            return cli_fail("create", "takes exactly one MODEL name (try 'llem create --help')");
        } else {
            name = a;
        }
    }
    if (!name) {
        return cli_fail("create", "missing MODEL (try 'llem create --help')");
    }
    struct cli_client c;
    if (!cli_client_open(&c, "create")) {
        return 1;
    }
    struct store_name sn;
    struct llem_errbuf eb = {0};
    if (store_name_parse(name, &sn, &eb) != LLEM_OK) {
        return cli_fail("create", "%s", eb.msg);
    }
    char *text = NULL;
    size_t len = 0;
    char dir[4096] = "";
    struct stat st;
    if (!file && stat("Modelfile", &st) != 0) {
        text = llem_strdup("FROM .\n"); // Ollama: no Modelfile means the current folder
        len = text ? strlen(text) : 0;
    } else {
        const char *path = file ? file : "Modelfile";
        FILE *f = fopen(path, "rb");
        if (!f) {
            return cli_fail("create", "%s: %s", path, strerror(errno));
        }
        text = cli_slurp(f, MODELFILE_MAX, &len);
        fclose(f);
        const char *slash = strrchr(path, '/');
        if (slash) {
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
            if (!dir[0]) {
                snprintf(dir, sizeof dir, "/");
            }
        }
    }
    if (!text) {
        return cli_fail("create", "cannot read the Modelfile (unreadable or over 16 MiB)");
    }
    struct store_modelfile mf;
    enum llem_err e = store_modelfile_parse(text, len, &mf, &eb);
    llem_free(text);
    if (e != LLEM_OK) {
        return cli_fail("create", "%s", eb.msg);
    }
    struct cli_progress p;
    cli_progress_init(&p);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", name);
    cli_interrupted = 0;
    cli_catch_sigint(true);
    e = build_request(&c, &p, &mf, dir, req, &eb);
    store_modelfile_deinit(&mf);
    if (e == LLEM_OK && quant) {
        cJSON_AddStringToObject(req, "quantize", quant);
    }
    if (e == LLEM_OK) {
        cJSON_AddBoolToObject(req, "stream", true);
        e = cli_stream(&c, "POST", "/api/create", req, on_line, &p, &eb);
    }
    cli_catch_sigint(false);
    cli_progress_done(&p);
    cJSON_Delete(req);
    return e == LLEM_OK ? 0 : cli_fail("create", "%s", eb.msg);
}
