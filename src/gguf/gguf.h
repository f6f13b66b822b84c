// gguf/gguf.h: GGUF v2/v3 reader (fully validated, mmap with pread fallback) and writer.
// The reader parses the whole header into checked, typed structures before returning: after
// gguf_open succeeds, every key, array, tensor info and tensor data range is known to be
// within limits and inside the file. Read-only after open; safe to share between threads.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/fs.h"

// ---- format vocabulary ---------------------------------------------------------------------

enum gguf_value_type { // on-disk ids of metadata value types
    GGUF_VALUE_UINT8 = 0,
    GGUF_VALUE_INT8 = 1,
    GGUF_VALUE_UINT16 = 2,
    GGUF_VALUE_INT16 = 3,
    GGUF_VALUE_UINT32 = 4,
    GGUF_VALUE_INT32 = 5,
    GGUF_VALUE_FLOAT32 = 6,
    GGUF_VALUE_BOOL = 7,
    GGUF_VALUE_STRING = 8,
    GGUF_VALUE_ARRAY = 9,
    GGUF_VALUE_UINT64 = 10,
    GGUF_VALUE_INT64 = 11,
    GGUF_VALUE_FLOAT64 = 12,
    GGUF_VALUE_COUNT
};

// Tensor element types: the GGML type ids used by GGUF files (ids are fixed by the format;
// gaps are ids retired upstream). The tensor/ folder adds conversion traits per type.
enum ggml_type {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ2_XXS = 16,
    GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18,
    GGML_TYPE_IQ1_S = 19,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    GGML_TYPE_MXFP4 = 39,
    GGML_TYPE_COUNT = 40
};

// Block geometry of a type id, as the format defines it: elements per block and bytes per
// block. Returns false for ids that are unknown or retired (the reader refuses those).
bool gguf_type_geometry(uint32_t type, int64_t *block_elems, size_t *block_bytes);
const char *gguf_type_name(uint32_t type);  // "Q4_K"; "?" if unknown
int gguf_type_from_name(const char *name);  // case-insensitive; -1 if unknown

// "u32", "str", "arr", ...; "?" if unknown.
const char *gguf_value_type_name(enum gguf_value_type t);

// Bytes of a row of n elements of `type`; 0 if n is not a multiple of the block size.
size_t gguf_row_bytes(uint32_t type, int64_t n);

// Name of a general.file_type value (llama.cpp's LLAMA_FTYPE_* numbering, as Ollama shows it:
// "Q4_K_M"); NULL for values without a name.
const char *gguf_ftype_name(uint32_t ftype);

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

// ---- reader ---------------------------------------------------------------------------------

struct gguf_file; // opaque

// One metadata value. Strings are NUL-terminated copies (owned by the file object); an array
// of strings is `const char *const *`, other arrays point at n elements of their native C type
// (uint8_t, int8_t, ..., bool as uint8_t 0/1, double). Nested arrays are arrays of
// struct gguf_value.
struct gguf_value {
    enum gguf_value_type type;
    union {
        uint64_t u64; // every unsigned integer type, widened
        int64_t i64;  // every signed integer type, widened
        double f64;   // FLOAT32 and FLOAT64, widened
        bool b;
        const char *str;
        struct {
            enum gguf_value_type type; // element type
            uint64_t n;
            const void *data;
        } arr;
    };
};

struct gguf_tensor_info {
    const char *name;
    uint32_t n_dims;           // 1..GGUF_MAX_DIMS
    int64_t ne[GGUF_MAX_DIMS]; // elements per dim (ne[0] contiguous); unused dims are 1
    uint32_t type;             // enum ggml_type, known to gguf_type_geometry
    uint64_t offset;           // bytes from the start of the data section, aligned
    uint64_t n_bytes;          // size of the data
};

struct gguf_open_opts {
    bool no_mmap;        // read tensor data with pread into memory instead of mapping
    bool metadata_only;  // don't map or read tensor data (fast `show`)
};

// Opens and validates `path`. On error *out is NULL and eb names the problem (key, tensor,
// offset). Errors: LLEM_EIO (cannot open/read), LLEM_EFORMAT (not GGUF, corrupt, big-endian,
// unsupported version), LLEM_ELIMIT (a count beyond base/limits), LLEM_ENOMEM.
enum llem_err gguf_open(struct gguf_file **out, const char *path,
                        const struct gguf_open_opts *opts, struct llem_errbuf *eb);

// The same over a caller-owned buffer (tests, fuzzing); the buffer must outlive the file.
enum llem_err gguf_open_memory(struct gguf_file **out, const void *data, size_t size,
                               struct llem_errbuf *eb);

void gguf_close(struct gguf_file *f); // NULL is a no-op

