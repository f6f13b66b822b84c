// tests/unit/server_prompt.c: chat -> prompt rendering (server/prompt.c) on a tiny in-memory
// vocabulary: the GGUF chat template through the Jinja engine (with the template's BOS
// removed, since the tokenizer adds it), the ChatML fallback, the plain fallback, generate as
// one user turn, a Go `template` override, and the refusals (tools, thinking).
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "server/server_int.h"
#include "tokenizer/tokenizer.h"

static struct tok_vocab *make_vocab(bool chatml)
{
    const char *toks[] = {"<unk>", "<s>", "</s>", "a", "b", "<|im_start|>", "<|im_end|>"};
    int32_t types[] = {2, 3, 3, 1, 1, 3, 3};
    struct tok_vocab_desc d;
    tok_vocab_desc_init(&d);
    d.model = "llama";
    d.tokens = toks;
    d.n_tokens = chatml ? 7 : 5;
    d.token_types = types;
    d.special[TOK_SPECIAL_BOS] = 1;
    d.special[TOK_SPECIAL_EOS] = 2;
    d.special[TOK_SPECIAL_UNK] = 0;
    d.add_bos = 1;
    struct tok_vocab *v = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_vocab_new(&v, &d, &eb), &eb);
    return v;
}

// A metadata-only GGUF holding just a chat template (NULL: none).
static struct gguf_file *make_gguf(const char *tmpl)
{
    char path[] = "/tmp/llem_prompt_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    struct gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    if (tmpl) {
        gguf_writer_set_str(w, "tokenizer.chat_template", tmpl);
    }
    struct llem_errbuf eb = {0};
    CHECK_OK(gguf_writer_write(w, path, &eb), &eb);
    gguf_writer_free(w);
    struct gguf_file *f = NULL;
    struct gguf_open_opts oo = {.metadata_only = true};
    CHECK_OK(gguf_open(&f, path, &oo, &eb), &eb);
    unlink(path);
    return f;
}

static cJSON *msgs(void)
{
    return cJSON_Parse("[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\","
                       "\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"},"
                       "{\"role\":\"user\",\"content\":\"q\"}]");
}

static void render(const struct model *m, const struct tok_vocab *v, const cJSON *ms,
                   const cJSON *tools, const char *want, enum llem_err want_err)
{
    struct strbuf sb;
    strbuf_init(&sb, 1 << 20);
    struct llem_errbuf eb = {0};
    enum llem_err e = prompt_render_chat(m, v, ms, tools, false, false, NULL, &sb, &eb);
    CHECK_EQ_I64(e, want_err);
    if (want) {
        CHECK_EQ_STR(strbuf_cstr(&sb), want);
    }
    strbuf_deinit(&sb);
}

static void test_jinja(void)
{
    struct tok_vocab *v = make_vocab(false);
    struct model m = {0};
    m.gguf = make_gguf("{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}"
                       "{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}");
    cJSON *ms = msgs();
    render(&m, v, ms, NULL, "[system]S[user]hi[assistant]yo[user]q[assistant]", LLEM_OK);
    cJSON *tools = cJSON_Parse("[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]");
    render(&m, v, ms, tools, NULL, LLEM_EINVAL); // the template never mentions tools
    struct strbuf sb;
    strbuf_init(&sb, 0);
    struct llem_errbuf eb = {0};
    CHECK(prompt_render_chat(&m, v, ms, NULL, true, true, NULL, &sb, &eb) == LLEM_EINVAL);
    CHECK(strstr(eb.msg, "thinking") != NULL);
    CHECK_OK(prompt_render_generate(&m, v, "x", "sys", NULL, false, false, &sb, &eb), &eb);
    CHECK_EQ_STR(strbuf_cstr(&sb), "[system]sys[user]x[assistant]");
    strbuf_reset(&sb);
    CHECK_OK(prompt_render_generate(&m, v, "x", "sys", "{{ .System }}|{{ .Prompt }}", false, false,
                                    &sb, &eb),
             &eb);
    CHECK_EQ_STR(strbuf_cstr(&sb), "sys|x");
    CHECK_EQ_STR(prompt_kind(&m, v), "jinja");
    strbuf_deinit(&sb);
    cJSON_Delete(tools);
    cJSON_Delete(ms);
    gguf_close(m.gguf);
    m.gguf = make_gguf("{% for m in messages %}{{ m.content }}{% endfor %}{{ tools[0].type }}");
    ms = msgs();
    tools = cJSON_Parse("[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]");
    render(&m, v, ms, tools, "Shiyoqfunction", LLEM_OK);
    m.gguf = (gguf_close(m.gguf), make_gguf("{% for %}"));
    render(&m, v, ms, NULL, NULL, LLEM_EINVAL); // a broken template is a request error
    gguf_close(m.gguf);
    cJSON_Delete(tools);
    cJSON_Delete(ms);
    tok_vocab_free(v);
}

static void test_fallbacks(void)
{
    struct model m = {0};
    m.gguf = make_gguf(NULL);
    cJSON *ms = msgs();
    struct tok_vocab *v = make_vocab(true);
    CHECK_EQ_STR(prompt_kind(&m, v), "chatml");
    render(&m, v, ms, NULL,
           "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
           "<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>user\nq<|im_end|>\n"
           "<|im_start|>assistant\n",
           LLEM_OK);
    tok_vocab_free(v);
    v = make_vocab(false);
    CHECK_EQ_STR(prompt_kind(&m, v), "plain");
    render(&m, v, ms, NULL, "S\n\nhiyoq", LLEM_OK);
    struct strbuf sb;
    strbuf_init(&sb, 0);
    struct llem_errbuf eb = {0};
    CHECK_OK(prompt_render_generate(&m, v, "Once upon a time", NULL, NULL, false, false, &sb, &eb),
             &eb);
    CHECK_EQ_STR(strbuf_cstr(&sb), "Once upon a time"); // Ollama's {{ .Prompt }}
    strbuf_deinit(&sb);
    cJSON *tools = cJSON_Parse("[{\"type\":\"function\"}]");
    render(&m, v, ms, tools, NULL, LLEM_EINVAL);
    cJSON_Delete(tools);
    tok_vocab_free(v);
    cJSON_Delete(ms);
    gguf_close(m.gguf);
}

int main(void)
{
    RUN_TEST(test_jinja);
    RUN_TEST(test_fallbacks);
    return TEST_EXIT();
}
