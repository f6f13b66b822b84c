// tests/unit/tokenizer_spm.c: SentencePiece-style encoding on an in-memory vocab: score-based
// merging, byte fallback, dummy prefix, special tokens, BOS/EOS, streaming decode of split
// UTF-8, vocab validation errors and allocation-failure paths.
#include "check.h"
#include "base/alloc.h"
#include "tokenizer/tokenizer.h"

#define SP "\u2581" // the SentencePiece space

static char byte_names[256][8];
static const char *toks[300];
static float scores[300];
static int32_t types[300];
static uint32_t n_toks;

// ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then words.
static const char *const words[] = {SP, "h", "e", "l", "o", "w", "r", "d", "\u2581h", "he", "ll",
                                    "\u2581he", "llo", "\u2581hello", "\u2581w", "or", "\u2581wor", "ld",
                                    "\u2581world", "<|user|>", NULL};
enum { ID_HELLO = 259 + 13, ID_WORLD = 259 + 18, ID_SP = 259, ID_USER = 259 + 19 };

static void build_desc(struct tok_vocab_desc *d)
{
    n_toks = 0;
    toks[n_toks] = "<unk>", types[n_toks++] = 2;
    toks[n_toks] = "<s>", types[n_toks++] = 3;
    toks[n_toks] = "</s>", types[n_toks++] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(byte_names[b], sizeof byte_names[b], "<0x%02X>", b);
        toks[n_toks] = byte_names[b], types[n_toks++] = 6;
    }
    for (int i = 0; words[i]; i++) {
        scores[n_toks] = -(float)i; // earlier words are more likely
        toks[n_toks] = words[i];
        types[n_toks++] = strcmp(words[i], "<|user|>") == 0 ? 4 : 1;
    }
    tok_vocab_desc_init(d);
    d->model = "llama";
    d->tokens = toks;
    d->n_tokens = n_toks;
    d->scores = scores;
    d->token_types = types;
}

static struct tok_vocab *make_vocab(void)
{
    struct tok_vocab_desc d;
    build_desc(&d);
    struct tok_vocab *v = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_vocab_new(&v, &d, &eb), &eb);
    return v;
}

static size_t enc(const struct tok_vocab *v, const char *s, bool add, bool special,
                  llem_token *out)
{
    size_t n = 0;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_encode(v, s, strlen(s), add, special, out, 64, &n, &eb), &eb);
    return n;
}

static void test_merge_and_prefix(void)
{
    struct tok_vocab *v = make_vocab();
    llem_token ids[64];
    size_t n = enc(v, "hello world", false, false, ids);
    CHECK_EQ_I64(n, 2);
    CHECK_EQ_I64(ids[0], ID_HELLO);
    CHECK_EQ_I64(ids[1], ID_WORLD);
    // add_bos defaults to true for "llama"; the dummy prefix gives "▁hello"
    n = enc(v, "hello", true, false, ids);
    CHECK_EQ_I64(n, 2);
    CHECK_EQ_I64(ids[0], 1);
    CHECK_EQ_I64(ids[1], ID_HELLO);
    // two spaces: "▁" then "▁hello"
    n = enc(v, " hello", false, false, ids);
    CHECK_EQ_I64(n, 2);
    CHECK_EQ_I64(ids[0], ID_SP);
    CHECK_EQ_I64(ids[1], ID_HELLO);
    CHECK_EQ_I64(enc(v, "", true, false, ids), 1); // just BOS
    CHECK_EQ_I64(enc(v, "", false, false, ids), 0);
    tok_vocab_free(v);
}

