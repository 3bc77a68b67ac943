/* blas_profile: an LD_PRELOAD shim that times every cblas_sgemm call of a process.
 *
 *   BLAS_PROFILE_OUT=prof.tsv LD_PRELOAD=build/tests/bench/libblas_profile.so peprime bench encoder ...
 *
 * At exit it writes, per distinct call shape (M, N, K, transposes), the number of calls and the
 * seconds spent inside them, and a header with the total and the span from the first call's
 * start to the last call's end. The time between BLAS calls (span - total, when calls come from
 * one thread) is the work of our own code: tests/bench/blas_profile.py splits a step that way at
 * 1 and N threads (docs/scaling.md, "Threads inside a rank"). Without BLAS_PROFILE_OUT the
 * table goes to stderr. Calls from several threads are counted each (the total can then
 * exceed the span). */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint, blasint, blasint,
                         float, const float *, blasint, const float *, blasint, float, float *, blasint);

#define SLOTS 8192 /* distinct shapes kept; a step of the base shape has a few hundred */

struct slot {
    int m, n, k, ta, tb;
    long calls;
    double s;
};

static struct slot table[SLOTS];
static long lost; /* calls whose shape found no free slot */
static double total_s, first_s = -1.0, last_s;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void record(int m, int n, int k, int ta, int tb, double t0, double dt)
{
    unsigned h = ((unsigned)m * 73856093u ^ (unsigned)n * 19349663u ^ (unsigned)k * 83492791u ^ (unsigned)(ta * 2 + tb)) % SLOTS;
    pthread_mutex_lock(&lock);
    if (first_s < 0 || t0 < first_s) first_s = t0;
    if (t0 + dt > last_s) last_s = t0 + dt;
    total_s += dt;
    for (int probe = 0; probe < SLOTS; probe++, h = (h + 1) % SLOTS) {
        struct slot *e = &table[h];
        if (e->calls && !(e->m == m && e->n == n && e->k == k && e->ta == ta && e->tb == tb)) continue;
        *e = (struct slot){m, n, k, ta, tb, e->calls + 1, e->s + dt};
        pthread_mutex_unlock(&lock);
        return;
    }
    lost++;
    pthread_mutex_unlock(&lock);
}

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n,
                 blasint k, float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c,
                 blasint ldc)
{
    static sgemm_fn real;
    if (!real) real = (sgemm_fn)dlsym(RTLD_NEXT, "cblas_sgemm");
    if (!real) {
        fprintf(stderr, "blas_profile: no cblas_sgemm after this library (is the program linked to a BLAS?)\n");
        abort();
    }
    double t0 = now_s();
    real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    record(m, n, k, ta == CblasTrans, tb == CblasTrans, t0, now_s() - t0);
}

__attribute__((destructor)) static void write_profile(void)
{
    const char *path = getenv("BLAS_PROFILE_OUT");
    FILE *out = path ? fopen(path, "w") : stderr;
    if (!out) {
        fprintf(stderr, "blas_profile: cannot write %s\n", path);
        return;
    }
    long calls = 0;
    for (int i = 0; i < SLOTS; i++) calls += table[i].calls;
    fprintf(out, "# blas_profile 1 calls %ld total_s %.6f span_s %.6f lost %ld\n", calls + lost, total_s,
            first_s < 0 ? 0.0 : last_s - first_s, lost);
    fprintf(out, "m\tn\tk\ttrans_a\ttrans_b\tcalls\tseconds\n");
    for (int i = 0; i < SLOTS; i++)
        if (table[i].calls)
            fprintf(out, "%d\t%d\t%d\t%d\t%d\t%ld\t%.6f\n", table[i].m, table[i].n, table[i].k, table[i].ta, table[i].tb,
                    table[i].calls, table[i].s);
    if (path) fclose(out);
}
