/* blis_arch.c - CPU identity and the BLIS sub-configuration to use; see blis_arch.h. */
#include "kernels/blis_arch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <blis.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ORCH_HAVE_CPUID 1
#endif

/* --------------------------------------------------------------- cpuid */

static const struct {
    unsigned bit;
    const char *name;
} feature_names[] = {
    {ORCH_CPU_AVX512F, "avx512f"},   {ORCH_CPU_AVX512DQ, "avx512dq"},
    {ORCH_CPU_AVX512CD, "avx512cd"}, {ORCH_CPU_AVX512BW, "avx512bw"},
    {ORCH_CPU_AVX512VL, "avx512vl"}, {ORCH_CPU_AVX512PF, "avx512pf"},
    {ORCH_CPU_AVX2, "avx2"},         {ORCH_CPU_FMA3, "fma"},
    {ORCH_CPU_FMA4, "fma4"},         {ORCH_CPU_AVX, "avx"},
    {ORCH_CPU_SSSE3, "ssse3"},       {ORCH_CPU_SSE3, "sse3"},
};

void orch_cpu_read(orch_cpu *cpu)
{
    memset(cpu, 0, sizeof *cpu);
#ifdef ORCH_HAVE_CPUID
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return;
    unsigned max_leaf = a;
    char vendor[13];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = '\0';
    cpu->vendor = strcmp(vendor, "GenuineIntel") == 0   ? ORCH_VENDOR_INTEL
                  : strcmp(vendor, "AuthenticAMD") == 0 ? ORCH_VENDOR_AMD
                                                        : ORCH_VENDOR_OTHER;

    __get_cpuid(1, &a, &b, &c, &d);
    unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    cpu->family = base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family;
    cpu->model = (base_family == 0x6 || base_family == 0xf) ? base_model | (((a >> 16) & 0xf) << 4)
                                                            : base_model;
    unsigned f = 0;
    if (c & bit_SSE3)
        f |= ORCH_CPU_SSE3;
    if (c & bit_SSSE3)
        f |= ORCH_CPU_SSSE3;
    /* the wide registers count only when the OS saves them on a switch */
    int os_ymm = 0, os_zmm = 0;
    if ((c & bit_OSXSAVE) && (c & bit_AVX)) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        os_ymm = (lo & 0x6) == 0x6;
        os_zmm = os_ymm && (lo & 0xe0) == 0xe0;
    }
    if (os_ymm) {
        f |= ORCH_CPU_AVX;
        if (c & bit_FMA)
            f |= ORCH_CPU_FMA3;
    }
    if (max_leaf >= 7) {
        __get_cpuid_count(7, 0, &a, &b, &c, &d);
        if (os_ymm && (b & bit_AVX2))
            f |= ORCH_CPU_AVX2;
        if (os_zmm) {
            if (b & bit_AVX512F)
                f |= ORCH_CPU_AVX512F;
            if (b & bit_AVX512DQ)
                f |= ORCH_CPU_AVX512DQ;
            if (b & bit_AVX512CD)
                f |= ORCH_CPU_AVX512CD;
            if (b & bit_AVX512BW)
                f |= ORCH_CPU_AVX512BW;
            if (b & bit_AVX512VL)
                f |= ORCH_CPU_AVX512VL;
            if (b & bit_AVX512PF)
                f |= ORCH_CPU_AVX512PF;
        }
    }
    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000001) {
        unsigned ext_max = a;
        __get_cpuid(0x80000001, &a, &b, &c, &d);
        if (os_ymm && (c & bit_FMA4))
            f |= ORCH_CPU_FMA4;
        if (ext_max >= 0x80000004) {
            unsigned r[12];
            for (unsigned i = 0; i < 3; i++)
                __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
            char brand[49];
            memcpy(brand, r, 48);
            brand[48] = '\0';
            const char *s = brand;
            while (*s == ' ')
                s++;
            snprintf(cpu->brand, sizeof cpu->brand, "%s", s);
            size_t n = strlen(cpu->brand);
            while (n > 0 && cpu->brand[n - 1] == ' ')
                cpu->brand[--n] = '\0';
        }
    }
    cpu->features = f;
#endif
}

void orch_cpu_feature_names(const orch_cpu *cpu, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++) {
        if (!(cpu->features & feature_names[i].bit))
            continue;
        int w = snprintf(out + used, cap - used, "%s%s", used ? " " : "", feature_names[i].name);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
}

/* ---------------------------------------------------- sub-configurations */

