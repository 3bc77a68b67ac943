/* Optimizers over flat parameter ranges: SGD and AdamW (bias correction, decoupled weight
 * decay; Loshchilov & Hutter), a learning-rate schedule (linear warm-up, then constant, linear
 * decay or cosine decay) and global grad-norm clipping. Which parameters train is a group mask on the model's parameter table: the
 * optimizer updates the contiguous float range of those groups and nothing else. */
#ifndef PEP_OPTIM_H
#define PEP_OPTIM_H

#include <stddef.h>

#include "core/names.h"
#include "core/pool.h"

enum pep_optim_kind { PEP_OPTIM_KIND_SGD, PEP_OPTIM_KIND_ADAMW };
/* Its name table (core/names.h): adamw, sgd, as optim.name spells them; pep_optim_kind_name()
 * and pep_optim_kind_parse() (0, or -1 for an unknown name). */
extern const struct pep_names pep_optim_kind_names;
PEP_NAMES_FUNCTIONS(pep_optim_kind, enum pep_optim_kind)

/* optim.schedule: the learning rate after the warm-up. */
enum pep_optim_schedule { PEP_OPTIM_SCHEDULE_LINEAR, PEP_OPTIM_SCHEDULE_CONSTANT, PEP_OPTIM_SCHEDULE_COSINE };
extern const struct pep_names pep_optim_schedule_names;
PEP_NAMES_FUNCTIONS(pep_optim_schedule, enum pep_optim_schedule)

struct pep_optim {
    enum pep_optim_kind kind;
    float lr, beta1, beta2, eps, weight_decay, clip;
    int warmup, total_steps;
    enum pep_optim_schedule schedule;
    float min_lr_ratio;  /* cosine: the rate it decays to, as a fraction of lr */
    size_t begin, end;   /* float range of the flat blocks this optimizer owns */
    size_t lo, hi;       /* the slice of [begin, end) this optimizer steps (ZeRO-1 sharding: one rank's
                            share; unsharded: lo = begin, hi = end) */
    float *m, *v;        /* AdamW moments over [lo, hi): m - lo is indexed like params */
    long t;              /* steps taken */
    int threads;         /* threads for the element-wise update, the caller's included (0 or 1: the caller
                            alone); set by the caller before init: src/optim reads no config and no BLAS
                            setting, jobs/ passes the rank's threads (the placement's, as OpenBLAS gets) */
    pep_pool_t *pool;    /* the update's pool (init's, when threads > 1 and the slice is long enough;
                            NULL: the caller's thread) */
};

/* Floats of the slice per thread below which fewer threads take part (a pool job costs ~10 us to
 * start; AdamW updates this many floats in ~40 us on the Zen 5 machine): a slice shorter than
 * twice this runs on the caller alone. Shares are contiguous and cut at multiples of
 * PEP_OPTIM_SPLIT_ALIGN floats. */
#define PEP_OPTIM_SPLIT_MIN ((size_t)1 << 16)
#define PEP_OPTIM_SPLIT_ALIGN 16

/* Gives an optimizer whose hyperparameters (kind .. min_lr_ratio, and threads) are set (from the
 * config: pep_optim_from_config in src/config; threads by the caller) the float range [begin, end)
 * to step, no steps taken, allocates its moments and starts its pool (threads > 1 and at least
 * 2 x PEP_OPTIM_SPLIT_MIN floats to step: min(threads, floats / PEP_OPTIM_SPLIT_MIN) threads). An
 * initialised optimizer owns its moments and pool: a copy must not be given to pep_optim_fini too. */
int pep_optim_init(struct pep_optim *o, size_t begin, size_t end);
/* The same, stepping only the slice [lo, hi) of [begin, end) (begin <= lo <= hi <= end): moments
 * are kept for the slice alone. The schedule and step count are those of the whole range. */
int pep_optim_init_slice(struct pep_optim *o, size_t begin, size_t end, size_t lo, size_t hi);
void pep_optim_fini(struct pep_optim *o);
/* Learning rate at step t (0-based): linear warm-up lr * (t + 1) / warmup, then per schedule
 * (with W = warmup, S = total_steps): constant lr; linear lr * (S - t) / (S - W); cosine
 * lr * (r + (1 - r) * (1 + cos(pi * (t - W) / (S - W))) / 2), r = min_lr_ratio (Hugging Face's
 * get_cosine_schedule_with_warmup after the warm-up; r > 0 is its min_lr_rate variant). Both
 * decays reach their end at t = S; S <= W leaves lr constant after the warm-up. */
float pep_optim_lr_at(const struct pep_optim *o, long t);
/* Sum of squares of g[begin, end) (double accumulation, fixed order for a given build). */
double pep_grad_sumsq(const float *g, size_t begin, size_t end);
/* L2 norm of g[begin, end): sqrt(pep_grad_sumsq). */
double pep_grad_norm(const float *g, size_t begin, size_t end);
/* Adds a slice's sum of squares over the slices of the whole range (in place): a sharded
 * optimizer's hook, so src/ never sees MPI. Returns a status. */
typedef int (*pep_optim_sum_fn)(double *sumsq, void *ud);
/* One step: clips the gradient to o->clip (if > 0) by its global norm, then updates
 * params[begin, end). Returns PEP_ERR_NUMERIC (naming the step) if the gradient is not finite.
 * *gnorm_out (optional) gets the pre-clip norm. The norm is summed on the caller's thread, in the
 * same order whatever o->threads; the element-wise update is split over the pool, each element
 * updated by the same operations as on one thread: parameters and moments are the same bits at
 * any thread count. */
int pep_optim_step(struct pep_optim *o, float *params, float *grads, double *gnorm_out);
/* The step of a slice: the squared norm of grads[lo, hi), summed over all slices by `sum` (NULL:
 * the slice is the whole range), clips by the global norm and updates params[lo, hi) only.
 * With lo = begin, hi = end and sum = NULL it is pep_optim_step, bit for bit. Every slice's
 * caller gets the same norm and the same verdict on it. */
int pep_optim_step_slice(struct pep_optim *o, float *params, const float *grads, pep_optim_sum_fn sum, void *ud,
                         double *gnorm_out);

#endif
