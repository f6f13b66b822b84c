// tests/unit/kvcache_cells.c: the cache scenarios of the upstream causal-cache tests, written
// anew: store, SWA, SWA over separate batches, SWA with memory, chunked attention, two
// sequences in one batch, remove (to the end, and from the middle with a key shift), copy
// prefix then generate, and can-resume truth tables. Each step checks the values the view
// would read, the view range and every mask value. Storage is simulated: a value per cell,
// written at the batch's cell locations the way op_set_rows writes K rows.
#include "check.h"
#include "kvcache/kv_cells.h"

#define X (-INFINITY)
#define MAX_CELLS 64
#define M(i) (m[(i) / n_exp * stride + (i) % n_exp]) // mask entry i of the dense expectation

struct sim {
    struct kv_cells c;
    float store[MAX_CELLS]; // one "K value" per cell
};

static void sim_init(struct sim *s, enum kv_kind kind, int32_t window, int32_t memory,
                     int32_t chunk, int32_t n_seq, int32_t n_ctx, int32_t n_batch)
{
    struct kv_cells_params p = {.kind = kind, .window = window, .memory = memory,
                                .chunk = chunk, .n_seq_max = n_seq, .n_ctx_seq = n_ctx,
                                .n_batch_max = n_batch, .padding = 1};
    struct llem_errbuf eb = {0};
    memset(s->store, 0, sizeof s->store);
    CHECK_OK(kv_cells_init(&s->c, &p, &eb), &eb);
    CHECK(s->c.n_cells <= MAX_CELLS);
}

// Runs one batch and checks the view's values, its length and the whole mask.
static void sim_step(struct sim *s, int n, const float *vals, const llem_seq *seqs,
                     const llem_pos *pos, int n_exp, const float *expected, const float *mask)
{
    struct llem_errbuf eb = {0};
    CHECK_OK(kv_cells_start(&s->c, n, pos, seqs, &eb), &eb);
    for (int i = 0; i < n; i++) {
        s->store[s->c.locs[i]] = vals[i];
    }
    CHECK_EQ_I64(s->c.view_len, n_exp);
    if (s->c.view_len != n_exp) {
        return;
    }
    for (int j = 0; j < n_exp; j++) {
        CHECK_NEAR(s->store[s->c.view_min + j], expected[j], 0);
    }
    const float *m = s->c.mask;
    const int32_t stride = s->c.mask_stride;
    for (int i = 0; i < n * n_exp; i++) {
        if (isinf(mask[i])) {
            CHECK(isinf(M(i)) && M(i) < 0);
        } else {
            CHECK_NEAR(M(i), mask[i], 0);
        }
        if (isinf(mask[i]) != isinf(M(i))) {
            fprintf(stderr, "  mask entry %d (row %d, col %d) differs\n", i, i / n_exp,
                    i % n_exp);
        }
    }
}

static void test_store(void)
{
    struct sim s;
    sim_init(&s, KV_CAUSAL, 0, 0, 0, 1, 16, 16);
    sim_step(&s, 4, (float[]){1, 2, 3, 4}, (llem_seq[]){0, 0, 0, 0}, (llem_pos[]){0, 1, 2, 3}, 4,
             (float[]){1, 2, 3, 4},
             (float[]){0, X, X, X, 0, 0, X, X, 0, 0, 0, X, 0, 0, 0, 0});
    sim_step(&s, 1, (float[]){5}, (llem_seq[]){0}, (llem_pos[]){4}, 5, (float[]){1, 2, 3, 4, 5},
             (float[]){0, 0, 0, 0, 0});
    CHECK_EQ_I64(s.c.n_used, 5);
    kv_cells_deinit(&s.c);
}

static void test_swa(void)
{
    struct sim s;
    sim_init(&s, KV_SWA, 1, 0, 0, 1, 16, 16);
    CHECK_EQ_I64(s.c.n_cells, 17); // 1 seq x memory 1 + batch 16
    sim_step(&s, 4, (float[]){1, 2, 3, 4}, (llem_seq[]){0, 0, 0, 0}, (llem_pos[]){0, 1, 2, 3}, 4,
             (float[]){1, 2, 3, 4},
             (float[]){0, X, X, X, 0, 0, X, X, X, 0, 0, X, X, X, 0, 0});
    // Positions 0 and 1 fell out of the window: their cells are reused first.
    sim_step(&s, 2, (float[]){5, 6}, (llem_seq[]){0, 0}, (llem_pos[]){4, 5}, 4,
             (float[]){5, 6, 3, 4}, (float[]){0, X, X, 0, 0, 0, X, X});
    kv_cells_deinit(&s.c);
}

