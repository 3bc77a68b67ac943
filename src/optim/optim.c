/* SGD / AdamW with schedule and clipping (optim.h). */
#include "optim/optim.h"

#include <math.h>
#include <string.h>

#include "core/dispatch.h"
#include "core/error.h"

#define PEP_OPTIM_PI 3.14159265358979323846

static const struct pep_name optim_kinds[] = {{PEP_OPTIM_KIND_ADAMW, "adamw"}, {PEP_OPTIM_KIND_SGD, "sgd"}};
const struct pep_names pep_optim_kind_names = {"optimizer", optim_kinds, 2};
static const struct pep_name schedules[] = {{PEP_OPTIM_SCHEDULE_LINEAR, "linear"},
                                            {PEP_OPTIM_SCHEDULE_CONSTANT, "constant"},
                                            {PEP_OPTIM_SCHEDULE_COSINE, "cosine"}};
const struct pep_names pep_optim_schedule_names = {"learning-rate schedule", schedules, 3};

int pep_optim_init(struct pep_optim *o, size_t begin, size_t end)
{
    return pep_optim_init_slice(o, begin, end, begin, end);
}

int pep_optim_init_slice(struct pep_optim *o, size_t begin, size_t end, size_t lo, size_t hi)
{
    PEP_CHECK(begin <= lo && lo <= hi && hi <= end, PEP_ERR_INTERNAL,
              "optimizer slice [%zu, %zu) outside its range [%zu, %zu)", lo, hi, begin, end);
    o->begin = begin;
    o->end = end;
    o->lo = lo;
    o->hi = hi;
    o->m = o->v = NULL;
    o->pool = NULL;
    o->t = 0;
    if (o->kind == PEP_OPTIM_KIND_ADAMW && hi > lo) {
        PEP_ALLOC(o->m, hi - lo);
        PEP_ALLOC(o->v, hi - lo);
    }
    size_t most = (hi - lo) / PEP_OPTIM_SPLIT_MIN;
    int nt = o->threads < 1 ? 1 : (size_t)o->threads < most ? o->threads : (int)most;
    if (nt > 1) {
        int rc = pep_pool_create(nt, &o->pool);
        if (rc != PEP_OK) {
            pep_optim_fini(o);
            return rc;
        }
    }
    return PEP_OK;
}

void pep_optim_fini(struct pep_optim *o)
{
    pep_free(o->m);
    pep_free(o->v);
    o->m = o->v = NULL;
    pep_pool_destroy(&o->pool);
}

float pep_optim_lr_at(const struct pep_optim *o, long t)
{
    if (o->warmup > 0 && t < o->warmup) return o->lr * (float)(t + 1) / (float)o->warmup;
    if (o->schedule == PEP_OPTIM_SCHEDULE_CONSTANT || o->total_steps <= o->warmup) return o->lr;
    if (o->schedule == PEP_OPTIM_SCHEDULE_COSINE) {
        double progress = (double)(t - o->warmup) / (double)(o->total_steps - o->warmup);
        if (progress > 1) progress = 1;
        double r = o->min_lr_ratio, cosine = 0.5 * (1.0 + cos(PEP_OPTIM_PI * progress));
        return (float)(o->lr * (r + (1.0 - r) * cosine));
    }
    double frac = (double)(o->total_steps - t) / (double)(o->total_steps - o->warmup);
    if (frac < 0) frac = 0;
    return (float)(o->lr * frac);
}

PEP_DISPATCH
double pep_grad_sumsq(const float *g, size_t begin, size_t end)
{
#ifdef PEP_DISPATCH_CLONES
    /* Portable build: every rank of a job must clip replicated steps by the same norm, and a
     * job may span CPUs that take different clones (dispatch.h). So the partial sums are 8
     * lanes in a fixed order whatever the vector width (squares of floats are exact in double:
     * a fused multiply-add rounds the same), combined pairwise. The native build keeps the
     * compiler's own reduction, which the frozen binary of experiment v3 also used. */
    double lane[8] = {0};
    const float *x = g + begin;
    size_t n = end - begin, n8 = n - n % 8;
    for (size_t i = 0; i < n8; i += 8)
#pragma omp simd
        for (int j = 0; j < 8; j++) lane[j] += (double)x[i + j] * x[i + j];
    double s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    for (size_t i = n8; i < n; i++) s += (double)x[i] * x[i];
    return s;
#else
    double s = 0.0;
    /* vector partial sums (fixed order for a given build): a serial chain of 7 M double adds
     * was a tenth of a tiny MAML meta-step */
#pragma omp simd reduction(+ : s)
    for (size_t i = begin; i < end; i++) s += (double)g[i] * g[i];
    return s;
#endif
}

