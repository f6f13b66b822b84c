// base/utf8.c: strict UTF-8 coding (see utf8.h). The second-byte ranges of RFC 3629 table 3-7
// reject overlongs and surrogates without decoding.
#include "base/utf8.h"

int utf8_seq_len(uint8_t c)
{
    if (c < 0x80) {
        return 1;
    }
    if (c < 0xC2) {
        return 0;
    }
    if (c < 0xE0) {
        return 2;
    }
    if (c < 0xF0) {
        return 3;
    }
    if (c < 0xF5) {
        return 4;
    }
    return 0;
}

// Allowed range of the byte after lead c (the others are always 0x80..0xBF).
static void second_range(uint8_t c, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c == 0xE0) {
        *lo = 0xA0; // no overlong 3-byte forms
    } else if (c == 0xED) {
        *hi = 0x9F; // no surrogates
    } else if (c == 0xF0) {
        *lo = 0x90; // no overlong 4-byte forms
    } else if (c == 0xF4) {
        *hi = 0x8F; // nothing above U+10FFFF
    }
}

// How many bytes of s[0..n) (n >= 1) form a valid prefix of the sequence starting at s[0]:
// returns len if complete, 0 < k < len if a valid but truncated prefix, -1 if invalid.
static int prefix_state(const uint8_t *s, size_t n, int *len_out)
{
    int len = utf8_seq_len(s[0]);
    *len_out = len;
    if (len == 0) {
        return -1;
    }
    uint8_t lo, hi;
    second_range(s[0], &lo, &hi);
    int i = 1;
    for (; i < len && (size_t)i < n; i++) {
        uint8_t b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) {
            return -1;
        }
    }
    return i;
}

bool utf8_valid(const char *str, size_t n, size_t *bad_off)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { // ASCII run: the common case
            i++;
            continue;
        }
        int len;
        int k = prefix_state(s + i, n - i, &len);
        if (k != len) {
            if (bad_off) {
                *bad_off = i;
            }
            return false;
        }
        i += (size_t)len;
    }
    return true;
}

size_t utf8_incomplete_tail(const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    // The lead byte of an incomplete sequence is at most 3 bytes from the end.
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        uint8_t c = s[n - back];
        if ((c & 0xC0) == 0x80) {
            continue; // continuation byte: keep looking for the lead
        }
        int len;
        int k = prefix_state(s + n - back, back, &len);
        return (k > 0 && k < len && (size_t)k == back) ? back : 0;
    }
    return 0;
}

int utf8_decode(const char *str, size_t n, uint32_t *cp)
{
    const uint8_t *s = (const uint8_t *)str;
    *cp = 0xFFFD;
    if (n == 0) {
        return 0;
    }
    int len;
    if (prefix_state(s, n, &len) != len || len == 0) {
        return 0;
    }
    uint32_t v;
    switch (len) {
    case 1:
        v = s[0];
        break;
    case 2:
        v = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3Fu);
        break;
    case 3:
        v = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3Fu);
        break;
    default:
        v = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
            ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3Fu);
        break;
    }
    *cp = v;
    return len;
}

int utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) {
        return 0;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}
