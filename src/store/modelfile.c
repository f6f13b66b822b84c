// store/modelfile.c: the Modelfile parser (Ollama's grammar: case-insensitive instructions, '#'
// comment lines, values unquoted / "..." / """...""" spanning lines) and the PARAMETER -> params
// JSON conversion with Ollama's option types. Every error names the line where the offending
// instruction starts, so a user can fix a long Modelfile without guessing.
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "store/store_int.h"

static const struct {
    const char *word;
    enum store_mf_cmd cmd;
} cmds[] = {
    {"FROM", STORE_MF_FROM},         {"PARAMETER", STORE_MF_PARAMETER},
    {"TEMPLATE", STORE_MF_TEMPLATE}, {"SYSTEM", STORE_MF_SYSTEM},
    {"ADAPTER", STORE_MF_ADAPTER},   {"LICENSE", STORE_MF_LICENSE},
    {"MESSAGE", STORE_MF_MESSAGE},   {"RENDERER", STORE_MF_RENDERER},
    {"PARSER", STORE_MF_PARSER},
};

void store_modelfile_deinit(struct store_modelfile *mf)
{
    if (!mf) {
        return;
    }
    for (size_t i = 0; i < mf->n; i++) {
        llem_free(mf->lines[i].name);
        llem_free(mf->lines[i].value);
    }
    llem_free(mf->lines);
    mf->lines = NULL;
    mf->n = 0;
}

struct cursor {
    const char *s;
    size_t len, pos;
    int line;
};

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static void skip_blanks(struct cursor *c)
{
    while (c->pos < c->len && blank(c->s[c->pos])) {
        c->pos++;
    }
}

// After a quoted value only blanks may follow on the line.
static enum llem_err expect_eol(struct cursor *c, int line, struct llem_errbuf *eb)
{
    skip_blanks(c);
    if (c->pos < c->len && c->s[c->pos] != '\n') {
        return llem_errf(eb, LLEM_EINVAL,
                         "Modelfile line %d: unexpected text after the closing "
                         "quote",
                         line);
    }
    return LLEM_OK;
}

// Reads one value at the cursor into a new heap string.
static enum llem_err read_value(struct cursor *c, const char *what, int line, char **out,
                                struct llem_errbuf *eb)
{
    *out = NULL;
    const char *s = c->s;
    if (c->len - c->pos >= 3 && memcmp(s + c->pos, "\"\"\"", 3) == 0) {
        size_t start = c->pos + 3, i = start;
        int nl = 0;
        while (i + 3 <= c->len && memcmp(s + i, "\"\"\"", 3) != 0) {
            nl += s[i] == '\n';
            i++;
        }
        if (i + 3 > c->len) {
            return llem_errf(eb, LLEM_EINVAL,
                             "Modelfile line %d: unterminated \"\"\" string "
                             "in %s",
                             line, what);
        }
        *out = llem_strndup(s + start, i - start);
        c->pos = i + 3;
        c->line += nl;
        if (!*out) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        return expect_eol(c, c->line, eb);
    }
    if (c->pos < c->len && s[c->pos] == '"') {
        struct strbuf sb;
        strbuf_init(&sb, STORE_MODELFILE_MAX_BYTES);
        size_t i = c->pos + 1;
        for (; i < c->len && s[i] != '"' && s[i] != '\n'; i++) {
            char ch = s[i];
            if (ch == '\\' && i + 1 < c->len && (s[i + 1] == '"' || s[i + 1] == '\\')) {
                ch = s[++i];
            }
            if (strbuf_append_char(&sb, ch) != LLEM_OK) {
                strbuf_deinit(&sb);
                return llem_errf(eb, LLEM_ENOMEM, "out of memory");
            }
        }
        if (i >= c->len || s[i] != '"') {
            strbuf_deinit(&sb);
            return llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: unterminated \" string in %s",
                             line, what);
        }
        *out = strbuf_take(&sb);
        c->pos = i + 1;
        if (!*out) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        return expect_eol(c, line, eb);
    }
    size_t start = c->pos, end = c->pos;
    while (end < c->len && s[end] != '\n') {
        end++;
    }
    c->pos = end;
    while (end > start && blank(s[end - 1])) {
        end--;
    }
    if (end == start) {
        return llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: missing value for %s", line, what);
    }
    *out = llem_strndup(s + start, end - start);
    return *out ? LLEM_OK : llem_errf(eb, LLEM_ENOMEM, "out of memory");
}