static void test_swa_separate_batches(void)
{
    struct sim s;
    sim_init(&s, KV_SWA, 1, 0, 0, 2, 16, 2);
    CHECK_EQ_I64(s.c.memory, 2); // window + 1 with several sequences
    CHECK_EQ_I64(s.c.n_cells, 6);
    sim_step(&s, 2, (float[]){1, 2}, (llem_seq[]){0, 0}, (llem_pos[]){0, 1}, 2, (float[]){1, 2},
             (float[]){0, X, 0, 0});
    sim_step(&s, 2, (float[]){3, 4}, (llem_seq[]){0, 0}, (llem_pos[]){2, 3}, 3,
             (float[]){2, 3, 4}, (float[]){0, 0, X, X, 0, 0});
    // Sequence 0 is idle: its next position is 4, so positions < 2 leave its memory.
    sim_step(&s, 2, (float[]){5, 6}, (llem_seq[]){1, 1}, (llem_pos[]){0, 1}, 2, (float[]){5, 6},
             (float[]){0, X, 0, 0});
    sim_step(&s, 2, (float[]){7, 8}, (llem_seq[]){0, 1}, (llem_pos[]){4, 2}, 5,
             (float[]){6, 3, 4, 7, 8}, (float[]){X, X, 0, 0, X, 0, X, X, X, 0});
    kv_cells_deinit(&s.c);
}

static void test_swa_mem(void)
{
    struct sim s;
    sim_init(&s, KV_SWA, 1, 3, 0, 1, 16, 16);
    CHECK_EQ_I64(s.c.n_cells, 19);
    sim_step(&s, 4, (float[]){1, 2, 3, 4}, (llem_seq[]){0, 0, 0, 0}, (llem_pos[]){0, 1, 2, 3}, 4,
             (float[]){1, 2, 3, 4},
             (float[]){0, X, X, X, 0, 0, X, X, X, 0, 0, X, X, X, 0, 0});
    // Memory 3 keeps positions 1..3 although the window only sees position 3.
    sim_step(&s, 2, (float[]){5, 6}, (llem_seq[]){0, 0}, (llem_pos[]){4, 5}, 5,
             (float[]){5, 2, 3, 4, 6}, (float[]){0, X, X, 0, X, 0, X, X, X, 0});
    kv_cells_deinit(&s.c);
}

static void test_chunked(void)
{
    struct sim s;
    sim_init(&s, KV_CHUNKED, 0, 0, 2, 1, 16, 16);
    sim_step(&s, 4, (float[]){1, 2, 3, 4}, (llem_seq[]){0, 0, 0, 0}, (llem_pos[]){0, 1, 2, 3}, 4,
             (float[]){1, 2, 3, 4},
             (float[]){0, X, X, X, 0, 0, X, X, X, X, 0, X, X, X, 0, 0});
    sim_step(&s, 3, (float[]){5, 6, 7}, (llem_seq[]){0, 0, 0}, (llem_pos[]){4, 5, 6}, 7,
             (float[]){1, 2, 3, 4, 5, 6, 7},
             (float[]){X, X, X, X, 0, X, X, X, X, X, X, 0, 0, X, X, X, X, X, X, X, 0});
    sim_step(&s, 1, (float[]){8}, (llem_seq[]){0}, (llem_pos[]){7}, 8,
             (float[]){1, 2, 3, 4, 5, 6, 7, 8}, (float[]){X, X, X, X, X, X, 0, 0});
    kv_cells_deinit(&s.c);
}

static void test_sequences(void)
{
    struct sim s;
    sim_init(&s, KV_CAUSAL, 0, 0, 0, 2, 16, 16);
    sim_step(&s, 4, (float[]){1, 2, 3, 4}, (llem_seq[]){0, 1, 0, 1}, (llem_pos[]){0, 0, 1, 1}, 4,
             (float[]){1, 2, 3, 4},
             (float[]){0, X, X, X, X, 0, X, X, 0, X, 0, X, X, 0, X, 0});
    sim_step(&s, 2, (float[]){5, 6}, (llem_seq[]){0, 1}, (llem_pos[]){2, 2}, 6,
             (float[]){1, 2, 3, 4, 5, 6}, (float[]){0, X, 0, X, 0, X, X, 0, X, 0, X, 0});
    kv_cells_deinit(&s.c);
}

// The fake shift adds the position delta to the stored value, so a test sees which cells
// were rotated and by how much.
static void sim_apply_shift(struct sim *s, const struct kv_shift *sh)
{
    int32_t delta[MAX_CELLS];
    kv_cells_shift_deltas(&s->c, sh, delta);
    for (int32_t i = 0; i < sh->n_cells; i++) {
        s->store[sh->first_cell + i] += (float)delta[i];
    }
}