uint32_t gguf_version(const struct gguf_file *f);
uint64_t gguf_file_size(const struct gguf_file *f);
uint64_t gguf_alignment(const struct gguf_file *f);
uint64_t gguf_data_offset(const struct gguf_file *f); // file offset of the data section

// Metadata, in file order. Index-based access plus lookup by key (-1 when absent).
int64_t gguf_n_kv(const struct gguf_file *f);
const char *gguf_kv_key(const struct gguf_file *f, int64_t i);
const struct gguf_value *gguf_kv_value(const struct gguf_file *f, int64_t i);
int64_t gguf_find_key(const struct gguf_file *f, const char *key);
const struct gguf_value *gguf_get(const struct gguf_file *f, const char *key); // NULL if absent

// Typed getters: return false (leaving *out untouched) when the key is absent or its value
// cannot represent the requested type exactly (integers are converted when in range).
bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out);
const char *gguf_get_str(const struct gguf_file *f, const char *key); // NULL if absent/not str
// Array of a given element type; NULL when absent or of another element type.
const void *gguf_get_arr(const struct gguf_file *f, const char *key,
                         enum gguf_value_type elem_type, uint64_t *n);

// Tensors, in file order.
int64_t gguf_n_tensors(const struct gguf_file *f);
const struct gguf_tensor_info *gguf_tensor(const struct gguf_file *f, int64_t i);
int64_t gguf_find_tensor(const struct gguf_file *f, const char *name); // -1 if absent
// Host pointer to a tensor's bytes (read-only mapping or the pread copy). NULL when the file
// was opened metadata_only. Valid until gguf_close.
const void *gguf_tensor_data(const struct gguf_file *f, int64_t i);
// An madvise hint (base/fs.h) for the mapped pages of tensor i: FS_ADVICE_DONTNEED when a
// backend made its own copy (the pages leave the process's resident set and fault back in from
// the file if read again), FS_ADVICE_POPULATE before reading all of it, FS_ADVICE_NOHUGEPAGE
// for a table read by rows. No-op for files read into memory (no_mmap).
void gguf_tensor_advise(const struct gguf_file *f, int64_t i, enum fs_advice advice);

// ---- writer ---------------------------------------------------------------------------------

struct gguf_writer; // opaque; builds a GGUF v3 file in memory order, writes atomically

struct gguf_writer *gguf_writer_new(void); // NULL on out of memory
void gguf_writer_free(struct gguf_writer *w);

// Metadata setters copy their arguments. Setting an existing key replaces its value. They
// return LLEM_ENOMEM or LLEM_EINVAL (bad key); the writer stays usable after an error.
enum llem_err gguf_writer_set_u32(struct gguf_writer *w, const char *key, uint32_t v);
enum llem_err gguf_writer_set_i32(struct gguf_writer *w, const char *key, int32_t v);
enum llem_err gguf_writer_set_u64(struct gguf_writer *w, const char *key, uint64_t v);
enum llem_err gguf_writer_set_f32(struct gguf_writer *w, const char *key, float v);
enum llem_err gguf_writer_set_bool(struct gguf_writer *w, const char *key, bool v);
enum llem_err gguf_writer_set_str(struct gguf_writer *w, const char *key, const char *v);
enum llem_err gguf_writer_set_arr(struct gguf_writer *w, const char *key,
                                  enum gguf_value_type elem_type, const void *data, uint64_t n);
enum llem_err gguf_writer_set_arr_str(struct gguf_writer *w, const char *key,
                                      const char *const *strs, uint64_t n);
// Any value, deep-copied, keeping its type (all scalar types, strings, nested arrays): the
// reader's struct gguf_value round-trips through this. LLEM_EINVAL for a malformed value.
enum llem_err gguf_writer_set_value(struct gguf_writer *w, const char *key,
                                    const struct gguf_value *v);
// Copies key `key` (or every key when key is NULL) from an open file, keeping its type.
enum llem_err gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_file *src,
                                  const char *key);

// Adds a tensor. `data` (n_bytes = gguf_row_bytes(type, ne[0]) * rows) is borrowed and must
// stay valid until gguf_writer_write returns; pass data NULL and use gguf_writer_set_tensor_data
// before writing to supply it later.
enum llem_err gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t type,
                                     uint32_t n_dims, const int64_t *ne, const void *data);
enum llem_err gguf_writer_set_tensor_data(struct gguf_writer *w, const char *name,
                                          const void *data);

// Writes the file atomically (temp file in the same folder, fsync, rename, fsync folder): on
// any error nothing is left at `path` and no temp file remains.
enum llem_err gguf_writer_write(struct gguf_writer *w, const char *path, struct llem_errbuf *eb);