// A whitespace-delimited word (PARAMETER name, MESSAGE role), lowercased.
static enum llem_err read_word(struct cursor *c, const char *what, int line, char **out,
                               struct llem_errbuf *eb)
{
    size_t start = c->pos;
    while (c->pos < c->len && !blank(c->s[c->pos]) && c->s[c->pos] != '\n') {
        c->pos++;
    }
    if (c->pos == start) {
        return llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: missing %s", line, what);
    }
    if (c->pos - start > 64) {
        return llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: %s is too long", line, what);
    }
    *out = llem_strndup(c->s + start, c->pos - start);
    if (!*out) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    for (char *p = *out; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    skip_blanks(c);
    return LLEM_OK;
}

static enum llem_err push_line(struct store_modelfile *mf, size_t *cap,
                               const struct store_mf_line *l)
{
    if (mf->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct store_mf_line *nl = llem_realloc(mf->lines, nc * sizeof(*nl));
        if (!nl) {
            return LLEM_ENOMEM;
        }
        mf->lines = nl;
        *cap = nc;
    }
    mf->lines[mf->n++] = *l;
    return LLEM_OK;
}

// One instruction starting at the cursor (which is at its first letter).
static enum llem_err parse_instruction(struct cursor *c, struct store_modelfile *mf, size_t *cap,
                                       struct llem_errbuf *eb)
{
    int line = c->line;
    size_t start = c->pos;
    while (c->pos < c->len && isalpha((unsigned char)c->s[c->pos])) {
        c->pos++;
    }
    size_t wn = c->pos - start;
    int cmd = -1;
    for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
        if (wn == strlen(cmds[k].word) && strncasecmp(c->s + start, cmds[k].word, wn) == 0) {
            cmd = (int)cmds[k].cmd;
            break;
        }
    }
    if (cmd < 0 || (c->pos < c->len && !blank(c->s[c->pos]) && c->s[c->pos] != '\n')) {
        size_t show = wn;
        while (start + show < c->len && show < 32 && !isspace((unsigned char)c->s[start + show])) {
            show++;
        }
        return llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: unknown instruction '%.*s'", line,
                         (int)show, c->s + start);
    }
    const char *word = cmds[0].word;
    for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
        if ((int)cmds[k].cmd == cmd) {
            word = cmds[k].word;
        }
    }
    skip_blanks(c);
    struct store_mf_line l = {.cmd = (enum store_mf_cmd)cmd, .line = line};
    enum llem_err rc = LLEM_OK;
    if (cmd == STORE_MF_PARAMETER) {
        rc = read_word(c, "parameter name", line, &l.name, eb);
    } else if (cmd == STORE_MF_MESSAGE) {
        rc = read_word(c, "message role", line, &l.name, eb);
        if (rc == LLEM_OK && strcmp(l.name, "system") != 0 && strcmp(l.name, "user") != 0 &&
            strcmp(l.name, "assistant") != 0 && strcmp(l.name, "tool") != 0) {
            rc = llem_errf(eb, LLEM_EINVAL,
                           "Modelfile line %d: message role '%s' must be one "
                           "of system, user, assistant, tool",
                           line, l.name);
        }
    }
    if (rc == LLEM_OK) {
        rc = read_value(c, word, line, &l.value, eb);
    }
    if (rc == LLEM_OK && push_line(mf, cap, &l) != LLEM_OK) {
        rc = llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    if (rc != LLEM_OK) {
        llem_free(l.name);
        llem_free(l.value);
    }
    return rc;
}