#define F_HASWELL (ORCH_CPU_AVX | ORCH_CPU_FMA3 | ORCH_CPU_AVX2)

/* What each sub-configuration's kernels execute (BLIS 0.9's own feature
 * checks in bli_cpuid.c), and what to say when the CPU lacks it. */
static const struct subconfig {
    int id;
    const char *name;
    unsigned needs;
    const char *lacking;
} subconfigs[] = {
#ifdef BLIS_CONFIG_SKX
    {BLIS_ARCH_SKX, "skx",
     F_HASWELL | ORCH_CPU_AVX512F | ORCH_CPU_AVX512DQ | ORCH_CPU_AVX512BW | ORCH_CPU_AVX512VL,
     "AVX-512 F, DQ, BW and VL"},
#endif
#ifdef BLIS_CONFIG_KNL
    {BLIS_ARCH_KNL, "knl", F_HASWELL | ORCH_CPU_AVX512F | ORCH_CPU_AVX512PF,
     "AVX-512 PF (Xeon Phi)"},
#endif
#ifdef BLIS_CONFIG_HASWELL
    {BLIS_ARCH_HASWELL, "haswell", F_HASWELL, "AVX2 and FMA"},
#endif
#ifdef BLIS_CONFIG_SANDYBRIDGE
    {BLIS_ARCH_SANDYBRIDGE, "sandybridge", ORCH_CPU_AVX, "AVX"},
#endif
#ifdef BLIS_CONFIG_PENRYN
    {BLIS_ARCH_PENRYN, "penryn", ORCH_CPU_SSE3 | ORCH_CPU_SSSE3, "SSSE3"},
#endif
#ifdef BLIS_CONFIG_ZEN3
    {BLIS_ARCH_ZEN3, "zen3", F_HASWELL, "AVX2 and FMA"},
#endif
#ifdef BLIS_CONFIG_ZEN2
    {BLIS_ARCH_ZEN2, "zen2", F_HASWELL, "AVX2 and FMA"},
#endif
#ifdef BLIS_CONFIG_ZEN
    {BLIS_ARCH_ZEN, "zen", F_HASWELL, "AVX2 and FMA"},
#endif
#ifdef BLIS_CONFIG_EXCAVATOR
    {BLIS_ARCH_EXCAVATOR, "excavator", F_HASWELL, "AVX2 and FMA"},
#endif
#ifdef BLIS_CONFIG_STEAMROLLER
    {BLIS_ARCH_STEAMROLLER, "steamroller", ORCH_CPU_AVX | ORCH_CPU_FMA3 | ORCH_CPU_FMA4,
     "FMA4 (AMD family 0x15)"},
#endif
#ifdef BLIS_CONFIG_PILEDRIVER
    {BLIS_ARCH_PILEDRIVER, "piledriver", ORCH_CPU_AVX | ORCH_CPU_FMA3 | ORCH_CPU_FMA4,
     "FMA4 (AMD family 0x15)"},
#endif
#ifdef BLIS_CONFIG_BULLDOZER
    {BLIS_ARCH_BULLDOZER, "bulldozer", ORCH_CPU_AVX | ORCH_CPU_FMA4, "FMA4 (AMD family 0x15)"},
#endif
    {BLIS_ARCH_GENERIC, "generic", 0, NULL},
};

#define N_SUBCONFIGS ((int)(sizeof subconfigs / sizeof subconfigs[0]))

static const struct subconfig *find_id(int id)
{
    for (int i = 0; i < N_SUBCONFIGS; i++)
        if (subconfigs[i].id == id)
            return &subconfigs[i];
    return NULL;
}

int orch_blis_n_subconfigs(void)
{
    return N_SUBCONFIGS;
}

int orch_blis_subconfig_id(int index)
{
    ORCH_ASSERT(index >= 0 && index < N_SUBCONFIGS);
    return subconfigs[index].id;
}

const char *orch_blis_subconfig_name(int id)
{
    const struct subconfig *s = find_id(id);
    return s ? s->name : NULL;
}

int orch_blis_generic_id(void)
{
    return BLIS_ARCH_GENERIC;
}

const char *orch_blis_unsupported(const orch_cpu *cpu, int id)
{
    const struct subconfig *s = find_id(id);
    if (s == NULL)
        return "a sub-configuration of this BLIS build";
    return (cpu->features & s->needs) == s->needs ? NULL : s->lacking;
}