static void test_remove(void)
{
    struct sim s;
    struct llem_errbuf eb = {0};
    struct kv_shift sh;
    sim_init(&s, KV_CAUSAL, 0, 0, 0, 1, 16, 16);
    sim_step(&s, 4, (float[]){1, 2, 3, 4}, (llem_seq[]){0, 0, 0, 0}, (llem_pos[]){0, 1, 2, 3}, 4,
             (float[]){1, 2, 3, 4},
             (float[]){0, X, X, X, 0, 0, X, X, 0, 0, 0, X, 0, 0, 0, 0});
    CHECK_OK(kv_cells_remove(&s.c, 0, 2, -1, &sh, &eb), &eb);
    CHECK_EQ_I64(sh.n_cells, 0); // truncation moves nothing
    CHECK_EQ_I64(s.c.n_used, 2);
    sim_step(&s, 2, (float[]){5, 6}, (llem_seq[]){0, 0}, (llem_pos[]){2, 3}, 4,
             (float[]){1, 2, 5, 6},
             (float[]){0, 0, 0, X, 0, 0, 0, 0});
    // Remove position 0: positions 1..3 become 0..2 and their keys are shifted by -1.
    CHECK_OK(kv_cells_remove(&s.c, 0, 0, 1, &sh, &eb), &eb);
    CHECK_EQ_I64(sh.first_cell, 1);
    CHECK_EQ_I64(sh.n_cells, 3);
    CHECK_EQ_I64(sh.delta, -1);
    sim_apply_shift(&s, &sh);
    CHECK_EQ_I64(s.c.pos[1], 0);
    CHECK_EQ_I64(s.c.pos[3], 2);
    sim_step(&s, 1, (float[]){7}, (llem_seq[]){0}, (llem_pos[]){3}, 4, (float[]){7, 1, 4, 5},
             (float[]){0, 0, 0, 0});
    CHECK_EQ_I64(kv_cells_seq_pos_max(&s.c, 0), 3);
    CHECK_EQ_I64(kv_cells_seq_count(&s.c, 0), 4);
    kv_cells_deinit(&s.c);
}

static void test_copy_prefix(void)
{
    struct sim s;
    struct llem_errbuf eb = {0};
    struct kv_shift sh;
    sim_init(&s, KV_CAUSAL, 0, 0, 0, 2, 16, 16);
    sim_step(&s, 4, (float[]){1, 2, 3, 4}, (llem_seq[]){0, 0, 0, 0}, (llem_pos[]){0, 1, 2, 3}, 4,
             (float[]){1, 2, 3, 4},
             (float[]){0, X, X, X, 0, 0, X, X, 0, 0, 0, X, 0, 0, 0, 0});
    kv_cells_copy_prefix(&s.c, 0, 1, 2);
    CHECK_EQ_I64(s.c.seqs[0], 3); // shared by reference: one cell, two sequences
    CHECK_EQ_I64(s.c.seqs[2], 1);
    CHECK_EQ_I64(s.c.n_used, 4);
    sim_step(&s, 1, (float[]){5}, (llem_seq[]){1}, (llem_pos[]){2}, 5,
             (float[]){1, 2, 3, 4, 5}, (float[]){0, 0, X, X, 0});
    // Shifting seq 0 past position 0 would move cell 1, which seq 1 shares: refused, unchanged.
    CHECK_EQ_I64(kv_cells_remove(&s.c, 0, 0, 1, &sh, &eb), LLEM_EUNSUPPORTED);
    CHECK_EQ_I64(s.c.seqs[0], 3);
    CHECK_EQ_I64(s.c.pos[1], 1);
    // Dropping seq 1's tail does not touch shared cells' positions.
    CHECK_OK(kv_cells_remove(&s.c, 1, 1, -1, &sh, &eb), &eb);
    CHECK_EQ_I64(s.c.seqs[1], 1);
    CHECK_EQ_I64(s.c.seqs[4], 0);
    CHECK_EQ_I64(s.c.n_used, 4);
    kv_cells_deinit(&s.c);
}

static void check_resume(struct sim *s, int first, int n, const int *expected)
{
    for (int i = 0; i < n; i++) {
        bool got = kv_cells_can_resume(&s->c, 0, first + i);
        if (got != (bool)expected[i]) {
            fprintf(stderr, "  can_resume(pos %d) = %d, expected %d\n", first + i, got,
                    expected[i]);
        }
        CHECK(got == (bool)expected[i]);
    }
}

