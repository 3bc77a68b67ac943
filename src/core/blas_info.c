/* OpenBLAS kernel / CPU feature check and the recommended OPENBLAS_CORETYPE (blas_info.h). */
#include "core/blas_info.h"

#include <cblas.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

/* PEP_CPU_FEATURES="avx2,fma,..." (or "none"): the features to assume instead of this CPU's,
 * for tests that fake CPU kinds and for diagnosing a node from another. */
static int features_from_env(struct pep_cpu_features *cpu)
{
    const char *env = getenv("PEP_CPU_FEATURES");
    if (!env || !env[0]) return 0;
    static const struct {
        const char *name;
        size_t off;
    } names[] = {
        {"avx", offsetof(struct pep_cpu_features, avx)},         {"avx2", offsetof(struct pep_cpu_features, avx2)},
        {"fma", offsetof(struct pep_cpu_features, fma)},         {"avx512f", offsetof(struct pep_cpu_features, avx512f)},
        {"avx512bw", offsetof(struct pep_cpu_features, avx512bw)}, {"avx512vl", offsetof(struct pep_cpu_features, avx512vl)},
        {"avx512dq", offsetof(struct pep_cpu_features, avx512dq)}, {"avx512cd", offsetof(struct pep_cpu_features, avx512cd)},
    };
    for (const char *p = env; *p;) {
        size_t n = strcspn(p, ",");
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n && !strncmp(p, names[i].name, n)) *(int *)((char *)cpu + names[i].off) = 1;
        p += n + (p[n] == ',');
    }
    return 1;
}

void pep_cpu_features_detect(struct pep_cpu_features *cpu)
{
    *cpu = (struct pep_cpu_features){0};
    if (features_from_env(cpu)) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    cpu->avx = __builtin_cpu_supports("avx") != 0;
    cpu->avx2 = __builtin_cpu_supports("avx2") != 0;
    cpu->fma = __builtin_cpu_supports("fma") != 0;
    cpu->avx512f = __builtin_cpu_supports("avx512f") != 0;
    cpu->avx512bw = __builtin_cpu_supports("avx512bw") != 0;
    cpu->avx512vl = __builtin_cpu_supports("avx512vl") != 0;
    cpu->avx512dq = __builtin_cpu_supports("avx512dq") != 0;
    cpu->avx512cd = __builtin_cpu_supports("avx512cd") != 0;
#endif
}

const char *pep_blas_coretype_for(const struct pep_cpu_features *cpu)
{
    /* OpenBLAS's SKYLAKEX kernels use AVX-512 F + BW + VL + DQ (+ CD in the compiler flags) */
    if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512dq && cpu->avx512cd)
        return "SkylakeX";
    if (cpu->avx2 && cpu->fma) return "Haswell";
    return NULL;
}

const char *pep_blas_recommended_coretype(void)
{
    struct pep_cpu_features cpu;
    pep_cpu_features_detect(&cpu);
    return pep_blas_coretype_for(&cpu);
}

