// cli/gen.c: `llem gen`: writes a synthetic GGUF model (random weights, real shapes, names
// and metadata of an architecture) with synth/synth.h. Used by tests (preset tiny) and to
// make the benchmark models (bench/gen-models.sh). Prints what it wrote, the time taken and
// the peak memory, so the generator's cost stays visible.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fs.h"
#include "base/timeutil.h"
#include "cli/cli.h"
#include "synth/synth.h"
#include "tensor/types.h"

static void gen_usage(FILE *out)
{
    fprintf(out,
            "Usage: llem gen --preset NAME [--arch ARCH] [--type TYPE] [--seed N] [-o OUT.gguf]\n"
            "                [--vocab VOCAB.gguf | --gen-vocab] [--ctx N] [--chat-template FILE]\n"
            "                [--threads N] [--quiet]\n"
            "Writes a GGUF model with seeded random weights and the exact tensor names, shapes\n"
            "and metadata of ARCH. The same options and seed give the same bytes.\n\n"
            "  --preset NAME   shape preset (see below); tiny works with every architecture\n"
            "  --arch ARCH     architecture for tiny (default llama)\n"
            "  --type TYPE     F32, F16 (default), BF16, Q8_0, Q4_0, Q4_K_M, ... (mixtures as\n"
            "                  llama-quantize applies them)\n"
            "  --vocab FILE    copy tokenizer.ggml.* from this GGUF (default: the preset's\n"
            "                  vocabulary from $LLEM_SHARED/testdata/tokenizer, else generated)\n"
            "  --gen-vocab     always use the small generated vocabulary\n"
            "  --ctx N         context_length (default: the preset's)\n"
            "  --chat-template FILE  set tokenizer.chat_template (default: none)\n"
            "  --threads N     worker threads (default: online CPUs; output is the same)\n"
            "  -o FILE         output (default <preset>-<TYPE>.gguf, <arch>-tiny-<TYPE>.gguf)\n\n"
            "Presets:\n");
    size_t n;
    const struct synth_preset *p = synth_preset_list(&n);
    for (size_t i = 0; i < n; i++) {
        const struct synth_hparams *h = &p[i].hp;
        char vocab[32];
        snprintf(vocab, sizeof vocab, h->n_vocab ? "%u" : "generated", h->n_vocab);
        fprintf(out, "  %-15s %-6s n_embd %u, %u layers, %u/%u heads, ffn %u, vocab %s\n",
                p[i].name, p[i].arch ? p[i].arch : "any", h->n_embd, h->n_layer, h->n_head,
                h->n_head_kv, h->n_ff, vocab);
    }
    fprintf(out, "Architectures:");
    for (size_t i = 0; synth_arch_name(i); i++) {
        fprintf(out, " %s", synth_arch_name(i));
    }
    fprintf(out, "\n");
}

static void progress(void *user, size_t done, size_t total)
{
    (void)user;
    fprintf(stderr, "\rllem gen: tensor %zu/%zu", done, total);
    if (done == total) {
        fputc('\n', stderr);
    }
}

int cli_gen(int argc, char **argv)
{
    struct synth_opts o = {0};
    const char *out = NULL, *tmpl_path = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (cli_is_help(a)) {
            gen_usage(stdout);
            return 0;
        } else if (strcmp(a, "--gen-vocab") == 0) {
            o.gen_vocab = true;
            continue;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
            continue;
        }
        if (a[0] != '-') {
            return cli_fail("gen", "unexpected argument '%s' (try --help)", a);
        }
        static const char *const with_value[] = {"--preset", "--arch", "--type", "--vocab",
                                                 "--chat-template", "-o", "--output", "--seed",
                                                 "--ctx", "--threads", "-t"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) {
            known = known || strcmp(a, with_value[k]) == 0;
        }
        if (!known) {
            return cli_fail("gen", "unknown option '%s' (try --help)", a);
        }
        if (!v) {
            return cli_fail("gen", "%s needs a value", a);
        }
        if (strcmp(a, "--preset") == 0) {
            o.preset = v;
        } else if (strcmp(a, "--arch") == 0) {
            o.arch = v;
        } else if (strcmp(a, "--type") == 0) {
            o.type = v;
        } else if (strcmp(a, "--vocab") == 0) {
            o.vocab_path = v;
        } else if (strcmp(a, "--chat-template") == 0) {
            tmpl_path = v;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            out = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (!cli_parse_i64(v, 0, INT64_MAX, &n)) {
                return cli_fail("gen", "bad --seed '%s'", v);
            }
            o.seed = (uint64_t)n;
        } else if (strcmp(a, "--ctx") == 0) {
            if (!cli_parse_i64(v, 1, UINT32_MAX, &n)) {
                return cli_fail("gen", "bad --ctx '%s'", v);
            }
            o.n_ctx = (uint32_t)n;
        } else if (strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0) {
            if (!cli_parse_i64(v, 1, 64, &n)) {
                return cli_fail("gen", "bad --threads '%s' (1..64)", v);
            }
            o.n_threads = (int)n;
        }
        i++;
    }
    if (!o.preset) {
        return cli_fail("gen", "--preset is required (try --help)");
    }
    const struct synth_preset *p = synth_preset_find(o.preset);
    if (!p) {
        return cli_fail("gen", "unknown preset '%s' (try --help)", o.preset);
    }
    const char *type = o.type ? o.type : "F16";
    const struct tensor_mixture *mix = tensor_mixture_find(type);
    if (!mix) {
        return cli_fail("gen", "unknown type '%s'", type);
    }
    char shared[4096], def_out[512];
    const char *root = getenv("LLEM_SHARED");
    snprintf(shared, sizeof shared, "%s/testdata/tokenizer", root && *root ? root : "../shared");
    o.vocab_dir = shared;
    if (!out) {
        if (p->arch) {
            snprintf(def_out, sizeof def_out, "%s-%s.gguf", p->name, mix->name);
        } else {
            snprintf(def_out, sizeof def_out, "%s-%s-%s.gguf", o.arch ? o.arch : "llama",
                     p->name, mix->name);
        }
        out = def_out;
    }
    char *tmpl = NULL;
    struct llem_errbuf eb = {0};
    if (tmpl_path) {
        size_t len;
        if (fs_read_file(tmpl_path, 1u << 20, &tmpl, &len, &eb) != LLEM_OK) {
            return cli_fail("gen", "%s", eb.msg);
        }
        o.chat_template = tmpl;
    }
    if (!quiet && isatty(STDERR_FILENO)) {
        o.progress = progress;
    }
    struct synth_result res;
    int64_t t0 = time_now_ns();
    enum llem_err err = synth_generate(&o, out, &res, &eb);
    int64_t t1 = time_now_ns();
    llem_free(tmpl);
    if (err) {
        return cli_fail("gen", "%s", eb.msg);
    }
    if (!quiet) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("wrote %s: %s %s, %zu tensors, %.3f B params, %.1f MiB of tensor data, "
               "vocab %u (%s)\n",
               out, o.arch ? o.arch : p->arch ? p->arch : "llama", mix->name, res.n_tensors,
               (double)res.n_params / 1e9, (double)res.n_data_bytes / 1048576.0, res.n_vocab,
               res.vocab_source);
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        printf("time %.2f s (cpu %.2f s), peak RSS %.1f MiB\n", (double)(t1 - t0) / 1e9, cpu,
               (double)ru.ru_maxrss / 1024.0);
    }
    return 0;
}
