// base/align.c: the asserting align_up and the tensor memory estimator (see align.h).
#include "base/align.h"

size_t align_up(size_t n, size_t align)
{
    size_t out = 0;
    LLEM_ASSERT(align_up_ok(n, align, &out));
    return out;
}

enum llem_err align_row_bytes(int64_t block_elems, size_t block_bytes, int64_t ne0,
                              size_t *out, struct llem_errbuf *eb)
{
    if (block_elems <= 0 || block_bytes == 0 || ne0 <= 0) {
        return llem_errf(eb, LLEM_EINVAL, "tensor geometry: block %lld elems / %zu bytes, "
                         "ne0 %lld", (long long)block_elems, block_bytes, (long long)ne0);
    }
    if (ne0 % block_elems != 0) {
        return llem_errf(eb, LLEM_EINVAL, "row of %lld elements is not a multiple of the "
                         "block size %lld", (long long)ne0, (long long)block_elems);
    }
    size_t blocks = (size_t)(ne0 / block_elems);
    if ((uint64_t)(ne0 / block_elems) > SIZE_MAX || !size_mul_ok(blocks, block_bytes, out)) {
        return llem_errf(eb, LLEM_ELIMIT, "row of %lld elements overflows size_t",
                         (long long)ne0);
    }
    return LLEM_OK;
}

enum llem_err align_tensor_bytes(int64_t block_elems, size_t block_bytes, const int64_t ne[4],
                                 size_t align, size_t *out, struct llem_errbuf *eb)
{
    if (!align_is_pow2(align)) {
        return llem_errf(eb, LLEM_EINVAL, "alignment %zu is not a power of two", align);
    }
    size_t total;
    enum llem_err e = align_row_bytes(block_elems, block_bytes, ne[0], &total, eb);
    if (e != LLEM_OK) {
        return e;
    }
    for (int i = 1; i < 4; i++) {
        if (ne[i] <= 0) {
            return llem_errf(eb, LLEM_EINVAL, "tensor dimension %d is %lld (must be >= 1)", i,
                             (long long)ne[i]);
        }
        if ((uint64_t)ne[i] > SIZE_MAX || !size_mul_ok(total, (size_t)ne[i], &total)) {
            return llem_errf(eb, LLEM_ELIMIT, "tensor of shape [%lld, %lld, %lld, %lld] "
                             "overflows size_t", (long long)ne[0], (long long)ne[1],
                             (long long)ne[2], (long long)ne[3]);
        }
    }
    if (!align_up_ok(total, align, out)) {
        return llem_errf(eb, LLEM_ELIMIT, "tensor of %zu bytes overflows when aligned", total);
    }
    return LLEM_OK;
}
