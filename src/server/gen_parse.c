// server/gen_parse.c: splits a generation's streamed output into content, thinking and tool
// calls, configured from the chat template's text (template/thinking.h, template/toolcall.h).
// Order: the thinking parser first (its content goes on to the tool-call parser), except for
// harmony output, whose channels the tool-call parser handles alone. Thinking text never
// reaches content: with think:false it is dropped.
#include <string.h>

#include "sampler/grammar.h"
#include "server/gen_int.h"
#include "tokenizer/tokenizer.h"

enum llem_err gen_parse_init(struct gen_parse *p, const char *tpl, const cJSON *tools,
                             bool think_on, bool primed, struct llem_errbuf *eb)
{
    memset(p, 0, sizeof *p);
    strbuf_init(&p->content, 0);
    strbuf_init(&p->thinking, 0);
    strbuf_init(&p->mid, 0);
    size_t n = tpl ? strlen(tpl) : 0;
    enum tc_format f = n ? tc_detect(tpl, n) : TC_FORMAT_NONE;
    bool harmony = f == TC_FORMAT_HARMONY;
    struct think_tags tags;
    if (!harmony && n && think_detect(tpl, n, &tags)) {
        think_parser_init(&p->tp, &tags, primed, !think_on);
        p->thinking_on = true;
        p->active = true;
    }
    bool want_tools = tools && cJSON_GetArraySize(tools) > 0 && f != TC_FORMAT_NONE;
    if (harmony || want_tools) {
        char *tj = want_tools ? cJSON_PrintUnformatted(tools) : NULL;
        if (want_tools && !tj) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        enum llem_err e = tc_parser_new(&p->tc, f, tj, tj ? strlen(tj) : 0, 0, eb);
        cJSON_free(tj);
        if (e != LLEM_OK) {
            return e;
        }
        p->active = true;
    }
    // Harmony analysis text is thinking: kept only when thinking is on.
    p->thinking_on = p->thinking_on || (harmony && think_on);
    return LLEM_OK;
}

void gen_parse_deinit(struct gen_parse *p)
{
    if (!p) {
        return;
    }
    tc_parser_free(p->tc);
    p->tc = NULL;
    strbuf_deinit(&p->content);
    strbuf_deinit(&p->thinking);
    strbuf_deinit(&p->mid);
}

enum llem_err gen_parse_add(struct gen_parse *p, const char *s, size_t n, bool done,
                            struct llem_errbuf *eb)
{
    strbuf_reset(&p->content);
    strbuf_reset(&p->thinking);
    strbuf_reset(&p->mid);
    enum llem_err e = LLEM_OK;
    if (p->tp.tags.open[0]) {
        // Thinking first; its content goes on to the tool-call parser (if any).
        struct strbuf *dst = p->tc ? &p->mid : &p->content;
        e = think_parser_add(&p->tp, s, n, done, dst, p->tp.discard ? NULL : &p->thinking);
        if (e != LLEM_OK) {
            return llem_errf(eb, e, "out of memory parsing the output");
        }
        if (p->tc) {
            e = tc_parser_add(p->tc, p->mid.data ? p->mid.data : "", p->mid.len, done,
                              &p->content, NULL, eb);
        }
    } else if (p->tc) {
        e = tc_parser_add(p->tc, s, n, done, &p->content, p->thinking_on ? &p->thinking : NULL,
                          eb);
    } else if (strbuf_append(&p->content, s, n) != LLEM_OK) {
        return llem_errf(eb, LLEM_ENOMEM, "out of memory parsing the output");
    }
    return e;
}

int32_t gen_parse_n_calls(const struct gen_parse *p)
{
    return p->tc ? tc_parser_n_calls(p->tc) : 0;
}

// ---- request planning -------------------------------------------------------------------------

enum llem_err gen_compile_rules(const struct gen_req *g, struct grammar_rules **out,
                                struct llem_errbuf *eb)
{
    *out = NULL;
    enum llem_err e = LLEM_OK;
    if (g->grammar && g->grammar[0]) {
        if (g->format) {
            return llem_errf(eb, LLEM_EINVAL, "grammar and format are exclusive");
        }
        e = grammar_rules_gbnf(out, g->grammar, strlen(g->grammar), NULL, eb);
    } else if (g->format) {
        char *txt = cJSON_PrintUnformatted(g->format);
        if (!txt) {
            return llem_errf(eb, LLEM_ENOMEM, "out of memory");
        }
        e = g->format_openai ? grammar_rules_openai(out, txt, strlen(txt), eb)
                             : grammar_rules_format(out, txt, strlen(txt), eb);
        cJSON_free(txt);
    }
    if (e == LLEM_EUNSUPPORTED || e == LLEM_ELIMIT) {
        // the request asks what we cannot guarantee: a client error, never silent non-compliance
        char msg[sizeof eb->msg];
        snprintf(msg, sizeof msg, "%s", eb->msg);
        e = llem_errf(eb, LLEM_EINVAL, "%s", msg);
    }
    return e;
}

