// tests/robust/gguf_reader.c: the GGUF reader against hostile input: every strict prefix of
// a valid file (memory, mmap and pread paths), >= 10,000 seeded random corruptions (byte
// flips, huge counts and lengths, overflowing offsets, bad type ids, overlapping tensors),
// and allocation-failure injection over the reader and the writer. Every case must end in a
// clean error or a valid parse whose every byte is readable; ASan/LSan catch the rest.
#include <sys/stat.h>

#include "check.h"
#include "unit/gguf_sample.h"

// Copies the image into an exact-size heap block, so ASan sees any read past its end.
static enum llem_err open_exact(const uint8_t *img, size_t n, struct gguf_file **f,
                                struct llem_errbuf *eb)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, img, n);
    enum llem_err rc = gguf_open_memory(f, copy, n, eb);
    if (rc == LLEM_OK) { // walk everything the API hands out
        uint64_t sum = 0;
        for (int64_t i = 0; i < gguf_n_kv(*f); i++) {
            sum += strlen(gguf_kv_key(*f, i));
            const struct gguf_value *v = gguf_kv_value(*f, i);
            if (v->type == GGUF_VALUE_STRING) {
                sum += strlen(v->str);
            }
        }
        for (int64_t i = 0; i < gguf_n_tensors(*f); i++) {
            const struct gguf_tensor_info *t = gguf_tensor(*f, i);
            const uint8_t *d = gguf_tensor_data(*f, i);
            for (uint64_t k = 0; k < t->n_bytes; k++) {
                sum += d[k];
            }
        }
        (void)sum;
        gguf_close(*f);
        *f = NULL;
    }
    free(copy);
    return rc;
}

static void test_prefixes(void)
{
    size_t n = 0;
    uint8_t *img = sample_bytes(&n);
    CHECK(img != NULL && n > 1000);
    if (!img) {
        return;
    }
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(open_exact(img, n, &f, &eb), &eb);
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        eb.msg[0] = '\0';
        enum llem_err rc = open_exact(img, len, &f, &eb);
        if (!(rc == LLEM_EFORMAT || rc == LLEM_ELIMIT) || !eb.msg[0]) {
            if (bad++ < 5) {
                fprintf(stderr, "  prefix %zu: %s '%s'\n", len, llem_err_name(rc), eb.msg);
            }
        }
    }
    CHECK_EQ_I64(bad, 0);
    // the same through the file paths (mmap, pread, metadata only): truncate one file down
    char path[256];
    sample_path(path, sizeof path, "prefix");
    CHECK_OK(fs_write_atomic(path, img, n, &eb), &eb);
    const struct gguf_open_opts modes[3] = {{0}, {.no_mmap = true}, {.metadata_only = true}};
    bad = 0;
    for (size_t len = n; len-- > 0;) {
        CHECK(truncate(path, (off_t)len) == 0);
        for (int m = 0; m < 3; m++) {
            enum llem_err rc = gguf_open(&f, path, &modes[m], &eb);
            // metadata_only does not look at tensor bytes: a cut inside the data still fails
            // (ranges are checked against the file size) - every mode must refuse.
            if (rc != LLEM_EFORMAT && rc != LLEM_ELIMIT) {
                if (bad++ < 5) {
                    fprintf(stderr, "  file prefix %zu mode %d: %s '%s'\n", len, m,
                            llem_err_name(rc), eb.msg);
                }
            }
            gguf_close(f);
            f = NULL;
        }
    }
    CHECK_EQ_I64(bad, 0);
    unlink(path);
    free(img);
}

// ---- random corruptions ---------------------------------------------------------------------

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) // xorshift64*
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

struct field_pos {
    size_t type_pos, off_pos, ne_pos;
    uint32_t n_dims;
};

