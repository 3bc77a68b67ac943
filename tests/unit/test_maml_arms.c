/* The priming arms of experiment v2 (docs/results.md) in one process: maml.pe_init = episode
 * (a fresh PE + head draw per task seed, the start reported with the adapted state),
 * maml.inner_optim = adam against a hand-written Adam inner loop, and maml.method =
 * multitask-matched against the plain query-batch gradient through the fresh modules. */
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

static struct pep_model *model(void)
{
    struct pep_model_spec s = {0};
    s.L = 2, s.C = 16, s.NH = 2, s.FF = 32, s.V = 40, s.max_T = 8, s.max_B = 4, s.max_positions = 10;
    s.type_vocab = 1, s.ntags = 5, s.ln_eps = 1e-5f, s.init_std = 0.3f, s.head = PEP_HEAD_KIND_TAGGER;
    s.pe = PEP_PE_METHOD_ADAPTER, s.placement = PEP_ADAPTER_PLACEMENT_PFEIFFER, s.adapter_act = PEP_ACTIVATION_GELU;
    s.bottleneck = 4;
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(&s, &m), PEP_OK);
    pep_model_init_weights(m, 3, PEP_GROUPS_ALL);
    return m;
}

/* 4 sentences of 8, 7, 6, 5 tokens, unpadded (ids, labels: room for 32). */
static int batch_offsets[5] = {0, 8, 15, 21, 26};

static void batch(struct pep_batch *b, int *ids, int *labels, uint64_t seed)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, 0, 0);
    b->nseq = 4, b->offsets = batch_offsets, b->input_ids = ids, b->labels = labels, b->seq0 = 0;
    for (int i = 0; i < batch_offsets[4]; i++) {
        ids[i] = 4 + (int)pep_rng_below(&r, 35);
        labels[i] = (int)pep_rng_below(&r, 5);
    }
}

static struct pep_maml *make(struct pep_model *m, const char *method, const char *pe_init, const char *optim, int k,
                             float lr)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    strcpy(cfg.maml.method, method);
    strcpy(cfg.maml.pe_init, pe_init);
    strcpy(cfg.maml.inner_optim, optim);
    cfg.maml.inner_steps = k, cfg.maml.inner_lr = lr, cfg.maml.meta_batch = 2;
    assert_int_equal(pep_config_validate(&cfg), PEP_OK);
    struct pep_maml_opts o;
    assert_int_equal(pep_maml_opts_from_config(&cfg, m, &o), PEP_OK);
    struct pep_maml *mm = NULL;
    assert_int_equal(pep_maml_create(m, &o, &mm), PEP_OK);
    return mm;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* pe_init = episode: the start is a function of the task seed alone, differs between seeds,
 * is the model's initialiser (zero rows stay zero, the others have its spread) and the
 * parameters come back unchanged. */
static void test_episode_start(void **st)
{
    (void)st;
    struct pep_model *m = model();
    struct pep_maml *mm = make(m, "maml", "episode", "sgd", 2, 0.1f);
    int ids[2][32], lab[2][32];
    struct pep_batch bs, bq;
    batch(&bs, ids[0], lab[0], 1);
    batch(&bq, ids[1], lab[1], 2);
    size_t ib, ie;
    pep_maml_inner_range(mm, &ib, &ie);
    size_t n = ie - ib;
    float *before = malloc(m->table.numel * sizeof(float)), *s1 = malloc(n * sizeof(float));
    memcpy(before, m->params, m->table.numel * sizeof(float));
    struct pep_maml_task_result r;
    assert_int_equal(pep_maml_task(mm, &bs, &bq, 11, &r), PEP_OK);
    memcpy(s1, r.start, n * sizeof(float));
    assert_true(max_abs_diff(r.adapted, r.start, n) > 0); /* the inner loop moved */
    assert_memory_equal(before, m->params, m->table.numel * sizeof(float));
    assert_int_equal(pep_maml_task(mm, &bs, &bq, 11, &r), PEP_OK);
    assert_memory_equal(s1, r.start, n * sizeof(float));
    assert_int_equal(pep_maml_task(mm, &bs, &bq, 12, &r), PEP_OK);
    assert_true(max_abs_diff(s1, r.start, n) > 0.05);
    /* row by row against the initialiser's rules */
    for (int i = 0; i < m->table.count; i++) {
        const struct pep_param *p = &m->table.rows[i];
        if (p->offset < ib || p->offset >= ie) continue;
        const float *x = s1 + (p->offset - ib);
        double ss = 0;
        for (size_t j = 0; j < p->numel; j++) ss += (double)x[j] * x[j];
        double sd = sqrt(ss / (double)p->numel);
        if (strstr(p->name, "adapter_up.weight") || strstr(p->name, ".bias"))
            assert_true(sd == 0.0);
        else if (!strstr(p->name, "LayerNorm") && p->numel >= 40)
            assert_true(sd > 0.2 && sd < 0.4); /* init_std 0.3 */
    }
    free(before);
    free(s1);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
}

