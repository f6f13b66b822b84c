// cli/quantize.c: `llem quantize IN.gguf OUT.gguf TYPE [--threads N]`: converts a model's
// weights to a whole-model target (tensor/mixture.c picks each tensor's type as llama-quantize
// does without an importance matrix), copies all metadata, sets general.file_type and
// general.quantization_version, and writes OUT atomically. Rows of each tensor are split over
// N threads. Progress is a bar on a terminal, one line per tensor otherwise.
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "tensor/quantize_file.h"
#include "tensor/types.h"

#define VERB "quantize"
#define MAX_THREADS 256

static void usage(FILE *out)
{
    size_t n;
    const struct tensor_mixture *m = tensor_mixture_list(&n);
    fprintf(out, "Usage: llem quantize IN.gguf OUT.gguf TYPE [--threads N]\n\n"
                 "Quantizes a GGUF model (F32/F16/BF16 weights; quantized weights are\n"
                 "dequantized first, with a warning) to a whole-model TYPE:\n  ");
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s%s", m[i].name, i + 1 < n ? " " : "\n");
    }
    fprintf(out, "\nOptions:\n"
                 "  --threads N   worker threads (default: online CPUs)\n"
                 "  -h, --help    show this help\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(bool tty, int64_t i, int64_t n, const char *name, const char *from,
                     const char *to)
{
    if (tty) {
        const int width = 30;
        int fill = n > 0 ? (int)((i + 1) * width / n) : width;
        fprintf(stderr, "\r[%.*s%*s] %3d%% %-40.40s", fill, "##############################",
                width - fill, "", (int)(n > 0 ? (i + 1) * 100 / n : 100), name);
        if (i + 1 == n) {
            fputc('\n', stderr);
        }
    } else {
        fprintf(stderr, "[%4lld/%4lld] %-40s %6s -> %s\n", (long long)(i + 1), (long long)n, name,
                from, to);
    }
    fflush(stderr);
}

struct cli_progress {
    bool tty;
};

static bool on_progress(void *ctx, const struct tensor_qfile_progress *p)
{
    const struct cli_progress *cp = ctx;
    progress(cp->tty, p->i, p->n, p->name, gguf_type_name(p->from), gguf_type_name(p->to));
    return true;
}

static int quantize(const char *in_path, const char *out_path, const struct tensor_mixture *mix,
                    int nth)
{
    struct llem_errbuf eb = {0};
    double t0 = now_s();
    struct cli_progress cp = {isatty(STDERR_FILENO) == 1};
    struct tensor_qfile_stats st;
    if (tensor_quantize_file(in_path, out_path, mix->name, nth, on_progress, &cp, &st, &eb) !=
        LLEM_OK) {
        return cli_fail(VERB, "%s", eb.msg);
    }
    printf("%s: %s, %.2f MiB -> %.2f MiB, %lld tensors, %.1f s, %d thread%s\n", out_path,
           mix->name, (double)st.bytes_in / 1048576.0, (double)st.bytes_out / 1048576.0,
           (long long)st.n_tensors, now_s() - t0, nth, nth == 1 ? "" : "s");
    return 0;
}

int cli_quantize(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL};
    int n_pos = 0;
    int64_t nth = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0) {
            if (i + 1 >= argc || !cli_parse_i64(argv[i + 1], 1, MAX_THREADS, &nth)) {
                return cli_fail(VERB, "--threads needs a number from 1 to %d", MAX_THREADS);
            }
            i++;
        } else if (strncmp(a, "--threads=", 10) == 0) {
            if (!cli_parse_i64(a + 10, 1, MAX_THREADS, &nth)) {
                return cli_fail(VERB, "--threads needs a number from 1 to %d", MAX_THREADS);
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_fail(VERB, "unknown option '%s' (try 'llem quantize --help')", a);
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            return cli_fail(VERB, "unexpected argument '%s' (try 'llem quantize --help')", a);
        }
    }
    if (n_pos < 3) {
        return cli_fail(VERB, "usage: llem quantize IN.gguf OUT.gguf TYPE [--threads N]");
    }
    const struct tensor_mixture *mix = tensor_mixture_find(pos[2]);
    if (!mix) {
        return cli_fail(VERB, "unknown type '%s' (see 'llem quantize --help')", pos[2]);
    }
    if (access(pos[0], R_OK) != 0) {
        return cli_fail(VERB, "%s: no such file or not readable", pos[0]);
    }
    if (nth == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nth = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
    }
    return quantize(pos[0], pos[1], mix, (int)nth);
}