static void test_byte_fallback(void)
{
    struct tok_vocab *v = make_vocab();
    llem_token ids[64];
    size_t n = enc(v, "h\xc3\xa9", false, false, ids); // "hé": é is not a token
    CHECK_EQ_I64(n, 3);
    CHECK_EQ_I64(ids[0], 259 + 8); // "▁h"
    CHECK_EQ_I64(ids[1], 3 + 0xC3);
    CHECK_EQ_I64(ids[2], 3 + 0xA9);
    // streaming: the first byte of é is held back until the second arrives
    struct tok_stream st;
    tok_stream_init(&st, v, false);
    char buf[64];
    size_t k = 0;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_stream_push(&st, ids[0], buf, sizeof buf, &k, &eb), &eb);
    CHECK_EQ_I64(k, 1); // "h": the dummy-prefix space is dropped
    CHECK_EQ_I64(buf[0], 'h');
    CHECK_OK(tok_stream_push(&st, ids[1], buf, sizeof buf, &k, &eb), &eb);
    CHECK_EQ_I64(k, 0);
    CHECK_OK(tok_stream_push(&st, ids[2], buf, sizeof buf, &k, &eb), &eb);
    CHECK_EQ_I64(k, 2);
    CHECK(memcmp(buf, "\xc3\xa9", 2) == 0);
    CHECK_EQ_I64(tok_stream_flush(&st, buf, sizeof buf), 0);
    // an incomplete character at the end comes out on flush
    tok_stream_init(&st, v, false);
    CHECK_OK(tok_stream_push(&st, 3 + 0xE2, buf, sizeof buf, &k, &eb), &eb);
    CHECK_EQ_I64(k, 0);
    CHECK_EQ_I64(tok_stream_flush(&st, buf, sizeof buf), 1);
    // too small a buffer is an error and leaves the stream as it was
    tok_stream_init(&st, v, false);
    CHECK_EQ_I64(tok_stream_push(&st, ID_HELLO, buf, 2, &k, &eb), LLEM_ELIMIT);
    CHECK_EQ_I64(tok_stream_push(&st, 99999, buf, sizeof buf, &k, &eb), LLEM_EINVAL);
    CHECK_OK(tok_stream_push(&st, ID_HELLO, buf, sizeof buf, &k, &eb), &eb);
    CHECK_EQ_I64(k, 5);
    tok_vocab_free(v);
}

static void test_special(void)
{
    struct tok_vocab *v = make_vocab();
    llem_token ids[64];
    // control tokens only with parse_special
    size_t n = enc(v, "<s>hello", false, true, ids);
    CHECK_EQ_I64(n, 2);
    CHECK_EQ_I64(ids[0], 1);
    CHECK_EQ_I64(ids[1], ID_HELLO); // a dummy prefix after a special token
    n = enc(v, "<s>", false, false, ids);
    CHECK(n > 1); // spelled out as text
    // user-defined tokens are always split out
    n = enc(v, "hello<|user|>world", false, false, ids);
    CHECK_EQ_I64(n, 3);
    CHECK_EQ_I64(ids[0], ID_HELLO);
    CHECK_EQ_I64(ids[1], ID_USER);
    CHECK_EQ_I64(ids[2], ID_WORLD); // a dummy prefix again after a special token
    char buf[32];
    CHECK_EQ_I64(tok_piece(v, 1, false, buf, sizeof buf), 0);
    CHECK_EQ_I64(tok_piece(v, 1, true, buf, sizeof buf), 3);
    CHECK_EQ_I64(tok_piece(v, ID_HELLO, false, buf, sizeof buf), 6);
    CHECK(memcmp(buf, " hello", 6) == 0);
    CHECK_EQ_I64(tok_piece(v, 3 + 'A', false, buf, sizeof buf), 1);
    CHECK_EQ_I64(buf[0], 'A');
    CHECK(tok_is_eog(v, 2));
    CHECK(!tok_is_eog(v, 1));
    CHECK_EQ_I64(tok_bos(v), 1);
    CHECK_EQ_I64(tok_eos(v), 2);
    CHECK_EQ_I64(tok_special_id(v, TOK_SPECIAL_UNK), 0);
    CHECK_EQ_I64(tok_special_id(v, TOK_SPECIAL_PAD), -1);
    CHECK_EQ_I64(tok_find(v, "\u2581hello", 8), ID_HELLO);
    tok_vocab_free(v);
}

