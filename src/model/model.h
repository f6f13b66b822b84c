// model/model.h: a loaded model (hyper-parameters + weight tensors bound to read-only mmapped
// GGUF data), the architecture contract every model/arch/<name>.c fills in, and the inference
// context (KV cache, graph, compute memory) that decodes batches of tokens from many sequences.
// Entry points: model_load/model_free, model_ctx_new/model_ctx_decode/model_ctx_free.
// A model is read-only after load and may be shared; a context belongs to one thread.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "gguf/gguf.h"
#include "kvcache/kvcache.h"

struct prepared_file;   // model/prepared.c
struct prepared_writer; // model/prepared.c

enum rope_scaling { ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_YARN, ROPE_SCALING_LLAMA3 };

struct hparams {
    int32_t n_vocab;
    int32_t n_ctx_train;  // trained context length
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t n_ff;
    int32_t head_dim;     // K/Q head size (attention.key_length, else n_embd / n_head)
    int32_t head_dim_v;   // V head size
    int32_t n_rot;        // rope.dimension_count (else head_dim)
    float norm_eps;       // RMSNorm epsilon
    float rope_freq_base;
    float rope_freq_scale; // 1 / linear factor
    enum rope_scaling rope_scaling;
    float rope_scaling_factor;
    int32_t rope_n_ctx_orig;
    float yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
    float llama3_low_freq_factor, llama3_high_freq_factor; // llama3 scaling (frequency factors)
    float f_attn_scale;   // 1/sqrt(head_dim) unless the model says otherwise
};

// Weights of one transformer block; NULL where the architecture has no such tensor.
struct layer {
    struct tensor *attn_norm;              // [n_embd]
    struct tensor *wq, *wk, *wv, *wo;      // [n_embd, n_head*head_dim] ... (ggml [K, N] order)
    struct tensor *bq, *bk, *bv;           // qwen2 biases
    struct tensor *q_norm, *k_norm;        // qwen3 per-head norms [head_dim]
    struct tensor *ffn_norm;               // [n_embd]
    struct tensor *ffn_gate, *ffn_up, *ffn_down;
};

struct model;
struct binder;
struct ubatch;
struct kv_inputs;

enum arch_flags {
    ARCH_TIED_EMBEDDINGS = 1u << 0, // output.weight may be absent: reuse token_embd
};

// What an architecture file provides (DESIGN.md §4.7): one const struct per file, listed once
// in model/arch_list.h.
struct llem_arch {
    const char *name; // GGUF general.architecture
    enum rope_mode rope;
    unsigned flags;
    // Reads and validates hparams beyond the common llama-style keys (already loaded).
    enum llem_err (*load_hparams)(struct model *m, const struct gguf_file *f,
                                  struct llem_errbuf *eb);
    // Binds every tensor by name with its expected shape; a missing or mis-shaped tensor is
    // LLEM_EFORMAT naming it.
    enum llem_err (*bind_tensors)(struct model *m, struct binder *b, struct llem_errbuf *eb);
    // Records the forward pass of a batch: logits [n_vocab, n_outputs] as the graph output.
    struct tensor *(*build_forward)(struct graph *gr, const struct model *m,
                                    const struct ubatch *ub, struct kv_cache *kv,
                                    const struct kv_inputs *kvi, bool flash_attn);
};

struct model {
    const struct llem_arch *arch;
    struct hparams hp;
    struct gguf_file *gguf;          // owned; weights point into its mapping
    struct backend *be;              // borrowed: the backend the weights are bound for
    struct backend_buffer *weights;  // zero-copy view of the mapped data section
    struct tensor *tensors;          // [n_tensors] every bound weight
    int32_t n_tensors, cap_tensors;
    struct tensor *tok_embd, *output_norm, *output, *rope_freqs;
    struct layer *layers;            // [n_layer]
    uint64_t n_params;               // elements of all weights
    uint64_t weight_bytes;
    uint64_t repacked_bytes;         // backend copies of weights in faster layouts (counted
                                     // in memory on top of the mapped file)
    struct prepared_file *prepared;  // the prepared-weights file those copies are mapped from
                                     // (NULL: made by this load, or none)
    struct prepared_writer *prepared_writer; // writing this load's copies there (NULL: not)
};

struct model_params {
    bool no_mmap;
    // Where the backend's prepared (repacked) weights are kept between loads, so the next
    // load of the same file maps them instead of converting again (model/prepared.c). NULL:
    // not kept. fs_cache_dir() + "/prepared" is the CLI's and the server's choice.
    const char *prepared_dir;
};

// Loads `path` for backend `be` (borrowed, must outlive the model). Errors: LLEM_EIO,
// LLEM_EFORMAT (bad file, unknown architecture, missing/mis-shaped tensor, bad hparams),
// LLEM_ENOMEM. The message names the file and the key or tensor.
enum llem_err model_load(const char *path, const struct model_params *p, struct backend *be,
                         struct model **out, struct llem_errbuf *eb);
void model_free(struct model *m);
// The prepared-weights folder a program uses by default: fs_cache_dir()/prepared (off, false,
// when LLEM_CACHE_DIR is set empty or no cache folder is known).
bool model_default_prepared_dir(char *buf, size_t cap);
// Removes the prepared-weights files in `dir` whose GGUF no longer exists (and temp files of
// writers that died). Loads do it after each write; the server calls it when a delete may have
// removed a GGUF, so `llem rm` frees the copy's disk space at once.
void model_prepared_prune(const char *dir);

