// cli/repl.c: `llem run MODEL [PROMPT]`, Ollama's client behaviour: starts a server when none
// answers, pulls a missing model, answers a prompt from the arguments or piped stdin once
// (POST /api/generate), or runs the interactive chat (POST /api/chat, streamed): libedit line
// editing and history, """ multi-line input, /set, /show, /load, /save, /clear, /bye, /?;
// Ctrl-C stops an answer (the stream is cancelled) and Ctrl-D leaves. Entry: cli_run_model.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "base/alloc.h"
#include "base/strbuf.h"
#include "cli/cli.h"
#include "cli/client.h"

#define DIM "\033[2m"
#define RESET "\033[0m"
#define PROMPT_MAX (64u << 20)

static const char *const usage_text =
    "Usage: llem run MODEL [PROMPT] [flags]\n"
    "       llem run FILE.gguf [PROMPT] [options]   (in-process completion: see below)\n\n"
    "Chats with a model the server has (it is pulled if missing; a server is started in the\n"
    "background if none answers). With a PROMPT, or text on standard input, it answers once\n"
    "and exits; otherwise an interactive session starts (type /? for help).\n\n"
    "Flags:\n"
    "  --format json        answer in JSON\n"
    "  --think[=VALUE]      thinking: true (bare --think), false, high, medium, low\n"
    "  --hidethinking       do not print the model's thinking\n"
    "  --keepalive DURATION how long the model stays loaded (e.g. 5m, 1h, 0)\n"
    "  --nowordwrap         do not wrap words at the terminal width\n"
    "  --verbose            print timings after each answer\n"
    "  --insecure           allow a plain-HTTP registry when pulling\n" CLI_ENV_HELP
    "  LLEM_NOHISTORY  do not keep the interactive history (~/.llem/history)\n\n";

struct session {
    struct cli_client c;
    char *model;          // heap
    cJSON *messages;      // the conversation
    cJSON *options;       // /set parameter values
    char *system;         // the session's system message (heap) or NULL
    bool format_json;
    int think;            // -1: not set (the model's default), 0, 1
    char think_level[16]; // "high" / "medium" / "low" when set that way
    bool think_explicit;
    bool hide_thinking;
    bool verbose;
    bool wordwrap;
    const char *keepalive;
    bool insecure;
    bool tty;             // stdout is a terminal
    bool history;
    char hist_path[1024];
};

// ---- answer rendering ---------------------------------------------------------------------------

struct render {
    struct session *s;
    bool thinking_open;   // "Thinking..." printed, "...done thinking." not yet
    bool any;             // something printed
    int col, width;       // word wrap: the cursor column and the terminal width (0: no wrap)
    struct strbuf word;   // the word being received (wrap decides where it goes)
    struct strbuf content;
    struct strbuf thinking;
    cJSON *last;          // the final (done) object, for the statistics
    bool last_newline;    // the output ends with '\n'
};

static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        w += ((unsigned char)s[i] & 0xC0) != 0x80;
    }
    return w;
}

static void put(struct render *r, const char *s, size_t n)
{
    if (n) {
        fwrite(s, 1, n, stdout);
        r->last_newline = s[n - 1] == '\n';
        r->any = true;
    }
}

static void flush_word(struct render *r)
{
    size_t w = text_width(r->word.data ? r->word.data : "", r->word.len);
    if (r->width > 0 && r->col > 0 && r->col + (int)w > r->width) {
        put(r, "\n", 1);
        r->col = 0;
    }
    put(r, strbuf_cstr(&r->word), r->word.len);
    r->col += (int)w;
    strbuf_reset(&r->word);
}

// Prints text, wrapping at word boundaries when the terminal width is known.
static void emit(struct render *r, const char *s)
{
    if (r->width <= 0) {
        put(r, s, strlen(s));
        fflush(stdout);
        return;
    }
    for (; *s; s++) {
        if (*s == '\n') {
            flush_word(r);
            put(r, "\n", 1);
            r->col = 0;
        } else if (*s == ' ') {
            flush_word(r);
            if (r->col >= r->width) {
                put(r, "\n", 1);
                r->col = 0;
            } else if (r->col > 0) {
                put(r, " ", 1);
                r->col++;
            }
        } else {
            strbuf_append_char(&r->word, *s);
            if ((int)text_width(r->word.data, r->word.len) >= r->width) {
                flush_word(r); // a word longer than the line is broken anywhere
            }
        }
    }
    fflush(stdout);
}

static void render_init(struct render *r, struct session *s)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    strbuf_init(&r->word, 4096);
    strbuf_init(&r->content, PROMPT_MAX);
    strbuf_init(&r->thinking, PROMPT_MAX);
    if (s->wordwrap && s->tty) {
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 4) {
            r->width = ws.ws_col - 1;
        }
    }
}

static void render_deinit(struct render *r)
{
    strbuf_deinit(&r->word);
    strbuf_deinit(&r->content);
    strbuf_deinit(&r->thinking);
    cJSON_Delete(r->last);
}

