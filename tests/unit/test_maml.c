/* MAML meta-gradients checked in one process against a finite difference of the whole
 * MAML objective F(theta) = L_Q(theta, phi_k(theta)) along random directions: second order
 * must match it, first order must not (it drops the Hessian terms). Also: the model's
 * parameters come back unchanged after a task; the adapted state phi_k does not depend on
 * the order (the inner loop is the same; order 2 only adds Hessian passes after it); fresh
 * PE starts in the outer set are rejected. The multi-task gradient and phi_k against PyTorch:
 * tests/torch/test_maml_parity.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "maml/maml.h"
#include "model/model.h"
#include "testutil.h"

static struct pep_model_spec spec(void)
{
    struct pep_model_spec s = {0};
    s.L = 2, s.C = 16, s.NH = 2, s.FF = 32, s.V = 40, s.max_T = 8, s.max_B = 4, s.max_positions = 10;
    s.type_vocab = 1, s.ntags = 5, s.ln_eps = 1e-5f, s.init_std = 0.3f, s.head = PEP_HEAD_KIND_TAGGER;
    s.pe = PEP_PE_METHOD_ADAPTER, s.placement = PEP_ADAPTER_PLACEMENT_PFEIFFER, s.adapter_act = PEP_ACTIVATION_GELU;
    s.bottleneck = 4;
    return s;
}

/* 4 sentences of 8, 7, 6, 5 tokens, unpadded (ids, labels: room for 32; offs: 5). */
static void batch(struct pep_batch *b, int *ids, int *labels, int *offs, uint64_t seed)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, 0, 0);
    b->nseq = 4, b->offsets = offs, b->input_ids = ids, b->labels = labels, b->seq0 = 0;
    offs[0] = 0;
    for (int q = 0; q < 4; q++) offs[q + 1] = offs[q] + 8 - q;
    for (int i = 0; i < offs[4]; i++) {
        ids[i] = 4 + (int)pep_rng_below(&r, 35);
        labels[i] = (int)pep_rng_below(&r, 5);
    }
}

/* F(theta) = L_Q(theta, phi_k(theta)): one task's query loss after pep_maml_task's inner loop
 * (k SGD steps of the inner set on the support batch) at the model's current parameters. */
static double maml_objective(struct pep_maml *mm, const struct pep_batch *s, const struct pep_batch *q)
{
    struct pep_maml_task_result res;
    pep_maml_zero(mm);
    assert_int_equal(pep_maml_task(mm, s, q, 5, &res), PEP_OK);
    return res.query_loss;
}

/* The test model: seeded init plus noise, so no tensor is zero (adapter up included). */
static struct pep_model *test_model(float dropout)
{
    struct pep_model_spec s = spec();
    s.dropout = s.attention_dropout = dropout;
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(&s, &m), PEP_OK);
    pep_model_init_weights(m, 3, PEP_GROUPS_ALL);
    struct pep_rng r;
    pep_rng_seed(&r, 9, 0, 0);
    for (size_t i = 0; i < m->table.numel; i++) m->params[i] += 0.05f * pep_rng_normal(&r);
    return m;
}

/* MAML options through the config path (inner lr 0.5, one task per meta-step). */
static struct pep_maml_opts test_opts(const struct pep_model *m, int k, const char *inner_set, const char *outer_set,
                                      const char *pe_init)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    cfg.maml.inner_steps = k, cfg.maml.inner_lr = 0.5f, cfg.maml.meta_batch = 1;
    strcpy(cfg.maml.inner_set, inner_set);
    strcpy(cfg.maml.outer_set, outer_set);
    strcpy(cfg.maml.pe_init, pe_init);
    struct pep_maml_opts o;
    assert_int_equal(pep_maml_opts_from_config(&cfg, m, &o), PEP_OK);
    return o;
}