// Positions of each tensor's n_dims/ne, type and offset fields in the sample image.
static size_t find_fields(const uint8_t *img, size_t n, struct field_pos *fp)
{
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    if (gguf_open_memory(&f, img, n, &eb) != LLEM_OK) {
        return 0;
    }
    size_t k = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f) && k < 8; i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        size_t len = strlen(t->name);
        for (size_t p = 8; p + len < n; p++) {
            uint64_t l;
            memcpy(&l, img + p - 8, 8);
            if (l == len && memcmp(img + p, t->name, len) == 0) {
                fp[k].n_dims = t->n_dims;
                fp[k].ne_pos = p + len + 4;
                fp[k].type_pos = fp[k].ne_pos + 8 * t->n_dims;
                fp[k].off_pos = fp[k].type_pos + 4;
                k++;
                break;
            }
        }
    }
    gguf_close(f);
    return k;
}

static const uint64_t huge[] = {UINT64_MAX,
                                UINT64_MAX - 31,
                                1ull << 63,
                                (1ull << 63) - 1,
                                1ull << 32,
                                1ull << 40,
                                1ull << 24,
                                (1ull << 24) + 1,
                                0,
                                1,
                                0xffffffffull,
                                65536,
                                65537};

static void mutate(uint8_t *m, size_t n, size_t hdr, const struct field_pos *fp, size_t nf)
{
    int kind = (int)(rnd() % 10);
    size_t range = rnd() % 8 ? hdr : n; // mostly inside the header
    size_t pos = (size_t)(rnd() % range);
    switch (kind) {
    case 0:
    case 1: { // a few random bytes
        int k = 1 + (int)(rnd() % 4);
        for (int i = 0; i < k; i++) {
            size_t at = (size_t)((pos + rnd() % 16) % n);
            m[at] = (uint8_t)rnd();
        }
        break;
    }
    case 2: // one bit
        m[pos] ^= (uint8_t)(1u << (rnd() % 8));
        break;
    case 3: { // a huge or edge count/length anywhere in the header
        uint64_t v = huge[rnd() % (sizeof huge / sizeof huge[0])];
        if (pos + 8 <= n) {
            memcpy(m + pos, &v, 8);
        }
        break;
    }
    case 4: { // a small type id (value or tensor type) at a random place
        uint32_t v = (uint32_t)(rnd() % 48);
        if (pos + 4 <= n) {
            memcpy(m + pos, &v, 4);
        }
        break;
    }
    case 5: { // a tensor's type field
        if (nf) {
            const struct field_pos *f = &fp[rnd() % nf];
            uint32_t v = rnd() % 4 ? (uint32_t)(rnd() % 48) : (uint32_t)rnd();
            memcpy(m + f->type_pos, &v, 4);
        }
        break;
    }
    case 6: { // a tensor's offset: another tensor's (overlap), misaligned, or overflowing
        if (nf) {
            const struct field_pos *f = &fp[rnd() % nf], *g = &fp[rnd() % nf];
            uint64_t v;
            switch (rnd() % 4) {
            case 0: memcpy(&v, m + g->off_pos, 8); break;
            case 1:
                memcpy(&v, m + g->off_pos, 8);
                v += 32 * (rnd() % 4);
                break;
            case 2: v = rnd() % 4096; break;
            default: v = huge[rnd() % (sizeof huge / sizeof huge[0])]; break;
            }
            memcpy(m + f->off_pos, &v, 8);
        }
        break;
    }
    case 7: { // a tensor's dimension: zero, negative, huge, off by a block
        if (nf) {
            const struct field_pos *f = &fp[rnd() % nf];
            static const int64_t dims[] = {0,  -1, -32, INT64_MAX, INT64_MIN, 1ll << 40,
                                           16, 31, 33,  1ll << 26, 256,       512};
            int64_t v = dims[rnd() % (sizeof dims / sizeof dims[0])];
            memcpy(m + f->ne_pos + 8 * (rnd() % f->n_dims), &v, 8);
        }
        break;
    }
    case 8: { // copy a run of header bytes elsewhere (duplicate names/keys, shifted fields)
        size_t src = (size_t)(rnd() % hdr), len = 1 + (size_t)(rnd() % 64);
        if (src + len <= n && pos + len <= n) {
            memmove(m + pos, m + src, len);
        }
        break;
    }
    default: { // n_dims of a tensor
        if (nf) {
            const struct field_pos *f = &fp[rnd() % nf];
            uint32_t v = (uint32_t)(rnd() % 7);
            memcpy(m + f->ne_pos - 4, &v, 4);
        }
        break;
    }
    }
}