static void end_thinking(struct render *r)
{
    if (r->thinking_open) {
        flush_word(r);
        emit(r, r->s->tty ? "\n" DIM "...done thinking." RESET "\n\n" : "\n...done thinking.\n\n");
        r->thinking_open = false;
        r->col = 0;
    }
}

// One piece of an answer: thinking (dimmed on a terminal) and/or content.
static void render_piece(struct render *r, const char *thinking, const char *content)
{
    if (thinking && thinking[0]) {
        strbuf_append_str(&r->thinking, thinking);
        if (!r->s->hide_thinking) {
            if (!r->thinking_open) {
                emit(r, r->s->tty ? DIM "Thinking..." RESET "\n" : "Thinking...\n");
                r->thinking_open = true;
            }
            if (r->s->tty) {
                fputs(DIM, stdout);
            }
            emit(r, thinking);
            if (r->s->tty) {
                flush_word(r);
                fputs(RESET, stdout);
            }
        }
    }
    if (content && content[0]) {
        end_thinking(r);
        strbuf_append_str(&r->content, content);
        emit(r, content);
    }
}

static void render_finish(struct render *r)
{
    flush_word(r);
    end_thinking(r);
    if (r->any && !r->last_newline) {
        put(r, "\n", 1);
    }
    fflush(stdout);
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool on_chat_line(void *ctx, const cJSON *obj)
{
    struct render *r = ctx;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(obj, "message");
    render_piece(r, str_of(msg, "thinking"), str_of(msg, "content"));
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "done"))) {
        cJSON_Delete(r->last);
        r->last = cJSON_Duplicate(obj, true);
    }
    return true;
}

static bool on_generate_line(void *ctx, const cJSON *obj)
{
    struct render *r = ctx;
    render_piece(r, str_of(obj, "thinking"), str_of(obj, "response"));
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "done"))) {
        cJSON_Delete(r->last);
        r->last = cJSON_Duplicate(obj, true);
    }
    return true;
}

// Go's time.Duration.String() for the statistics ("1.234567s", "12.5ms", "850µs").
static void go_duration(int64_t ns, char *buf, size_t cap)
{
    char num[64];
    const char *unit;
    double v;
    if (ns == 0) {
        snprintf(buf, cap, "0s");
        return;
    }
    if (ns < 1000) {
        snprintf(buf, cap, "%lldns", (long long)ns);
        return;
    } else if (ns < 1000000) {
        v = (double)ns / 1e3;
        unit = "\u00b5s";
    } else if (ns < 1000000000) {
        v = (double)ns / 1e6;
        unit = "ms";
    } else if (ns < 60LL * 1000000000) {
        v = (double)ns / 1e9;
        unit = "s";
    } else {
        int64_t m = ns / (60LL * 1000000000);
        char rest[48];
        go_duration(ns - m * 60LL * 1000000000, rest, sizeof rest);
        if (m >= 60) {
            snprintf(buf, cap, "%lldh%lldm%s", (long long)(m / 60), (long long)(m % 60), rest);
        } else {
            snprintf(buf, cap, "%lldm%s", (long long)m, rest);
        }
        return;
    }
    snprintf(num, sizeof num, "%.9f", v);
    char *e = num + strlen(num) - 1;
    while (e > num && *e == '0') {
        *e-- = '\0';
    }
    if (*e == '.') {
        *e = '\0';
    }
    snprintf(buf, cap, "%s%s", num, unit);
}

static int64_t i64_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (int64_t)v->valuedouble : 0;
}

// Ollama's Metrics.Summary, on stderr.
static void print_stats(const cJSON *m)
{
    char d[64];
    int64_t total = i64_of(m, "total_duration"), load = i64_of(m, "load_duration");
    int64_t pc = i64_of(m, "prompt_eval_count"), pd = i64_of(m, "prompt_eval_duration");
    int64_t ec = i64_of(m, "eval_count"), ed = i64_of(m, "eval_duration");
    if (total > 0) {
        go_duration(total, d, sizeof d);
        fprintf(stderr, "total duration:       %s\n", d);
    }
    if (load > 0) {
        go_duration(load, d, sizeof d);
        fprintf(stderr, "load duration:        %s\n", d);
    }
    if (pc > 0) {
        fprintf(stderr, "prompt eval count:    %lld token(s)\n", (long long)pc);
    }
    if (pd > 0) {
        go_duration(pd, d, sizeof d);
        fprintf(stderr, "prompt eval duration: %s\n", d);
        fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", (double)pc / ((double)pd / 1e9));
    }
    if (ec > 0) {
        fprintf(stderr, "eval count:           %lld token(s)\n", (long long)ec);
    }
    if (ed > 0) {
        go_duration(ed, d, sizeof d);
        fprintf(stderr, "eval duration:        %s\n", d);
        fprintf(stderr, "eval rate:            %.2f tokens/s\n", (double)ec / ((double)ed / 1e9));
    }
}

