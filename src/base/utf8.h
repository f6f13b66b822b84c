// base/utf8.h: UTF-8 validation and code-point coding, strict per RFC 3629 (no overlongs, no
// surrogates, nothing above U+10FFFF). utf8_incomplete_tail serves streaming detokenization:
// a token may end in the middle of a character, and those bytes are held back until the next
// token completes them. All functions are pure and thread-safe.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Length of the sequence a lead byte announces (1..4), or 0 for a continuation byte or a byte
// that can never start a sequence (0x80-0xC1, 0xF5-0xFF).
int utf8_seq_len(uint8_t lead);

// True when s[0..n) is entirely valid UTF-8. If not and bad_off is non-NULL, the offset of the
// first byte of the first invalid sequence goes there.
bool utf8_valid(const char *s, size_t n, size_t *bad_off);

// Number of bytes (0..3) at the end of s[0..n) that are a valid but incomplete prefix of a
// sequence: emit s[0..n-k) now and keep the k bytes for later. Bytes that can never become
// valid are not counted (they are not held back forever).
size_t utf8_incomplete_tail(const char *s, size_t n);

// Decodes one code point from s[0..n): returns its byte length (1..4) and sets *cp, or returns
// 0 for an invalid or truncated sequence (or n == 0), *cp then U+FFFD.
int utf8_decode(const char *s, size_t n, uint32_t *cp);

// Encodes cp into out[0..4): returns the byte length, or 0 for a surrogate or cp > 0x10FFFF.
int utf8_encode(uint32_t cp, char out[4]);