/* Inner Adam, k = 2, against the update written out here from the model's own gradients. */
static void test_inner_adam(void **st)
{
    (void)st;
    struct pep_model *m = model();
    const float lr = 0.01f;
    struct pep_maml *mm = make(m, "maml", "episode", "adam", 2, lr);
    int ids[2][32], lab[2][32];
    struct pep_batch bs, bq;
    batch(&bs, ids[0], lab[0], 1);
    batch(&bq, ids[1], lab[1], 2);
    size_t ib, ie;
    pep_maml_inner_range(mm, &ib, &ie);
    size_t n = ie - ib;
    struct pep_maml_task_result r;
    assert_int_equal(pep_maml_task(mm, &bs, &bq, 7, &r), PEP_OK);
    float *phi = malloc(n * sizeof(float)), *mo = calloc(n, sizeof(float)), *ve = calloc(n, sizeof(float));
    float *save = malloc(n * sizeof(float));
    memcpy(save, m->params + ib, n * sizeof(float));
    memcpy(phi, r.start, n * sizeof(float));
    unsigned inner = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f; /* optim.* defaults */
    int at_lr = 0, moved = 0;
    for (int j = 0; j < 2; j++) {
        memcpy(m->params + ib, phi, n * sizeof(float));
        float loss;
        pep_model_zero_grad(m, inner);
        assert_int_equal(pep_model_forward(m, &bs, 1, 0, &loss), PEP_OK);
        assert_int_equal(pep_model_backward(m, inner), PEP_OK);
        for (size_t i = 0; i < n; i++) {
            float g = m->grads[ib + i];
            mo[i] = b1 * mo[i] + (1 - b1) * g;
            ve[i] = b2 * ve[i] + (1 - b2) * g * g;
            float step = lr * (mo[i] / (1 - powf(b1, (float)j + 1))) / (sqrtf(ve[i] / (1 - powf(b2, (float)j + 1))) + eps);
            if (j == 0 && g != 0) moved++, at_lr += fabsf(step) > 0.99f * lr;
            phi[i] -= step;
        }
    }
    memcpy(m->params + ib, save, n * sizeof(float));
    double d = max_abs_diff(phi, r.adapted, n);
    printf("  inner Adam k=2: max |adapted - hand-written| = %.2e (lr %.0e); %d of %d moved entries took a full "
           "first step\n", d, (double)lr, at_lr, moved);
    assert_true(d < 1e-5);
    assert_true(at_lr > moved / 2); /* Adam's first step is lr * sign(g), unlike SGD's lr * g */
    free(phi);
    free(mo);
    free(ve);
    free(save);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
}

/* multitask-matched: the meta-gradient is (1 / meta_batch) x the encoder gradient of the query
 * loss at the episode's fresh PE + head; the support batch plays no part; only the encoder
 * is updated. */
static void test_multitask_matched(void **st)
{
    (void)st;
    struct pep_model *m = model();
    struct pep_maml *mm = make(m, "multitask-matched", "episode", "sgd", 3, 0.1f);
    int ids[3][32], lab[3][32];
    struct pep_batch bs, bs2, bq;
    batch(&bs, ids[0], lab[0], 1);
    batch(&bq, ids[1], lab[1], 2);
    batch(&bs2, ids[2], lab[2], 3);
    size_t ub, ue, ib, ie, pb, pe;
    pep_maml_update_range(mm, &ub, &ue);
    pep_maml_inner_range(mm, &ib, &ie);
    assert_int_equal(pep_param_table_range(&m->table, PEP_GROUP_BIT(PEP_GROUP_PLM), &pb, &pe), PEP_OK);
    assert_true(ub == pb && ue == pe);
    size_t n = ue - ub, nin = ie - ib;
    float *before = malloc(m->table.numel * sizeof(float)), *g = malloc(n * sizeof(float));
    memcpy(before, m->params, m->table.numel * sizeof(float));
    struct pep_maml_task_result r;
    pep_maml_zero(mm);
    assert_int_equal(pep_maml_task(mm, &bs, &bq, 21, &r), PEP_OK);
    assert_memory_equal(before, m->params, m->table.numel * sizeof(float));
    assert_memory_equal(r.start, r.adapted, nin * sizeof(float)); /* no adaptation */
    memcpy(g, pep_maml_grad(mm) + ub, n * sizeof(float));
    /* another support batch: the same gradient */
    pep_maml_zero(mm);
    assert_int_equal(pep_maml_task(mm, &bs2, &bq, 21, &r), PEP_OK);
    assert_memory_equal(g, pep_maml_grad(mm) + ub, n * sizeof(float));
    /* by hand */
    memcpy(m->params + ib, r.start, nin * sizeof(float));
    float loss;
    pep_model_zero_grad(m, PEP_GROUP_BIT(PEP_GROUP_PLM));
    assert_int_equal(pep_model_forward(m, &bq, 1, 0, &loss), PEP_OK);
    assert_int_equal(pep_model_backward(m, PEP_GROUP_BIT(PEP_GROUP_PLM)), PEP_OK);
    assert_true(fabsf(loss - r.query_loss) < 1e-6f);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)g[i] - 0.5 * m->grads[ub + i];
        num += d * d, den += 0.25 * (double)m->grads[ub + i] * m->grads[ub + i];
    }
    printf("  multitask-matched vs query gradient by hand: relative error %.2e\n", sqrt(num / den));
    assert_true(den > 0 && sqrt(num / den) < 1e-6);
    free(before);
    free(g);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
}