// ---- requests -----------------------------------------------------------------------------------

// Fields every request of the session carries: model, format, think, keep_alive, options.
static cJSON *base_request(const struct session *s, bool with_options)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", s->model);
    if (s->format_json) {
        cJSON_AddStringToObject(req, "format", "json");
    }
    if (s->think_level[0]) {
        cJSON_AddStringToObject(req, "think", s->think_level);
    } else if (s->think >= 0) {
        cJSON_AddBoolToObject(req, "think", s->think == 1);
    }
    if (s->keepalive) {
        double secs;
        if (cli_parse_f64(s->keepalive, &secs)) {
            cJSON_AddNumberToObject(req, "keep_alive", secs);
        } else {
            cJSON_AddStringToObject(req, "keep_alive", s->keepalive);
        }
    }
    if (with_options && s->options && cJSON_GetArraySize(s->options) > 0) {
        cJSON_AddItemToObject(req, "options", cJSON_Duplicate(s->options, true));
    }
    return req;
}

// Streams one answer. Returns OK, LLEM_ECANCELED (Ctrl-C) or an error (message in eb). On OK
// *reply gets the assistant message (heap; may be NULL).
static enum llem_err stream_answer(struct session *s, const char *path, cJSON *req,
                                   cli_line_fn fn, cJSON **reply, struct llem_errbuf *eb)
{
    struct render r;
    render_init(&r, s);
    cJSON_AddBoolToObject(req, "stream", true);
    cli_interrupted = 0;
    enum llem_err e = cli_stream(&s->c, "POST", path, req, fn, &r, eb);
    render_finish(&r);
    if (e == LLEM_OK && s->verbose && r.last) {
        if (s->tty) {
            putchar('\n');
            fflush(stdout);
        }
        print_stats(r.last);
    }
    if (e == LLEM_OK && reply) {
        *reply = cJSON_CreateObject();
        cJSON_AddStringToObject(*reply, "role", "assistant");
        cJSON_AddStringToObject(*reply, "content", strbuf_cstr(&r.content));
        if (r.thinking.len) {
            cJSON_AddStringToObject(*reply, "thinking", strbuf_cstr(&r.thinking));
        }
    }
    render_deinit(&r);
    return e;
}

// POST /api/show for the session's model. NULL with eb filled on error.
static cJSON *show_model(struct session *s, struct llem_errbuf *eb)
{
    cJSON *req = cJSON_CreateObject(), *resp = NULL;
    cJSON_AddStringToObject(req, "model", s->model);
    enum llem_err e = cli_call(&s->c, "POST", "/api/show", req, &resp, eb);
    cJSON_Delete(req);
    return e == LLEM_OK ? resp : NULL;
}

static bool has_capability(const cJSON *show, const char *cap)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(show, "capabilities"))
    {
        if (cJSON_IsString(it) && !strcmp(it->valuestring, cap)) {
            return true;
        }
    }
    return false;
}

// Thinking defaults to on for models that can think, unless the user said otherwise.
static void infer_think(struct session *s, const cJSON *show)
{
    if (!s->think_explicit) {
        s->think = has_capability(show, "thinking") ? 1 : -1;
        s->think_level[0] = '\0';
    }
}

// Loads the model (an empty generate request), as Ollama does before the first prompt.
static enum llem_err preload(struct session *s, struct llem_errbuf *eb)
{
    cJSON *req = base_request(s, false);
    cJSON_DeleteItemFromObjectCaseSensitive(req, "format");
    cJSON_AddBoolToObject(req, "stream", false);
    enum llem_err e = cli_call(&s->c, "POST", "/api/generate", req, NULL, eb);
    cJSON_Delete(req);
    return e;
}

// ---- /set parameter ----------------------------------------------------------------------------

enum ptype { P_INT, P_FLOAT, P_BOOL, P_STRINGS };
static const struct {
    const char *name;
    enum ptype type;
} params[] = {
    {"num_keep", P_INT},          {"seed", P_INT},              {"num_predict", P_INT},
    {"top_k", P_INT},             {"top_p", P_FLOAT},           {"min_p", P_FLOAT},
    {"typical_p", P_FLOAT},       {"repeat_last_n", P_INT},     {"temperature", P_FLOAT},
    {"repeat_penalty", P_FLOAT},  {"presence_penalty", P_FLOAT}, {"frequency_penalty", P_FLOAT},
    {"stop", P_STRINGS},          {"num_ctx", P_INT},           {"num_batch", P_INT},
    {"num_gpu", P_INT},           {"main_gpu", P_INT},          {"use_mmap", P_BOOL},
    {"num_thread", P_INT},
};

