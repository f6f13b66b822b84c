// backend/cpu/cpu.h: the CPU backend (always built). Host memory buffers (64-byte aligned, or
// wrapped mmapped weights), and a graph executor whose threads (a persistent pool) take
// fixed chunks of each node and wait only for the previous node's chunks to complete. Kernels
// come in a scalar reference and SIMD variants chosen at run time (base/cpu.h); results do not
// depend on the thread count.
// Entry points: cpu_backend_new (or backend_new("cpu", ...)), cpu_backend_reg.
#pragma once
#include "backend/backend.h"

enum cpu_isa {
    CPU_ISA_SCALAR = 0, // the reference kernels (ops/<op>.c)
    CPU_ISA_AVX2 = 1,   // AVX2 + FMA + F16C (x86/<op>_avx2.c), scalar where none exists
    CPU_ISA_COUNT
};

const char *cpu_isa_name(enum cpu_isa isa); // "scalar", "avx2"
// The best ISA this machine supports (after LLEM_CPU_DISABLE).
enum cpu_isa cpu_isa_best(void);

// Creates the CPU backend. p->isa: NULL/"auto", "scalar" or "avx2" (EUNSUPPORTED if this CPU
// lacks it); p->n_threads 0 = physical cores (clamped to LLEM_MAX_THREADS).
enum llem_err cpu_backend_new(const struct backend_params *p, struct backend **out,
                              struct llem_errbuf *eb);
int cpu_backend_n_threads(const struct backend *be);
enum cpu_isa cpu_backend_isa(const struct backend *be);
// Changes the thread count used by the next graph_compute (1..LLEM_MAX_THREADS). Work sizes
// depend on it, so re-run backend_galloc_alloc_graph afterwards.
void cpu_backend_set_n_threads(struct backend *be, int n_threads);

extern const struct backend_reg cpu_backend_reg;