enum llem_err store_modelfile_parse(const char *text, size_t len, struct store_modelfile *mf,
                                    struct llem_errbuf *eb)
{
    mf->lines = NULL;
    mf->n = 0;
    if (len > STORE_MODELFILE_MAX_BYTES) {
        return llem_errf(eb, LLEM_ELIMIT, "Modelfile is %zu bytes (max %u)", len,
                         STORE_MODELFILE_MAX_BYTES);
    }
    struct cursor c = {text, len, 0, 1};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        c.pos = 3;
    } else if (len >= 2 && ((unsigned char)text[0] == 0xFF || (unsigned char)text[0] == 0xFE) &&
               ((unsigned char)text[1] == 0xFE || (unsigned char)text[1] == 0xFF)) {
        return llem_errf(eb, LLEM_EINVAL,
                         "Modelfile line 1: UTF-16 text is not supported; save "
                         "it as UTF-8");
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int ln = 1;
        for (const char *p = text; p < nul; p++) {
            ln += *p == '\n';
        }
        return llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: NUL byte", ln);
    }
    size_t cap = 0;
    enum llem_err rc = LLEM_OK;
    int n_from = 0;
    while (rc == LLEM_OK && c.pos < len) {
        skip_blanks(&c);
        if (c.pos >= len) {
            break;
        }
        char ch = text[c.pos];
        if (ch == '\n') {
            c.pos++;
            if (++c.line > (int)STORE_MODELFILE_MAX_LINES) {
                rc = llem_errf(eb, LLEM_ELIMIT, "Modelfile has more than %u lines",
                               STORE_MODELFILE_MAX_LINES);
            }
            continue;
        }
        if (ch == '#') {
            while (c.pos < len && text[c.pos] != '\n') {
                c.pos++;
            }
            continue;
        }
        if (!isalpha((unsigned char)ch)) {
            rc = llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: expected an instruction, got '%c'",
                           c.line, isprint((unsigned char)ch) ? ch : '?');
            break;
        }
        rc = parse_instruction(&c, mf, &cap, eb);
        if (rc == LLEM_OK && mf->lines[mf->n - 1].cmd == STORE_MF_FROM) {
            n_from++; // later FROMs add GGUF files (a vision projector); create checks them
        }
    }
    if (rc == LLEM_OK && n_from == 0) {
        rc = llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: no FROM line", c.line);
    }
    if (rc != LLEM_OK) {
        store_modelfile_deinit(mf);
    }
    return rc;
}

// ---- PARAMETER -> params JSON -------------------------------------------------------------------

enum ptype { P_INT, P_FLOAT, P_BOOL, P_STRLIST, P_DEPRECATED };

static const struct {
    const char *name;
    enum ptype type;
} params[] = {
    {"num_keep", P_INT},
    {"seed", P_INT},
    {"num_predict", P_INT},
    {"top_k", P_INT},
    {"top_p", P_FLOAT},
    {"min_p", P_FLOAT},
    {"typical_p", P_FLOAT},
    {"repeat_last_n", P_INT},
    {"temperature", P_FLOAT},
    {"repeat_penalty", P_FLOAT},
    {"presence_penalty", P_FLOAT},
    {"frequency_penalty", P_FLOAT},
    {"stop", P_STRLIST},
    {"num_ctx", P_INT},
    {"num_batch", P_INT},
    {"num_gpu", P_INT},
    {"main_gpu", P_INT},
    {"use_mmap", P_BOOL},
    {"num_thread", P_INT},
    {"penalize_newline", P_DEPRECATED},
    {"low_vram", P_DEPRECATED},
    {"f16_kv", P_DEPRECATED},
    {"logits_all", P_DEPRECATED},
    {"vocab_only", P_DEPRECATED},
    {"use_mlock", P_DEPRECATED},
    {"mirostat", P_DEPRECATED},
    {"mirostat_tau", P_DEPRECATED},
    {"mirostat_eta", P_DEPRECATED},
    {"numa", P_DEPRECATED},
    {"tfs_z", P_DEPRECATED},
};