// Sets options[name] from the words after it; prints Ollama's confirmation or complaint.
static void set_parameter(struct session *s, char **words, int n)
{
    if (n < 2) {
        printf("Usage: /set parameter <name> <value>\n");
        return;
    }
    const char *name = words[0];
    int k = -1;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        if (!strcmp(params[i].name, name)) {
            k = (int)i;
        }
    }
    if (k < 0) {
        printf("Couldn't set parameter: unknown parameter '%s'\n", name);
        return;
    }
    cJSON *v = NULL;
    int64_t iv;
    double fv;
    switch (params[k].type) {
    case P_INT:
        if (cli_parse_i64(words[1], INT32_MIN, INT32_MAX, &iv)) {
            v = cJSON_CreateNumber((double)iv);
        }
        break;
    case P_FLOAT:
        if (cli_parse_f64(words[1], &fv)) {
            v = cJSON_CreateNumber(fv);
        }
        break;
    case P_BOOL:
        if (!strcmp(words[1], "true") || !strcmp(words[1], "false")) {
            v = cJSON_CreateBool(!strcmp(words[1], "true"));
        }
        break;
    case P_STRINGS:
        v = cJSON_CreateArray();
        for (int i = 1; i < n; i++) {
            cJSON_AddItemToArray(v, cJSON_CreateString(words[i]));
        }
        break;
    default: break;
    }
    if (!v) {
        printf("Couldn't set parameter: invalid value '%s' for '%s'\n", words[1], name);
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(s->options, name);
    cJSON_AddItemToObject(s->options, name, v);
    if (params[k].type == P_STRINGS) {
        printf("Set parameter '%s' to '", name);
        for (int i = 1; i < n; i++) {
            printf("%s%s", i > 1 ? ", " : "", words[i]);
        }
        printf("'\n");
    } else {
        printf("Set parameter '%s' to '%s'\n", name, words[1]);
    }
}

// ---- help texts --------------------------------------------------------------------------------

static void help_main(void)
{
    printf("Available Commands:\n"
           "  /set            Set session variables\n"
           "  /show           Show model information\n"
           "  /load <model>   Load a session or model\n"
           "  /save <model>   Save your current session\n"
           "  /clear          Clear session context\n"
           "  /bye            Exit\n"
           "  /?, /help       Help for a command\n"
           "  /? shortcuts    Help for keyboard shortcuts\n\n"
           "Use \"\"\" to begin a multi-line message.\n\n");
}

static void help_set(void)
{
    printf("Available Commands:\n"
           "  /set parameter ...     Set a parameter\n"
           "  /set system <string>   Set system message\n"
           "  /set history           Enable history\n"
           "  /set nohistory         Disable history\n"
           "  /set wordwrap          Enable wordwrap\n"
           "  /set nowordwrap        Disable wordwrap\n"
           "  /set format json       Enable JSON mode\n"
           "  /set noformat          Disable formatting\n"
           "  /set verbose           Show LLM stats\n"
           "  /set quiet             Disable LLM stats\n"
           "  /set think             Enable thinking\n"
           "  /set nothink           Disable thinking\n\n");
}

static void help_show(void)
{
    printf("Available Commands:\n"
           "  /show info         Show details for this model\n"
           "  /show license      Show model license\n"
           "  /show modelfile    Show Modelfile for this model\n"
           "  /show parameters   Show parameters for this model\n"
           "  /show system       Show system message\n"
           "  /show template     Show prompt template\n\n");
}

static void help_parameters(void)
{
    printf("Available Parameters:\n"
           "  /set parameter seed <int>             Random number seed\n"
           "  /set parameter num_predict <int>      Max number of tokens to predict\n"
           "  /set parameter top_k <int>            Pick from top k num of tokens\n"
           "  /set parameter top_p <float>          Pick token based on sum of probabilities\n"
           "  /set parameter min_p <float>          Pick token based on top token probability "
           "* min_p\n"
           "  /set parameter num_ctx <int>          Set the context size\n"
           "  /set parameter temperature <float>    Set creativity level\n"
           "  /set parameter repeat_penalty <float> How strongly to penalize repetitions\n"
           "  /set parameter repeat_last_n <int>    Set how far back to look for repetitions\n"
           "  /set parameter num_gpu <int>          The number of layers to send to the GPU\n"
           "  /set parameter stop <string> <string> ...   Set the stop parameters\n\n");
}

static void help_shortcuts(void)
{
    printf("Available keyboard shortcuts:\n"
           "  Ctrl + a            Move to the beginning of the line (Home)\n"
           "  Ctrl + e            Move to the end of the line (End)\n"
           "   Alt + b            Move back (left) one word\n"
           "   Alt + f            Move forward (right) one word\n"
           "  Ctrl + k            Delete the sentence after the cursor\n"
           "  Ctrl + u            Delete the sentence before the cursor\n"
           "  Ctrl + w            Delete the word before the cursor\n\n"
           "  Ctrl + l            Clear the screen\n"
           "  Ctrl + c            Stop the model from responding\n"
           "  Ctrl + d            Exit llem (/bye)\n\n");
}

// ---- session state -----------------------------------------------------------------------------