static void check_meta_gradient(int k, const char *inner_set, const char *outer_set)
{
    struct pep_model *m = test_model(0.0f);
    struct pep_maml_opts o = test_opts(m, k, inner_set, outer_set, "meta");
    struct pep_rng r;
    pep_rng_seed(&r, 10, 0, 0); /* the random directions */
    int ids_s[32], lab_s[32], ids_q[32], lab_q[32], off_s[5], off_q[5];
    struct pep_batch bs, bq;
    batch(&bs, ids_s, lab_s, off_s, 1);
    batch(&bq, ids_q, lab_q, off_q, 2);
    float *g1 = NULL, *g2 = NULL;
    size_t ub, ue;
    double err1 = 0, err2 = 0;
    for (int order = 1; order <= 2; order++) {
        o.order = order;
        struct pep_maml *mm = NULL;
        assert_int_equal(pep_maml_create(m, &o, &mm), PEP_OK);
        pep_maml_update_range(mm, &ub, &ue);
        float *before = malloc(m->table.numel * sizeof(float));
        memcpy(before, m->params, m->table.numel * sizeof(float));
        struct pep_maml_task_result res;
        pep_maml_zero(mm);
        assert_int_equal(pep_maml_task(mm, &bs, &bq, 5, &res), PEP_OK);
        assert_memory_equal(before, m->params, m->table.numel * sizeof(float)); /* parameters restored */
        free(before);
        float *g = malloc((ue - ub) * sizeof(float));
        memcpy(g, pep_maml_grad(mm) + ub, (ue - ub) * sizeof(float));
        if (order == 1) g1 = g;
        else g2 = g;
        pep_maml_destroy(&mm);
    }
    /* directional finite differences of F along 6 random directions over O */
    o.order = 1;
    struct pep_maml *mm = NULL;
    assert_int_equal(pep_maml_create(m, &o, &mm), PEP_OK);
    size_t n = ue - ub;
    float *d = malloc(n * sizeof(float));
    double fd_norm = 0;
    for (int rep = 0; rep < 6; rep++) {
        double dn = 0, gd1 = 0, gd2 = 0;
        for (size_t i = 0; i < n; i++) {
            d[i] = pep_rng_normal(&r);
            dn += (double)d[i] * d[i];
        }
        dn = sqrt(dn);
        for (size_t i = 0; i < n; i++) {
            d[i] /= (float)dn;
            gd1 += (double)g1[i] * d[i];
            gd2 += (double)g2[i] * d[i];
        }
        double e = 3e-3;
        for (size_t i = 0; i < n; i++) m->params[ub + i] += (float)(e * d[i]);
        double fp = maml_objective(mm, &bs, &bq);
        for (size_t i = 0; i < n; i++) m->params[ub + i] -= (float)(2 * e * d[i]);
        double fm = maml_objective(mm, &bs, &bq);
        for (size_t i = 0; i < n; i++) m->params[ub + i] += (float)(e * d[i]);
        double fd = (fp - fm) / (2 * e);
        err1 += (gd1 - fd) * (gd1 - fd);
        err2 += (gd2 - fd) * (gd2 - fd);
        fd_norm += fd * fd;
    }
    err1 = sqrt(err1 / fd_norm), err2 = sqrt(err2 / fd_norm);
    printf("  k=%d inner=%s outer=%s: second-order vs FD %.2e, first-order vs FD %.2e\n", k, inner_set, outer_set, err2,
           err1);
    assert_true(err2 < 2e-2);
    assert_true(err1 > 5 * err2);
    free(d);
    free(g1);
    free(g2);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
}

static void test_maml_second_order_matches_fd_k1(void **st) { check_meta_gradient(1, "pe+head", "plm"); }
static void test_maml_second_order_matches_fd_k3(void **st) { check_meta_gradient(3, "pe+head", "plm"); }
static void test_maml_second_order_meta_init(void **st) { check_meta_gradient(2, "pe+head", "all"); }
static void test_maml_second_order_inner_all(void **st) { check_meta_gradient(2, "all", "plm"); }

