// tests/unit/tokenizer_wpm.c: WordPiece ("bert") on an in-memory vocab: lowercasing, accent
// stripping (first code point of NFD), punctuation as separate words, "▁" word starts with
// bare continuations, [UNK] for unmatchable words, [CLS]/[SEP] with add_special.
#include "check.h"
#include "tokenizer/tokenizer.h"


static const char *const toks[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\u2581hello",
                                   "\u2581world", "\u2581,", "\u2581!", "\u2581un", "aff", "able", "\u2581cafe",
                                   "\u2581\xe4\xbd\xa0", "\u2581\xe5\xa5\xbd"};
static const int32_t types[] = {3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

static struct tok_vocab *make(void)
{
    struct tok_vocab_desc d;
    tok_vocab_desc_init(&d);
    d.model = "bert";
    d.tokens = toks;
    d.n_tokens = sizeof toks / sizeof *toks;
    d.token_types = types;
    d.special[TOK_SPECIAL_UNK] = 1;
    d.special[TOK_SPECIAL_BOS] = 2;
    d.special[TOK_SPECIAL_SEP] = 3;
    d.special[TOK_SPECIAL_PAD] = 0;
    d.special[TOK_SPECIAL_MASK] = 4;
    struct tok_vocab *v = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_vocab_new(&v, &d, &eb), &eb);
    return v;
}

static size_t enc(const struct tok_vocab *v, const char *s, bool add, llem_token *out)
{
    size_t n = 0;
    struct llem_errbuf eb = {0};
    CHECK_OK(tok_encode(v, s, strlen(s), add, false, out, 64, &n, &eb), &eb);
    return n;
}

static void test_words(void)
{
    struct tok_vocab *v = make();
    llem_token ids[64];
    size_t n = enc(v, "Hello, WORLD!", false, ids);
    CHECK_EQ_I64(n, 4);
    CHECK_EQ_I64(ids[0], 5);
    CHECK_EQ_I64(ids[1], 7);
    CHECK_EQ_I64(ids[2], 6);
    CHECK_EQ_I64(ids[3], 8);
    n = enc(v, "  unaffable\t", false, ids); // continuations without "##" in GGUF vocabs
    CHECK_EQ_I64(n, 3);
    CHECK_EQ_I64(ids[0], 9);
    CHECK_EQ_I64(ids[1], 10);
    CHECK_EQ_I64(ids[2], 11);
    n = enc(v, "Caf\xc3\xa9 xyz", true, ids); // accent stripped; unknown word -> [UNK]
    CHECK_EQ_I64(n, 4);
    CHECK_EQ_I64(ids[0], 2);
    CHECK_EQ_I64(ids[1], 12);
    CHECK_EQ_I64(ids[2], 1);
    CHECK_EQ_I64(ids[3], 3);
    n = enc(v, "\xe4\xbd\xa0\xe5\xa5\xbd", false, ids); // CJK characters are words alone
    CHECK_EQ_I64(n, 2);
    CHECK_EQ_I64(ids[0], 13);
    CHECK_EQ_I64(ids[1], 14);
    CHECK_EQ_I64(enc(v, "", true, ids), 2);
    char buf[16];
    CHECK_EQ_I64(tok_piece(v, 5, false, buf, sizeof buf), 6);
    CHECK(memcmp(buf, " hello", 6) == 0);
    tok_vocab_free(v);
}

int main(void)
{
    RUN_TEST(test_words);
    return TEST_EXIT();
}
