// tensor/quantize_file.h: whole-file quantization of a GGUF model (what `llem quantize` and
// `llem create --quantize` / POST /api/create {"quantize"} run): every tensor gets the type
// tensor_mixture_type picks for the target, metadata is copied, general.file_type and
// general.quantization_version are set, and the output is written atomically.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

// One tensor done (i of n, 0-based). Return false to cancel (LLEM_ECANCELED, nothing written).
struct tensor_qfile_progress {
    int64_t i, n;
    const char *name;
    uint32_t from, to; // enum ggml_type before and after
};
typedef bool (*tensor_qfile_progress_fn)(void *ctx, const struct tensor_qfile_progress *p);

struct tensor_qfile_stats {
    uint64_t bytes_in, bytes_out; // tensor data bytes
    int64_t n_tensors;
    bool requantized; // some tensors were already quantized (quality is lost)
};

// Quantizes `in` to `out` for `target` (a tensor_mixture name, case-insensitive) with nth
// worker threads (<= 0: online CPUs, at most 256). progress and stats may be NULL.
// Errors: LLEM_EINVAL (unknown target), LLEM_EIO / LLEM_EFORMAT (input), LLEM_EUNSUPPORTED (a
// tensor type that cannot be converted), LLEM_ENOMEM, LLEM_ECANCELED; on error nothing is at
// `out`. Thread-safe (separate calls share nothing).
enum llem_err tensor_quantize_file(const char *in, const char *out, const char *target, int nth,
                                   tensor_qfile_progress_fn progress, void *ctx,
                                   struct tensor_qfile_stats *stats, struct llem_errbuf *eb);
