// tests/unit/tokenizer_bpe.c: byte-level BPE on an in-memory vocab: merges by rank (ties to
// the left), pre-tokenizer selection (gpt-2 / llama3 / qwen2 digits, ignore_merges), invalid
// UTF-8, decoding, validation errors, and concurrent encodes from several threads.
#include <pthread.h>

#include "check.h"
#include "tokenizer/tokenizer.h"

static char names[300][8];
static const char *toks[300];
static int32_t types[300];
static uint32_t n_toks;

static bool printable(int b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

// The GPT-2 alphabet spelled independently of the library: printable bytes stand for
// themselves, the others are U+0100.. in byte order. Token id = byte value.
static void add_bytes(void)
{
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int cp = printable(b) ? b : 256 + extra++;
        if (cp < 0x80) {
            names[b][0] = (char)cp;
            names[b][1] = 0;
        } else {
            names[b][0] = (char)(0xC0 | (cp >> 6));
            names[b][1] = (char)(0x80 | (cp & 0x3F));
            names[b][2] = 0;
        }
        toks[b] = names[b];
        types[b] = 1;
    }
    n_toks = 256;
}

static const char *const merges[] = {"h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "o r",
                                     "\xc4\xa0w or", "l d", "\xc4\xa0wor ld", "a a", "1 2",
                                     "12 3", "4 5"};
static const char *const merged[] = {"he", "ll", "hell", "hello", "\xc4\xa0w", "or",
                                     "\xc4\xa0wor", "ld", "\xc4\xa0world", "aa", "12", "123",
                                     "45", "xyz", "<|end|>"};
enum { ID_HELLO = 259, ID_WORLD = 264, ID_AA = 265, ID_123 = 267, ID_45 = 268, ID_XYZ = 269,
       ID_END = 270 };

static struct tok_vocab *make(const char *pre, struct llem_errbuf *eb, enum llem_err *err)
{
    add_bytes();
    for (size_t i = 0; i < sizeof merged / sizeof *merged; i++) {
        types[n_toks] = strcmp(merged[i], "<|end|>") == 0 ? 3 : 1;
        toks[n_toks++] = merged[i];
    }
    struct tok_vocab_desc d;
    tok_vocab_desc_init(&d);
    d.model = "gpt2";
    d.pre = pre;
    d.tokens = toks;
    d.n_tokens = n_toks;
    d.token_types = types;
    d.merges = merges;
    d.n_merges = sizeof merges / sizeof *merges;
    d.special[TOK_SPECIAL_EOS] = ID_END;
    struct tok_vocab *v = NULL;
    *err = tok_vocab_new(&v, &d, eb);
    return v;
}

static struct tok_vocab *make_ok(const char *pre)
{
    struct llem_errbuf eb = {0};
    enum llem_err e;
    struct tok_vocab *v = make(pre, &eb, &e);
    CHECK_OK(e, &eb);
    return v;
}

static size_t enc(const struct tok_vocab *v, const char *s, size_t len, llem_token *out)
{
    size_t n = 0;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_encode(v, s, len, false, false, out, 256, &n, &eb), &eb);
    return n;
}

static void test_merges(void)
{
    struct tok_vocab *v = make_ok("gpt-2");
    llem_token ids[256];
    size_t n = enc(v, "hello world", 11, ids);
    CHECK_EQ_I64(n, 2);
    CHECK_EQ_I64(ids[0], ID_HELLO);
    CHECK_EQ_I64(ids[1], ID_WORLD);
    // "  world": the gpt-2 regex keeps one space apart ("\s+(?!\S)")
    n = enc(v, "hello  world", 12, ids);
    CHECK_EQ_I64(n, 3);
    CHECK_EQ_I64(ids[1], ' ');
    CHECK_EQ_I64(ids[2], ID_WORLD);
    // equal ranks merge leftmost first: "aaa" -> "aa" "a"
    n = enc(v, "aaa", 3, ids);
    CHECK_EQ_I64(n, 2);
    CHECK_EQ_I64(ids[0], ID_AA);
    CHECK_EQ_I64(ids[1], 'a');
    // without ignore_merges a token that no merge reaches is spelled out
    n = enc(v, "xyz", 3, ids);
    CHECK_EQ_I64(n, 3);
    // special-token text is plain text unless parse_special
    n = enc(v, "<|end|>", 7, ids);
    CHECK(n > 1);
    size_t k = 0;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_encode(v, "<|end|>", 7, true, true, ids, 256, &k, &eb), &eb);
    CHECK_EQ_I64(k, 1);
    CHECK_EQ_I64(ids[0], ID_END);
    CHECK(tok_is_eog(v, ID_END));
    tok_vocab_free(v);
}

