/* MAML of src/maml against the PyTorch oracle (tests/ref/maml_ref.py): for every fixture in
 * DIR/maml_fixtures.txt, one task with the fixture's k, inner lr and group sets, and phi_0 the
 * fixture's inner-set weights (maml.pe_init = meta) or peprime's seeded fresh init
 * (maml.pe_init = fresh, fixtures named *_fresh; the oracle rebuilds that init with
 * tests/ref/init_ref.py and the test checks it against the C initialiser). Fixtures named
 * *_dropout run in training mode (dropout 0.1 everywhere): the oracle applies the masks
 * pep_maml_task draws for the fixture's task seed (tests/ref/dropout_ref.py), so the inner
 * step j and both finite-difference passes of its HVP must replay one mask set. Checked:
 *   - meta-gradient: order 1 against the first-order reference within 1e-4, order 2
 *     (finite-difference HVPs, eps0 = 1e-3) against the exact autograd answer within 1e-3
 *     (relative 2-norm over all outer parameters); the first-order result must miss the exact
 *     one by far more than that, so the order-2 check can fail. Fixtures whose
 *     kink_crossings > 0 have ReLU adapter units that change sign between the two passes of
 *     an HVP: they pass only because both passes replay the ReLU pattern of phi_j;
 *   - the adapted state phi_k (what /tasks/<lang> keeps) of both orders against the oracle's
 *     fast weights within 1e-5;
 *   - the multi-task baseline (maml.method = multitask): its gradient over O u I against
 *     grad (L_S + L_Q) / 2 within 1e-4, and its two losses.
 * With --rules, the per-group inner rules of DIR/maml_rule_fixtures.txt (maml_ref.py
 * make-rule-fixture-set): per-group SGD rates (order 1 and 2), Adam on the PE modules, and the
 * finetune rule replaying fine-tuning's AdamW (clip, weight decay, a window of its schedule;
 * first order): the meta-gradient, phi_k and the meta-loss at the same tolerances.
 *
 * Usage: test_maml_parity DIR [--rules] (ctest passes the folder made by the fixture setup). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "maml/maml.h"
#include "model/model.h"
#include "fixture.h"
#include "testutil.h"

#define MAX_FIXTURES 64
#define O1_TOL 1e-4
#define O2_TOL 1e-3
#define PHI_TOL 1e-5
#define MT_TOL 1e-4
#define INIT_TOL 1e-7

static const char *fixture_dir;

static double scalar(struct pep_fixture *tf, const char *name)
{
    double v = 0;
    if (pep_fixture_scalar(tf, name, &v) != 0) fail_msg("fixture: %s", tf->err);
    return v;
}

static double spec_value(struct pep_fixture *tf, const char *key)
{
    char name[128];
    snprintf(name, sizeof name, "spec/%s", key);
    return scalar(tf, name);
}

static void spec_from_fixture(struct pep_fixture *tf, struct pep_model_spec *s)
{
    memset(s, 0, sizeof *s);
    s->L = (int)spec_value(tf, "L");
    s->C = (int)spec_value(tf, "C");
    s->NH = (int)spec_value(tf, "NH");
    s->FF = (int)spec_value(tf, "FF");
    s->V = (int)spec_value(tf, "V");
    s->max_T = (int)spec_value(tf, "max_T");
    s->max_B = (int)spec_value(tf, "max_B");
    s->max_positions = (int)spec_value(tf, "max_positions");
    s->type_vocab = (int)spec_value(tf, "type_vocab");
    s->ntags = (int)spec_value(tf, "ntags");
    s->ln_eps = (float)spec_value(tf, "ln_eps");
    s->dropout = (float)spec_value(tf, "dropout");
    s->attention_dropout = (float)spec_value(tf, "attention_dropout");
    s->init_std = (float)spec_value(tf, "init_std");
    s->head = (enum pep_head_kind)spec_value(tf, "head");
    s->pe = (enum pep_pe_method)spec_value(tf, "pe");
    s->placement = (enum pep_adapter_placement)spec_value(tf, "placement");
    s->adapter_act = (enum pep_activation)spec_value(tf, "adapter_act");
    s->bottleneck = (int)spec_value(tf, "bottleneck");
    s->prefix_len = (int)spec_value(tf, "prefix_len");
    s->prefix_reparam = (int)spec_value(tf, "prefix_reparam");
    s->prefix_hidden = (int)spec_value(tf, "prefix_hidden");
    s->lora_rank = (int)spec_value(tf, "lora_rank");
    s->lora_alpha = (float)spec_value(tf, "lora_alpha");
}

/* The fixture's padded sentences as an unpadded batch (pep_batch_free it). */
static struct pep_batch batch(struct pep_fixture *tf, const char *ids_name, const char *labels_name)
{
    const struct pep_fixture_tensor *ids = pep_fixture_find(tf, ids_name), *lab = pep_fixture_find(tf, labels_name);
    if (!ids || !lab || ids->dtype != PEP_ST_DTYPE_I32 || lab->dtype != PEP_ST_DTYPE_I32 || ids->ndim != 2)
        fail_msg("fixture lacks int32 %s / %s", ids_name, labels_name);
    struct pep_batch b;
    pep_test_batch_from_padded(&b, ids->data, lab->data, (int)ids->dims[0], (int)ids->dims[1]);
    return b;
}

