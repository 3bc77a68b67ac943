/* End-to-end parity of the C encoder with the PyTorch oracle (tests/ref/encoder_ref.py):
 * for every fixture in DIR/fixtures.txt, build the model from the spec/<key> tensors, copy
 * the weights by name, run forward + backward over every group, and compare loss, logits and
 * every gradient tensor (1e-5, relative in the 2-norm). The oracle runs mixed-length
 * sentences (1 .. T tokens) padded to the longest with an attention mask; peprime runs the
 * same sentences unpadded (its only layout), so this is also the proof that skipping the
 * padding does not change the maths: tagger logits are compared at the real tokens, MLM
 * logits at the labelled ones. Fixtures with a `dropout_seed` run in training mode: dropout
 * on with the masks the oracle drew (tests/ref/dropout_ref.py). A last test shows the
 * comparison can fail: one perturbed element of a reference gradient must break it.
 *
 * Usage: test_encoder_parity DIR (ctest passes the fixture folder made by the setup test). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "fixture.h"
#include "testutil.h"

#define LOSS_TOL 1e-5
#define TENSOR_TOL 1e-5
/* for a numerically zero reference (||ref|| below the floor: the key-bias gradient without
 * prefixes, pure float32 round-off on both sides), relative to the floor */
#define ZERO_REF_TOL 1e-4
#define MAX_FIXTURES 64

static const char *fixture_dir;

/* ||a - b|| / max(||b||, floor). The floor keeps mathematically-zero references (the key
 * bias gradient: softmax ignores a per-query shift of the scores) from turning float32
 * round-off into a failure; callers pass 1e-3 x the largest gradient norm of the fixture. */
static double rel_err_floor(const float *a, const float *b, size_t n, double floor)
{
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (double)a[i] - (double)b[i];
        d += x * x;
        r += (double)b[i] * (double)b[i];
    }
    r = sqrt(r);
    return sqrt(d) / (r > floor ? r : floor);
}

static double norm2(const float *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)a[i];
    return sqrt(s);
}

static int spec_int(struct pep_fixture *tf, const char *key)
{
    char name[128];
    double v = 0;
    snprintf(name, sizeof name, "spec/%s", key);
    if (pep_fixture_scalar(tf, name, &v) != 0) fail_msg("fixture: %s", tf->err);
    return (int)v;
}

static float spec_float(struct pep_fixture *tf, const char *key)
{
    char name[128];
    double v = 0;
    snprintf(name, sizeof name, "spec/%s", key);
    if (pep_fixture_scalar(tf, name, &v) != 0) fail_msg("fixture: %s", tf->err);
    return (float)v;
}

static void spec_from_fixture(struct pep_fixture *tf, struct pep_model_spec *s)
{
    memset(s, 0, sizeof *s);
    s->L = spec_int(tf, "L");
    s->C = spec_int(tf, "C");
    s->NH = spec_int(tf, "NH");
    s->FF = spec_int(tf, "FF");
    s->V = spec_int(tf, "V");
    s->max_T = spec_int(tf, "max_T");
    s->max_B = spec_int(tf, "max_B");
    s->max_positions = spec_int(tf, "max_positions");
    s->type_vocab = spec_int(tf, "type_vocab");
    s->ntags = spec_int(tf, "ntags");
    s->ln_eps = spec_float(tf, "ln_eps");
    s->dropout = spec_float(tf, "dropout");
    s->attention_dropout = spec_float(tf, "attention_dropout");
    s->init_std = spec_float(tf, "init_std");
    s->head = (enum pep_head_kind)spec_int(tf, "head");
    s->pe = (enum pep_pe_method)spec_int(tf, "pe");
    s->placement = (enum pep_adapter_placement)spec_int(tf, "placement");
    s->adapter_act = (enum pep_activation)spec_int(tf, "adapter_act");
    s->bottleneck = spec_int(tf, "bottleneck");
    s->prefix_len = spec_int(tf, "prefix_len");
    s->prefix_reparam = spec_int(tf, "prefix_reparam");
    s->prefix_hidden = spec_int(tf, "prefix_hidden");
    s->lora_rank = spec_int(tf, "lora_rank");
    s->lora_alpha = spec_float(tf, "lora_alpha");
}

static const struct pep_fixture_tensor *need(struct pep_fixture *tf, const char *name, enum pep_st_dtype dtype)
{
    const struct pep_fixture_tensor *t = pep_fixture_find(tf, name);
    if (!t) fail_msg("fixture lacks tensor '%s'", name);
    if (t->dtype != dtype) fail_msg("fixture tensor '%s' has dtype %d, expected %d", name, t->dtype, dtype);
    return t;
}

/* Every weight tensor of the fixture (not spec/, grad/ or a batch/result tensor) must be a
 * row of the table: names match in both directions. */
static int is_weight_name(const char *n)
{
    return strncmp(n, "spec/", 5) != 0 && strncmp(n, "grad/", 5) != 0 && strcmp(n, "input_ids") != 0 &&
           strcmp(n, "labels") != 0 && strcmp(n, "loss") != 0 && strcmp(n, "logits") != 0 &&
           strcmp(n, "dropout_seed") != 0;
}

