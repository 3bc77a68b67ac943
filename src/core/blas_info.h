/* Which OpenBLAS kernels run on which CPU, and whether that is a slow mismatch.
 *
 * Debian's OpenBLAS 0.3.21 does not recognise recent CPUs and falls back to its generic
 * "Prescott" kernels (about half the sgemm speed of the SkylakeX kernels: docs/benchmarks.md).
 * OPENBLAS_CORETYPE is read when the library loads, so the fix is in the environment before
 * the process starts: pep_blas_recommended_coretype() tells jobs/ what to set before it
 * re-executes itself. An explicit OPENBLAS_CORETYPE is always respected. Pure C + BLAS. */
#ifndef PEP_BLAS_INFO_H
#define PEP_BLAS_INFO_H

#include <stddef.h>

/* The x86 SIMD features that decide which OpenBLAS kernels can run (1 = supported). */
struct pep_cpu_features {
    int avx, avx2, fma;
    int avx512f, avx512bw, avx512vl, avx512dq, avx512cd;
};

/* Kernel classes of OpenBLAS core names, slowest first. */
enum pep_blas_level {
    PEP_BLAS_LEVEL_UNKNOWN = -1, /* a name this table does not know (ARM, POWER, future x86) */
    PEP_BLAS_LEVEL_GENERIC = 0,  /* SSE-only kernels: Prescott, Core2, Nehalem, Atom, ... */
    PEP_BLAS_LEVEL_AVX = 1,      /* Sandybridge, Bulldozer family */
    PEP_BLAS_LEVEL_AVX2 = 2,     /* Haswell, Zen, Excavator */
    PEP_BLAS_LEVEL_AVX512 = 3,   /* SkylakeX, Cooperlake, SapphireRapids */
};

struct pep_blas_info {
    const char *corename;      /* openblas_get_corename(), e.g. "Haswell" */
    const char *config;        /* openblas_get_config(), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." */
    int threads;               /* openblas_get_num_threads() */
    const char *env_coretype;  /* $OPENBLAS_CORETYPE, NULL if unset or empty */
    struct pep_cpu_features cpu;
};

/* Features of the CPU this process runs on (__builtin_cpu_supports), or those listed in
 * $PEP_CPU_FEATURES ("avx2,fma", "none": tests fake CPU kinds with it). */
void pep_cpu_features_detect(struct pep_cpu_features *cpu);
/* The best OPENBLAS_CORETYPE for a CPU with these features: "SkylakeX" with AVX-512
 * F/BW/VL/DQ/CD, "Haswell" with AVX2 + FMA, NULL otherwise (nothing better to ask for). */
const char *pep_blas_coretype_for(const struct pep_cpu_features *cpu);
/* pep_blas_coretype_for() of this CPU. */
const char *pep_blas_recommended_coretype(void);
/* Kernel class of an OpenBLAS core name (case-insensitive). */
enum pep_blas_level pep_blas_kernel_level(const char *corename);
/* Judges a (kernels in use, CPU, explicit OPENBLAS_CORETYPE or NULL) combination.
 * Returns 1 and writes a warning into msg when
 *   - no explicit setting and the kernels are below AVX2 on a CPU with AVX2 (names the fix),
 *   - an explicit setting that OpenBLAS did not honour (kernels differ from the request);
 * returns 0 (msg = "") otherwise: an explicit setting that took effect is respected. */
int pep_blas_assess(const char *corename, const struct pep_cpu_features *cpu,
                    const char *env_coretype, char *msg, size_t len);
/* Fills `info` for this process. */
void pep_blas_info_get(struct pep_blas_info *info);
/* Logs a warning (pep_warn) if pep_blas_assess() finds the kernels too slow for this CPU and
 * a debug line with the kernel and config otherwise. Returns 1 if it warned, else 0. */
int pep_blas_check(void);

#endif
