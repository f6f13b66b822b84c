// base/cpu.h: CPU feature detection for run-time kernel dispatch (backend/cpu picks the
// AVX-512, AVX2 or scalar variant of each op from these flags). x86 flags come from cpuid and
// are only set when the OS also saves the register state (xgetbv); aarch64 flags from
// getauxval. LLEM_CPU_DISABLE=avx2,avx512 (or "all") switches features off, so tests can force
// the scalar path on any machine. Thread-safe.
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct cpu_features {
    // x86-64
    bool sse3, ssse3, avx, avx2, fma, f16c, bmi2;
    bool avx512f, avx512bw, avx512vl, avx512vnni, avxvnni;
    bool os_ymm; // OS saves YMM state (XCR0 bits 1-2): needed for any AVX instruction
    bool os_zmm; // OS saves ZMM/opmask state (XCR0 bits 5-7): needed for AVX-512
    // aarch64
    bool neon, dotprod, i8mm;
};

// The features of this machine minus LLEM_CPU_DISABLE, computed once on first call (any
// thread); the pointer stays valid for the life of the process.
const struct cpu_features *cpu_features(void);

// Detects into *out and applies `disable` (a comma-separated list as in LLEM_CPU_DISABLE, may
// be NULL). Disabling a feature also disables every feature that builds on it (avx -> avx2,
// fma, f16c, avx512*, avxvnni; avx2 -> avx512*, avxvnni; avx512 = every avx512* flag; neon ->
// dotprod, i8mm; all = everything). Unknown names are ignored; if `unknown` is non-NULL the
// first one is copied there (NUL-terminated, truncated to unknown_size) so the caller can warn.
void cpu_features_detect(struct cpu_features *out, const char *disable, char *unknown,
                         size_t unknown_size);

// Physical cores this process may run on: distinct (physical_package_id, core_id) pairs of
// the CPUs in its affinity mask, from /sys/devices/system/cpu; falls back to the CPUs in the
// mask, then to online CPUs. Always >= 1. Computed on each call (cheap; cache it if hot).
int cpu_physical_cores(void);
// The same count over cpu<N>/topology under `sysfs_cpu_dir` for N in [0, max_cpus), ignoring
// affinity (tests point it at a fake tree). Returns 0 when no topology was readable.
int cpu_physical_cores_from(const char *sysfs_cpu_dir, int max_cpus);

// Applies a disable list to an existing set of flags (the second half of
// cpu_features_detect; tests use it on synthetic flag sets).
void cpu_features_disable(struct cpu_features *f, const char *disable, char *unknown,
                          size_t unknown_size);

// "avx avx2 fma f16c ..." (the enabled flags, space-separated) into buf; returns buf.
char *cpu_features_str(const struct cpu_features *f, char *buf, size_t size);
