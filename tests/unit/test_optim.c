/* Optimizers: AdamW against a hand-computed step (PyTorch's AdamW formula), SGD, schedules
 * (the cosine one's landmarks here; every step against PyTorch's schedulers in
 * tests/torch/test_schedule_parity.c), clipping, the non-finite-gradient error, sharded slices,
 * and the update split over threads (the same bits as one thread). */
#include <math.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "core/partition.h"
#include "optim/optim.h"
#include "testutil.h"

static void test_optim_adamw_matches_formula(void **st)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    cfg.optim.lr = 0.1f, cfg.optim.weight_decay = 0.01f, cfg.optim.clip = 0.0f;
    strcpy(cfg.optim.schedule, "constant");
    struct pep_optim o;
    assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_OK);
    assert_int_equal(pep_optim_init(&o, 1, 3), PEP_OK);
    float p[4] = {9.0f, 1.0f, -2.0f, 9.0f}, g[4] = {5.0f, 0.5f, -1.0f, 5.0f};
    assert_int_equal(pep_optim_step(&o, p, g, NULL), PEP_OK);
    /* step 1: mhat = g, vhat = g^2 -> update = lr * (sign(g) + wd * p) (eps negligible) */
    assert_float_equal(p[1], 1.0f - 0.1f * (1.0f + 0.01f * 1.0f), 1e-6);
    assert_float_equal(p[2], -2.0f - 0.1f * (-1.0f + 0.01f * -2.0f), 1e-6);
    assert_true(p[0] == 9.0f && p[3] == 9.0f); /* outside the range: untouched */
    /* step 2 by hand */
    float g2[4] = {0, 0.25f, 0.5f, 0};
    double m = 0.9 * 0.05 + 0.1 * 0.25, v = 0.999 * 0.00025 + 0.001 * 0.0625;
    double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
    double expect = p[1] - 0.1 * (mh / (sqrt(vh) + 1e-8) + 0.01 * p[1]);
    assert_int_equal(pep_optim_step(&o, p, g2, NULL), PEP_OK);
    assert_float_equal(p[1], (float)expect, 1e-6);
    pep_optim_fini(&o);
}

static void test_optim_clip_and_schedule(void **st)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    strcpy(cfg.optim.name, "sgd");
    cfg.optim.lr = 1.0f, cfg.optim.clip = 1.0f, cfg.optim.warmup = 2, cfg.optim.steps = 6;
    struct pep_optim o;
    assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_OK);
    assert_int_equal(pep_optim_init(&o, 0, 2), PEP_OK);
    assert_float_equal(pep_optim_lr_at(&o, 0), 0.5f, 1e-7);
    assert_float_equal(pep_optim_lr_at(&o, 1), 1.0f, 1e-7);
    assert_float_equal(pep_optim_lr_at(&o, 4), 0.5f, 1e-7);
    float p[2] = {0, 0}, g[2] = {3.0f, 4.0f};
    double norm;
    assert_int_equal(pep_optim_step(&o, p, g, &norm), PEP_OK);
    assert_float_equal(norm, 5.0, 1e-9);
    assert_float_equal(p[0], -0.5f * 0.6f, 1e-5); /* lr 0.5 x clipped (3,4)/5 */
    assert_float_equal(p[1], -0.5f * 0.8f, 1e-5);
    g[0] = NAN;
    pep_error_clear();
    assert_int_equal(pep_optim_step(&o, p, g, NULL), PEP_ERR_NUMERIC);
    assert_non_null(strstr(pep_error_message(), "step 2"));
    pep_error_clear();
    pep_optim_fini(&o);
}

static void test_optim_cosine_schedule(void **st)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    strcpy(cfg.optim.schedule, "cosine");
    cfg.optim.lr = 2.0f, cfg.optim.warmup = 4, cfg.optim.steps = 24;
    struct pep_optim o;
    assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_OK);
    assert_int_equal(pep_optim_init(&o, 0, 1), PEP_OK);
    assert_float_equal(pep_optim_lr_at(&o, 0), 0.5f, 1e-7);  /* warm-up as for linear: lr (t + 1) / W */
    assert_float_equal(pep_optim_lr_at(&o, 3), 2.0f, 1e-7);
    assert_float_equal(pep_optim_lr_at(&o, 4), 2.0f, 1e-7);  /* the decay starts at the peak */
    assert_float_equal(pep_optim_lr_at(&o, 14), 1.0f, 1e-6); /* half way: half the rate */
    assert_true(pep_optim_lr_at(&o, 23) > 0.0f && pep_optim_lr_at(&o, 23) < 0.05f);
    assert_float_equal(pep_optim_lr_at(&o, 24), 0.0f, 1e-7);
    for (long t = 4; t < 24; t++) assert_true(pep_optim_lr_at(&o, t + 1) < pep_optim_lr_at(&o, t));
    pep_optim_fini(&o);
    cfg.optim.min_lr_ratio = 0.25f; /* the floor: lr (r + (1 - r) (1 + cos) / 2) */
    assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_OK);
    assert_int_equal(pep_optim_init(&o, 0, 1), PEP_OK);
    assert_float_equal(pep_optim_lr_at(&o, 14), 2.0f * (0.25f + 0.75f * 0.5f), 1e-6);
    assert_float_equal(pep_optim_lr_at(&o, 24), 0.5f, 1e-7);
    assert_float_equal(pep_optim_lr_at(&o, 1000), 0.5f, 1e-7); /* past the end: stays at the floor */
    pep_optim_fini(&o);
    cfg.optim.steps = 4; /* no room to decay: lr after the warm-up, as for linear */
    assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_OK);
    assert_int_equal(pep_optim_init(&o, 0, 1), PEP_OK);
    assert_float_equal(pep_optim_lr_at(&o, 4), 2.0f, 1e-7);
    pep_optim_fini(&o);
    strcpy(cfg.optim.schedule, "step");
    pep_error_clear();
    assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "cosine"));
    pep_error_clear();
}

