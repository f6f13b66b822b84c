// store/store.h: llem's model store, in Ollama's layout (manifests/<host>/<ns>/<model>/<tag>,
// blobs/sha256-<hex>), so an existing ~/.ollama/models works as is. Names, manifests,
// content-addressed blobs (hashed while written, atomic, verified), Modelfiles, create / copy /
// delete / list / show, and pull/push against an OCI distribution registry.
// Entry points: store_open, store_resolve, store_list, store_create, store_pull, store_push.
// Thread-safety: one struct store may be used from several threads; functions that change the
// store (create, copy, delete, pull, blob writes) serialize on an internal lock for their
// manifest/prune steps only, so a long pull does not block list/resolve.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

// ---- names ------------------------------------------------------------------------------------

// Limits on name parts (bytes), as Ollama's types/model/name.go: host 1-350, namespace 1-80,
// model and tag 1-80.
#define STORE_HOST_MAX     350
#define STORE_NS_MAX       80
#define STORE_PART_MAX     80
#define STORE_DEFAULT_HOST "registry.ollama.ai"
#define STORE_DEFAULT_NS   "library"
#define STORE_DEFAULT_TAG  "latest"
// "sha256:" + 64 hex + NUL
#define STORE_DIGEST_BYTES 72

// A parsed, validated model name. Every part is non-empty, within its limit and made only of
// the allowed characters (host [A-Za-z0-9_][A-Za-z0-9_.:-]*, namespace [A-Za-z0-9_][A-Za-z0-9_-]*,
// model and tag [A-Za-z0-9_][A-Za-z0-9_.-]*), so it can never name a path outside the store:
// no '/', '\\', NUL, ".." or leading '.' is possible in any part.
struct store_name {
    char host[STORE_HOST_MAX + 1];
    char ns[STORE_NS_MAX + 1];
    char model[STORE_PART_MAX + 1];
    char tag[STORE_PART_MAX + 1];
    bool insecure_scheme; // the name began with "http://" (pull/push then need insecure)
};

// Parses "[scheme://][host/][namespace/]model[:tag]" filling defaults. A trailing "@digest"
// is refused (EINVAL; digests name blobs, not models). Any invalid part is LLEM_EINVAL with a
// message naming the part ("invalid model name 'a/../../b': namespace '..' ...").
enum llem_err store_name_parse(const char *s, struct store_name *out, struct llem_errbuf *eb);
// "host/ns/model:tag" always; the short display form (Ollama's DisplayShortest) drops the
// default host, then the default namespace: "llama3.2:latest", "me/m:v1", "h.io/me/m:v1".
// Both write at most cap bytes, NUL-terminated, truncating (cap >= 1).
void store_name_full(const struct store_name *n, char *buf, size_t cap);
void store_name_display(const struct store_name *n, char *buf, size_t cap);
// Case-insensitive equality of all four parts (Ollama matches names this way).
bool store_name_equal(const struct store_name *a, const struct store_name *b);

// True when d is exactly "sha256:" followed by 64 lowercase hex digits. Ollama also accepts
// "sha256-<hex>" from clients: store_digest_normalize turns either form (hex in either case)
// into the canonical "sha256:<lowercase hex>" or returns LLEM_EINVAL.
bool store_digest_valid(const char *d);
enum llem_err store_digest_normalize(const char *d, char out[STORE_DIGEST_BYTES],
                                     struct llem_errbuf *eb);

// ---- opening ------------------------------------------------------------------------------------

struct store; // opaque

struct store_opts {
    const char *root; // NULL: store_default_root()
    // An additional store read only for resolve/list/show (e.g. ~/.ollama/models): names not
    // found in root are looked up there; nothing is ever written to it. NULL: none.
    const char *ro_root;
    bool no_prune; // also set when LLEM_NOPRUNE is set (non-empty, not "0")
};

// The default root: $LLEM_MODELS if set, else $HOME/.llem/models. Writes at most cap bytes;
// LLEM_ELIMIT if it does not fit, LLEM_EINVAL when neither LLEM_MODELS nor HOME is set.
enum llem_err store_default_root(char *buf, size_t cap, struct llem_errbuf *eb);
// Ollama's store if it exists: $OLLAMA_MODELS, else $HOME/.ollama/models. Returns false (buf
// untouched) when that folder does not exist, so callers can pass it as opts.ro_root.
bool store_ollama_root(char *buf, size_t cap);

// Opens (creating root/manifests and root/blobs when missing) the store. opts may be NULL.
// LLEM_EIO when the folders cannot be created; LLEM_ENOMEM.
enum llem_err store_open(struct store **out, const struct store_opts *opts, struct llem_errbuf *eb);
void store_close(struct store *s); // NULL is a no-op
const char *store_root(const struct store *s);

