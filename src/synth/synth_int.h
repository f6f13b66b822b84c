// synth/synth_int.h: private parts of the generator shared by its files: the tensor list an
// architecture produces (names, shapes, how each is initialised), the architecture table
// (synth_arch.c: one entry and one tensor-list function per architecture) and the generated
// vocabulary (synth_vocab.c).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "gguf/gguf.h"
#include "synth/synth.h"

#define SYNTH_NAME_MAX 64 // llama.cpp's GGML_MAX_NAME

enum synth_init {
    SYNTH_INIT_NORMAL,     // N(mean, std) per element
    SYNTH_INIT_ROPE_FREQS, // Llama 3 rope scaling factors computed from the hparams
};

struct synth_tensor {
    char name[SYNTH_NAME_MAX];
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; // ne[0] is the row (fan-in of a linear weight)
    int layer;                 // block index, -1 outside blocks
    enum synth_init init;
    float mean, std;
};

struct synth_tensor_list {
    struct synth_tensor *v;
    size_t n, cap;
};

// Appends a tensor named by printf-style fmt; LLEM_ENOMEM, LLEM_EINVAL (name too long).
enum llem_err synth_list_add(struct synth_tensor_list *l, int layer, enum synth_init init,
                             float mean, float std, uint32_t n_dims, const int64_t *ne,
                             const char *fmt, ...) LLEM_PRINTF(8, 9);
void synth_list_deinit(struct synth_tensor_list *l);

// Resolved shape: hparams after presets, arch defaults, vocabulary size and --ctx.
struct synth_shape {
    struct synth_hparams hp;
    uint32_t head_dim; // never 0
};

// Flags for the metadata an architecture writes beyond the common set (they follow what
// llama.cpp's converter writes for that architecture, so files match the real ones).
enum {
    SYNTH_KV_ROPE_DIM = 1u << 0,   // {arch}.rope.dimension_count
    SYNTH_KV_VOCAB_SIZE = 1u << 1, // {arch}.vocab_size
    SYNTH_KV_KV_LENGTH = 1u << 2,  // {arch}.attention.key_length / value_length
};

struct synth_arch {
    const char *name;                 // general.architecture
    enum synth_vocab_kind vocab_kind; // generated vocabulary kind by default
    float rope_theta, norm_eps;       // defaults for presets that take them (tiny)
    bool tied;
    unsigned kv_flags;                // SYNTH_KV_*
    // Appends every tensor of the model, in file order, with its init recipe.
    enum llem_err (*tensors)(const struct synth_shape *s, struct synth_tensor_list *out);
};

const struct synth_arch *synth_arch_find(const char *name); // NULL if unknown

// Writes the architecture's hparams ({arch}.*) into w.
enum llem_err synth_arch_write_kv(const struct synth_arch *a, const struct synth_shape *s,
                                  struct gguf_writer *w);

// Generates a vocabulary of `kind` and writes its tokenizer.ggml.* keys into w. pad_to > the
// natural size appends "[PADn]" tokens (type UNUSED) as llama.cpp's converter does for
// padded embedding tables. *n_vocab receives the final size.
enum llem_err synth_vocab_write(struct gguf_writer *w, enum synth_vocab_kind kind,
                                uint32_t pad_to, uint32_t *n_vocab, struct llem_errbuf *eb);
