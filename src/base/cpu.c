// base/cpu.c: cpuid/xgetbv (x86-64) and getauxval (aarch64) feature detection, with the
// LLEM_CPU_DISABLE override (see cpu.h).
#include "base/cpu.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

// xgetbv by opcode so this file needs no -mxsave.
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_hw(struct cpu_features *f)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) {
        return;
    }
    f->sse3 = c & (1u << 0);
    f->ssse3 = c & (1u << 9);
    bool fma = c & (1u << 12);
    bool osxsave = c & (1u << 27);
    bool avx = c & (1u << 28);
    bool f16c = c & (1u << 29);
    if (osxsave) {
        uint64_t xcr0 = xgetbv0();
        f->os_ymm = (xcr0 & 0x6) == 0x6;
        f->os_zmm = f->os_ymm && (xcr0 & 0xE0) == 0xE0;
    }
    f->avx = avx && f->os_ymm;
    f->fma = fma && f->avx;
    f->f16c = f16c && f->avx;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7) {
        return;
    }
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = (b & (1u << 5)) && f->avx;
    f->bmi2 = b & (1u << 8);
    f->avx512f = (b & (1u << 16)) && f->os_zmm;
    f->avx512bw = (b & (1u << 30)) && f->avx512f;
    f->avx512vl = (b & (1u << 31)) && f->avx512f;
    f->avx512vnni = (c & (1u << 11)) && f->avx512f;
    __cpuid_count(7, 1, a, b, c, d);
    f->avxvnni = (a & (1u << 4)) && f->avx2;
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
static void detect_hw(struct cpu_features *f)
{
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    f->neon = hw & HWCAP_ASIMD;
    f->dotprod = f->neon && (hw & HWCAP_ASIMDDP);
    f->i8mm = f->neon && (hw2 & HWCAP2_I8MM);
}
#else
static void detect_hw(struct cpu_features *f)
{
    (void)f; // unknown architecture: scalar only
}
#endif

struct flag {
    const char *name;
    size_t off;
};

#define FLAG(n) {#n, offsetof(struct cpu_features, n)}
static const struct flag flags[] = {
    FLAG(sse3),     FLAG(ssse3),    FLAG(avx),        FLAG(avx2),    FLAG(fma),
    FLAG(f16c),     FLAG(bmi2),     FLAG(avx512f),    FLAG(avx512bw), FLAG(avx512vl),
    FLAG(avx512vnni), FLAG(avxvnni), FLAG(neon),      FLAG(dotprod), FLAG(i8mm),
};
#undef FLAG

static bool *flag_ptr(struct cpu_features *f, size_t off)
{
    return (bool *)((char *)f + off);
}

// Re-derives dependent flags after some were switched off.
static void apply_deps(struct cpu_features *f)
{
    f->avx2 = f->avx2 && f->avx;
    f->fma = f->fma && f->avx;
    f->f16c = f->f16c && f->avx;
    f->avx512f = f->avx512f && f->avx2;
    f->avx512bw = f->avx512bw && f->avx512f;
    f->avx512vl = f->avx512vl && f->avx512f;
    f->avx512vnni = f->avx512vnni && f->avx512f;
    f->avxvnni = f->avxvnni && f->avx2;
    f->dotprod = f->dotprod && f->neon;
    f->i8mm = f->i8mm && f->neon;
}

static bool disable_one(struct cpu_features *f, const char *name, size_t len)
{
    if (len == 3 && memcmp(name, "all", 3) == 0) {
        bool ymm = f->os_ymm, zmm = f->os_zmm;
        memset(f, 0, sizeof(*f));
        f->os_ymm = ymm;
        f->os_zmm = zmm;
        return true;
    }
    if (len == 6 && memcmp(name, "avx512", 6) == 0) {
        f->avx512f = false; // the dependents follow in apply_deps
        return true;
    }
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0) {
            *flag_ptr(f, flags[i].off) = false;
            return true;
        }
    }
    return false;
}