/* The ZeRO-1 slices' hook, in one process: every slice's sum of squares was computed before
 * the slices step, and the hook hands each the total (what the scalar allreduce does). */
static int slices_total(double *sumsq, void *ud)
{
    *sumsq = *(const double *)ud;
    return PEP_OK;
}

/* Sharded steps (one optimizer per slice, moments of the slice only) against the unsharded one:
 * one slice is the same bits; 2, 3 and 7 slices agree to the norm's rounding, with clipping
 * active, for AdamW and SGD. */
static void test_optim_slices_match_unsharded(void **st)
{
    enum { N = 1003, B = 5, E = 1000, STEPS = 4 };
    for (int kind = 0; kind < 2; kind++)
        for (int P = 1; P <= 7; P++) {
            if (P > 3 && P != 7) continue;
            struct pep_config cfg;
            pep_config_defaults(&cfg);
            strcpy(cfg.optim.name, kind ? "sgd" : "adamw");
            cfg.optim.lr = 0.01f, cfg.optim.weight_decay = 0.01f, cfg.optim.clip = 0.5f, cfg.optim.warmup = 2;
            cfg.optim.steps = STEPS;
            static float p_ref[N], p_sh[N], g[N];
            for (int i = 0; i < N; i++) p_ref[i] = p_sh[i] = sinf(0.37f * (float)i);
            struct pep_optim ref, sh[7];
            assert_int_equal(pep_optim_from_config(&cfg, &ref), PEP_OK);
            assert_int_equal(pep_optim_init(&ref, B, E), PEP_OK);
            for (int r = 0; r < P; r++) {
                size_t lo, hi;
                pep_partition_slice(r, P, E - B, 4, &lo, &hi);
                assert_int_equal(pep_optim_from_config(&cfg, &sh[r]), PEP_OK);
                assert_int_equal(pep_optim_init_slice(&sh[r], B, E, B + lo, B + hi), PEP_OK);
            }
            for (int t = 0; t < STEPS; t++) {
                for (int i = 0; i < N; i++) g[i] = cosf(0.11f * (float)(i * (t + 1)));
                double nref, nsh = 0, total = 0;
                assert_int_equal(pep_optim_step(&ref, p_ref, g, &nref), PEP_OK);
                for (int r = 0; r < P; r++) total += pep_grad_sumsq(g, sh[r].lo, sh[r].hi);
                for (int r = 0; r < P; r++)
                    assert_int_equal(pep_optim_step_slice(&sh[r], p_sh, g, P > 1 ? slices_total : NULL, &total, &nsh),
                                     PEP_OK);
                if (P == 1) assert_true(nsh == nref);
                else assert_float_equal(nsh, nref, 1e-9 * nref);
            }
            for (int i = 0; i < N; i++) {
                if (P == 1) assert_true(memcmp(&p_sh[i], &p_ref[i], sizeof(float)) == 0);
                else assert_float_equal(p_sh[i], p_ref[i], 1e-6);
            }
            pep_optim_fini(&ref);
            for (int r = 0; r < P; r++) pep_optim_fini(&sh[r]);
        }
}

static float *floats(size_t n)
{
    float *x = pep_alloc_(n * sizeof(float), "test array", __FILE__, __LINE__, __func__);
    assert_non_null(x);
    return x;
}

/* Runs STEPS steps of the optimizer cfg describes on the slice [lo, hi) of [b, e) (the norm summed
 * over the whole range by the hook, as the sharded step does) with `threads` threads, from fixed
 * parameters and gradients; leaves the parameters in p and the slice's moments in m and v. */