static void test_limit(void)
{
    struct tok_vocab *v = make_vocab();
    llem_token ids[2];
    size_t n = 0;
    struct llem_errbuf eb = {0};
    CHECK_EQ_I64(tok_encode(v, "hello world", 11, true, false, ids, 2, &n, &eb), LLEM_ELIMIT);
    CHECK_EQ_I64(n, 3);
    CHECK_EQ_I64(tok_encode(v, "hello world", 11, true, false, NULL, 0, &n, &eb), LLEM_ELIMIT);
    CHECK_EQ_I64(n, 3);
    tok_vocab_free(v);
}

static void test_validation(void)
{
    struct tok_vocab_desc d;
    struct tok_vocab *v = NULL;
    struct llem_errbuf eb = {0};
    build_desc(&d);
    d.model = "t5";
    CHECK_EQ_I64(tok_vocab_new(&v, &d, &eb), LLEM_EUNSUPPORTED);
    CHECK(v == NULL);
    build_desc(&d);
    d.special[TOK_SPECIAL_BOS] = 100000;
    CHECK_EQ_I64(tok_vocab_new(&v, &d, &eb), LLEM_EFORMAT);
    CHECK(strstr(eb.msg, "bos") != NULL);
    build_desc(&d);
    d.special[TOK_SPECIAL_PAD] = 100000; // ignored with a warning, as real files carry these
    CHECK_OK(tok_vocab_new(&v, &d, &eb), &eb);
    CHECK_EQ_I64(tok_special_id(v, TOK_SPECIAL_PAD), -1);
    tok_vocab_free(v);
    build_desc(&d);
    types[5] = 9;
    CHECK_EQ_I64(tok_vocab_new(&v, &d, &eb), LLEM_EFORMAT);
    CHECK(strstr(eb.msg, "token_type[5]") != NULL);
    build_desc(&d);
    toks[n_toks - 1] = "h"; // duplicate text
    CHECK_EQ_I64(tok_vocab_new(&v, &d, &eb), LLEM_EFORMAT);
    CHECK(strstr(eb.msg, "duplicate") != NULL);
    build_desc(&d);
    d.n_tokens = 0;
    CHECK_EQ_I64(tok_vocab_new(&v, &d, &eb), LLEM_EFORMAT);
}

// Every allocation failure while building or encoding is reported as ENOMEM, never a crash or
// a leak (ASan checks the latter).
static void test_alloc_failures(void)
{
    struct tok_vocab_desc d;
    build_desc(&d);
    int fired_runs = 0;
    for (uint64_t k = 1; k < 100000; k++) {
        struct tok_vocab *v = NULL;
        struct llem_errbuf eb = {0};
        llem_alloc_fail_at(k, 0);
        enum llem_err e = tok_vocab_new(&v, &d, &eb);
        llem_token ids[64];
        size_t n = 0;
        if (e == LLEM_OK) {
            const char *s = "hello w\xc3\xa9rld <|user|>";
            e = tok_encode(v, s, strlen(s), true, true, ids, 64, &n, &eb);
        }
        int fired = llem_alloc_fail_fired();
        llem_alloc_fail_at(0, 0);
        tok_vocab_free(v);
        if (!fired) {
            CHECK_EQ_I64(e, LLEM_OK);
            break;
        }
        fired_runs++;
        CHECK(e == LLEM_OK || e == LLEM_ENOMEM);
    }
    CHECK(fired_runs > 5);
}

int main(void)
{
    RUN_TEST(test_merge_and_prefix);
    RUN_TEST(test_byte_fallback);
    RUN_TEST(test_special);
    RUN_TEST(test_limit);
    RUN_TEST(test_validation);
    RUN_TEST(test_alloc_failures);
    return TEST_EXIT();
}