int orch_blis_knows(const orch_cpu *cpu)
{
    unsigned f = cpu->features;
    if (cpu->vendor == ORCH_VENDOR_INTEL)
        return (f & (ORCH_CPU_SSE3 | ORCH_CPU_SSSE3)) == (ORCH_CPU_SSE3 | ORCH_CPU_SSSE3);
    if (cpu->vendor != ORCH_VENDOR_AMD)
        return 0;
    if (cpu->family == 0x19 || cpu->family == 0x17)
        return (f & F_HASWELL) == F_HASWELL;
    if (cpu->family == 0x15) {
        unsigned m = cpu->model;
        if ((f & F_HASWELL) == F_HASWELL && m >= 0x60 && m <= 0x7f)
            return 1; /* excavator */
        if ((f & ORCH_CPU_FMA4) && (f & ORCH_CPU_AVX))
            return (m >= 0x30 && m <= 0x3f) || m == 0x02 || (m >= 0x10 && m <= 0x1f) || m <= 0x01;
    }
    return 0;
}

int orch_blis_best(const orch_cpu *cpu)
{
    static const int order_amd[] = {BLIS_ARCH_SKX, BLIS_ARCH_ZEN3, BLIS_ARCH_HASWELL,
                                    BLIS_ARCH_SANDYBRIDGE, BLIS_ARCH_PENRYN};
    static const int order_other[] = {BLIS_ARCH_SKX, BLIS_ARCH_HASWELL, BLIS_ARCH_SANDYBRIDGE,
                                      BLIS_ARCH_PENRYN};
    const int *order = cpu->vendor == ORCH_VENDOR_AMD ? order_amd : order_other;
    int n = cpu->vendor == ORCH_VENDOR_AMD ? 5 : 4;
    for (int i = 0; i < n; i++)
        if (find_id(order[i]) != NULL && orch_blis_unsupported(cpu, order[i]) == NULL)
            return order[i];
    return BLIS_ARCH_GENERIC;
}

/* An id from "6" or "zen3"; -1 when neither. */
static int parse_env(const char *env)
{
    const char *p = env;
    while (*p == ' ')
        p++;
    if (isdigit((unsigned char)*p)) {
        char *end;
        long v = strtol(p, &end, 10);
        while (*end == ' ')
            end++;
        return *end == '\0' && v >= 0 && v < 1000 ? (int)v : -1;
    }
    for (int i = 0; i < N_SUBCONFIGS; i++)
        if (strcasecmp(p, subconfigs[i].name) == 0)
            return subconfigs[i].id;
    return -1;
}

static void describe(const orch_cpu *cpu, char *out, size_t cap)
{
    const char *v = cpu->vendor == ORCH_VENDOR_AMD     ? "AMD"
                    : cpu->vendor == ORCH_VENDOR_INTEL ? "Intel"
                                                       : "this vendor's";
    snprintf(out, cap, "%s family 0x%x", v, cpu->family);
}

orch_status orch_blis_choose(const orch_cpu *cpu, const char *env, orch_blis_choice *out,
                             orch_err *err)
{
    memset(out, 0, sizeof *out);
    char who[48];
    describe(cpu, who, sizeof who);
    if (env != NULL && env[0] != '\0') {
        int id = parse_env(env);
        const char *name = orch_blis_subconfig_name(id);
        if (name == NULL)
            return orch_seterr(
                err, ORCH_EINVAL,
                "BLIS_ARCH_TYPE=%.40s is not a sub-configuration of this BLIS "
                "(give a name such as skx, haswell, zen3, generic, or BLIS's number)",
                env);
        const char *lacking = orch_blis_unsupported(cpu, id);
        if (lacking != NULL)
            return orch_seterr(
                err, ORCH_EINVAL,
                "BLIS_ARCH_TYPE=%.40s: the '%s' kernels need %s, which this CPU does "
                "not have",
                env, name, lacking);
        out->id = id;
        out->set_env = 1; /* BLIS reads numbers only: "zen3" would read as 0 (skx) */
        snprintf(out->why, sizeof out->why, "BLIS_ARCH_TYPE=%s set by the user", env);
        return ORCH_OK;
    }
    int best = orch_blis_best(cpu);
    if (!orch_blis_knows(cpu) && best != BLIS_ARCH_GENERIC) {
        out->id = best;
        out->set_env = 1;
        snprintf(out->why, sizeof out->why,
                 "chosen by orch: BLIS does not know %s and would use its generic C kernels", who);
        return ORCH_OK;
    }
    out->id = -1; /* whatever BLIS picks; blas.c reads it back */
    snprintf(out->why, sizeof out->why, "BLIS's own choice for %s", who);
    return ORCH_OK;
}
