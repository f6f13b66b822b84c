// tests/golden/gguf_rewrite.c: rewrites ../shared/models/stories260K.gguf (written by
// llama.cpp's tools) through our reader and writer and checks that the result is byte-identical
// to the original, i.e. the writer lays files out exactly as llama.cpp does. When
// LLAMA_CPP_BIN names a llama.cpp bin folder, also runs its llama-gguf reader on our file.
// Skips (77) when ../shared is absent.
#include <sys/wait.h>

#include "check.h"
#include "unit/gguf_sample.h"

int main(void)
{
    char src[1024];
    test_shared_path(src, sizeof src, "models/stories260K.gguf");
    struct llem_errbuf eb = {0};
    struct gguf_file *f = NULL;
    CHECK_OK(gguf_open(&f, src, NULL, &eb), &eb);
    if (!f) {
        return TEST_EXIT();
    }
    struct gguf_writer *w = gguf_writer_new();
    CHECK_OK(gguf_writer_copy_kv(w, f, NULL), &eb);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor_info *t = gguf_tensor(f, i);
        CHECK_OK(
            gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, gguf_tensor_data(f, i)),
            &eb);
    }
    char out[256];
    sample_path(out, sizeof out, "rewrite");
    CHECK_OK(gguf_writer_write(w, out, &eb), &eb);
    gguf_writer_free(w);
    gguf_close(f);

    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK_OK(fs_read_file(src, 1u << 30, &a, &na, &eb), &eb);
    CHECK_OK(fs_read_file(out, 1u << 30, &b, &nb, &eb), &eb);
    CHECK_EQ_I64(nb, na);
    if (a && b && na == nb) {
        size_t diff = 0;
        while (diff < na && a[diff] == b[diff]) {
            diff++;
        }
        if (diff != na) {
            fprintf(stderr, "first difference at byte %zu\n", diff);
        }
        CHECK(diff == na);
    }
    llem_free(a);
    llem_free(b);

    const char *bin = getenv("LLAMA_CPP_BIN");
    if (bin && *bin) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s/llama-gguf' '%s' r n > /dev/null 2>&1", bin, out);
        int st = system(cmd);
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        fprintf(stderr, "llama-gguf read our file: exit %d\n",
                WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    } else {
        fprintf(stderr, "skip  llama-gguf check (set LLAMA_CPP_BIN to llama.cpp's build/bin)\n");
    }
    unlink(out);
    return TEST_EXIT();
}