// /set system: replaces a trailing system message or appends one (Ollama's rule).
static void set_system(struct session *s, const char *text)
{
    llem_free(s->system);
    s->system = llem_strdup(text);
    int n = cJSON_GetArraySize(s->messages);
    cJSON *last = n ? cJSON_GetArrayItem(s->messages, n - 1) : NULL;
    const char *role = str_of(last, "role");
    if (role && !strcmp(role, "system")) {
        cJSON_ReplaceItemInObjectCaseSensitive(last, "content", cJSON_CreateString(text));
    } else {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddItemToArray(s->messages, m);
    }
    printf("Set system message.\n");
}

static void clear_messages(struct session *s)
{
    cJSON_Delete(s->messages);
    s->messages = cJSON_CreateArray();
    if (s->system) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", s->system);
        cJSON_AddItemToArray(s->messages, m);
    }
}

static void show_field(struct session *s, const char *what)
{
    struct llem_errbuf eb = {0};
    cJSON *resp = show_model(s, &eb);
    if (!resp) {
        printf("error: couldn't get model: %s\n", eb.msg);
        return;
    }
    const char *v;
    if (!strcmp(what, "info")) {
        cli_show_info(resp, false);
    } else if (!strcmp(what, "license")) {
        v = str_of(resp, "license");
        printf("%s\n", v && v[0] ? v : "No license was specified for this model.");
    } else if (!strcmp(what, "modelfile")) {
        v = str_of(resp, "modelfile");
        printf("%s\n", v ? v : "");
    } else if (!strcmp(what, "parameters")) {
        v = str_of(resp, "parameters");
        bool user = cJSON_GetArraySize(s->options) > 0;
        if (!user && !(v && v[0])) {
            printf("No parameters were specified for this model.\n");
        }
        if (v && v[0]) {
            printf("Model defined parameters:\n%s\n", v);
        }
        if (user) {
            printf("User defined parameters:\n");
            const cJSON *it;
            cJSON_ArrayForEach(it, s->options)
            {
                char *val = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
                printf("%-30s %s\n", it->string, val ? val : it->valuestring);
                cJSON_free(val);
            }
            printf("\n");
        }
    } else if (!strcmp(what, "system")) {
        v = s->system ? s->system : str_of(resp, "system");
        printf("%s\n", v && v[0] ? v : "No system message was specified for this model.");
    } else if (!strcmp(what, "template")) {
        v = str_of(resp, "template");
        printf("%s\n", v && v[0] ? v : "No prompt template was specified for this model.");
    } else {
        printf("Unknown command '/show %s'. Type /? for help\n", what);
    }
    cJSON_Delete(resp);
}

// /save NAME: POST /api/create from the current model with the session's system prompt,
// parameters and conversation.
static void save_session(struct session *s, const char *name)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", name);
    cJSON_AddStringToObject(req, "from", s->model);
    if (s->system) {
        cJSON_AddStringToObject(req, "system", s->system);
    }
    if (cJSON_GetArraySize(s->options) > 0) {
        cJSON_AddItemToObject(req, "parameters", cJSON_Duplicate(s->options, true));
    }
    cJSON *msgs = cJSON_CreateArray();
    const cJSON *m;
    cJSON_ArrayForEach(m, s->messages)
    {
        const char *role = str_of(m, "role");
        if (role && strcmp(role, "system")) {
            cJSON_AddItemToArray(msgs, cJSON_Duplicate(m, true));
        }
    }
    cJSON_AddItemToObject(req, "messages", msgs);
    cJSON_AddBoolToObject(req, "stream", false);
    struct llem_errbuf eb = {0};
    enum llem_err e = cli_call(&s->c, "POST", "/api/create", req, NULL, &eb);
    cJSON_Delete(req);
    if (e != LLEM_OK) {
        printf("error: %s\n", eb.msg);
    } else {
        printf("Created new model '%s'\n", name);
    }
}

// /load NAME: switches model (the conversation starts over).
static void load_model(struct session *s, const char *name)
{
    char *old = s->model;
    s->model = llem_strdup(name);
    printf("Loading model '%s'\n", name);
    struct llem_errbuf eb = {0};
    cJSON *show = show_model(s, &eb);
    if (!show || preload(s, &eb) != LLEM_OK) {
        if (eb.code == LLEM_ENOTFOUND) {
            printf("Couldn't find model '%s'\n", name);
        } else {
            printf("error: %s\n", eb.msg);
        }
        llem_free(s->model);
        s->model = old;
        cJSON_Delete(show);
        return;
    }
    llem_free(old);
    infer_think(s, show);
    cJSON_Delete(show);
    clear_messages(s);
}

// Splits line into at most cap words (in place).
static int split_words(char *line, char **w, int cap)
{
    int n = 0;
    char *p = line;
    while (*p && n < cap) {
        p += strspn(p, " \t");
        if (!*p) {
            break;
        }
        w[n++] = p;
        p += strcspn(p, " \t");
        if (*p) {
            *p++ = '\0';
        }
    }
    return n;
}

