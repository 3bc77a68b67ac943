/* replica_bits: prints the exact bits of replicated optimizer steps (AdamW with clipping and
 * the cosine and linear schedules over 600 steps; SGD) on fixed pseudo-random gradients,
 * hashed. Ranks of one job on different CPUs (AVX-512, AVX2, baseline: different clones of the
 * dispatched loops) apply these steps to replicated weights, so the printed line must be the
 * same on every CPU: portable_cpus.sh runs it natively and under emulated older CPUs. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/rng.h"
#include "optim/optim.h"

#define N 20011 /* not a multiple of any vector width */

static int run(const char *optim, const char *schedule)
{
    static float p[N], g[N];
    static double norms[600];
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    snprintf(cfg.optim.name, sizeof cfg.optim.name, "%s", optim);
    snprintf(cfg.optim.schedule, sizeof cfg.optim.schedule, "%s", schedule);
    cfg.optim.lr = 3e-3f, cfg.optim.clip = 1.0f, cfg.optim.warmup = 20, cfg.optim.steps = 600;
    cfg.optim.weight_decay = 0.01f;
    struct pep_optim o;
    if (pep_optim_from_config(&cfg, &o) != 0 || pep_optim_init(&o, 0, N) != 0) return 1;
    struct pep_rng r;
    pep_rng_seed(&r, 7, 0, 0);
    for (size_t i = 0; i < N; i++) p[i] = 0.02f * pep_rng_normal(&r);
    for (int t = 0; t < 600; t++) {
        /* gradients whose norm crosses the clip threshold now and then */
        float s = (t % 7 == 0) ? 0.05f : 0.002f;
        for (size_t i = 0; i < N; i++) g[i] = s * pep_rng_normal(&r) + 1e-3f * p[i];
        if (pep_optim_step(&o, p, g, &norms[t]) != 0) return 1;
    }
    printf("%s %s: norms %016llx weights %016llx moments %016llx\n", optim, schedule,
           (unsigned long long)pep_fnv1a64(norms, sizeof norms), (unsigned long long)pep_fnv1a64(p, sizeof p),
           (unsigned long long)(o.m ? pep_fnv1a64(o.m, N * sizeof(float)) ^ pep_fnv1a64(o.v, N * sizeof(float)) : 0));
    pep_optim_fini(&o);
    return 0;
}

int main(void)
{
    /* the normal draws that initialise replicated weights on every rank (Box-Muller: libm) */
    static float draws[200000];
    struct pep_rng r;
    pep_rng_seed(&r, 11, 0, 0);
    for (size_t i = 0; i < sizeof draws / sizeof draws[0]; i++) draws[i] = pep_rng_normal(&r);
    printf("rng normal %016llx\n", (unsigned long long)pep_fnv1a64(draws, sizeof draws));
    if (run("adamw", "cosine") || run("adamw", "linear") || run("sgd", "constant")) {
        fprintf(stderr, "replica_bits: optimizer setup failed\n");
        return 1;
    }
    return 0;
}