// ---- progress -------------------------------------------------------------------------------------

// One progress event, shaped like Ollama's streamed {"status","digest","total","completed"}
// lines. status is e.g. "pulling manifest", "pulling <12 hex>", "verifying sha256 digest",
// "writing manifest", "pushing <12 hex>", "parsing modelfile", "using existing layer
// sha256:...", "creating new layer sha256:...", "quantizing F16 model to Q4_0", "success".
// Strings are valid only during the call.
struct store_progress {
    const char *status;
    const char *digest; // NULL when not about one blob
    uint64_t total;     // bytes; 0 when unknown / not applicable
    uint64_t completed;
};
// Return false to cancel: the operation stops, cleans up and returns LLEM_ECANCELED. Called
// from the thread running the operation.
typedef bool (*store_progress_fn)(void *ctx, const struct store_progress *p);

// ---- models ---------------------------------------------------------------------------------------

// Details from the config blob (strings "" when unknown), as /api/tags and /api/show give them.
struct store_details {
    char *format;    // "gguf"
    char *family;    // general.architecture, e.g. "llama"
    char **families; // n_families entries
    size_t n_families;
    char *parameter_size;     // "8.0B"
    char *quantization_level; // "Q4_K_M"
    char *parent_model;       // from the first layer's "from", "" if none
};

// A resolved model: everything needed to load and describe it. All strings are owned by the
// struct (freed by store_model_free); optional ones are NULL when the layer is absent.
struct store_model {
    char *name;                      // display form, e.g. "llama3.2:latest"
    char *full_name;                 // "registry.ollama.ai/library/llama3.2:latest"
    char digest[STORE_DIGEST_BYTES]; // sha256 of the manifest file (Ollama's "ID")
    char *model_path;                // absolute path of the GGUF blob (image.model layer)
    char *projector_path;            // image.projector blob, or NULL
    char *adapter_path;              // image.adapter blob, or NULL; loaders must refuse with
                                     // "ADAPTER (LoRA) is not supported yet" rather than ignore it
    char *template_text;             // image.template (or legacy image.prompt) text, or NULL
    char *system_text;               // image.system, or NULL
    char *params_json;               // image.params: a JSON object of default options, or NULL
    char *messages_json;             // image.messages: a JSON array of {role, content}, or NULL
    char **licenses;                 // image.license texts (n_licenses, may be 0)
    size_t n_licenses;
    char *manifest_json; // the manifest file as stored
    struct store_details details;
    uint64_t size;    // sum of the layer sizes (what `llem list` shows)
    int64_t modified; // manifest mtime, unix seconds
    bool read_only;   // found in opts.ro_root
};

// Resolves a name to its model. LLEM_EINVAL for an invalid name, LLEM_ENOTFOUND when no
// manifest exists (in root, then ro_root), LLEM_EFORMAT for a malformed manifest or a missing
// model layer, LLEM_EIO when a referenced blob is missing. Small text layers are read (each
// capped at 16 MiB); the GGUF is not opened.
enum llem_err store_resolve(struct store *s, const char *name, struct store_model **out,
                            struct llem_errbuf *eb);
// store_show is store_resolve under the name /api/show uses; the same struct, fully filled.
enum llem_err store_show(struct store *s, const char *name, struct store_model **out,
                         struct llem_errbuf *eb);
void store_model_free(struct store_model *m); // NULL is a no-op

// The Modelfile that recreates m (what `show --modelfile` prints): a "# Modelfile generated
// by ..." header, FROM <model_path>, TEMPLATE """...""", SYSTEM, PARAMETER lines, MESSAGE and
// LICENSE. Returns a heap string (llem_free) or NULL on out of memory.
char *store_model_modelfile(const struct store_model *m);

struct store_entry {
    char *name;                      // display form
    char digest[STORE_DIGEST_BYTES]; // manifest digest
    uint64_t size;                   // sum of layer sizes
    int64_t modified;                // manifest mtime, unix seconds
    struct store_details details;
    bool read_only;
};
// Every valid manifest in root (then ro_root, skipping names already listed), newest first.
// Unreadable or malformed manifests are skipped with a log_warn. *out is NULL when n is 0.
enum llem_err store_list(struct store *s, struct store_entry **out, size_t *n,
                         struct llem_errbuf *eb);
void store_list_free(struct store_entry *e, size_t n);