// The architecture table (model/arch_list.h); NULL when the name is unknown.
const struct llem_arch *model_arch_find(const char *name);

// ---- binding (used by architecture files) ---------------------------------------------------

// Binds tensor `name` (printf-style with the layer index when il >= 0, e.g. "blk.%d.attn_q.weight")
// with exactly the given shape (n_dims dims; trailing 1s may be omitted in the file). Returns
// NULL and records LLEM_EFORMAT in the binder if it is missing (unless optional) or mis-shaped.
struct tensor *binder_get(struct binder *b, const char *name, int il, int n_dims,
                          const int64_t *ne, bool optional);
enum llem_err binder_status(const struct binder *b, struct llem_errbuf *eb);

// Shared hparams helper for llama-style architectures: reads "<arch>.<key>" as u32/f32.
bool model_kv_u32(const struct gguf_file *f, const char *arch, const char *key, uint32_t *out);
bool model_kv_f32(const struct gguf_file *f, const char *arch, const char *key, float *out);

// ---- batches and the inference context -------------------------------------------------------

// One micro-batch: tokens of any sequences, each with its position; `output[i]` != 0 asks for
// token i's logits (output rows come out in batch order).
struct ubatch {
    int32_t n_tokens;
    const llem_token *tokens;
    const llem_pos *pos;
    const llem_seq *seq;
    const int8_t *output;
    int32_t n_outputs;
    // Output the final-normed hidden states [n_embd, n_outputs] instead of the logits (read
    // them with model_ctx_embeddings).
    bool embeddings;
    // graph inputs, set while building
    struct tensor *inp_tokens, *inp_pos, *inp_out_ids;
};

struct model_ctx_params {
    int32_t n_ctx;      // context per sequence (tokens)
    int32_t n_batch;    // most tokens per decode call
    int32_t n_seq_max;  // sequences sharing the cache (1..64)
    uint32_t type_k, type_v; // KV storage types (GGML_TYPE_F16 default)
    int flash_attn;     // -1 auto (on where supported), 0 off, 1 on
};

struct model_ctx;

struct model_ctx_params model_ctx_default_params(void);
// Bytes of KV cache for these params (2 x n_layer x cells x n_head_kv x head_dim x elem size).
size_t model_ctx_kv_bytes(const struct model *m, const struct model_ctx_params *p);

// The default context: `want` (<= 0: LLEM_CONTEXT_LENGTH, else 16384) clamped to the model's
// trained context, then halved (with a log line) while the KV cache for n_seq sequences would
// not fit in `budget_bytes` (0: half of the memory the system reports available). At least 256.
int32_t model_fit_n_ctx(const struct model *m, int32_t want, int32_t n_seq, size_t budget_bytes);

// Bytes the system reports as available (MemAvailable), or 0 when unknown.
size_t model_mem_available(void);

enum llem_err model_ctx_new(struct model *m, const struct model_ctx_params *p,
                            struct model_ctx **out, struct llem_errbuf *eb);
void model_ctx_free(struct model_ctx *c);
const struct model_ctx_params *model_ctx_params(const struct model_ctx *c);
bool model_ctx_flash_attn(const struct model_ctx *c);
struct kv_cache *model_ctx_kv(struct model_ctx *c);
const struct model *model_ctx_model(const struct model_ctx *c);

// Runs one batch (n_tokens <= n_batch). LLEM_EFULL when the cache has no room (cache unchanged
// but for sliding-window eviction), LLEM_EINVAL for a bad token, position or sequence.
enum llem_err model_ctx_decode(struct model_ctx *c, const struct ubatch *ub,
                               struct llem_errbuf *eb);
// Logits of the i-th output row of the last decode (n_vocab floats), valid until the next call.
// NULL after an embeddings decode.
const float *model_ctx_logits(const struct model_ctx *c, int32_t i);
// Hidden states (final norm applied) of the i-th output row of the last decode, which must have
// had ub->embeddings set (n_embd floats, valid until the next call); NULL otherwise.
const float *model_ctx_embeddings(const struct model_ctx *c, int32_t i);

// The embedding of one text: clears `seq`'s cells, decodes tokens[0..n) in n_batch chunks with
// every row output, mean-pools the rows, L2-normalises into out[n_embd], and frees the
// sequence's cells again (also on error). n must fit the context (1..n_ctx). Errors as
// model_ctx_decode, LLEM_EINVAL for a bad n or sequence.
enum llem_err model_ctx_embed(struct model_ctx *c, llem_seq seq, const llem_token *tokens,
                              int32_t n, float *out, struct llem_errbuf *eb);

// Sequence operations on the cache (see kv_cells.h); remove with a finite end re-applies RoPE
// to the keys that moved.
enum llem_err model_ctx_seq_remove(struct model_ctx *c, llem_seq seq, llem_pos begin,
                                   llem_pos end, struct llem_errbuf *eb);
void model_ctx_seq_copy_prefix(struct model_ctx *c, llem_seq src, llem_seq dst, llem_pos len);
void model_ctx_clear(struct model_ctx *c);
