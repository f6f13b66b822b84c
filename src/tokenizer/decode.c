// tokenizer/decode.c: token ids -> text. Every token's piece is rendered once at load
// (tok_pieces_build) the way llama.cpp's token_to_piece does, so tok_piece is a copy and the
// streaming decoder (tok_stream_*) does no allocation; the stream holds back a piece that ends
// inside a UTF-8 character until the next one completes it.
#include <string.h>

#include "base/alloc.h"
#include "base/utf8.h"
#include "tokenizer/tokenizer_int.h"

#define TYPE_BITS (TOK_ATTR_NORMAL | TOK_ATTR_UNKNOWN | TOK_ATTR_UNUSED | TOK_ATTR_CONTROL | \
                   TOK_ATTR_USER_DEFINED | TOK_ATTR_BYTE)

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

struct pbuf {
    char *data;
    size_t n, cap;
};

// Makes room for n more bytes.
static bool pb_reserve(struct pbuf *b, size_t n)
{
    if (b->n + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->n + n) {
            ncap *= 2;
        }
        char *nd = llem_realloc(b->data, ncap);
        if (!nd) {
            return false;
        }
        b->data = nd;
        b->cap = ncap;
    }
    return true;
}

static bool pb_put(struct pbuf *b, const void *s, size_t n)
{
    if (!pb_reserve(b, n)) {
        return false;
    }
    if (n) {
        memcpy(b->data + b->n, s, n);
    }
    b->n += n;
    return true;
}

// Byte-level BPE: every code point of the token text maps back to one byte; a code point
// outside the GPT-2 alphabet is shown as upstream shows it ("[UNK_BYTE_0x..<text>]").
static bool bpe_decode_text(struct pbuf *b, const char *t, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    // every code point that maps to a byte consumes at least one byte of text: room for n
    // bytes lets the common case store directly
    if (!pb_reserve(b, n)) {
        return false;
    }
    for (size_t off = 0; off < n;) {
        size_t start = off;
        uint32_t cp = tok_utf8_next(t, n, &off);
        int byte = tok_cp_to_byte(cp);
        if (byte >= 0) {
            b->data[b->n++] = (char)byte;
            continue;
        }
        char u[4];
        int ul = utf8_encode(cp, u);
        if (ul == 0) { // a surrogate decoded leniently: show the original bytes
            ul = (int)(off - start);
            memcpy(u, t + start, (size_t)ul);
        }
        if (!pb_put(b, "[UNK_BYTE_0x", 12)) {
            return false;
        }
        for (int i = 0; i < ul; i++) {
            char h[2] = {hex[(uint8_t)u[i] >> 4], hex[(uint8_t)u[i] & 15]};
            if (!pb_put(b, h, 2)) {
                return false;
            }
        }
        if (!pb_put(b, t, n) || !pb_put(b, "]", 1) || !pb_reserve(b, n - off)) {
            return false;
        }
    }
    return true;
}

static bool render(const struct tok_vocab *v, int32_t id, struct pbuf *b)
{
    const char *t = v->blob + v->text_off[id];
    size_t n = v->text_len[id];
    uint16_t a = v->attr[id] & TYPE_BITS;
    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        return pb_put(b, t, n);
    }
    if (v->model == TOK_MODEL_BPE) {
        return (a & TOK_ATTR_NORMAL) ? bpe_decode_text(b, t, n) : true;
    }
    if (a & TOK_ATTR_NORMAL) { // "▁" (U+2581) is a space; the piece is never longer
        if (!pb_reserve(b, n)) {
            return false;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(t + i, "\xe2\x96\x81", 3) == 0) {
                b->data[b->n++] = ' ';
                i += 3;
            } else {
                b->data[b->n++] = t[i++];
            }
        }
        return true;
    }
    if (a & TOK_ATTR_BYTE) {
        if (n == 6 && memcmp(t, "<0x", 3) == 0 && t[5] == '>' && hexval(t[3]) >= 0 &&
            hexval(t[4]) >= 0) {
            uint8_t c = (uint8_t)(hexval(t[3]) * 16 + hexval(t[4]));
            return pb_put(b, &c, 1);
        }
        return pb_put(b, t, n); // a byte token not spelled <0xNN>: show it as is
    }
    return true; // unused / undefined tokens render as nothing
}

enum llem_err tok_pieces_build(struct tok_vocab *v)
{
    struct pbuf b = {0};
    v->piece_off = llem_malloc((size_t)v->n_vocab * sizeof *v->piece_off);
    v->piece_len = llem_malloc((size_t)v->n_vocab * sizeof *v->piece_len);
    if (!v->piece_off || !v->piece_len) {
        return LLEM_ENOMEM;
    }
    v->piece_max = 0;
    for (int32_t id = 0; id < v->n_vocab; id++) {
        size_t start = b.n;
        if (!render(v, id, &b) || b.n > UINT32_MAX) {
            llem_free(b.data);
            return LLEM_ENOMEM;
        }
        v->piece_off[id] = (uint32_t)start;
        v->piece_len[id] = (uint32_t)(b.n - start);
        if (b.n - start > v->piece_max) {
            v->piece_max = b.n - start;
        }
    }
    v->piece_blob = b.data ? b.data : llem_malloc(1);
    return v->piece_blob ? LLEM_OK : LLEM_ENOMEM;
}

size_t tok_piece(const struct tok_vocab *v, llem_token id, bool special, char *buf, size_t cap)
{
    if (id < 0 || id >= v->n_vocab) {
        return 0;
    }
    if (!special && (v->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) {
        return 0;
    }
    size_t n = v->piece_len[id];
    memcpy(buf, v->piece_blob + v->piece_off[id], n < cap ? n : cap);
    return n;
}

void tok_stream_init(struct tok_stream *s, const struct tok_vocab *v, bool special)
{
    memset(s, 0, sizeof *s);
    s->v = v;
    s->special = special;
    s->strip_space = v->add_space_prefix;
}

enum llem_err tok_stream_push(struct tok_stream *s, llem_token id, char *out, size_t cap,
                              size_t *n_out, struct llem_errbuf *eb)
{
    *n_out = 0;
    if (id < 0 || id >= s->v->n_vocab) {
        return llem_errf(eb, LLEM_EINVAL, "token id %d out of range (n_vocab %d)", id,
                         s->v->n_vocab);
    }
    if (cap < s->n_held) {
        return llem_errf(eb, LLEM_ELIMIT, "detokenize: output buffer too small");
    }
    size_t n = tok_piece(s->v, id, s->special, out + s->n_held, cap - s->n_held);
    if (n > cap - s->n_held) {
        return llem_errf(eb, LLEM_ELIMIT, "detokenize: output buffer too small (%zu bytes)",
                         cap);
    }
    memcpy(out, s->held, s->n_held);
    char *piece = out + s->n_held;
    if (n && s->strip_space) {
        // the dummy prefix space before the first word is not part of the text
        if (piece[0] == ' ') {
            memmove(piece, piece + 1, n - 1);
            n--;
        }
        s->strip_space = false;
    }
    size_t total = s->n_held + n;
    size_t keep = utf8_incomplete_tail(out, total);
    memcpy(s->held, out + total - keep, keep);
    s->n_held = keep;
    *n_out = total - keep;
    return LLEM_OK;
}

size_t tok_stream_flush(struct tok_stream *s, char *out, size_t cap)
{
    size_t n = s->n_held <= cap ? s->n_held : 0;
    memcpy(out, s->held, n);
    s->n_held -= n;
    return n;
}