/* Largest gradient-tensor norm of the fixture (the scale for rel_err_floor). */
static double max_grad_norm(const struct pep_fixture *tf)
{
    double g = 0;
    for (int i = 0; i < tf->count; i++)
        if (strncmp(tf->t[i].name, "grad/", 5) == 0) {
            double n = norm2(tf->t[i].data, tf->t[i].numel);
            if (n > g) g = n;
        }
    return g;
}

/* Compares the model's gradients with the fixture's; returns the number of tensors over
 * the tolerance and prints each. */
static int compare_grads(const struct pep_model *m, struct pep_fixture *tf, const char *fixture, int verbose)
{
    int bad = 0;
    double floor = 1e-3 * max_grad_norm(tf);
    for (int r = 0; r < m->table.count; r++) {
        const struct pep_param *p = &m->table.rows[r];
        char name[PEP_PARAM_NAME_MAX + 8];
        snprintf(name, sizeof name, "grad/%s", p->name);
        const struct pep_fixture_tensor *g = need(tf, name, PEP_ST_DTYPE_F32);
        if (g->numel != p->numel) fail_msg("%s: %s has %zu elements in the fixture, %zu in the model", fixture, name, g->numel, p->numel);
        double e = rel_err_floor(m->grads + p->offset, g->data, p->numel, floor);
        double tol = norm2(g->data, g->numel) < floor ? ZERO_REF_TOL : TENSOR_TOL;
        if (e > tol || isnan(e)) {
            bad++;
            if (verbose) print_error("%s: %s rel err %.3e (ref norm %.3e)\n", fixture, name, e, norm2(g->data, g->numel));
        }
    }
    return bad;
}

struct parity_run {
    struct pep_model *m;
    struct pep_fixture tf;
};

static void run_fixture(const char *file, struct parity_run *run)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, file);
    if (pep_fixture_load(&run->tf, path) != 0) fail_msg("%s", run->tf.err);
    struct pep_fixture *tf = &run->tf;
    struct pep_model_spec spec;
    spec_from_fixture(tf, &spec);
    run->m = NULL;
    if (pep_model_create(&spec, &run->m) != PEP_OK) fail_msg("%s: pep_model_create: %s", file, pep_error_message());
    struct pep_model *m = run->m;

    /* Weights by name, both directions. */
    for (int r = 0; r < m->table.count; r++) {
        const struct pep_param *p = &m->table.rows[r];
        const struct pep_fixture_tensor *t = need(tf, p->name, PEP_ST_DTYPE_F32);
        if (t->numel != p->numel) fail_msg("%s: %s has %zu elements in the fixture, %zu in the model", file, p->name, t->numel, p->numel);
        for (int d = 0; d < p->ndim && d < t->ndim; d++)
            if ((size_t)t->dims[d] != p->shape[d]) fail_msg("%s: %s dim %d is %zu in the fixture, %zu in the model", file, p->name, d, (size_t)t->dims[d], p->shape[d]);
        memcpy(m->params + p->offset, t->data, p->numel * sizeof(float));
    }
    for (int i = 0; i < tf->count; i++)
        if (is_weight_name(tf->t[i].name) && pep_param_table_find(&m->table, tf->t[i].name) < 0)
            fail_msg("%s: fixture weight '%s' is not in the model's parameter table", file, tf->t[i].name);

    const struct pep_fixture_tensor *ids = need(tf, "input_ids", PEP_ST_DTYPE_I32);
    const struct pep_fixture_tensor *labels = need(tf, "labels", PEP_ST_DTYPE_I32);
    /* the oracle pads the sentences to the longest with an attention mask; peprime runs the
     * same sentences unpadded */
    int B = (int)ids->dims[0], T = (int)ids->dims[1];
    struct pep_batch b;
    pep_test_batch_from_padded(&b, ids->data, labels->data, B, T);
    int ntargets = 0;
    for (size_t i = 0; i < labels->numel; i++) ntargets += ((const int *)labels->data)[i] != PEP_IGNORE_INDEX;

    /* training mode (dropout with the oracle's masks) when the fixture names a dropout seed */
    int train = pep_fixture_find(tf, "dropout_seed") != NULL;
    double dseed = 0;
    if (train && pep_fixture_scalar(tf, "dropout_seed", &dseed) != 0) fail_msg("%s", tf->err);
    if (train) print_message("%s: training mode, dropout %.2f / attention %.2f, seed %.0f\n", file, (double)spec.dropout,
                             (double)spec.attention_dropout, dseed);
    float loss = 0;
    pep_model_zero_grad(m, PEP_GROUPS_ALL);
    if (pep_model_forward(m, &b, train, (uint64_t)dseed, &loss) != PEP_OK) fail_msg("%s: forward: %s", file, pep_error_message());
    if (pep_model_backward(m, PEP_GROUPS_ALL) != PEP_OK) fail_msg("%s: backward: %s", file, pep_error_message());

    double ref_loss = 0;
    if (pep_fixture_scalar(tf, "loss", &ref_loss) != 0) fail_msg("%s", tf->err);
    double le = fabs(loss - ref_loss) / fmax(fabs(ref_loss), 1e-30);
    print_message("%s: loss %.7f ref %.7f rel %.2e\n", file, loss, ref_loss, le);
    assert_true(le <= LOSS_TOL);
    assert_int_equal(pep_model_ntargets(m), ntargets);

    const struct pep_fixture_tensor *lg = need(tf, "logits", PEP_ST_DTYPE_F32);
    double lerr;
    if (spec.head == PEP_HEAD_KIND_MLM) {
        /* model.c runs the MLM head on the labelled positions only: its logits are (M, V),
         * one row per label != -100 in (b, t) order. Gather the same rows of the (B, T, V)
         * reference. */
        size_t V = (size_t)spec.V, M = 0;
        float *want = malloc((size_t)ntargets * V * sizeof *want + 1);
        assert_non_null(want);
        for (size_t i = 0; i < labels->numel; i++)
            if (((const int *)labels->data)[i] != PEP_IGNORE_INDEX)
                memcpy(want + V * M++, (const float *)lg->data + V * i, V * sizeof *want);
        lerr = pep_test_rel_err(pep_model_logits(m), want, M * V);
        free(want);
    } else {
        /* the tagger's (N, K) rows are the real tokens: the same rows of the padded reference */
        size_t K = (size_t)spec.ntags, n = (size_t)pep_batch_tokens(&b) * K;
        float *want = malloc(n * sizeof *want);
        assert_non_null(want);
        pep_test_gather_rows(want, lg->data, &b, T, (int)K);
        lerr = pep_test_rel_err(pep_model_logits(m), want, n);
        free(want);
    }
    print_message("%s: logits rel %.2e\n", file, lerr);
    assert_true(lerr <= TENSOR_TOL);

    pep_batch_free(&b);
    int bad = compare_grads(m, tf, file, 1);
    print_message("%s: %d of %d gradient tensors within %.0e\n", file, m->table.count - bad, m->table.count, TENSOR_TOL);
    assert_int_equal(bad, 0);
}