static void test_pretokenizers(void)
{
    llem_token ids[256];
    struct tok_vocab *v = make_ok("llama-bpe");
    CHECK_EQ_I64(enc(v, "12345", 5, ids), 2); // \p{N}{1,3}: "123" "45"
    CHECK_EQ_I64(ids[0], ID_123);
    CHECK_EQ_I64(ids[1], ID_45);
    CHECK_EQ_I64(enc(v, "xyz", 3, ids), 1); // ignore_merges: a whole-word token wins
    CHECK_EQ_I64(ids[0], ID_XYZ);
    CHECK(tok_add_bos(v)); // llama-bpe adds BOS by default
    tok_vocab_free(v);
    v = make_ok("qwen2");
    CHECK_EQ_I64(enc(v, "12345", 5, ids), 5); // \p{N}: one digit per word
    tok_vocab_free(v);
    v = make_ok(NULL); // absent = default
    CHECK_EQ_I64(enc(v, "hello world", 11, ids), 2);
    CHECK_EQ_STR(tok_vocab_pre(v), "default");
    tok_vocab_free(v);
    static const char *const pres[] = {"deepseek-llm", "deepseek-coder", "falcon", "starcoder",
        "refact", "mpt", "gpt-neox", "command-r", "phi-2", "smollm", "dbrx", "tekken", "olmo",
        "chatglm-bpe", "qwen2", "llama3", "default", "gpt-2", "poro-chat", "viking",
        "chameleon", "deepseek-v3"};
    for (size_t i = 0; i < sizeof pres / sizeof *pres; i++) {
        v = make_ok(pres[i]);
        size_t n = enc(v, "hello world 123", 15, ids);
        CHECK(n >= 3);
        tok_vocab_free(v);
    }
}

static void test_bytes_and_decode(void)
{
    struct tok_vocab *v = make_ok("gpt-2");
    llem_token ids[256];
    // invalid UTF-8 becomes U+FFFD before byte encoding, as upstream does
    size_t n = enc(v, "a\xff", 2, ids);
    CHECK_EQ_I64(n, 4);
    CHECK_EQ_I64(ids[1], 0xEF);
    CHECK_EQ_I64(ids[2], 0xBF);
    CHECK_EQ_I64(ids[3], 0xBD);
    char buf[64];
    CHECK_EQ_I64(tok_piece(v, ID_WORLD, false, buf, sizeof buf), 6);
    CHECK(memcmp(buf, " world", 6) == 0);
    CHECK_EQ_I64(tok_piece(v, 0x0A, false, buf, sizeof buf), 1);
    CHECK_EQ_I64(buf[0], '\n');
    CHECK_EQ_I64(tok_piece(v, ID_END, false, buf, sizeof buf), 0);
    CHECK_EQ_I64(tok_piece(v, ID_END, true, buf, sizeof buf), 7);
    // round trip of every byte value through encode and the streaming decoder
    char text[200];
    for (int i = 0; i < 200; i++) {
        text[i] = (char)(i < 128 ? i : 'a' + i % 26);
    }
    n = enc(v, text, sizeof text, ids);
    struct tok_stream st;
    tok_stream_init(&st, v, false);
    char out[400];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        struct llem_errbuf eb = {0};
        CHECK_OK(tok_stream_push(&st, ids[i], out + total, sizeof out - total, &k, &eb), &eb);
        total += k;
    }
    total += tok_stream_flush(&st, out + total, sizeof out - total);
    CHECK_EQ_I64(total, sizeof text);
    CHECK(memcmp(out, text, sizeof text) == 0);
    tok_vocab_free(v);
}

static void test_errors(void)
{
    struct llem_errbuf eb = {0};
    enum llem_err e;
    CHECK(make("no-such-pre", &eb, &e) == NULL);
    CHECK_EQ_I64(e, LLEM_EUNSUPPORTED);
    CHECK(strstr(eb.msg, "no-such-pre") != NULL);
    add_bytes();
    static const char *const bad_merges[] = {"h e", "hello"};
    struct tok_vocab_desc d;
    tok_vocab_desc_init(&d);
    d.model = "gpt2";
    d.tokens = toks;
    d.n_tokens = n_toks;
    d.merges = bad_merges;
    d.n_merges = 2;
    struct tok_vocab *v = NULL;
    CHECK_EQ_I64(tok_vocab_new(&v, &d, &eb), LLEM_EFORMAT);
    CHECK(strstr(eb.msg, "merges[1]") != NULL);
    d.merges = NULL;
    d.n_merges = 0;
    CHECK_EQ_I64(tok_vocab_new(&v, &d, &eb), LLEM_EFORMAT);
    CHECK(v == NULL);
}

struct job {
    const struct tok_vocab *v;
    const char *text;
    size_t len;
    const llem_token *want;
    size_t n_want;
    int bad;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    llem_token *ids = malloc(j->len * sizeof *ids);
    for (int it = 0; it < 20; it++) {
        size_t n = 0;
        struct llem_errbuf eb = {0};
        if (tok_encode(j->v, j->text, j->len, false, false, ids, j->len, &n, &eb) ||
            n != j->n_want || memcmp(ids, j->want, n * sizeof *ids) != 0) {
            j->bad++;
        }
    }
    free(ids);
    return NULL;
}

static void test_threads(void)
{
    struct tok_vocab *v = make_ok("llama-bpe");
    size_t len = 20000;
    char *text = malloc(len);
    for (size_t i = 0; i < len; i++) {
        text[i] = "hello world 12345 aaa xyz\n"[i % 26];
    }
    llem_token *want = malloc(len * sizeof *want);
    size_t n = 0;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_encode(v, text, len, false, false, want, len, &n, &eb), &eb);
    pthread_t th[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){v, text, len, want, n, 0};
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_I64(jobs[i].bad, 0);
    }
    free(want);
    free(text);
    tok_vocab_free(v);
}

int main(void)
{
    RUN_TEST(test_merges);
    RUN_TEST(test_pretokenizers);
    RUN_TEST(test_bytes_and_decode);
    RUN_TEST(test_errors);
    RUN_TEST(test_threads);
    return TEST_EXIT();
}