void cpu_features_detect(struct cpu_features *out, const char *disable, char *unknown,
                         size_t unknown_size)
{
    memset(out, 0, sizeof(*out));
    detect_hw(out);
    cpu_features_disable(out, disable, unknown, unknown_size);
}

void cpu_features_disable(struct cpu_features *out, const char *disable, char *unknown,
                          size_t unknown_size)
{
    if (unknown && unknown_size) {
        unknown[0] = '\0';
    }
    if (!disable) {
        return;
    }
    const char *p = disable;
    while (*p) {
        while (*p == ',' || *p == ' ') {
            p++;
        }
        const char *start = p;
        while (*p && *p != ',' && *p != ' ') {
            p++;
        }
        size_t len = (size_t)(p - start);
        if (len && !disable_one(out, start, len) && unknown && unknown_size && !unknown[0]) {
            snprintf(unknown, unknown_size, "%.*s", (int)(len < 64 ? len : 64), start);
        }
    }
    apply_deps(out);
}

char *cpu_features_str(const struct cpu_features *f, char *buf, size_t size)
{
    size_t used = 0;
    if (size) {
        buf[0] = '\0';
    }
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (!*(const bool *)((const char *)f + flags[i].off)) {
            continue;
        }
        int n = snprintf(buf + used, size - used, "%s%s", used ? " " : "", flags[i].name);
        if (n < 0 || (size_t)n >= size - used) {
            break;
        }
        used += (size_t)n;
    }
    return buf;
}

static struct cpu_features g_features;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    char unknown[72];
    const char *env = getenv("LLEM_CPU_DISABLE");
    cpu_features_detect(&g_features, env, unknown, sizeof(unknown));
    if (unknown[0]) {
        log_warn("LLEM_CPU_DISABLE: unknown feature \"%s\" ignored", unknown);
    }
}

const struct cpu_features *cpu_features(void)
{
    pthread_once(&g_once, init_once);
    return &g_features;
}

// ---- physical cores --------------------------------------------------------------------------

static long read_long_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    char line[32];
    long v = -1;
    if (fgets(line, sizeof(line), f)) {
        char *end;
        v = strtol(line, &end, 10);
        if (end == line || v < 0) {
            v = -1;
        }
    }
    fclose(f);
    return v;
}

// Distinct (package, core) pairs among cpu0..cpu{max-1} allowed by `set` (NULL = all).
static int count_cores(const char *root, int max_cpus, const cpu_set_t *set)
{
    enum { MAX_PAIRS = 1024 };
    static _Thread_local uint64_t pairs[MAX_PAIRS];
    int npairs = 0;
    for (int cpu = 0; cpu < max_cpus && cpu < CPU_SETSIZE; cpu++) {
        if (set && !CPU_ISSET(cpu, set)) {
            continue;
        }
        char path[512];
        snprintf(path, sizeof(path), "%s/cpu%d/topology/core_id", root, cpu);
        long core = read_long_file(path);
        snprintf(path, sizeof(path), "%s/cpu%d/topology/physical_package_id", root, cpu);
        long pkg = read_long_file(path);
        if (core < 0 || pkg < 0) {
            continue; // offline or absent
        }
        uint64_t key = (uint64_t)pkg << 32 | (uint32_t)core;
        bool seen = false;
        for (int i = 0; i < npairs && !seen; i++) {
            seen = pairs[i] == key;
        }
        if (!seen && npairs < MAX_PAIRS) {
            pairs[npairs++] = key;
        }
    }
    return npairs;
}

int cpu_physical_cores_from(const char *sysfs_cpu_dir, int max_cpus)
{
    return count_cores(sysfs_cpu_dir, max_cpus, NULL);
}

int cpu_physical_cores(void)
{
    cpu_set_t set;
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    int max_cpus = conf > 0 ? (int)conf : CPU_SETSIZE;
    bool have_set = sched_getaffinity(0, sizeof(set), &set) == 0;
    int n = count_cores("/sys/devices/system/cpu", max_cpus, have_set ? &set : NULL);
    if (n <= 0 && have_set) {
        n = CPU_COUNT(&set);
    }
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    return n;
}
