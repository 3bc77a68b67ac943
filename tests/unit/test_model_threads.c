/* The encoder's sgemm calls on a thread pool (pep_model_set_threads, core/gemm.h): a real
 * forward + backward of every group, in training mode (dropout and attention dropout on), for
 * adapters and prefixes, at a width whose projections are split (C = 256, ~145 tokens), at 2 and
 * 3 threads twice each — the same bits both times — and against 1 thread: relative L2 of the
 * loss, the logits and the whole gradient block under 1e-5. At a width where no product is
 * split (C = 32), only attention runs on the pool (by heads), and 2 and 3 threads give 1
 * thread's bits exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/error.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "model/model.h"
#include "testutil.h"

enum { NSEQ = 9, MAXT = 40 };
static const int lens[NSEQ] = {40, 3, 17, 1, 25, 8, 33, 12, 6};

static struct pep_model_spec spec_for(enum pep_pe_method pe, int C)
{
    struct pep_model_spec s = {0};
    s.L = 2, s.C = C, s.NH = 4, s.FF = 4 * C, s.V = 300, s.max_T = MAXT, s.max_B = NSEQ, s.max_positions = MAXT + 2;
    s.type_vocab = 1, s.ntags = 7, s.ln_eps = 1e-5f, s.init_std = 0.2f, s.head = PEP_HEAD_KIND_TAGGER, s.pe = pe;
    s.placement = PEP_ADAPTER_PLACEMENT_HOULSBY, s.adapter_act = PEP_ACTIVATION_GELU, s.bottleneck = 16;
    s.prefix_len = 5, s.prefix_reparam = 0, s.prefix_hidden = 16, s.lora_rank = 2, s.lora_alpha = 4.0f;
    s.dropout = 0.1f, s.attention_dropout = 0.1f;
    return s;
}

struct run_out {
    float loss;
    float *logits, *grads;
    size_t nlogits, ngrads;
};

static void run_out_free(struct run_out *o)
{
    free(o->logits);
    free(o->grads);
}

/* One fwd + bwd of every group at `threads` threads, from weights and a batch seeded alike. */
static struct run_out fwd_bwd(enum pep_pe_method pe, int C, int threads)
{
    struct pep_model_spec s = spec_for(pe, C);
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(&s, &m), PEP_OK);
    assert_int_equal(pep_model_set_threads(m, threads), PEP_OK);
    pep_model_init_weights(m, 5, PEP_GROUPS_ALL);
    struct pep_rng r;
    pep_rng_seed(&r, 11, 0, 0);
    for (size_t i = 0; i < m->table.numel; i++) m->params[i] += 0.05f * (pep_rng_uniform(&r) - 0.5f);
    int ids[NSEQ * MAXT], labels[NSEQ * MAXT], offsets[NSEQ + 1] = {0};
    for (int b = 0; b < NSEQ; b++) offsets[b + 1] = offsets[b] + lens[b];
    for (int i = 0; i < offsets[NSEQ]; i++) {
        ids[i] = 4 + (int)pep_rng_below(&r, (uint64_t)s.V - 5);
        labels[i] = pep_rng_uniform(&r) < 0.8f ? (int)pep_rng_below(&r, (uint64_t)s.ntags) : PEP_IGNORE_INDEX;
    }
    struct pep_batch b = {.nseq = NSEQ, .offsets = offsets, .input_ids = ids, .labels = labels};
    struct run_out o = {0};
    pep_model_zero_grad(m, PEP_GROUPS_ALL);
    assert_int_equal(pep_model_forward(m, &b, 1, 99, &o.loss), PEP_OK);
    assert_int_equal(pep_model_backward(m, PEP_GROUPS_ALL), PEP_OK);
    o.nlogits = (size_t)offsets[NSEQ] * s.ntags;
    o.ngrads = m->table.numel;
    o.logits = malloc(o.nlogits * sizeof(float));
    o.grads = malloc(o.ngrads * sizeof(float));
    assert_non_null(o.logits);
    assert_non_null(o.grads);
    memcpy(o.logits, pep_model_logits(m), o.nlogits * sizeof(float));
    memcpy(o.grads, m->grads, o.ngrads * sizeof(float));
    pep_model_destroy(&m);
    return o;
}

static void check_method(enum pep_pe_method pe)
{
    openblas_set_num_threads(1); /* as the placement holds it (core/gemm.h) */
    assert_true(pep_sgemm_threads(3, 145, 3 * 256, 256) == 3); /* the q|k|v projection is split */
    struct run_out one = fwd_bwd(pe, 256, 1);
    for (int t = 2; t <= 3; t++) {
        struct run_out a = fwd_bwd(pe, 256, t), b = fwd_bwd(pe, 256, t);
        /* deterministic at a given thread count: the same bits */
        assert_memory_equal(&a.loss, &b.loss, sizeof a.loss);
        assert_memory_equal(a.logits, b.logits, a.nlogits * sizeof(float));
        assert_memory_equal(a.grads, b.grads, a.ngrads * sizeof(float));
        /* close to one thread */
        assert_true(fabsf(a.loss - one.loss) <= 1e-5f * fabsf(one.loss));
        assert_true(pep_test_rel_err(a.logits, one.logits, a.nlogits) < 1e-5);
        assert_true(pep_test_rel_err(a.grads, one.grads, a.ngrads) < 1e-5);
        run_out_free(&a);
        run_out_free(&b);
    }
    run_out_free(&one);
}

/* C = 32: every product below the split threshold, so the pool runs attention alone */
static void check_attention_exact(enum pep_pe_method pe)
{
    openblas_set_num_threads(1);
    assert_true(pep_sgemm_threads(3, 145, 4 * 32, 32) == 1 && pep_sgemm_threads(3, 145, 32, 4 * 32) == 1);
    struct run_out one = fwd_bwd(pe, 32, 1);
    for (int t = 2; t <= 3; t++) {
        struct run_out a = fwd_bwd(pe, 32, t);
        assert_memory_equal(&a.loss, &one.loss, sizeof a.loss);
        assert_memory_equal(a.logits, one.logits, a.nlogits * sizeof(float));
        assert_memory_equal(a.grads, one.grads, a.ngrads * sizeof(float));
        run_out_free(&a);
    }
    run_out_free(&one);
}

static void test_model_threads_attention_by_heads_exact(void **state)
{
    (void)state;
    check_attention_exact(PEP_PE_METHOD_ADAPTER);
    check_attention_exact(PEP_PE_METHOD_PREFIX);
}

static void test_model_threads_adapter_deterministic_and_close(void **state)
{
    (void)state;
    check_method(PEP_PE_METHOD_ADAPTER);
}

static void test_model_threads_prefix_deterministic_and_close(void **state)
{
    (void)state;
    check_method(PEP_PE_METHOD_PREFIX);
}

static void test_model_threads_rejects_zero(void **state)
{
    (void)state;
    struct pep_model_spec s = spec_for(PEP_PE_METHOD_NONE, 256);
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(&s, &m), PEP_OK);
    assert_int_equal(pep_model_set_threads(m, 0), PEP_ERR_USAGE);
    pep_error_clear();
    assert_int_equal(pep_model_set_threads(m, 2), PEP_OK);
    assert_int_equal(pep_model_set_threads(m, 1), PEP_OK); /* back to the caller only */
    pep_model_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_threads_adapter_deterministic_and_close),
        cmocka_unit_test(test_model_threads_prefix_deterministic_and_close),
        cmocka_unit_test(test_model_threads_attention_by_heads_exact),
        cmocka_unit_test(test_model_threads_rejects_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