// Copies the manifest of src to dst (blobs are shared). src may come from ro_root. LLEM_EINVAL
// for invalid names, LLEM_ENOTFOUND. An existing dst is replaced.
enum llem_err store_copy(struct store *s, const char *src, const char *dst, struct llem_errbuf *eb);
// Removes the manifest (never from ro_root: LLEM_ENOTFOUND there), then empty manifest folders,
// then, unless no_prune, blobs no manifest in root references.
enum llem_err store_delete(struct store *s, const char *name, struct llem_errbuf *eb);
// Deletes blobs (and stale "-partial" files) in root that no manifest references; *removed
// (may be NULL) gets the count.
enum llem_err store_prune(struct store *s, size_t *removed, struct llem_errbuf *eb);

// ---- blobs --------------------------------------------------------------------------------------

// Absolute path of blobs/sha256-<hex> for a valid digest (either form), heap-allocated
// (llem_free), whether or not the blob exists. LLEM_EINVAL for an invalid digest.
enum llem_err store_blob_path(const struct store *s, const char *digest, char **path,
                              struct llem_errbuf *eb);
// True when the blob exists as a regular file in root (or ro_root). Invalid digest: false.
bool store_blob_has(struct store *s, const char *digest);

// Push-style writer (for an HTTP upload whose body arrives in pieces): bytes go to a temp file
// in blobs/ and are hashed while written; commit checks the size/digest, fsyncs and renames.
// A digest mismatch (LLEM_EFORMAT, "digest mismatch: expected ..., got ...") or any error
// removes the temp file: nothing half-written is ever visible under the blob's name.
struct store_blob_writer;
enum llem_err store_blob_writer_new(struct store *s, const char *digest,
                                    struct store_blob_writer **out, struct llem_errbuf *eb);
enum llem_err store_blob_writer_write(struct store_blob_writer *w, const void *data, size_t n,
                                      struct llem_errbuf *eb);
// Verifies and publishes; always frees w (success or not).
enum llem_err store_blob_writer_commit(struct store_blob_writer *w, struct llem_errbuf *eb);
void store_blob_writer_abort(struct store_blob_writer *w); // removes the temp file, frees w

// Pull-style reader: returns bytes read into buf (<= cap), 0 at end, -1 on error.
typedef long long (*store_read_fn)(void *ctx, void *buf, size_t cap);
// Writes a whole blob from a reader (new + write... + commit). OK if it already exists (the
// reader is then not called).
enum llem_err store_blob_write(struct store *s, const char *digest, store_read_fn rd, void *ctx,
                               struct llem_errbuf *eb);
// Adds a file already on disk as a blob: hashes it, copies it in (atomic) and returns its
// digest. Used by create for FROM/ADAPTER paths.
enum llem_err store_blob_import_file(struct store *s, const char *path,
                                     char digest[STORE_DIGEST_BYTES], uint64_t *size,
                                     store_progress_fn progress, void *pctx,
                                     struct llem_errbuf *eb);

// ---- Modelfile -------------------------------------------------------------------------------------

enum store_mf_cmd {
    STORE_MF_FROM,
    STORE_MF_PARAMETER,
    STORE_MF_TEMPLATE,
    STORE_MF_SYSTEM,
    STORE_MF_ADAPTER,
    STORE_MF_LICENSE,
    STORE_MF_MESSAGE,
    STORE_MF_RENDERER,
    STORE_MF_PARSER
};
struct store_mf_line {
    enum store_mf_cmd cmd;
    char *name;  // PARAMETER name (lowercased) or MESSAGE role; NULL otherwise
    char *value; // argument with quotes removed
    int line;    // 1-based line where the instruction starts
};
struct store_modelfile {
    struct store_mf_line *lines;
    size_t n;
};
// Parses Modelfile text (UTF-8, optional BOM): instructions case-insensitive, '#' comments,
// values unquoted, "..." or """...""" (multi-line). At least one FROM is required. MESSAGE roles
// are system|user|assistant|tool. Errors are LLEM_EINVAL/ELIMIT naming the line: "Modelfile
// line 7: unterminated \"\"\" string". On error *mf is zeroed.
enum llem_err store_modelfile_parse(const char *text, size_t len, struct store_modelfile *mf,
                                    struct llem_errbuf *eb);
void store_modelfile_deinit(struct store_modelfile *mf);
// Turns the PARAMETER lines into a JSON object (Ollama's params layer): numbers for numeric
// options, booleans for bool ones, "stop" accumulated into an array. Unknown parameter or bad
// value: LLEM_EINVAL naming the line. *json is a heap string (llem_free); "" case: NULL.
enum llem_err store_modelfile_params_json(const struct store_modelfile *mf, char **json,
                                          struct llem_errbuf *eb);

// ---- create -----------------------------------------------------------------------------------

