// synth/synth.h: the synthetic-model generator behind `llem gen`. Writes a complete GGUF for
// an architecture and a shape preset: llama.cpp's tensor names, shapes and metadata keys,
// seeded gaussian weights (a recipe that keeps the forward pass numerically alive, see
// docs/internals/synth.md), quantized tensor by tensor to a type or a mixture such as Q4_K_M,
// and a tokenizer (copied from a vocabulary GGUF or generated). Entry point: synth_generate.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

// Shape and hyper-parameters of one model (GGUF vocabulary: n_embd, n_head, ...).
struct synth_hparams {
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim;  // 0: n_embd / n_head
    uint32_t n_ff;
    uint32_t n_vocab;   // 0: whatever the vocabulary holds (tiny); else the vocabulary is
                        // padded up to it when generated, and a file's size wins (warned)
    uint32_t n_ctx;     // context_length
    float rope_theta;   // rope.freq_base
    float norm_eps;     // attention.layer_norm_rms_epsilon
    bool tied;          // no output.weight: the output projection reuses token_embd
    // Llama 3 rope scaling, baked into rope_freqs.weight as the real models do (factor 0:
    // none). No rope.scaling.* keys are written: llama.cpp would apply them a second time.
    float rope_llama3_factor;
    float rope_llama3_low;
    float rope_llama3_high;
    uint32_t rope_llama3_orig_ctx;
};

// Kind of the generated vocabulary (used when no vocabulary file is given or found).
enum synth_vocab_kind {
    SYNTH_VOCAB_DEFAULT = 0, // the architecture's
    SYNTH_VOCAB_SPM,         // SentencePiece (tokenizer.ggml.model "llama"), byte fallback
    SYNTH_VOCAB_BPE_QWEN,    // byte-level BPE ("gpt2", pre "qwen2"), <|im_start|> specials
    SYNTH_VOCAB_BPE_LLAMA3,  // byte-level BPE ("gpt2", pre "llama-bpe"), Llama 3 specials
};

struct synth_preset {
    const char *name;        // "tinyllama-1.1b"
    const char *arch;        // its architecture; NULL: any (tiny), chosen with --arch
    const char *model_name;  // general.name
    const char *vocab_file;  // default vocabulary GGUF, a file name looked up in the caller's
                             // vocabulary folder; NULL: generated
    enum synth_vocab_kind vocab_kind;
    bool arch_defaults;      // take rope_theta, norm_eps, tied from the architecture (tiny)
    struct synth_hparams hp;
};

// Presets and architectures, for lookups and help texts. Names are matched exactly.
const struct synth_preset *synth_preset_find(const char *name); // NULL if unknown
const struct synth_preset *synth_preset_list(size_t *n);
bool synth_arch_known(const char *arch);
const char *synth_arch_name(size_t i); // NULL past the end; for help texts

// Progress: called from the generating thread after each tensor.
typedef void (*synth_progress_fn)(void *user, size_t done, size_t total);

struct synth_opts {
    const char *preset;        // required
    const char *arch;          // NULL: the preset's (tiny: "llama")
    const char *type;          // mixture ("Q4_K_M") or type ("F16", "Q8_0"); NULL: "F16"
    uint64_t seed;             // same seed (and options) -> same file bytes, any thread count
    const char *vocab_path;    // vocabulary GGUF whose tokenizer.ggml.* keys are copied;
                               // NULL: the preset's default in vocab_dir, else generated
    const char *vocab_dir;     // folder searched for the preset's default; NULL: no search
    bool gen_vocab;            // always use the generated vocabulary
    const char *chat_template; // tokenizer.chat_template text; NULL: none
    uint32_t n_ctx;            // 0: the preset's
    int n_threads;             // 0: online CPUs (at most LLEM_MAX_THREADS)
    synth_progress_fn progress; // may be NULL
    void *progress_user;
};

struct synth_result {
    size_t n_tensors;
    uint64_t n_params;       // elements over all tensors
    uint64_t n_data_bytes;   // tensor data bytes (the file is this plus metadata)
    uint32_t n_vocab;
    uint32_t file_type;      // general.file_type written
    char vocab_source[192];  // the vocabulary file used, or "generated (spm)" / "(bpe)"
};

// Generates the model described by `o` into `path` (atomically: on error nothing is left at
// path). Tensor data is held in memory until the file is written (peak memory about the
// file size). Errors: LLEM_EINVAL (unknown preset/arch/type, preset of another arch, a shape
// the type cannot hold), LLEM_ENOMEM, LLEM_EIO / LLEM_EFORMAT (vocabulary file, output).
// res may be NULL. Thread-safe (no global state); uses o->n_threads worker threads.
enum llem_err synth_generate(const struct synth_opts *o, const char *path,
                             struct synth_result *res, struct llem_errbuf *eb);