static void test_corruptions(void)
{
    size_t n = 0;
    uint8_t *img = sample_bytes(&n);
    if (!img) {
        CHECK(0);
        return;
    }
    struct field_pos fp[8];
    size_t nf = find_fields(img, n, fp);
    CHECK_EQ_I64(nf, SAMPLE_N_TENSORS);
    struct gguf_file *f = NULL;
    struct llem_errbuf eb = {0};
    CHECK_OK(gguf_open_memory(&f, img, n, &eb), &eb);
    size_t hdr = f ? (size_t)gguf_data_offset(f) : n;
    gguf_close(f);
    uint8_t *m = malloc(n);
    int counts[LLEM_ETIMEDOUT + 1] = {0};
    int bad = 0;
    const int iters = 12000;
    for (int it = 0; it < iters; it++) {
        memcpy(m, img, n);
        int n_mut = 1 + (int)(rnd() % 3);
        for (int k = 0; k < n_mut; k++) {
            mutate(m, n, hdr, fp, nf);
        }
        size_t len = rnd() % 16 ? n : (size_t)(rnd() % n); // some also truncated
        eb.msg[0] = '\0';
        enum llem_err rc = open_exact(m, len, &f, &eb);
        counts[rc <= LLEM_ETIMEDOUT ? rc : 0]++;
        if (rc != LLEM_OK && rc != LLEM_EFORMAT && rc != LLEM_ELIMIT) {
            bad++;
        }
        if (rc != LLEM_OK && !eb.msg[0]) {
            bad++;
        }
    }
    CHECK_EQ_I64(bad, 0);
    fprintf(stderr, "      %d corruptions: %d parsed, %d EFORMAT, %d ELIMIT\n", iters,
            counts[LLEM_OK], counts[LLEM_EFORMAT], counts[LLEM_ELIMIT]);
    CHECK(counts[LLEM_EFORMAT] > iters / 4); // the mutations do reach the checks
    free(m);
    free(img);
}

// ---- allocation failures --------------------------------------------------------------------

// Runs `op` with the k-th allocation failing, k = 1, 2, ... until op no longer reaches
// allocation k; every failing run must return LLEM_ENOMEM (LSan checks the leaks at exit).
static int inject(const char *what, enum llem_err (*op)(void *), void *arg, int sticky)
{
    int runs = 0;
    for (uint64_t k = 1; k < 100000; k++) {
        llem_alloc_fail_at(k, sticky);
        enum llem_err rc = op(arg);
        int fired = llem_alloc_fail_fired();
        llem_alloc_fail_at(0, 0);
        if (!fired) {
            CHECK_EQ_I64(rc, LLEM_OK);
            break;
        }
        if (rc != LLEM_ENOMEM) {
            fprintf(stderr, "  %s: allocation %llu failed -> %s\n", what, (unsigned long long)k,
                    llem_err_name(rc));
            CHECK_EQ_I64(rc, LLEM_ENOMEM);
        }
        runs++;
    }
    return runs;
}

struct mem_arg {
    const uint8_t *img;
    size_t n;
};

static enum llem_err op_open_memory(void *arg)
{
    struct mem_arg *a = arg;
    struct gguf_file *f = NULL;
    struct llem_errbuf eb;
    enum llem_err rc = gguf_open_memory(&f, a->img, a->n, &eb);
    gguf_close(f);
    return rc;
}

struct path_arg {
    const char *path;
    struct gguf_open_opts opts;
};