enum multi { MULTI_NONE, MULTI_PROMPT, MULTI_SYSTEM };

// Handles one /command; returns false for /bye. *multi may switch to MULTI_SYSTEM.
static bool command(struct session *s, const char *line, enum multi *multi, struct strbuf *sb)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", line);
    char *w[64];
    int n = split_words(buf, w, 64);
    const char *cmd = n ? w[0] : "/";
    if (!strcmp(cmd, "/bye") || !strcmp(cmd, "/exit")) {
        return false;
    } else if (!strcmp(cmd, "/?") || !strcmp(cmd, "/help")) {
        if (n > 1 && !strcmp(w[1], "set")) {
            help_set();
        } else if (n > 1 && !strcmp(w[1], "show")) {
            help_show();
        } else if (n > 1 && (!strcmp(w[1], "shortcut") || !strcmp(w[1], "shortcuts"))) {
            help_shortcuts();
        } else {
            help_main();
        }
    } else if (!strcmp(cmd, "/clear")) {
        clear_messages(s);
        printf("Cleared session context\n");
    } else if (!strcmp(cmd, "/load")) {
        if (n != 2) {
            printf("Usage:\n  /load <modelname>\n");
        } else {
            load_model(s, w[1]);
        }
    } else if (!strcmp(cmd, "/save")) {
        if (n != 2) {
            printf("Usage:\n  /save <modelname>\n");
        } else {
            save_session(s, w[1]);
        }
    } else if (!strcmp(cmd, "/show")) {
        if (n < 2) {
            help_show();
        } else {
            show_field(s, w[1]);
        }
    } else if (!strcmp(cmd, "/set")) {
        const char *what = n > 1 ? w[1] : "";
        if (n < 2) {
            help_set();
        } else if (!strcmp(what, "parameter")) {
            if (n < 4) {
                help_parameters();
            } else {
                set_parameter(s, w + 2, n - 2);
            }
        } else if (!strcmp(what, "system")) {
            // The text after "/set system" as typed (spacing kept); """ starts a block.
            const char *text = strstr(line, "system") + 6;
            text += strspn(text, " \t");
            if (!strncmp(text, "\"\"\"", 3)) {
                text += 3;
                size_t L = strlen(text);
                if (L >= 3 && !strcmp(text + L - 3, "\"\"\"")) {
                    char tmp[4096];
                    snprintf(tmp, sizeof tmp, "%.*s", (int)(L - 3), text);
                    set_system(s, tmp);
                } else {
                    strbuf_reset(sb);
                    strbuf_append_str(sb, text);
                    strbuf_append_char(sb, '\n');
                    *multi = MULTI_SYSTEM;
                }
            } else if (!*text) {
                printf("Usage: /set system <string>\n");
            } else {
                set_system(s, text);
            }
        } else if (!strcmp(what, "history") || !strcmp(what, "nohistory")) {
            s->history = !strcmp(what, "history");
            printf("Set '%s' mode.\n", what);
        } else if (!strcmp(what, "wordwrap") || !strcmp(what, "nowordwrap")) {
            s->wordwrap = !strcmp(what, "wordwrap");
            printf(s->wordwrap ? "Set 'wordwrap' mode.\n" : "Set 'nowordwrap' mode.\n");
        } else if (!strcmp(what, "format")) {
            if (n < 3 || strcmp(w[2], "json")) {
                printf("Invalid or missing format. For 'json' mode use '/set format json'\n");
            } else {
                s->format_json = true;
                printf("Set format to 'json' mode.\n");
            }
        } else if (!strcmp(what, "noformat")) {
            s->format_json = false;
            printf("Disabled format.\n");
        } else if (!strcmp(what, "verbose") || !strcmp(what, "quiet")) {
            s->verbose = !strcmp(what, "verbose");
            printf("Set '%s' mode.\n", what);
        } else if (!strcmp(what, "think")) {
            const char *lvl = n > 2 ? w[2] : "";
            if (lvl[0] && strcmp(lvl, "high") && strcmp(lvl, "medium") && strcmp(lvl, "low")) {
                printf("Invalid think level '%s': use high, medium or low\n", lvl);
            } else {
                s->think = 1;
                s->think_explicit = true;
                snprintf(s->think_level, sizeof s->think_level, "%s", lvl);
                if (lvl[0]) {
                    printf("Set 'think' mode to '%s'.\n", lvl);
                } else {
                    printf("Set 'think' mode.\n");
                }
            }
        } else if (!strcmp(what, "nothink")) {
            s->think = 0;
            s->think_level[0] = '\0';
            s->think_explicit = true;
            printf("Set 'nothink' mode.\n");
        } else {
            printf("Unknown command '/set %s'. Type /? for help\n", what);
        }
    } else {
        printf("Unknown command '%s'. Type /? for help\n", cmd);
    }
    return true;
}