static bool parse_bool(const char *v, bool *out)
{
    static const char *const t[] = {"1", "t", "true"}, *const f[] = {"0", "f", "false"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(v, t[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, f[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

// Adds name=value to obj (string lists appended). Returns false on a bad value.
static bool add_param(cJSON *obj, enum ptype type, const char *name, const char *v, bool *oom)
{
    cJSON *item = NULL;
    char *end;
    errno = 0;
    if (type == P_INT) {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x > (1LL << 53) || x < -(1LL << 53)) {
            return false;
        }
        item = cJSON_CreateNumber((double)x);
    } else if (type == P_FLOAT) {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x)) {
            return false;
        }
        item = cJSON_CreateNumber(x);
    } else if (type == P_BOOL) {
        bool b;
        if (!parse_bool(v, &b)) {
            return false;
        }
        item = cJSON_CreateBool(b);
    } else {
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!arr) {
            arr = cJSON_AddArrayToObject(obj, name);
        }
        cJSON *s = arr ? cJSON_CreateString(v) : NULL;
        if (!s) {
            *oom = true;
            return true;
        }
        cJSON_AddItemToArray(arr, s);
        return true;
    }
    if (!item) {
        *oom = true;
        return true;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, name); // a later line wins
    cJSON_AddItemToObject(obj, name, item);
    return true;
}

enum llem_err store_modelfile_params_json(const struct store_modelfile *mf, char **json,
                                          struct llem_errbuf *eb)
{
    *json = NULL;
    // Keys are added in sorted order (as Go's encoding/json writes a map), so the same
    // parameters give the same params blob digest as Ollama.
    size_t np = sizeof(params) / sizeof(params[0]);
    size_t order[sizeof(params) / sizeof(params[0])];
    for (size_t i = 0; i < np; i++) {
        order[i] = i;
    }
    for (size_t i = 1; i < np; i++) {
        for (size_t j = i; j > 0 && strcmp(params[order[j - 1]].name, params[order[j]].name) > 0;
             j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    // Validate every line first so the error names the first bad line in file order.
    for (size_t i = 0; i < mf->n; i++) {
        const struct store_mf_line *l = &mf->lines[i];
        if (l->cmd != STORE_MF_PARAMETER) {
            continue;
        }
        size_t k = 0;
        while (k < np && strcmp(params[k].name, l->name) != 0) {
            k++;
        }
        if (k == np) {
            return llem_errf(eb, LLEM_EINVAL, "Modelfile line %d: unknown parameter '%s'", l->line,
                             l->name);
        }
        if (params[k].type == P_DEPRECATED) {
            log_warn("Modelfile line %d: parameter '%s' is deprecated and ignored", l->line,
                     l->name);
        }
    }
    cJSON *obj = cJSON_CreateObject();
    bool oom = obj == NULL, any = false;
    for (size_t oi = 0; !oom && oi < np; oi++) {
        size_t k = order[oi];
        if (params[k].type == P_DEPRECATED) {
            continue;
        }
        for (size_t i = 0; !oom && i < mf->n; i++) {
            const struct store_mf_line *l = &mf->lines[i];
            if (l->cmd != STORE_MF_PARAMETER || strcmp(l->name, params[k].name) != 0) {
                continue;
            }
            if (!add_param(obj, params[k].type, l->name, l->value, &oom)) {
                cJSON_Delete(obj);
                static const char *const tn[] = {"an integer", "a number", "true or false", "", ""};
                return llem_errf(eb, LLEM_EINVAL,
                                 "Modelfile line %d: parameter %s: '%.64s' is "
                                 "not %s",
                                 l->line, l->name, l->value, tn[params[k].type]);
            }
            any = true;
        }
    }
    if (oom) {
        cJSON_Delete(obj);
        return llem_errf(eb, LLEM_ENOMEM, "out of memory");
    }
    if (any) {
        char *t = cJSON_PrintUnformatted(obj);
        *json = t ? llem_strdup(t) : NULL;
        cJSON_free(t);
        if (!*json) {
            cJSON_Delete(obj);
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
    }
    cJSON_Delete(obj);
    return LLEM_OK;
}