/* phi_k of one task at `order` (a malloc'd copy of the inner-set floats). */
static float *adapted_state(struct pep_model *m, struct pep_maml_opts o, int order, const struct pep_batch *bs,
                            const struct pep_batch *bq, size_t *n_in)
{
    o.order = order;
    struct pep_maml *mm = NULL;
    assert_int_equal(pep_maml_create(m, &o, &mm), PEP_OK);
    size_t ib, ie;
    pep_maml_inner_range(mm, &ib, &ie);
    struct pep_maml_task_result res;
    pep_maml_zero(mm);
    assert_int_equal(pep_maml_task(mm, bs, bq, 5, &res), PEP_OK);
    *n_in = ie - ib;
    float *out = malloc(*n_in * sizeof(float));
    memcpy(out, res.adapted, *n_in * sizeof(float));
    pep_maml_destroy(&mm);
    return out;
}

/* The adapted state (what /tasks/<lang> and pe.init = task:<lang> keep) is the inner loop's
 * phi_k for both orders: order 2 runs its finite-difference passes after the inner loop, on
 * perturbed copies of phi_j, and must not report one of those instead. */
static void check_adapted_state_same_for_both_orders(float dropout, const char *pe_init)
{
    struct pep_model *m = test_model(dropout);
    struct pep_maml_opts o = test_opts(m, 2, "pe+head", "plm", pe_init);
    int ids_s[32], lab_s[32], ids_q[32], lab_q[32], off_s[5], off_q[5];
    struct pep_batch bs, bq;
    batch(&bs, ids_s, lab_s, off_s, 1);
    batch(&bq, ids_q, lab_q, off_q, 2);
    size_t n1, n2, ib, ie;
    float *phi1 = adapted_state(m, o, 1, &bs, &bq, &n1), *phi2 = adapted_state(m, o, 2, &bs, &bq, &n2);
    assert_int_equal(n1, n2);
    assert_int_equal(pep_param_table_range(&m->table, o.inner, &ib, &ie), PEP_OK);
    double moved = 0, norm = 0;
    for (size_t i = 0; i < n1; i++) {
        double d = (double)phi1[i] - m->params[ib + i];
        moved += d * d;
        norm += (double)phi1[i] * phi1[i];
    }
    print_message("dropout %.1f, pe_init %s: ||phi_k - model's inner set|| / ||phi_k|| = %.3f\n", (double)dropout,
                  pe_init, sqrt(moved / norm));
    assert_true(moved > 1e-6 * norm);           /* the inner loop did move the state */
    assert_memory_equal(phi1, phi2, n1 * sizeof(float)); /* the same floats: same passes, same masks */
    free(phi1);
    free(phi2);
    pep_model_destroy(&m);
}

static void test_maml_adapted_state_order_independent(void **st) { check_adapted_state_same_for_both_orders(0.0f, "meta"); }
static void test_maml_adapted_state_order_independent_fresh(void **st)
{
    check_adapted_state_same_for_both_orders(0.0f, "fresh");
}
static void test_maml_adapted_state_order_independent_dropout(void **st)
{
    check_adapted_state_same_for_both_orders(0.1f, "meta");
}

/* What pep_maml_set_ready's callback saw: the ranges, and meta-gradient values then. */
struct ready_seen {
    struct pep_maml *mm;
    int n;
    size_t b[512], e[512];
    float *copy;
};

static int seen_ready(size_t begin, size_t end, void *ud)
{
    struct ready_seen *rs = ud;
    assert_true(rs->n < 512 && begin < end);
    rs->b[rs->n] = begin, rs->e[rs->n] = end, rs->n++;
    memcpy(rs->copy + begin, pep_maml_grad(rs->mm) + begin, (end - begin) * sizeof(float));
    return PEP_OK;
}

/* The meta-gradient of two tasks with the ready callback on the second one has the same bits
 * as without it; the callback covers the update range exactly once, each range already final
 * when reported, several ranges (one per finished layer) — for every method and order. */