/* ||x - ref|| / ||ref|| over every tensor "<prefix>/<name>" of the fixture; x holds the
 * floats of the table rows from offset `base` on (the flat model block: base 0). */
static double rel_err(const struct pep_model *m, const float *x, size_t base, struct pep_fixture *tf,
                      const char *prefix)
{
    double d = 0, r = 0;
    int found = 0;
    for (int i = 0; i < m->table.count; i++) {
        const struct pep_param *p = &m->table.rows[i];
        char name[PEP_PARAM_NAME_MAX + 32];
        snprintf(name, sizeof name, "%s/%s", prefix, p->name);
        const struct pep_fixture_tensor *t = pep_fixture_find(tf, name);
        if (!t) continue;
        assert_int_equal(t->numel, p->numel);
        assert_true(p->offset >= base);
        found++;
        for (size_t e = 0; e < p->numel; e++) {
            double ref = ((const float *)t->data)[e], dx = x[p->offset - base + e] - ref;
            d += dx * dx;
            r += ref * ref;
        }
    }
    assert_true(found > 0);
    return sqrt(d) / fmax(sqrt(r), 1e-30);
}

static struct pep_model *fixture_model(struct pep_fixture *tf)
{
    struct pep_model_spec spec;
    spec_from_fixture(tf, &spec);
    struct pep_model *m = NULL;
    if (pep_model_create(&spec, &m) != PEP_OK) fail_msg("pep_model_create: %s", pep_error_message());
    for (int i = 0; i < m->table.count; i++) {
        const struct pep_param *p = &m->table.rows[i];
        const struct pep_fixture_tensor *t = pep_fixture_find(tf, p->name);
        if (!t || t->dtype != PEP_ST_DTYPE_F32 || t->numel != p->numel) fail_msg("fixture weight %s missing or mis-sized", p->name);
        memcpy(m->params + p->offset, t->data, p->numel * sizeof(float));
    }
    return m;
}

struct outcome {
    double err_o1, err_o2; /* meta-gradient against the first- and second-order references */
    double err_phi;        /* adapted state against fast/ */
    float support_loss, query_loss;
};