// One user message through /api/chat; the reply joins the conversation. Ctrl-C drops both.
static void chat_turn(struct session *s, const char *text)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(s->messages, m);
    cJSON *req = base_request(s, true);
    cJSON_AddItemToObject(req, "messages", cJSON_Duplicate(s->messages, true));
    cJSON *reply = NULL;
    struct llem_errbuf eb = {0};
    enum llem_err e = stream_answer(s, "/api/chat", req, on_chat_line, &reply, &eb);
    cJSON_Delete(req);
    if (e == LLEM_OK) {
        cJSON_AddItemToArray(s->messages, reply);
        if (s->tty) {
            putchar('\n'); // Ollama leaves a blank line after each answer
        }
        return;
    }
    cJSON_DeleteItemFromArray(s->messages, cJSON_GetArraySize(s->messages) - 1);
    if (e == LLEM_ECANCELED) {
        printf("\n");
    } else {
        fprintf(stderr, "Error: %s\n", eb.msg);
    }
}

static void history_add(struct session *s, const char *line)
{
    if (s->history && s->hist_path[0] && line[0]) {
        add_history(line);
        write_history(s->hist_path);
    }
}

static int repl(struct session *s)
{
    const char *nohist = getenv("LLEM_NOHISTORY");
    s->history = !(nohist && nohist[0]);
    char dir[1000];
    if (cli_llem_home(dir, sizeof dir)) {
        mkdir(dir, 0755);
        snprintf(s->hist_path, sizeof s->hist_path, "%s/history", dir);
    }
    using_history();
    stifle_history(1000);
    if (s->history && s->hist_path[0]) {
        read_history(s->hist_path);
    }
    struct strbuf sb;
    strbuf_init(&sb, PROMPT_MAX);
    enum multi multi = MULTI_NONE;
    cli_catch_sigint(true);
    int status = 0;
    for (;;) {
        cli_interrupted = 0;
        errno = 0;
        char *line = readline(multi != MULTI_NONE ? "... " : ">>> ");
        if (!line) {
            if (cli_interrupted) { // Ctrl-C at the prompt: forget the input, stay
                strbuf_reset(&sb);
                multi = MULTI_NONE;
                printf("\nUse Ctrl + d or /bye to exit.\n");
                continue;
            }
            printf("\n"); // Ctrl-D
            break;
        }
        history_add(s, line);
        if (multi != MULTI_NONE) {
            size_t L = strlen(line);
            bool closes = L >= 3 && !strcmp(line + L - 3, "\"\"\"");
            strbuf_append(&sb, line, closes ? L - 3 : L);
            llem_free(line); // readline's buffer: llem_free is the C library's free
            if (!closes) {
                strbuf_append_char(&sb, '\n');
                continue;
            }
            enum multi was = multi;
            multi = MULTI_NONE;
            if (was == MULTI_SYSTEM) {
                set_system(s, strbuf_cstr(&sb));
                strbuf_reset(&sb);
                continue;
            }
        } else if (!strncmp(line, "\"\"\"", 3)) {
            const char *rest = line + 3;
            size_t L = strlen(rest);
            bool closes = L >= 3 && !strcmp(rest + L - 3, "\"\"\"");
            strbuf_reset(&sb);
            strbuf_append(&sb, rest, closes ? L - 3 : L);
            llem_free(line);
            if (!closes) {
                strbuf_append_char(&sb, '\n');
                multi = MULTI_PROMPT;
                continue;
            }
        } else if (line[0] == '/') {
            bool go = command(s, line, &multi, &sb);
            llem_free(line);
            if (!go) {
                break;
            }
            continue;
        } else {
            strbuf_reset(&sb);
            strbuf_append_str(&sb, line);
            llem_free(line);
        }
        const char *text = strbuf_cstr(&sb);
        if (text[strspn(text, " \t\n")] != '\0') {
            chat_turn(s, text);
        }
        strbuf_reset(&sb);
    }
    cli_catch_sigint(false);
    strbuf_deinit(&sb);
    return status;
}

// ---- entry -------------------------------------------------------------------------------------

static void session_deinit(struct session *s)
{
    llem_free(s->model);
    llem_free(s->system);
    cJSON_Delete(s->messages);
    cJSON_Delete(s->options);
}

// Prints the MESSAGE lines a model carries, as the start of the conversation.
static void print_stored_messages(const cJSON *show)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(show, "messages"))
    {
        const char *role = str_of(m, "role"), *content = str_of(m, "content");
        if (role && content && !strcmp(role, "user")) {
            printf(">>> %s\n", content);
        } else if (role && content && !strcmp(role, "assistant")) {
            printf("%s\n\n", content);
        }
    }
}

