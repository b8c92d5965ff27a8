/*
 * blis_arch.h - which BLIS sub-configuration (set of micro-kernels) to use
 * on this CPU, as pure functions of the CPU's identity and the user's
 * BLIS_ARCH_TYPE. Internal to the kernels room (blas.c applies the choice);
 * tests call these functions with made-up CPUs.
 *
 * Why: BLIS 0.9 picks its sub-configuration from cpuid when it initialises
 * and falls back to plain C kernels ('generic') on CPUs it does not know,
 * e.g. AMD family 26 (Zen 5): 27 instead of ~170 GFLOP/s on one core. It
 * reads BLIS_ARCH_TYPE (an integer only: "skx" reads as 0) once, at that
 * moment, and dies with SIGILL when told to use kernels the CPU lacks.
 */
#ifndef ORCH_BLIS_ARCH_H
#define ORCH_BLIS_ARCH_H

#include "core/err.h"

/* CPU features the sub-configurations need (bits of orch_cpu.features).
 * AVX and AVX-512 bits are set only when the OS saves the wider registers
 * (XGETBV), since a kernel using them would otherwise fault. */
enum {
    ORCH_CPU_SSE3 = 1u << 0,
    ORCH_CPU_SSSE3 = 1u << 1,
    ORCH_CPU_AVX = 1u << 2,
    ORCH_CPU_FMA3 = 1u << 3,
    ORCH_CPU_AVX2 = 1u << 4,
    ORCH_CPU_FMA4 = 1u << 5,
    ORCH_CPU_AVX512F = 1u << 6,
    ORCH_CPU_AVX512DQ = 1u << 7,
    ORCH_CPU_AVX512CD = 1u << 8,
    ORCH_CPU_AVX512BW = 1u << 9,
    ORCH_CPU_AVX512VL = 1u << 10,
    ORCH_CPU_AVX512PF = 1u << 11,
};

typedef enum orch_cpu_vendor {
    ORCH_VENDOR_OTHER,
    ORCH_VENDOR_INTEL,
    ORCH_VENDOR_AMD
} orch_cpu_vendor;

typedef struct orch_cpu {
    orch_cpu_vendor vendor;
    unsigned family, model; /* display family and model, as BLIS and /proc/cpuinfo count */
    unsigned features;      /* ORCH_CPU_* */
    char brand[64];         /* "AMD EPYC 9B45", or "" */
} orch_cpu;

/* This machine's CPU (cpuid); a zeroed struct where cpuid does not exist. */
void orch_cpu_read(orch_cpu *cpu);

/* "avx512f avx512dq ... fma avx2": the feature names, space separated. */
void orch_cpu_feature_names(const orch_cpu *cpu, char *out, size_t cap);

/* BLIS 0.9's sub-configurations (those Debian's x86-64 build contains), in
 * BLIS's own order. ids are BLIS's arch_t values. */
int orch_blis_n_subconfigs(void);
int orch_blis_subconfig_id(int index);
const char *orch_blis_subconfig_name(int id); /* NULL for an unknown id */
int orch_blis_generic_id(void);

/* NULL when the CPU can run sub-configuration id, else what it lacks
 * ("FMA4 (AMD family 0x15)": what the kernels need), a static string. */
const char *orch_blis_unsupported(const orch_cpu *cpu, int id);

/* 1 when BLIS 0.9 picks something better than generic by itself on this
 * CPU (its bli_cpuid_query_id rules, which BLIS does not export): Intel
 * from SSSE3 on, AMD families 0x15, 0x17 and 0x19 with their features. */
int orch_blis_knows(const orch_cpu *cpu);

/* The fastest sub-configuration the CPU supports: skx with AVX-512, zen3
 * (AMD) or haswell (others) with AVX2+FMA, sandybridge with AVX, penryn
 * with SSSE3, else generic. */
int orch_blis_best(const orch_cpu *cpu);

typedef struct orch_blis_choice {
    int id;        /* the sub-configuration to run on */
    int set_env;   /* 1: BLIS_ARCH_TYPE must be set to id before BLIS starts */
    char why[192]; /* one sentence for --version, plan and the run record */
} orch_blis_choice;

/* Decide. env is BLIS_ARCH_TYPE as the user set it (NULL or "" when not):
 * an integer id or a sub-configuration name. A value that is unknown, or
 * names kernels this CPU cannot run, is refused (ORCH_EINVAL, one line)
 * rather than left to BLIS, which would abort or die with SIGILL. Without
 * env, BLIS's own choice stands unless it is generic on a CPU that runs a
 * better one. */
orch_status orch_blis_choose(const orch_cpu *cpu, const char *env, orch_blis_choice *out,
                             orch_err *err);

#endif