static void expect_config_error(const char *key, const char *value, const char *key2, const char *value2,
                                const char *needle)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    assert_int_equal(pep_config_set(&cfg, key, value, "test"), PEP_OK);
    assert_int_equal(pep_config_set(&cfg, key2, value2, "test"), PEP_OK);
    pep_error_clear();
    assert_int_equal(pep_config_validate(&cfg), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), needle));
    pep_error_clear();
}

static void test_config_checks(void **st)
{
    (void)st;
    expect_config_error("maml.inner_optim", "adam", "maml.order", "2", "first order only");
    expect_config_error("maml.method", "multitask-matched", "maml.pe_init", "meta", "fresh or episode");
    expect_config_error("maml.inner_head_optim", "adam", "maml.order", "2", "maml.inner_head_optim = adam is first order only");
    expect_config_error("maml.inner_pe_optim", "finetune", "maml.order", "2", "maml.inner_pe_optim = finetune is first order only");
    expect_config_error("maml.inner_optim", "finetune", "maml.order", "1", "set maml.replay_from");
    expect_config_error("maml.inner_pe_optim", "finetune", "maml.order", "1", "set maml.replay_from");
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "maml.inner_optim", "adamw", "test"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "sgd"));
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "maml.pe_init", "episode", "test"), PEP_OK);
    assert_int_equal(pep_config_set(&cfg, "maml.method", "multitask-matched", "test"), PEP_OK);
    assert_int_equal(pep_config_validate(&cfg), PEP_OK);
}

/* Per-group rules: naming each group's rule and rate as the shared ones gives the bits of the
 * shared rule (old job files keep their results); a different head rate changes only what it
 * should; pep_maml_create refuses a finetune rule without a replayed optimizer. */
static void test_group_rules(void **st)
{
    (void)st;
    struct pep_model *m = model();
    int ids[32], labels[32], qids[32], qlabels[32];
    struct pep_batch S, Q;
    batch(&S, ids, labels, 11);
    batch(&Q, qids, qlabels, 12);
    float *adapted[3];
    size_t ib, ie;
    for (int v = 0; v < 3; v++) {
        struct pep_config cfg;
        pep_config_defaults(&cfg);
        strcpy(cfg.maml.pe_init, "episode");
        cfg.maml.inner_steps = 2, cfg.maml.inner_lr = 0.3f, cfg.maml.order = 2;
        if (v >= 1) strcpy(cfg.maml.inner_pe_optim, "sgd"), strcpy(cfg.maml.inner_head_optim, "sgd"),
            cfg.maml.inner_pe_lr = 0.3f, cfg.maml.inner_head_lr = 0.3f;
        if (v == 2) cfg.maml.inner_head_lr = 0.05f;
        assert_int_equal(pep_config_validate(&cfg), PEP_OK);
        struct pep_maml_opts o;
        assert_int_equal(pep_maml_opts_from_config(&cfg, m, &o), PEP_OK);
        struct pep_maml *mm = NULL;
        assert_int_equal(pep_maml_create(m, &o, &mm), PEP_OK);
        struct pep_maml_task_result res;
        pep_maml_zero(mm);
        assert_int_equal(pep_maml_task(mm, &S, &Q, 5, &res), PEP_OK);
        pep_maml_inner_range(mm, &ib, &ie);
        adapted[v] = malloc((ie - ib) * sizeof(float));
        memcpy(adapted[v], res.adapted, (ie - ib) * sizeof(float));
        pep_maml_destroy(&mm);
    }
    size_t hb, he;
    assert_int_equal(pep_param_table_range(&m->table, PEP_GROUP_BIT(PEP_GROUP_HEAD), &hb, &he), PEP_OK);
    assert_memory_equal(adapted[0], adapted[1], (ie - ib) * sizeof(float));
    /* the head's rate moves the head; the first inner step of the PE modules (same start, same gradient) is unchanged */
    assert_true(max_abs_diff(adapted[0] + (hb - ib), adapted[2] + (hb - ib), he - hb) > 1e-4);
    for (int v = 0; v < 3; v++) free(adapted[v]);
    /* finetune without a replayed optimizer: a clear error, not a silent zero rate */
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    strcpy(cfg.maml.inner_optim, "finetune");
    struct pep_maml_opts o;
    assert_int_equal(pep_maml_opts_from_config(&cfg, m, &o), PEP_OK);
    struct pep_maml *mm = NULL;
    pep_error_clear();
    assert_int_equal(pep_maml_create(m, &o, &mm), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "maml.replay_from"));
    pep_error_clear();
    pep_model_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_episode_start),
        cmocka_unit_test(test_inner_adam),
        cmocka_unit_test(test_multitask_matched),
        cmocka_unit_test(test_config_checks),
        cmocka_unit_test(test_group_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