enum pep_blas_level pep_blas_kernel_level(const char *corename)
{
    static const struct {
        const char *name;
        enum pep_blas_level level;
    } table[] = {
        {"SkylakeX", PEP_BLAS_LEVEL_AVX512},    {"Cooperlake", PEP_BLAS_LEVEL_AVX512},
        {"SapphireRapids", PEP_BLAS_LEVEL_AVX512},
        {"Haswell", PEP_BLAS_LEVEL_AVX2},       {"Zen", PEP_BLAS_LEVEL_AVX2},
        {"Excavator", PEP_BLAS_LEVEL_AVX2},     {"Skylake", PEP_BLAS_LEVEL_AVX2},
        {"Sandybridge", PEP_BLAS_LEVEL_AVX},    {"Bulldozer", PEP_BLAS_LEVEL_AVX},
        {"Piledriver", PEP_BLAS_LEVEL_AVX},     {"Steamroller", PEP_BLAS_LEVEL_AVX},
        {"Prescott", PEP_BLAS_LEVEL_GENERIC},   {"Core2", PEP_BLAS_LEVEL_GENERIC},
        {"Penryn", PEP_BLAS_LEVEL_GENERIC},     {"Dunnington", PEP_BLAS_LEVEL_GENERIC},
        {"Nehalem", PEP_BLAS_LEVEL_GENERIC},    {"Atom", PEP_BLAS_LEVEL_GENERIC},
        {"Katmai", PEP_BLAS_LEVEL_GENERIC},     {"Coppermine", PEP_BLAS_LEVEL_GENERIC},
        {"Northwood", PEP_BLAS_LEVEL_GENERIC},  {"Banias", PEP_BLAS_LEVEL_GENERIC},
        {"Athlon", PEP_BLAS_LEVEL_GENERIC},     {"Opteron", PEP_BLAS_LEVEL_GENERIC},
        {"Opteron(SSE3)", PEP_BLAS_LEVEL_GENERIC}, {"Barcelona", PEP_BLAS_LEVEL_GENERIC},
        {"Nano", PEP_BLAS_LEVEL_GENERIC},       {"Bobcat", PEP_BLAS_LEVEL_GENERIC},
    };
    if (!corename) return PEP_BLAS_LEVEL_UNKNOWN;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcasecmp(corename, table[i].name)) return table[i].level;
    return PEP_BLAS_LEVEL_UNKNOWN;
}

int pep_blas_assess(const char *corename, const struct pep_cpu_features *cpu,
                    const char *env_coretype, char *msg, size_t len)
{
    if (len) msg[0] = '\0';
    const char *name = corename ? corename : "(unknown)";
    if (env_coretype && *env_coretype) {
        /* an explicit choice is the user's: only complain if OpenBLAS ignored it */
        if (strcasecmp(env_coretype, name) == 0) return 0;
        snprintf(msg, len,
                 "OPENBLAS_CORETYPE=%s is set but OpenBLAS runs its '%s' kernels (the name is "
                 "unknown to this OpenBLAS or the CPU lacks the instructions); valid choices "
                 "here include %s",
                 env_coretype, name, pep_blas_coretype_for(cpu) ? pep_blas_coretype_for(cpu) : "Prescott");
        return 1;
    }
    enum pep_blas_level level = pep_blas_kernel_level(corename);
    const char *fix = pep_blas_coretype_for(cpu);
    if (level >= PEP_BLAS_LEVEL_GENERIC && level < PEP_BLAS_LEVEL_AVX2 && cpu->avx2 && fix) {
        snprintf(msg, len,
                 "OpenBLAS runs its generic '%s' kernels on a CPU with %s (about 3-4x slower "
                 "matrix products): export OPENBLAS_CORETYPE=%s before starting peprime "
                 "(inside the sbatch script, before mpirun/srun)",
                 name, cpu->avx512f ? "AVX-512" : "AVX2", fix);
        return 1;
    }
    return 0;
}

void pep_blas_info_get(struct pep_blas_info *info)
{
    info->corename = openblas_get_corename();
    info->config = openblas_get_config();
    info->threads = openblas_get_num_threads();
    const char *env = getenv("OPENBLAS_CORETYPE");
    info->env_coretype = env && *env ? env : NULL;
    pep_cpu_features_detect(&info->cpu);
}

int pep_blas_check(void)
{
    struct pep_blas_info info;
    char msg[1024];
    pep_blas_info_get(&info);
    if (pep_blas_assess(info.corename, &info.cpu, info.env_coretype, msg, sizeof msg)) {
        pep_warn("%s", msg);
        return 1;
    }
    pep_debug("OpenBLAS kernels '%s'%s, %d threads, config: %s", info.corename,
              info.env_coretype ? " (OPENBLAS_CORETYPE set)" : "", info.threads, info.config);
    return 0;
}
