// tests/unit/base_cpu.c: feature detection is consistent (dependent flags imply their bases),
// LLEM_CPU_DISABLE-style lists switch features and their dependents off, the cached
// cpu_features() honours the environment, and physical cores are counted from a fake sysfs.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cpu.h"
#include "check.h"

static void test_consistent(void)
{
    struct cpu_features f;
    cpu_features_detect(&f, NULL, NULL, 0);
    CHECK(!f.avx2 || f.avx);
    CHECK(!f.avx || f.os_ymm);
    CHECK(!f.avx512f || f.os_zmm);
    CHECK(!f.avx512bw || f.avx512f);
    CHECK(!f.fma || f.avx);
    CHECK(!f.dotprod || f.neon);
#if defined(__x86_64__)
    CHECK(f.sse3); // every x86-64 CPU that can run a modern distribution has it
    CHECK(!f.neon);
#endif
#if defined(__AVX2__)
    CHECK(f.avx2); // the compiler was told this machine has it
#endif
    char buf[256];
    cpu_features_str(&f, buf, sizeof(buf));
    fprintf(stderr, "  features: %s\n", buf);
    char tiny[4];
    cpu_features_str(&f, tiny, sizeof(tiny)); // truncates safely
    CHECK(strlen(tiny) < sizeof(tiny));
}

static void test_disable(void)
{
    struct cpu_features f, g;
    cpu_features_detect(&f, NULL, NULL, 0);
    char unknown[16];
    cpu_features_detect(&g, "avx2,avx512", unknown, sizeof(unknown));
    CHECK(!g.avx2 && !g.avx512f && !g.avx512bw && !g.avx512vl && !g.avx512vnni && !g.avxvnni);
    CHECK_EQ_I64(g.avx, f.avx); // untouched
    CHECK_EQ_I64(g.fma, f.fma);
    CHECK_EQ_STR(unknown, "");
    cpu_features_detect(&g, "avx", NULL, 0);
    CHECK(!g.avx && !g.avx2 && !g.fma && !g.f16c && !g.avx512f);
    cpu_features_detect(&g, " sse3 , bogus,fma", unknown, sizeof(unknown));
    CHECK(!g.sse3 && !g.fma);
    CHECK_EQ_STR(unknown, "bogus");
    CHECK_EQ_I64(g.avx2, f.avx2);
    cpu_features_detect(&g, "all", NULL, 0);
    char buf[64];
    CHECK_EQ_STR(cpu_features_str(&g, buf, sizeof(buf)), "");
    cpu_features_detect(&g, ",,,", NULL, 0);
    CHECK(memcmp(&f, &g, sizeof(f)) == 0);
}

static void test_disable_synthetic(void)
{
    // Every flag on, as on a machine with everything: dependents must follow their bases.
    struct cpu_features all;
    memset(&all, 1, sizeof(all));
    struct cpu_features g = all;
    cpu_features_disable(&g, "avx2", NULL, 0);
    CHECK(!g.avx2 && !g.avx512f && !g.avx512bw && !g.avx512vl && !g.avx512vnni && !g.avxvnni);
    CHECK(g.avx && g.fma && g.f16c && g.bmi2);
    g = all;
    cpu_features_disable(&g, "avx512", NULL, 0);
    CHECK(!g.avx512f && !g.avx512bw && !g.avx512vl && !g.avx512vnni);
    CHECK(g.avx2 && g.avxvnni);
    g = all;
    cpu_features_disable(&g, "avx", NULL, 0);
    CHECK(!g.avx2 && !g.fma && !g.f16c && !g.avx512f && !g.avxvnni && g.sse3 && g.ssse3);
    g = all;
    cpu_features_disable(&g, "neon", NULL, 0);
    CHECK(!g.neon && !g.dotprod && !g.i8mm);
    g = all;
    cpu_features_disable(&g, "dotprod", NULL, 0);
    CHECK(g.neon && !g.dotprod && g.i8mm);
    g = all;
    cpu_features_disable(&g, NULL, NULL, 0);
    CHECK(memcmp(&g, &all, sizeof(g)) == 0);
}

static void test_env_override(void)
{
    setenv("LLEM_CPU_DISABLE", "avx2,avx512", 1);
    const struct cpu_features *f = cpu_features();
    CHECK(f == cpu_features()); // computed once
    CHECK(!f->avx2 && !f->avx512f);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

static void test_physical_cores(void)
{
    char root[] = "/tmp/llem_cpu_XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    // 2 packages x 2 cores x 2 SMT threads = 8 CPUs, 4 physical cores; cpu8 has no topology.
    char path[256];
    for (int cpu = 0; cpu < 9; cpu++) {
        snprintf(path, sizeof(path), "%s/cpu%d", root, cpu);
        mkdir(path, 0700);
        if (cpu == 8) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/cpu%d/topology", root, cpu);
        mkdir(path, 0700);
        char v[16];
        snprintf(path, sizeof(path), "%s/cpu%d/topology/core_id", root, cpu);
        snprintf(v, sizeof(v), "%d\n", cpu % 2);
        write_file(path, v);
        snprintf(path, sizeof(path), "%s/cpu%d/topology/physical_package_id", root, cpu);
        snprintf(v, sizeof(v), "%d\n", (cpu / 2) % 2);
        write_file(path, v);
    }
    CHECK_EQ_I64(cpu_physical_cores_from(root, 16), 4);
    CHECK_EQ_I64(cpu_physical_cores_from(root, 2), 2);
    CHECK_EQ_I64(cpu_physical_cores_from("/nonexistent", 4), 0);
    CHECK(check_remove_tree(root) == 0);

    int n = cpu_physical_cores();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(n >= 1 && n <= online);
    fprintf(stderr, "  physical cores: %d (online CPUs %ld)\n", n, online);
}

int main(void)
{
    RUN_TEST(test_consistent);
    RUN_TEST(test_disable);
    RUN_TEST(test_disable_synthetic);
    RUN_TEST(test_env_override);
    RUN_TEST(test_physical_cores);
    return TEST_EXIT();
}