/* Runs one task of `method` at `order` on a model holding the fixture's weights. */
static void run(struct pep_fixture *tf, enum pep_maml_method method, int order, struct outcome *out)
{
    struct pep_model *m = fixture_model(tf);
    struct pep_maml_opts o = {0};
    o.method = method;
    o.order = order;
    o.inner_steps = (int)scalar(tf, "maml/k");
    o.inner_lr = (float)scalar(tf, "maml/inner_lr");
    o.fd_eps = 1e-3f;
    o.inner = (unsigned)scalar(tf, "maml/inner_groups");
    o.outer = (unsigned)scalar(tf, "maml/outer_groups");
    o.pe_init = (int)scalar(tf, "maml/pe_init_meta") ? PEP_MAML_PE_INIT_META : PEP_MAML_PE_INIT_FRESH;
    o.fresh_seed = (uint64_t)scalar(tf, "maml/fresh_seed");
    o.meta_batch = 1;
    o.beta1 = 0.9f, o.beta2 = 0.999f, o.adam_eps = 1e-8f; /* the inner Adam's: optim.beta1/beta2/eps defaults, maml_ref.ADAM */
    double code = 0;
    static const char *const gname[PEP_GROUP_COUNT] = {NULL, "pe", "head"};
    for (int g = PEP_GROUP_PE; g < PEP_GROUP_COUNT; g++) { /* rule fixtures: each group's own rule */
        char key[64];
        snprintf(key, sizeof key, "maml/rule/%s_optim", gname[g]);
        if (pep_fixture_scalar(tf, key, &code) != 0) continue;
        o.rule[g].set = 1;
        o.rule[g].optim = (enum pep_maml_inner_optim)(int)code;
        snprintf(key, sizeof key, "maml/rule/%s_lr", gname[g]);
        o.rule[g].lr = (float)scalar(tf, key);
    }
    if (pep_fixture_scalar(tf, "maml/replay/lr", &code) == 0) {
        struct pep_optim *r = &o.replay;
        r->kind = PEP_OPTIM_KIND_ADAMW;
        r->lr = (float)code;
        r->beta1 = (float)scalar(tf, "maml/replay/beta1");
        r->beta2 = (float)scalar(tf, "maml/replay/beta2");
        r->eps = (float)scalar(tf, "maml/replay/eps");
        r->weight_decay = (float)scalar(tf, "maml/replay/weight_decay");
        r->clip = (float)scalar(tf, "maml/replay/clip");
        r->warmup = (int)scalar(tf, "maml/replay/warmup");
        r->total_steps = (int)scalar(tf, "maml/replay/steps");
        r->schedule = scalar(tf, "maml/replay/linear") != 0 ? PEP_OPTIM_SCHEDULE_LINEAR : PEP_OPTIM_SCHEDULE_CONSTANT;
        o.replay_start = (long)scalar(tf, "maml/replay/start");
    }
    struct pep_maml *mm = NULL;
    if (pep_maml_create(m, &o, &mm) != PEP_OK) fail_msg("pep_maml_create: %s", pep_error_message());
    struct pep_batch S = batch(tf, "support_ids", "support_labels"), Q = batch(tf, "query_ids", "query_labels");
    struct pep_maml_task_result res;
    pep_maml_zero(mm);
    uint64_t task_seed = (uint64_t)scalar(tf, "maml/task_seed"); /* the dropout masks of every pass */
    if (pep_maml_task(mm, &S, &Q, task_seed, &res) != PEP_OK) fail_msg("pep_maml_task: %s", pep_error_message());
    size_t ib, ie;
    pep_maml_inner_range(mm, &ib, &ie);
    memset(out, 0, sizeof *out);
    if (method == PEP_MAML_METHOD_MULTITASK) {
        out->err_o1 = rel_err(m, pep_maml_grad(mm), 0, tf, "mt_grad");
    } else {
        out->err_o1 = rel_err(m, pep_maml_grad(mm), 0, tf, "meta_grad_o1");
        double o2 = 1; /* rule fixtures of first-order-only rules have no meta_grad_o2 */
        if (pep_fixture_scalar(tf, "maml/order2", &o2) != 0 || o2 != 0)
            out->err_o2 = rel_err(m, pep_maml_grad(mm), 0, tf, "meta_grad_o2");
        out->err_phi = rel_err(m, res.adapted, ib, tf, "fast");
    }
    out->support_loss = res.support_loss;
    out->query_loss = res.query_loss;
    pep_batch_free(&S);
    pep_batch_free(&Q);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
}

/* The oracle's phi_0 of a fresh fixture (fresh0/, from init_ref.py) against the C initialiser
 * with the same seed, so a drift of the Python twin is reported as such. */
static void check_fresh_init(struct pep_fixture *tf)
{
    struct pep_model *m = fixture_model(tf);
    unsigned inner = (unsigned)scalar(tf, "maml/inner_groups");
    pep_model_init_weights(m, (uint64_t)scalar(tf, "maml/fresh_seed"), inner & ~PEP_GROUP_BIT(PEP_GROUP_PLM));
    double e = rel_err(m, m->params, 0, tf, "fresh0");
    print_message("fresh init (init_ref.py twin) vs pep_model_init_weights: %.2e\n", e);
    assert_true(e <= INIT_TOL);
    pep_model_destroy(&m);
}

static int close_to(double x, double ref, double tol) { return fabs(x - ref) <= tol * fabs(ref); }

