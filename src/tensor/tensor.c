// tensor/tensor.c: tensor descriptors: initialisation from a shape, binding to storage, and
// the pure shape helpers (element counts, byte spans, contiguity, broadcasting). Type geometry
// comes from the traits table (tensor/types.h).
#include "tensor/tensor.h"

#include <string.h>

static const char *const op_names[OP_COUNT] = {
#define X(name, str, view) [OP_##name] = str,
    TENSOR_OP_LIST(X)
#undef X
};
static const bool op_views[OP_COUNT] = {
#define X(name, str, view) [OP_##name] = view,
    TENSOR_OP_LIST(X)
#undef X
};

const char *tensor_op_name(enum tensor_op op)
{
    return (unsigned)op < OP_COUNT ? op_names[op] : "?";
}

bool tensor_op_is_view(enum tensor_op op)
{
    return (unsigned)op < OP_COUNT && op_views[op];
}

// Types without conversion traits (I8..I64, F64: positions, ids) still have a geometry.
int64_t tensor_type_blck(uint32_t type)
{
    const struct type_traits *tr = tensor_traits(type);
    int64_t blck;
    size_t bytes;
    if (tr) {
        return tr->blck;
    }
    return gguf_type_geometry(type, &blck, &bytes) ? blck : 0;
}

size_t tensor_type_size(uint32_t type)
{
    const struct type_traits *tr = tensor_traits(type);
    int64_t blck;
    size_t bytes;
    if (tr) {
        return tr->type_size;
    }
    return gguf_type_geometry(type, &blck, &bytes) ? bytes : 0;
}

const char *tensor_type_name(uint32_t type)
{
    const struct type_traits *tr = tensor_traits(type);
    return tr ? tr->name : gguf_type_name(type);
}

void tensor_set_name(struct tensor *t, const char *name)
{
    size_t n = name ? strnlen(name, TENSOR_NAME_MAX - 1) : 0;
    if (n) {
        memcpy(t->name, name, n);
    }
    t->name[n] = '\0';
}

enum llem_err tensor_init(struct tensor *t, uint32_t type, int n_dims, const int64_t *ne,
                          const char *name, struct llem_errbuf *eb)
{
    memset(t, 0, sizeof *t);
    t->id = -1;
    const char *nm = name ? name : "";
    const int64_t blck = tensor_type_blck(type);
    const size_t tsize = tensor_type_size(type);
    if (blck <= 0 || tsize == 0) {
        return llem_errf(eb, LLEM_EINVAL, "tensor '%s': unknown type %u", nm, type);
    }
    if (n_dims < 1 || n_dims > TENSOR_MAX_DIMS) {
        return llem_errf(eb, LLEM_EINVAL, "tensor '%s': %d dims", nm, n_dims);
    }
    int64_t d[TENSOR_MAX_DIMS] = {1, 1, 1, 1};
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] < 1) {
            return llem_errf(eb, LLEM_EINVAL, "tensor '%s': dim %d is %lld", nm, i,
                             (long long)ne[i]);
        }
        d[i] = ne[i];
    }
    if (d[0] % blck != 0) {
        return llem_errf(eb, LLEM_EINVAL, "tensor '%s': ne[0] %lld not a multiple of %s block %lld",
                         nm, (long long)d[0], tensor_type_name(type), (long long)blck);
    }
    size_t nb1;
    if (!size_mul_ok((size_t)(d[0] / blck), tsize, &nb1)) {
        return llem_errf(eb, LLEM_ELIMIT, "tensor '%s': row too large", nm);
    }
    size_t nb2, nb3, total;
    if (!size_mul_ok(nb1, (size_t)d[1], &nb2) || !size_mul_ok(nb2, (size_t)d[2], &nb3) ||
        !size_mul_ok(nb3, (size_t)d[3], &total) || total > (size_t)INT64_MAX) {
        return llem_errf(eb, LLEM_ELIMIT, "tensor '%s': size overflows", nm);
    }
    t->type = type;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) {
        t->ne[i] = d[i];
    }
    t->nb[0] = tsize;
    t->nb[1] = nb1;
    t->nb[2] = nb2;
    t->nb[3] = nb3;
    t->op = OP_NONE;
    tensor_set_name(t, nm);
    return LLEM_OK;
}

int64_t tensor_nelements(const struct tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

int64_t tensor_nrows(const struct tensor *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

size_t tensor_nbytes(const struct tensor *t)
{
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) {
        if (t->ne[i] <= 0) {
            return 0;
        }
    }
    int64_t blck = tensor_type_blck(t->type);
    if (blck <= 0) {
        return 0;
    }
    // Last byte reached plus one. Unblocked types may have dim 0 strided (transposed views);
    // blocked types always store dim 0 as whole consecutive blocks.
    size_t n;
    int i0;
    if (blck == 1) {
        n = tensor_type_size(t->type);
        i0 = 0;
    } else {
        n = (size_t)(t->ne[0] / blck) * t->nb[0];
        i0 = 1;
    }
    for (int i = i0; i < TENSOR_MAX_DIMS; i++) {
        n += (size_t)(t->ne[i] - 1) * t->nb[i];
    }
    return n;
}

bool tensor_is_contiguous(const struct tensor *t)
{
    int64_t blck = tensor_type_blck(t->type);
    if (blck <= 0 || t->nb[0] != tensor_type_size(t->type)) {
        return false;
    }
    size_t expect = t->nb[0] * (size_t)(t->ne[0] / blck);
    for (int i = 1; i < TENSOR_MAX_DIMS; i++) {
        if (t->ne[i] != 1 && t->nb[i] != expect) {
            return false;
        }
        expect *= (size_t)t->ne[i];
    }
    return true;
}

bool tensor_is_permuted(const struct tensor *t)
{
    return t->nb[0] > t->nb[1] || t->nb[1] > t->nb[2] || t->nb[2] > t->nb[3];
}

bool tensor_same_shape(const struct tensor *a, const struct tensor *b)
{
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) {
        if (a->ne[i] != b->ne[i]) {
            return false;
        }
    }
    return true;
}

bool tensor_can_repeat(const struct tensor *b, const struct tensor *a)
{
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) {
        if (b->ne[i] < 1 || a->ne[i] % b->ne[i] != 0) {
            return false;
        }
    }
    return true;
}

const struct tensor *tensor_storage_root(const struct tensor *t)
{
    while (t->view_src) {
        t = t->view_src;
    }
    return t;
}
