// kvcache/kvcache_int.h: private to kvcache/: the AVX2 mask-row expanders (kv_cells_avx2.c)
// that kv_cells.c picks at init when the CPU has AVX2. Each writes n mask elements from a
// bitmap: element j is 0 (attend) when bit j of bits[j / 64] is set and -inf otherwise.
#pragma once
#include <stdint.h>

void kv_mask_expand_f32_avx2(uint32_t *dst, const uint64_t *bits, int32_t n);
void kv_mask_expand_f16_avx2(uint16_t *dst, const uint64_t *bits, int32_t n);
