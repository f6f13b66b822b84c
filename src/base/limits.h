// base/limits.h: every cap llem puts on external input (files, sockets, argv, env), in one
// place so that a reviewer can see the whole attack surface at a glance. Each value carries a
// one-line reason. Parsers compare against these before allocating; exceeding one is
// LLEM_ELIMIT with a message naming the field. Other folders append their caps here.
#pragma once

// ---- GGUF (gguf/) --------------------------------------------------------------------------
// Longest key or string value: chat templates are the longest real strings (~20 KiB); 1 MiB
// leaves room for odd ones while bounding one read.
#define LLEM_GGUF_MAX_STRING_BYTES (1u << 20)
// Metadata pairs: real models carry < 100; tokenizer arrays count as one pair each.
#define LLEM_GGUF_MAX_KV (1u << 16)
// Elements of one metadata array: the largest vocabularies (~262k tokens) plus merges fit.
#define LLEM_GGUF_MAX_ARRAY_ELEMS (1u << 24)
// Nesting of arrays inside arrays: the format allows it; nothing real uses more than 2.
#define LLEM_GGUF_MAX_ARRAY_DEPTH 4u
// Tensors per file: a 1000-layer MoE with experts split would still be under 64k.
#define LLEM_GGUF_MAX_TENSORS (1u << 16)
// Dimensions per tensor: the format (and ggml) has 4.
#define LLEM_GGUF_MAX_DIMS 4u
// Tensor name bytes (excluding NUL): ggml's GGML_MAX_NAME is 64.
#define LLEM_GGUF_MAX_NAME_BYTES 64u
// Elements of one tensor dimension product: 2^50 elements is far beyond any host's memory.
#define LLEM_GGUF_MAX_TENSOR_ELEMS (1ull << 50)
// general.alignment: must be a power of two; more than 1 MiB has no purpose but padding.
#define LLEM_GGUF_MAX_ALIGNMENT (1u << 20)

// ---- HTTP (server/) ------------------------------------------------------------------------
// Request body default: a long chat with base64 images fits; configurable at serve time.
#define LLEM_HTTP_MAX_BODY_BYTES_DEFAULT (64ull << 20)
// All request headers together: browsers cap around 8-16 KiB; 64 KiB is generous.
#define LLEM_HTTP_MAX_HEADER_BYTES (64u << 10)
// Nesting depth of a JSON request: real requests are < 10 deep; bounds recursive parsing.
#define LLEM_JSON_MAX_DEPTH 64u
// Messages in one chat request: bounds per-message work before tokenization.
#define LLEM_HTTP_MAX_MESSAGES 65536u

// ---- chat templates (template/) -------------------------------------------------------------
// Rendered prompt bytes: larger than any context window's worth of text (~1M tokens * 4 B).
#define LLEM_TEMPLATE_MAX_OUTPUT_BYTES (16u << 20)
// Loop iterations over a whole render: a template is data from a file and could loop forever.
#define LLEM_TEMPLATE_MAX_LOOP_ITERS (1u << 20)
// Recursion (macros, nested blocks, expression depth): bounds the C stack we use.
#define LLEM_TEMPLATE_MAX_RECURSION 64u
// Go templates: evaluated nodes per render (a CPU bound independent of loops: ~1 s worst case).
#define LLEM_GOTMPL_MAX_STEPS (1u << 26)
// Go templates: bytes of values built while rendering (printf results, converted request data).
#define LLEM_GOTMPL_MAX_MEMORY_BYTES (256u << 20)

// ---- misc ------------------------------------------------------------------------------------
// Generic recursion depth for any recursive-descent parser over outside input (C stack bound).
#define LLEM_MAX_RECURSION_DEPTH 128u
// Threads from LLEM_NUM_THREADS or an argument: more than 64 only adds contention here.
#define LLEM_MAX_THREADS 64
// Duration strings ("1h30m"): bounds parsing work; real values are a few characters.
#define LLEM_DURATION_MAX_BYTES 64u