static void check_ready_same_bits(enum pep_maml_method method, int order, const char *inner_set, const char *outer_set,
                                  const char *pe_init)
{
    struct pep_model *m = test_model(0.1f);
    struct pep_maml_opts o = test_opts(m, 2, inner_set, outer_set, pe_init);
    o.method = method, o.order = order, o.meta_batch = 2;
    int ids[4][32], lab[4][32], off[4][5];
    struct pep_batch b[4];
    for (int i = 0; i < 4; i++) batch(&b[i], ids[i], lab[i], off[i], 11 + (uint64_t)i);
    struct pep_maml *mm = NULL;
    assert_int_equal(pep_maml_create(m, &o, &mm), PEP_OK);
    size_t ub, ue, n = m->table.numel;
    pep_maml_update_range(mm, &ub, &ue);
    float *plain = malloc(n * sizeof(float));
    struct ready_seen rs = {.mm = mm, .copy = calloc(n, sizeof(float))};
    struct pep_maml_task_result res;
    for (int pass = 0; pass < 2; pass++) {
        pep_maml_zero(mm);
        assert_int_equal(pep_maml_task(mm, &b[0], &b[1], 5, &res), PEP_OK);
        if (pass == 1) pep_maml_set_ready(mm, seen_ready, &rs);
        assert_int_equal(pep_maml_task(mm, &b[2], &b[3], 6, &res), PEP_OK);
        if (pass == 0) memcpy(plain, pep_maml_grad(mm), n * sizeof(float));
    }
    print_message("method %d order %d inner %s outer %s: %d ranges reported\n", method, order, inner_set, outer_set, rs.n);
    assert_memory_equal(plain, pep_maml_grad(mm), n * sizeof(float));
    int *cover = calloc(n, sizeof(int));
    for (int k = 0; k < rs.n; k++)
        for (size_t i = rs.b[k]; i < rs.e[k]; i++) cover[i]++;
    for (size_t i = 0; i < n; i++) assert_int_equal(cover[i], i >= ub && i < ue ? 1 : 0);
    assert_memory_equal(rs.copy + ub, plain + ub, (ue - ub) * sizeof(float));
    assert_true(rs.n >= m->spec.L + 1); /* layer by layer, not one range at the end */
    /* the callback served one task: the next one runs without it */
    int before = rs.n;
    assert_int_equal(pep_maml_task(mm, &b[0], &b[1], 5, &res), PEP_OK);
    assert_int_equal(rs.n, before);
    free(cover);
    free(rs.copy);
    free(plain);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
}

static void test_maml_ready_callback_same_bits(void **st)
{
    check_ready_same_bits(PEP_MAML_METHOD_MAML, 1, "pe+head", "plm", "fresh");
    check_ready_same_bits(PEP_MAML_METHOD_MAML, 2, "pe+head", "plm", "fresh");
    check_ready_same_bits(PEP_MAML_METHOD_MAML, 1, "pe+head", "all", "meta");
    check_ready_same_bits(PEP_MAML_METHOD_MAML, 2, "pe+head", "all", "meta");
    check_ready_same_bits(PEP_MAML_METHOD_MAML, 2, "all", "plm", "fresh");
    check_ready_same_bits(PEP_MAML_METHOD_MULTITASK, 1, "pe+head", "plm", "fresh");
    check_ready_same_bits(PEP_MAML_METHOD_MULTITASK_MATCHED, 1, "pe+head", "plm", "fresh");
}

static void test_maml_rejects_fresh_pe_in_outer_set(void **st)
{
    struct pep_model_spec s = spec();
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(&s, &m), PEP_OK);
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    strcpy(cfg.maml.outer_set, "plm+pe");
    strcpy(cfg.maml.pe_init, "fresh");
    struct pep_maml_opts o;
    pep_error_clear();
    assert_int_equal(pep_maml_opts_from_config(&cfg, m, &o), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "maml.pe_init = meta"));
    pep_error_clear();
    pep_model_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maml_second_order_matches_fd_k1),
        cmocka_unit_test(test_maml_second_order_matches_fd_k3),
        cmocka_unit_test(test_maml_second_order_meta_init),
        cmocka_unit_test(test_maml_second_order_inner_all),
        cmocka_unit_test(test_maml_adapted_state_order_independent),
        cmocka_unit_test(test_maml_adapted_state_order_independent_fresh),
        cmocka_unit_test(test_maml_adapted_state_order_independent_dropout),
        cmocka_unit_test(test_maml_rejects_fresh_pe_in_outer_set),
        cmocka_unit_test(test_maml_ready_callback_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