static void test_can_resume(void)
{
    struct sim s;
    sim_init(&s, KV_SWA, 4, 0, 0, 1, 16, 16);
    CHECK(!kv_cells_can_resume(&s.c, 0, 0)); // nothing stored yet
    sim_step(&s, 5, (float[]){0, 1, 2, 3, 4}, (llem_seq[]){0, 0, 0, 0, 0},
             (llem_pos[]){0, 1, 2, 3, 4}, 5, (float[]){0, 1, 2, 3, 4},
             (float[]){0, X, X, X, X, 0, 0, X, X, X, 0, 0, 0, X, X, 0, 0, 0, 0, X, 0, 0, 0, 0, 0});
    check_resume(&s, 0, 8, (int[]){1, 1, 1, 1, 1, 1, 0, 0});
    sim_step(&s, 1, (float[]){5}, (llem_seq[]){0}, (llem_pos[]){5}, 5, (float[]){5, 1, 2, 3, 4},
             (float[]){0, 0, 0, 0, 0});
    check_resume(&s, 0, 8, (int[]){0, 0, 0, 0, 0, 1, 1, 0});
    kv_cells_deinit(&s.c);
}

static void test_can_resume_swa_mem(void)
{
    struct sim s;
    sim_init(&s, KV_SWA, 4, 5, 0, 1, 16, 16);
    sim_step(&s, 5, (float[]){0, 1, 2, 3, 4}, (llem_seq[]){0, 0, 0, 0, 0},
             (llem_pos[]){0, 1, 2, 3, 4}, 5, (float[]){0, 1, 2, 3, 4},
             (float[]){0, X, X, X, X, 0, 0, X, X, X, 0, 0, 0, X, X, 0, 0, 0, 0, X, 0, 0, 0, 0, 0});
    check_resume(&s, 0, 8, (int[]){1, 1, 1, 1, 1, 1, 0, 0});
    sim_step(&s, 1, (float[]){5}, (llem_seq[]){0}, (llem_pos[]){5}, 5,
             (float[]){1, 2, 3, 4, 5}, (float[]){0, 0, 0, 0, 0});
    check_resume(&s, 0, 8, (int[]){1, 1, 1, 1, 1, 1, 1, 0});
    sim_step(&s, 1, (float[]){6}, (llem_seq[]){0}, (llem_pos[]){6}, 6,
             (float[]){6, 1, 2, 3, 4, 5}, (float[]){0, X, 0, 0, 0, 0});
    check_resume(&s, 0, 9, (int[]){0, 0, 0, 0, 0, 1, 1, 1, 0});
    kv_cells_deinit(&s.c);
}

static void test_limits(void)
{
    struct kv_cells c;
    struct llem_errbuf eb = {0};
    struct kv_cells_params p = {.kind = KV_CAUSAL, .n_seq_max = 65, .n_ctx_seq = 16,
                                .n_batch_max = 16, .padding = 1};
    CHECK_EQ_I64(kv_cells_init(&c, &p, &eb), LLEM_EINVAL);
    CHECK(strstr(eb.msg, "64") != NULL);
    p.n_seq_max = 2;
    p.n_ctx_seq = 2;
    CHECK_OK(kv_cells_init(&c, &p, &eb), &eb);
    llem_pos pos[5] = {0, 1, 2, 3, 4};
    llem_seq seq[5] = {0, 0, 0, 0, 0};
    CHECK_OK(kv_cells_start(&c, 4, pos, seq, &eb), &eb);
    CHECK_EQ_I64(kv_cells_start(&c, 1, pos + 4, seq, &eb), LLEM_EFULL);
    llem_seq bad = 2;
    CHECK_EQ_I64(kv_cells_start(&c, 1, pos, &bad, &eb), LLEM_EINVAL);
    kv_cells_deinit(&c);
    // A window at least as long as the context needs no eviction: memory becomes unlimited.
    p.kind = KV_SWA;
    p.window = 32;
    p.n_ctx_seq = 16;
    CHECK_OK(kv_cells_init(&c, &p, &eb), &eb);
    CHECK_EQ_I64(c.n_cells, 32);
    CHECK(kv_cells_can_resume(&c, 0, 1000));
    kv_cells_deinit(&c);
}

int main(void)
{
    RUN_TEST(test_store);
    RUN_TEST(test_swa);
    RUN_TEST(test_swa_separate_batches);
    RUN_TEST(test_swa_mem);
    RUN_TEST(test_chunked);
    RUN_TEST(test_sequences);
    RUN_TEST(test_remove);
    RUN_TEST(test_copy_prefix);
    RUN_TEST(test_can_resume);
    RUN_TEST(test_can_resume_swa_mem);
    RUN_TEST(test_limits);
    return TEST_EXIT();
}