enum llem_err gen_plan_think(struct gen_req *g, const char *tpl, bool *think_on,
                             struct llem_errbuf *eb)
{
    size_t n = tpl ? strlen(tpl) : 0;
    struct think_tags tags;
    bool harmony = n && tc_detect(tpl, n) == TC_FORMAT_HARMONY;
    bool capable = harmony || (n && think_detect(tpl, n, &tags));
    if (g->think_level && !harmony) {
        if (g->api == GEN_OAI_CHAT) {
            g->think_level = NULL; // reasoning_effort: other models just think
        } else {
            return llem_errf(eb, LLEM_EINVAL, "think value \"%s\" is not supported for this "
                             "model", g->think_level);
        }
    }
    if (g->think_set && g->think && !capable) {
        return llem_errf(eb, LLEM_EINVAL, "\"%s\" does not support thinking", g->model);
    }
    // Ollama: a model that can think does so unless told not to.
    *think_on = capable && (!g->think_set || g->think);
    return LLEM_OK;
}

enum llem_err gen_setup_output(struct gen_job *j, const struct gen_req *g, const char *tpl,
                               bool think_on, struct strbuf *prompt,
                               struct grammar_rules *rules, struct grammar **gr,
                               bool *render_special, struct gen_trigger *trig,
                               struct llem_errbuf *eb)
{
    *gr = NULL;
    *render_special = false;
    trig->n = 0;
    bool chat = g->api == GEN_CHAT || g->api == GEN_OAI_CHAT;
    bool parse = chat || (g->api == GEN_GENERATE && !g->raw);
    size_t n = tpl ? strlen(tpl) : 0;
    struct think_tags tags = {{0}, {0}};
    bool has_tags = n && tc_detect(tpl, n) != TC_FORMAT_HARMONY && think_detect(tpl, n, &tags);
    bool primed = has_tags && think_prompt_primed(&tags, prompt->data ? prompt->data : "",
                                                  prompt->len);
    bool triggered = rules && has_tags && think_on && !(g->grammar && g->grammar[0]);
    enum llem_err e = LLEM_OK;
    if (triggered && !primed) {
        // The constraint waits for the end of thinking, so thinking must happen: open it in
        // the prompt (as deepseek-r1's template does) rather than let an answer that skips it
        // go unconstrained.
        e = strbuf_appendf(prompt, "%s\n", tags.open);
        if (e != LLEM_OK) {
            return llem_errf(eb, e, "prompt too long");
        }
        primed = true;
    }
    if (parse) {
        e = gen_parse_init(&j->parse, tpl, chat ? g->tools : NULL, think_on, primed, eb);
        if (e != LLEM_OK) {
            return e;
        }
        // Markers such as <|python_tag|>, <|channel|> or [TOOL_CALLS] are control tokens.
        *render_special = j->parse.active;
    }
    if (!rules) {
        return LLEM_OK;
    }
    const struct grammar_vocab *gv = NULL;
    e = runner_grammar_vocab(j->lease.runner, &gv, eb);
    if (e == LLEM_OK) {
        e = grammar_new(gr, rules, gv, eb);
    }
    // Thinking models: the constraint applies to the answer after the thinking section
    // (a GBNF `grammar` covers the whole output, as the client wrote it).
    if (e == LLEM_OK && triggered) {
        e = grammar_set_trigger(*gr, tags.close, eb);
    }
    if (e == LLEM_OK && triggered) {
        // forced when the budget runs short (runner_task_params.trigger_tokens)
        size_t nt = 0;
        if (tok_encode(j->lease.vocab, tags.close, strlen(tags.close), false, true, trig->toks,
                       GEN_TRIGGER_MAX, &nt, eb) == LLEM_OK) {
            trig->n = (int32_t)nt;
        }
    }
    if (e != LLEM_OK) {
        grammar_free(*gr);
        *gr = NULL;
    }
    return e;
}