// Whole-file quantizer supplied by the caller (store/ sits below tensor/, so it cannot call the
// quantizer itself): converts the GGUF at src to type (e.g. "Q4_0", "Q4_K_M") written atomically
// at dst, reporting progress through (progress, pctx) if non-NULL.
typedef enum llem_err (*store_quantize_fn)(void *ctx, const char *src, const char *dst,
                                           const char *type, store_progress_fn progress, void *pctx,
                                           struct llem_errbuf *eb);

struct store_create_opts {
    const char *base_dir;          // relative FROM/ADAPTER paths resolve here; NULL: cwd
    const char *quantize;          // NULL or a type name; only F32/F16/BF16 sources
    store_quantize_fn quantize_fn; // required when quantize is set (else LLEM_EUNSUPPORTED)
    void *quantize_ctx;
    store_progress_fn progress; // may be NULL
    void *progress_ctx;
};
// Creates (or replaces) model `name` from Modelfile text. The first FROM is a GGUF file, a
// folder holding exactly one *.gguf, "@sha256:<hex>" (a blob already in the store, as uploaded
// through /api/blobs), or an existing model name (its layers are reused, new TEMPLATE /
// SYSTEM / PARAMETER / ... replace or merge with the base's as Ollama does); further FROM lines
// may add GGUF files that are not weights (a vision projector). Layers: model
// (GGUF, optionally quantized), adapter, template, system, params (JSON), messages, license;
// then the config blob and the manifest, written last. Errors name the Modelfile line.
enum llem_err store_create(struct store *s, const char *name, const char *modelfile,
                           const struct store_create_opts *opts, struct llem_errbuf *eb);

// The same from a POST /api/create body (Ollama's current API): {"model", "from" | "files":
// {name: digest}, "adapters": {name: digest}, "template", "system", "parameters": {...},
// "license": str|[str], "messages": [...], "quantize", "renderer", "parser"}; or the older
// {"name"|"model", "modelfile": text}. Blobs named in files/adapters must have been uploaded
// (store_blob_writer_*). A "quantize" field applies unless opts->quantize is set. Invalid
// fields: LLEM_EINVAL naming the field; otherwise as store_create.
enum llem_err store_create_json(struct store *s, const char *json, size_t len,
                                const struct store_create_opts *opts, struct llem_errbuf *eb);

// ---- registry -------------------------------------------------------------------------------

struct store_registry_opts {
    bool insecure; // allow http:// and skip TLS verification
    // Base URL replacing "https://<host>" (tests: "http://127.0.0.1:5000"). NULL: $LLEM_REGISTRY
    // if set, else https://<host> (http://<host> when insecure or the name had http://).
    const char *base_url;
    store_progress_fn progress; // may be NULL
    void *progress_ctx;
};
// Pulls name: manifest, then each missing layer and the config (resuming a previous partial
// download with Range, verifying every sha256), then writes the manifest last. Nothing is
// stored under a blob's name unless its digest matched. LLEM_EIO for network / HTTP errors
// (message has the status and URL), LLEM_EFORMAT for a bad manifest or digest mismatch,
// LLEM_ENOTFOUND for 404 on the manifest, LLEM_ECANCELED.
enum llem_err store_pull(struct store *s, const char *name, const struct store_registry_opts *o,
                         struct llem_errbuf *eb);
// Pushes name: each blob missing on the registry (HEAD) is uploaded (POST, PATCH chunks,
// PUT ?digest=), then the manifest is PUT. Bearer-token challenges (WWW-Authenticate) are
// answered anonymously or with $LLEM_REGISTRY_AUTH ("user:password", sent as Basic to the realm).
enum llem_err store_push(struct store *s, const char *name, const struct store_registry_opts *o,
                         struct llem_errbuf *eb);

// URL of name's manifest on its registry ("<base>/v2/<ns>/<model>/manifests/<tag>"), honouring
// o->base_url / LLEM_REGISTRY / insecure as pull does. hf.co and huggingface.co names map to
// Hugging Face's registry endpoint: "hf.co/user/repo:Q4_K_M" ->
// "https://hf.co/v2/user/repo/manifests/Q4_K_M" (tag "latest" lets Hugging Face pick its
// default quant). Heap string (llem_free). LLEM_EINVAL for an invalid name or a plain-http
// base without insecure.
enum llem_err store_registry_manifest_url(const char *name, const struct store_registry_opts *o,
                                          char **url, struct llem_errbuf *eb);
// Direct download URL of one GGUF file of a Hugging Face repo:
// "https://huggingface.co/<user>/<repo>/resolve/<revision>/<file>" (revision NULL: "main").
// user/repo/file are validated (no "..", no '/' except inside file's sub-folders, .gguf only).
enum llem_err store_hf_file_url(const char *user, const char *repo, const char *file,
                                const char *revision, char **url, struct llem_errbuf *eb);
