// tests/unit/template_thinking.c: thinking-tag detection and the streaming splitter: every way
// of cutting the output into chunks gives the same thinking/content, partial tags never leak,
// primed prompts, think:false stripping, and outputs without thinking.
#include "check.h"
#include "template/thinking.h"

// Splits `out` at every cut point pair (chunks of 1..3 pieces) and checks the result.
static void check_split(const struct think_tags *t, bool primed, bool discard, const char *out,
                        const char *want_think, const char *want_content)
{
    size_t n = strlen(out);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            struct think_parser p;
            think_parser_init(&p, t, primed, discard);
            struct strbuf c, th;
            strbuf_init(&c, 0);
            strbuf_init(&th, 0);
            CHECK_OK(think_parser_add(&p, out, a, false, &c, &th), &(struct llem_errbuf){0});
            // nothing emitted so far may contain a partial tag
            if (!strchr(want_content, '<')) {
                CHECK(strchr(strbuf_cstr(&c), '<') == NULL);
            }
            think_parser_add(&p, out + a, b - a, false, &c, &th);
            think_parser_add(&p, out + b, n - b, true, &c, &th);
            if (strcmp(strbuf_cstr(&th), want_think) != 0 || strcmp(strbuf_cstr(&c), want_content) != 0) {
                fprintf(stderr, "cut %zu/%zu of \"%s\": thinking \"%s\" content \"%s\"\n", a, b, out,
                        strbuf_cstr(&th), strbuf_cstr(&c));
                check_failures++;
                a = b = n + 1; // one report is enough
            }
            strbuf_deinit(&c);
            strbuf_deinit(&th);
        }
    }
}

static void test_detect(void)
{
    struct think_tags t;
    const char *qwen3 = "{%- if enable_thinking is defined and enable_thinking is false %}"
                        "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}";
    CHECK(think_detect(qwen3, strlen(qwen3), &t));
    CHECK_EQ_STR(t.open, "<think>");
    CHECK_EQ_STR(t.close, "</think>");
    CHECK(think_template_has_switch(qwen3, strlen(qwen3)));
    const char *go = "{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}";
    CHECK(think_detect(go, strlen(go), &t));
    CHECK(!think_template_has_switch(go, strlen(go)));
    const char *go2 = "{{ if .Think }}x{{ end }}{{ .Thinking }}";
    CHECK(think_template_has_switch(go2, strlen(go2)));
    CHECK(!think_detect("{{ .Prompt }}", 12, &t));
    CHECK_EQ_STR(t.open, "");
    struct think_tags tt = {"<think>", "</think>"};
    CHECK(think_prompt_primed(&tt, "<|im_start|>assistant\n<think>\n", 30));
    CHECK(!think_prompt_primed(&tt, "<|im_start|>assistant\n", 22));
}

static void test_split(void)
{
    struct think_tags t = {"<think>", "</think>"};
    check_split(&t, false, false, "<think>\nI reason.</think>\n\nThe answer.", "I reason.",
                "The answer.");
    check_split(&t, false, false, "  <think>a<b</thi</think>x</think", "a<b</thi",
                "x</think");
    check_split(&t, true, false, "deep thought</think>\n42", "deep thought", "42");
    check_split(&t, false, false, "No thinking <think> here", "", "No thinking <think> here");
    check_split(&t, false, false, "<thinx", "", "<thinx");
    check_split(&t, false, true, "<think>secret</think>visible", "", "visible");
    check_split(&t, true, false, "unfinished <", "unfinished <", "");
    check_split(NULL, false, false, "<think>x</think>", "", "<think>x</think>");
}

int main(void)
{
    RUN_TEST(test_detect);
    RUN_TEST(test_split);
    return TEST_EXIT();
}