static void test_maml_parity_fixture(void **state)
{
    const char *file = *state;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, file);
    struct pep_fixture tf;
    if (pep_fixture_load(&tf, path) != 0) fail_msg("%s", tf.err);
    double gap = scalar(&tf, "rel_diff_o1_o2"), ref_loss = scalar(&tf, "meta_loss_o2");
    double kinks = scalar(&tf, "kink_crossings");
    if (!(int)scalar(&tf, "maml/pe_init_meta")) check_fresh_init(&tf);
    struct outcome r1, r2, mt;
    run(&tf, PEP_MAML_METHOD_MAML, 1, &r1);
    run(&tf, PEP_MAML_METHOD_MAML, 2, &r2);
    run(&tf, PEP_MAML_METHOD_MULTITASK, 1, &mt);
    print_message("%s: order 1 vs o1 ref %.2e (vs o2 ref %.2e); order 2 vs o2 ref %.2e; o1-o2 gap %.3f; "
                  "meta-loss %.6f ref %.6f; phi_k vs fast weights: order 1 %.2e, order 2 %.2e; "
                  "multi-task gradient %.2e; ReLU units across a kink in the HVP passes: %.0f\n", file, r1.err_o1,
                  r1.err_o2, r2.err_o2, gap, r2.query_loss, ref_loss, r1.err_phi, r2.err_phi, mt.err_o1, kinks);
    assert_true(close_to(r1.query_loss, ref_loss, 1e-5));
    assert_true(close_to(r2.query_loss, ref_loss, 1e-5));
    assert_true(r1.err_o1 <= O1_TOL);
    assert_true(r2.err_o2 <= O2_TOL);
    assert_true(r1.err_o2 > 10 * O2_TOL); /* the order-2 check would catch a first-order answer */
    assert_true(r1.err_phi <= PHI_TOL);
    assert_true(r2.err_phi <= PHI_TOL);
    assert_true(mt.err_o1 <= MT_TOL);
    assert_true(close_to(mt.support_loss, scalar(&tf, "support_loss0"), 1e-5));
    assert_true(close_to(mt.query_loss, scalar(&tf, "query_loss0"), 1e-5));
    pep_fixture_fini(&tf);
}

/* A rule fixture: order 1 always; order 2 where the rules are SGD (maml/order2). */
static void test_maml_rules_fixture(void **state)
{
    const char *file = *state;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, file);
    struct pep_fixture tf;
    if (pep_fixture_load(&tf, path) != 0) fail_msg("%s", tf.err);
    if (!(int)scalar(&tf, "maml/pe_init_meta")) check_fresh_init(&tf);
    int order2 = (int)scalar(&tf, "maml/order2");
    double ref_loss = scalar(&tf, "meta_loss_o1");
    struct outcome r1, r2 = {0};
    run(&tf, PEP_MAML_METHOD_MAML, 1, &r1);
    if (order2) run(&tf, PEP_MAML_METHOD_MAML, 2, &r2);
    print_message("%s: order 1 vs o1 ref %.2e; phi_k %.2e; meta-loss %.6f ref %.6f%s", file, r1.err_o1, r1.err_phi,
                  r1.query_loss, ref_loss, order2 ? "" : " (first order only)\n");
    if (order2)
        print_message("; order 2 vs o2 ref %.2e (order 1 vs o2 ref %.2e), phi_k %.2e\n", r2.err_o2, r1.err_o2,
                      r2.err_phi);
    assert_true(close_to(r1.query_loss, ref_loss, 1e-5));
    assert_true(r1.err_o1 <= O1_TOL);
    assert_true(r1.err_phi <= PHI_TOL);
    if (order2) {
        assert_true(r2.err_o2 <= O2_TOL);
        assert_true(r1.err_o2 > 10 * O2_TOL);
        assert_true(r2.err_phi <= PHI_TOL);
    }
    pep_fixture_fini(&tf);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR [--rules] (made by tests/ref/maml_ref.py make-fixture-set or "
                "make-rule-fixture-set)\n", argv[0]);
        return 2;
    }
    fixture_dir = argv[1];
    int rules = argc > 2 && !strcmp(argv[2], "--rules");
    char list[2048];
    snprintf(list, sizeof list, "%s/%s", fixture_dir, rules ? "maml_rule_fixtures.txt" : "maml_fixtures.txt");
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open; run tests/ref/maml_ref.py make-fixture-set --out-dir %s\n", list, fixture_dir);
        return 2;
    }
    static char names[MAX_FIXTURES][256];
    static char titles[MAX_FIXTURES][300];
    struct CMUnitTest tests[MAX_FIXTURES];
    int n = 0;
    while (n < MAX_FIXTURES && fgets(names[n], sizeof names[n], f)) {
        names[n][strcspn(names[n], "\r\n")] = '\0';
        if (!names[n][0]) continue;
        snprintf(titles[n], sizeof titles[n], "test_maml_parity_%.200s", names[n]);
        tests[n] = (struct CMUnitTest){titles[n], rules ? test_maml_rules_fixture : test_maml_parity_fixture, NULL,
                                       NULL, names[n]};
        n++;
    }
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "%s lists no fixtures\n", list);
        return 2;
    }
    return _cmocka_run_group_tests("maml_parity", tests, (size_t)n, NULL, NULL);
}