int cli_run_model(int argc, char **argv)
{
    struct session s;
    memset(&s, 0, sizeof s);
    s.think = -1;
    s.wordwrap = true;
    struct strbuf prompt;
    strbuf_init(&prompt, PROMPT_MAX);
    bool has_prompt = false;
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            fputs(usage_text, stdout);
            strbuf_deinit(&prompt);
            return 0;
        } else if (!strcmp(a, "--format") && v) {
            if (strcmp(v, "json")) {
                strbuf_deinit(&prompt);
                return cli_fail("run", "invalid format '%s' (only 'json' is supported)", v);
            }
            s.format_json = true;
            i++;
        } else if (!strcmp(a, "--keepalive") && v) {
            s.keepalive = v;
            i++;
        } else if (!strcmp(a, "--think") || !strncmp(a, "--think=", 8)) {
            const char *val = a[7] == '=' ? a + 8 : "true";
            s.think_explicit = true;
            if (!strcmp(val, "true")) {
                s.think = 1;
            } else if (!strcmp(val, "false")) {
                s.think = 0;
            } else if (!strcmp(val, "high") || !strcmp(val, "medium") || !strcmp(val, "low")) {
                s.think = 1;
                snprintf(s.think_level, sizeof s.think_level, "%s", val);
            } else {
                strbuf_deinit(&prompt);
                return cli_fail("run", "invalid value '%s' for --think (true, false, high, "
                                "medium or low)", val);
            }
        } else if (!strcmp(a, "--hidethinking")) {
            s.hide_thinking = true;
        } else if (!strcmp(a, "--nowordwrap")) {
            s.wordwrap = false;
        } else if (!strcmp(a, "--verbose")) {
            s.verbose = true;
        } else if (!strcmp(a, "--insecure")) {
            s.insecure = true;
        } else if (a[0] == '-' && a[1]) {
            strbuf_deinit(&prompt);
            return cli_fail("run", "unknown flag or missing value: '%s' (try 'llem run --help')",
                            a);
        } else if (!model) {
            model = a;
        } else {
            if (has_prompt) {
                strbuf_append_char(&prompt, ' ');
            }
            strbuf_append_str(&prompt, a);
            has_prompt = true;
        }
    }
    if (!model) {
        strbuf_deinit(&prompt);
        return cli_fail("run", "missing MODEL (try 'llem run --help')");
    }
    if (!cli_client_open(&s.c, "run")) {
        strbuf_deinit(&prompt);
        return 1;
    }
    s.tty = isatty(STDOUT_FILENO);
    bool interactive = !has_prompt && isatty(STDIN_FILENO);
    if (!isatty(STDIN_FILENO)) {
        // Piped input goes in front of the prompt words (Ollama joins them with a space).
        size_t n = 0;
        char *in = cli_slurp(stdin, PROMPT_MAX, &n);
        if (!in) {
            strbuf_deinit(&prompt);
            return cli_fail("run", "cannot read standard input (unreadable or over 64 MiB)");
        }
        if (n) {
            struct strbuf both;
            strbuf_init(&both, PROMPT_MAX);
            strbuf_append(&both, in, n);
            if (has_prompt) {
                strbuf_append_char(&both, ' ');
                strbuf_append(&both, prompt.data, prompt.len);
            }
            strbuf_deinit(&prompt);
            prompt = both;
            has_prompt = true;
        }
        llem_free(in);
        s.wordwrap = false;
    }
    if (!s.tty) {
        s.wordwrap = false;
        if (!s.think_explicit) {
            s.hide_thinking = true; // piped output carries only the answer unless asked
        }
    }
    s.model = llem_strdup(model);
    s.messages = cJSON_CreateArray();
    s.options = cJSON_CreateObject();
    struct llem_errbuf eb = {0};
    int status = 0;
    cJSON *show = NULL;
    if (cli_ensure_server(&s.c, &eb) != LLEM_OK) {
        status = cli_fail("run", "%s", eb.msg);
        goto out;
    }
    show = show_model(&s, &eb);
    if (!show && eb.code == LLEM_ENOTFOUND) {
        if (cli_registry_transfer(&s.c, "pull", model, s.insecure) != 0) {
            status = 1;
            goto out;
        }
        show = show_model(&s, &eb);
    }
    if (!show) {
        status = cli_fail("run", "%s", eb.msg);
        goto out;
    }
    infer_think(&s, show);
    if (!interactive) {
        if (!has_prompt) {
            goto out; // empty stdin: nothing to answer
        }
        cJSON *req = base_request(&s, false);
        cJSON_AddStringToObject(req, "prompt", strbuf_cstr(&prompt));
        cli_catch_sigint(true);
        enum llem_err e = stream_answer(&s, "/api/generate", req, on_generate_line, NULL, &eb);
        cli_catch_sigint(false);
        cJSON_Delete(req);
        if (e == LLEM_ECANCELED) {
            status = 130;
        } else if (e != LLEM_OK) {
            status = cli_fail("run", "%s", eb.msg);
        }
        goto out;
    }
    if (preload(&s, &eb) != LLEM_OK) {
        status = cli_fail("run", "%s", eb.msg);
        goto out;
    }
    print_stored_messages(show);
    status = repl(&s);
out:
    cJSON_Delete(show);
    strbuf_deinit(&prompt);
    session_deinit(&s);
    return status;
}