static void test_encoder_parity_fixture(void **state)
{
    struct parity_run run;
    run_fixture((const char *)*state, &run);
    pep_model_destroy(&run.m);
    assert_null(run.m);
    pep_fixture_fini(&run.tf);
}

/* The comparison must be able to fail: after a passing run, move one element of the
 * largest reference gradient by 10 x the tolerance (relative to that tensor's norm). */
static void test_encoder_parity_detects_perturbation(void **state)
{
    struct parity_run run;
    run_fixture((const char *)*state, &run);
    struct pep_fixture_tensor *worst = NULL;
    double wn = 0;
    for (int i = 0; i < run.tf.count; i++)
        if (strncmp(run.tf.t[i].name, "grad/", 5) == 0) {
            double n = norm2(run.tf.t[i].data, run.tf.t[i].numel);
            if (n > wn) wn = n, worst = &run.tf.t[i];
        }
    assert_non_null(worst);
    ((float *)worst->data)[worst->numel / 2] += (float)(10 * TENSOR_TOL * wn);
    int bad = compare_grads(run.m, &run.tf, "perturbed", 0);
    print_message("perturbed %s[%zu] by %.2e: %d tensor(s) now fail\n", worst->name, worst->numel / 2, 10 * TENSOR_TOL * wn, bad);
    assert_int_equal(bad, 1);
    pep_model_destroy(&run.m);
    pep_fixture_fini(&run.tf);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR (made by tests/ref/encoder_ref.py make-fixture-set)\n", argv[0]);
        return 2;
    }
    fixture_dir = argv[1];
    char list[2048];
    snprintf(list, sizeof list, "%s/fixtures.txt", fixture_dir);
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open; run tests/ref/encoder_ref.py make-fixture-set --out-dir %s\n", list, fixture_dir);
        return 2;
    }
    static char names[MAX_FIXTURES][256];
    static char titles[MAX_FIXTURES + 1][300];
    struct CMUnitTest tests[MAX_FIXTURES + 1];
    int n = 0;
    while (n < MAX_FIXTURES && fgets(names[n], sizeof names[n], f)) {
        names[n][strcspn(names[n], "\r\n")] = '\0';
        if (!names[n][0]) continue;
        snprintf(titles[n], sizeof titles[n], "test_encoder_parity_%.200s", names[n]);
        tests[n] = (struct CMUnitTest){titles[n], test_encoder_parity_fixture, NULL, NULL, names[n]};
        n++;
    }
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "%s lists no fixtures\n", list);
        return 2;
    }
    tests[n] = (struct CMUnitTest){"test_encoder_parity_detects_perturbation", test_encoder_parity_detects_perturbation,
                                   NULL, NULL, names[0]};
    return _cmocka_run_group_tests("encoder_parity", tests, (size_t)n + 1, NULL, NULL);
}