double pep_grad_norm(const float *g, size_t begin, size_t end) { return sqrt(pep_grad_sumsq(g, begin, end)); }

/* restrict: the compiler could not prove the arrays apart and left these loops scalar */
PEP_DISPATCH
static void sgd_update(float *restrict p, const float *restrict g, size_t n, float step)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) p[i] -= step * g[i];
}

PEP_DISPATCH
static void adamw_update(float *restrict p, float *restrict om, float *restrict ov, const float *restrict g, size_t n,
                         float scale, float lr, float b1, float b2, float bc1, float bc2, float wd, float eps)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale;
        float m = om[i] = b1 * om[i] + (1.0f - b1) * gi;
        float v = ov[i] = b2 * ov[i] + (1.0f - b2) * gi * gi;
        float mhat = m / bc1, vhat = v / bc2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
    }
}

/* One step's element-wise update of [lo, hi) as a pool job: thread tid updates its contiguous
 * share (pep_pool_split), with the same per-element operations as the whole slice on one thread. */
struct update_job {
    const struct pep_optim *o;
    float *params;
    const float *grads;
    float scale, lr, bc1, bc2;
};

/* The update of [lo + a, lo + b): moments are indexed from lo */
static void update_range(const struct update_job *j, size_t a, size_t b)
{
    const struct pep_optim *o = j->o;
    size_t at = o->lo + a;
    if (b == a) return; /* an empty slice has no moments */
    if (o->kind == PEP_OPTIM_KIND_SGD)
        sgd_update(j->params + at, j->grads + at, b - a, j->lr * j->scale);
    else
        adamw_update(j->params + at, o->m + a, o->v + a, j->grads + at, b - a, j->scale, j->lr, o->beta1, o->beta2,
                     j->bc1, j->bc2, o->weight_decay, o->eps);
}

static void update_share(void *ctx, int tid, int nthreads)
{
    const struct update_job *j = ctx;
    size_t a, b;
    pep_pool_split(j->o->hi - j->o->lo, PEP_OPTIM_SPLIT_ALIGN, tid, nthreads, &a, &b);
    update_range(j, a, b);
}

int pep_optim_step(struct pep_optim *o, float *params, float *grads, double *gnorm_out)
{
    PEP_CHECK(o->lo == o->begin && o->hi == o->end, PEP_ERR_INTERNAL,
              "pep_optim_step on a sharded optimizer (slice [%zu, %zu) of [%zu, %zu)): use pep_optim_step_slice",
              o->lo, o->hi, o->begin, o->end);
    return pep_optim_step_slice(o, params, grads, NULL, NULL, gnorm_out);
}

int pep_optim_step_slice(struct pep_optim *o, float *params, const float *grads, pep_optim_sum_fn sum, void *ud,
                         double *gnorm_out)
{
    /* the slice's share of the squared norm, then the sum over slices: with one slice this is
     * pep_grad_norm over [begin, end), the same additions in the same order */
    double sumsq = pep_grad_sumsq(grads, o->lo, o->hi);
    if (sum) PEP_CALL(sum(&sumsq, ud));
    double norm = sqrt(sumsq);
    if (gnorm_out) *gnorm_out = norm;
    PEP_CHECK(isfinite(norm), PEP_ERR_NUMERIC,
              "non-finite gradient at optimizer step %ld (norm %g): lower optim.lr or check the data", o->t + 1, norm);
    float scale = 1.0f;
    if (o->clip > 0.0f && norm > o->clip) scale = (float)(o->clip / (norm + 1e-6));
    float lr = pep_optim_lr_at(o, o->t);
    o->t++;
    struct update_job j = {.o = o, .params = params, .grads = grads, .scale = scale, .lr = lr};
    if (o->kind == PEP_OPTIM_KIND_ADAMW)
        j.bc1 = 1.0f - powf(o->beta1, (float)o->t), j.bc2 = 1.0f - powf(o->beta2, (float)o->t);
    if (o->pool)
        pep_pool_run(o->pool, update_share, &j);
    else
        update_range(&j, 0, o->hi - o->lo);
    return PEP_OK;
}
