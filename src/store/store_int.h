// store/store_int.h: what the store's files share and tests may reach: the struct store, manifests
// (Docker v2 schema-2 JSON with Ollama's media types), path helpers, the pending-digest set that
// keeps prune away from blobs still being written, and small parsers exposed for unit tests.
#pragma once
#include <pthread.h>

#include "store/store.h"

#define STORE_MT_MANIFEST  "application/vnd.docker.distribution.manifest.v2+json"
#define STORE_MT_CONFIG    "application/vnd.docker.container.image.v1+json"
#define STORE_MT_PREFIX    "application/vnd.ollama.image."
#define STORE_MT_MODEL     STORE_MT_PREFIX "model"
#define STORE_MT_PROJECTOR STORE_MT_PREFIX "projector"
#define STORE_MT_ADAPTER   STORE_MT_PREFIX "adapter"
#define STORE_MT_TEMPLATE  STORE_MT_PREFIX "template"
#define STORE_MT_PROMPT    STORE_MT_PREFIX "prompt" // legacy name of template
#define STORE_MT_SYSTEM    STORE_MT_PREFIX "system"
#define STORE_MT_PARAMS    STORE_MT_PREFIX "params"
#define STORE_MT_MESSAGES  STORE_MT_PREFIX "messages"
#define STORE_MT_LICENSE   STORE_MT_PREFIX "license"

// Caps on what the store reads from disk or the network.
#define STORE_MANIFEST_MAX_BYTES   (4u << 20) // real manifests are < 4 KiB
#define STORE_MANIFEST_MAX_LAYERS  4096u
#define STORE_TEXT_LAYER_MAX_BYTES (16u << 20) // template/system/params/license/messages
#define STORE_MEDIA_TYPE_MAX       255u
#define STORE_MODELFILE_MAX_BYTES  (16u << 20)
#define STORE_MODELFILE_MAX_LINES  65536u
#define STORE_PATH_MAX             4096u

struct store {
    char *root;
    char *ro_root; // NULL when none
    bool no_prune;
    pthread_mutex_t lock;                // manifests writes, prune, pending set
    char (*pending)[STORE_DIGEST_BYTES]; // digests being written: prune must keep them
    size_t n_pending, cap_pending;
};

struct store_layer {
    char media_type[STORE_MEDIA_TYPE_MAX + 1];
    char digest[STORE_DIGEST_BYTES]; // canonical "sha256:<hex>"
    uint64_t size;
    char *from; // NULL when absent
};

struct store_manifest {
    struct store_layer config;
    struct store_layer *layers;
    size_t n_layers;
};

// Parses and validates a manifest: schemaVersion 2, a config and layers whose digests are
// valid, sizes non-negative integers below 2^53, media types printable and <= 255 bytes.
// LLEM_EFORMAT naming the field; on error *m is zeroed.
enum llem_err store_manifest_parse(const char *json, size_t len, struct store_manifest *m,
                                   struct llem_errbuf *eb);
// Serializes (compact JSON, same field order as Ollama). Heap string or NULL (ENOMEM).
char *store_manifest_to_json(const struct store_manifest *m);
void store_manifest_deinit(struct store_manifest *m);
// Appends a copy of layer (from duplicated); LLEM_ENOMEM.
enum llem_err store_manifest_add_layer(struct store_manifest *m, const struct store_layer *l);
// Removes every layer with media type mt.
void store_manifest_remove_type(struct store_manifest *m, const char *mt);
const struct store_layer *store_manifest_find(const struct store_manifest *m, const char *mt);

// Path of the manifest for n under root (case-insensitive match of an existing one at each
// level, else the name's own spelling). *exists tells which. Heap string.
enum llem_err store_manifest_path(const char *root, const struct store_name *n, char **path,
                                  bool *exists, struct llem_errbuf *eb);
// Reads + parses the manifest file; also returns its digest and mtime (either may be NULL).
enum llem_err store_manifest_load(const char *path, struct store_manifest *m, char **json,
                                  char digest[STORE_DIGEST_BYTES], int64_t *mtime,
                                  struct llem_errbuf *eb);
// Writes the manifest for n in s->root atomically (creating folders).
enum llem_err store_manifest_save(struct store *s, const struct store_name *n,
                                  const struct store_manifest *m, struct llem_errbuf *eb);

// Writes manifest bytes exactly as given (a pulled manifest keeps the registry's digest).
enum llem_err store_manifest_save_raw(struct store *s, const struct store_name *n, const char *json,
                                      size_t len, struct llem_errbuf *eb);

// "root/blobs/sha256-<hex>" for a canonical digest (no validation). Heap string.
char *store_blob_path_in(const char *root, const char *digest);
// Adds / removes a digest in the set prune must keep (store lock taken inside).
enum llem_err store_pending_add(struct store *s, const char *digest);
void store_pending_remove(struct store *s, const char *digest);
// Writes a small in-memory blob; digest out.
enum llem_err store_blob_put_bytes(struct store *s, const void *data, size_t n,
                                   char digest[STORE_DIGEST_BYTES], struct llem_errbuf *eb);
// Reads a small blob (<= cap bytes) into a NUL-terminated heap buffer.
enum llem_err store_blob_read_text(const struct store *s, const char *digest, size_t cap,
                                   char **out, struct llem_errbuf *eb);
// Hashes a file; digest out (canonical form).
enum llem_err store_hash_file(const char *path, char digest[STORE_DIGEST_BYTES], uint64_t *size,
                              struct llem_errbuf *eb);
// Prune with the store lock already held.
enum llem_err store_prune_locked(struct store *s, size_t *removed, struct llem_errbuf *eb);

// "sha256:<hex>" -> "sha256-<hex>" file-name form (buf >= STORE_DIGEST_BYTES).
void store_digest_to_file(const char *digest, char *buf);
// Details (config blob) of a manifest: reads the config blob from root (or ro_root); missing
// or malformed config gives empty strings, never an error except ENOMEM.
enum llem_err store_details_load(const struct store *s, const struct store_manifest *m,
                                 struct store_details *d);
void store_details_deinit(struct store_details *d);

// ---- registry internals exposed for unit tests ------------------------------------------------

struct store_auth_challenge {
    char scheme[16];               // "Bearer" or "Basic"
    char *realm, *service, *scope; // heap, NULL when absent
};
// Parses a WWW-Authenticate header value. LLEM_EFORMAT when malformed.
enum llem_err store_auth_parse(const char *header, struct store_auth_challenge *c);
void store_auth_deinit(struct store_auth_challenge *c);
// Resolves a Location header against the registry base URL (absolute URLs kept; "/path"
// joined to the base's scheme://host[:port]). Heap string or NULL.
char *store_url_resolve(const char *base, const char *location);