static enum llem_err op_open_path(void *arg)
{
    struct path_arg *a = arg;
    struct gguf_file *f = NULL;
    struct llem_errbuf eb;
    enum llem_err rc = gguf_open(&f, a->path, &a->opts, &eb);
    gguf_close(f);
    return rc;
}

static enum llem_err op_write(void *arg)
{
    const char *path = arg;
    struct gguf_writer *w = gguf_writer_new();
    if (!w) {
        return LLEM_ENOMEM;
    }
    enum llem_err rc = sample_build(w) ? LLEM_ENOMEM : LLEM_OK;
    struct llem_errbuf eb;
    if (rc == LLEM_OK) {
        rc = gguf_writer_write(w, path, &eb);
    }
    gguf_writer_free(w);
    struct stat st;
    if (rc != LLEM_OK && stat(path, &st) == 0) {
        return LLEM_EINTERNAL; // a failed write left a file behind
    }
    unlink(path);
    return rc;
}

static void test_alloc_failures(void)
{
    size_t n = 0;
    uint8_t *img = sample_bytes(&n);
    if (!img) {
        CHECK(0);
        return;
    }
    struct mem_arg ma = {img, n};
    int runs = inject("open_memory", op_open_memory, &ma, 0);
    runs += inject("open_memory sticky", op_open_memory, &ma, 1);
    char path[256];
    sample_path(path, sizeof path, "oom");
    struct llem_errbuf eb;
    CHECK_OK(fs_write_atomic(path, img, n, &eb), &eb);
    struct path_arg pa = {path, {0}};
    runs += inject("open mmap", op_open_path, &pa, 0);
    pa.opts.no_mmap = true;
    runs += inject("open pread", op_open_path, &pa, 0);
    pa.opts = (struct gguf_open_opts){.metadata_only = true};
    runs += inject("open metadata", op_open_path, &pa, 0);
    unlink(path);
    // metadata spanning several arena chunks (a 20k-token vocabulary, a 100 KB string), so
    // allocations in the middle of the key/value parse fail too, not just the first ones
    struct gguf_writer *w = gguf_writer_new();
    static char tok_store[20000][12];
    static const char *toks[20000];
    for (int i = 0; i < 20000; i++) {
        snprintf(tok_store[i], sizeof tok_store[i], "t%d", i);
        toks[i] = tok_store[i];
    }
    static char big[100000];
    memset(big, 'x', sizeof big - 1);
    CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 20000), &eb);
    CHECK_OK(gguf_writer_set_str(w, "tokenizer.chat_template", big), &eb);
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VALUE_UINT8, big, 20000),
             &eb);
    CHECK_OK(gguf_writer_write(w, path, &eb), &eb);
    gguf_writer_free(w);
    pa.path = path;
    pa.opts = (struct gguf_open_opts){0};
    int big_runs = inject("open big metadata", op_open_path, &pa, 0);
    CHECK(big_runs > 5);
    runs += big_runs;
    unlink(path);
    char shared[1024];
    const char *root = getenv("LLEM_SHARED") ? getenv("LLEM_SHARED") : "../shared";
    snprintf(shared, sizeof shared, "%s/models/stories260K.gguf", root);
    if (access(shared, R_OK) == 0) { // a real vocabulary: many more allocations
        pa.path = shared;
        pa.opts = (struct gguf_open_opts){0};
        runs += inject("open stories260K", op_open_path, &pa, 0);
    } else {
        fprintf(stderr, "      skip stories260K (absent)\n");
    }
    char wpath[256];
    sample_path(wpath, sizeof wpath, "oomw");
    runs += inject("writer", op_write, wpath, 0);
    fprintf(stderr, "      %d failing allocations injected\n", runs);
    CHECK(runs > 20);
    free(img);
}

int main(void)
{
    RUN_TEST(test_prefixes);
    RUN_TEST(test_corruptions);
    RUN_TEST(test_alloc_failures);
    return TEST_EXIT();
}