static void run_threads(const struct pep_config *cfg, int threads, size_t n, size_t b, size_t e, size_t lo,
                        size_t hi, int steps, float *p, float *g, float *m, float *v)
{
    struct pep_optim o;
    assert_int_equal(pep_optim_from_config(cfg, &o), PEP_OK);
    o.threads = threads;
    assert_int_equal(pep_optim_init_slice(&o, b, e, lo, hi), PEP_OK);
    /* the slices here are long enough for every thread to get a share */
    assert_int_equal(pep_pool_threads(o.pool), threads);
    for (size_t i = 0; i < n; i++) p[i] = sinf(0.37f * (float)i);
    for (int t = 0; t < steps; t++) {
        for (size_t i = 0; i < n; i++) g[i] = (i % 97 == 0) ? 0.0f : cosf(0.11f * (float)i * (float)(t + 1)) * 1e-3f * (float)(i % 13);
        double total = pep_grad_sumsq(g, b, e), norm;
        int sliced = lo != b || hi != e;
        assert_int_equal(pep_optim_step_slice(&o, p, g, sliced ? slices_total : NULL, &total, &norm), PEP_OK);
        assert_true(norm > cfg->optim.clip); /* the clip is active */
    }
    if (o.m) {
        memcpy(m, o.m, (hi - lo) * sizeof(float));
        memcpy(v, o.v, (hi - lo) * sizeof(float));
    }
    pep_optim_fini(&o);
    assert_null(o.pool);
}

/* The element-wise update split over 2 and 3 threads gives the same bits as on one thread:
 * parameters and moments, AdamW and SGD, with clipping, weight decay and warm-up, over a whole
 * range and over one rank's slice of it (odd lengths and offsets: the shares' edges fall inside
 * vector loops' tails). */
static void test_optim_threads_same_bits(void **st)
{
    const size_t n = 3 * PEP_OPTIM_SPLIT_MIN + 4013, b = 3, e = n - 2;
    const size_t cases[2][2] = {{b, e}, {b + 1001, e - 517}}; /* whole range; a slice of it */
    float *p1 = floats(n), *pt = floats(n), *g = floats(n), *m1 = floats(n), *v1 = floats(n), *mt = floats(n),
          *vt = floats(n);
    for (int kind = 0; kind < 2; kind++)
        for (int c = 0; c < 2; c++) {
            struct pep_config cfg;
            pep_config_defaults(&cfg);
            strcpy(cfg.optim.name, kind ? "sgd" : "adamw");
            cfg.optim.lr = 0.01f, cfg.optim.weight_decay = 0.05f, cfg.optim.clip = 0.1f;
            cfg.optim.warmup = 3, cfg.optim.steps = 6;
            size_t lo = cases[c][0], hi = cases[c][1];
            assert_true(hi - lo >= 3 * PEP_OPTIM_SPLIT_MIN);
            run_threads(&cfg, 1, n, b, e, lo, hi, 5, p1, g, m1, v1);
            for (int threads = 2; threads <= 3; threads++) {
                run_threads(&cfg, threads, n, b, e, lo, hi, 5, pt, g, mt, vt);
                assert_memory_equal(pt, p1, n * sizeof(float));
                if (!kind) {
                    assert_memory_equal(mt, m1, (hi - lo) * sizeof(float));
                    assert_memory_equal(vt, v1, (hi - lo) * sizeof(float));
                }
            }
        }
    pep_free(p1), pep_free(pt), pep_free(g), pep_free(m1), pep_free(v1), pep_free(mt), pep_free(vt);
}

/* Short slices pay no thread overhead: no pool below 2 x PEP_OPTIM_SPLIT_MIN floats, and no more
 * threads than shares of PEP_OPTIM_SPLIT_MIN floats. */
static void test_optim_threads_only_for_long_slices(void **st)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    struct pep_optim o;
    const size_t s = PEP_OPTIM_SPLIT_MIN;
    const size_t len[] = {0, 1000, 2 * s - 1, 2 * s, 3 * s - 1, 3 * s, 100 * s};
    const int want[] = {1, 1, 1, 2, 2, 3, 4};
    for (int k = 0; k < 7; k++) {
        assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_OK);
        o.threads = 4;
        assert_int_equal(pep_optim_init_slice(&o, 0, 100 * s, 0, len[k]), PEP_OK);
        assert_int_equal(pep_pool_threads(o.pool), want[k]);
        if (want[k] == 1) assert_null(o.pool);
        pep_optim_fini(&o);
    }
    assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_OK); /* threads 0 (the config's memset): the caller */
    assert_int_equal(pep_optim_init(&o, 0, 100 * s), PEP_OK);
    assert_null(o.pool);
    pep_optim_fini(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optim_adamw_matches_formula),
        cmocka_unit_test(test_optim_clip_and_schedule),
        cmocka_unit_test(test_optim_cosine_schedule),
        cmocka_unit_test(test_optim_slices_match_unsharded),
        cmocka_unit_test(test_optim_threads_same_bits),
        cmocka_unit_test(test_optim_threads_only_for_long_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
