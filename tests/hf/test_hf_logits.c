/* Imported Hugging Face weights give PyTorch's logits: for the F32, F16 and BF16 files of
 * tests/ref/make_hf_logits.py, pep_hf_import -> pep_hf_write_checkpoint (base.h5 through
 * io/checkpoint_write.c on MPI_COMM_SELF, as `peprime import-hf` does) -> a fresh pep_model
 * (pe none; tagger head, and MLM head) filled by pep_ckpt_read_params, exactly as the
 * stages' --init does -> pep_model_forward(train = 0) on the fixed batch (B = 2, T = 12,
 * second sentence padded with id 1), compared element by element with the float64 PyTorch
 * reference (encoder_ref.py forward on the same rounded weights): ||c - ref|| / ||ref|| <= 1e-5
 * over all logits, every element |c - ref| <= 1e-4 * max(|ref|, 1) (float32 round-off through
 * two layers of weights with std 0.5 reaches ~2e-5 on single O(1) logits), and the loss to
 * 1e-5 relative.
 * The last test perturbs one imported weight and requires the comparison to fail.
 *
 * Usage: test_hf_logits DIR (made by make_hf_logits.py; ctest runs that as a fixture). */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "core/error.h"
#include "hf_import.h"
#include "model/model.h"
#include "fixture.h"
#include "testutil.h"

#define REL_TOL 1e-5  /* 2-norm relative, and loss */
#define ELEM_TOL 1e-4 /* per element, relative to max(|ref|, 1) */

static const char *g_dir;

struct result {
    double rel;     /* ||c - ref|| / ||ref|| */
    double worst;   /* max over elements of |c - ref| / max(|ref|, 1) */
    double loss_rel;
    size_t n;
};

/* Imports DIR/model_<variant>.safetensors, writes base.h5 and reads it into a model with the
 * given head; runs the reference batch; `perturb` adds to one element of one weight first. */
static void run_case(const char *variant, enum pep_head_kind head, const char *perturb, float delta,
                     struct result *res)
{
    char path[PEP_TEST_PATH_MAX], ref_path[PEP_TEST_PATH_MAX], ckpt[PEP_TEST_PATH_MAX], cfg_path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/model_%s.safetensors", g_dir, variant);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", g_dir);
    snprintf(ref_path, sizeof ref_path, "%s/logits_%s_%s.safetensors", g_dir, variant, pep_head_kind_name(head));
    snprintf(ckpt, sizeof ckpt, "%s/base_%s.h5", pep_test_tmpdir("hf_logits"), variant);

    struct pep_fixture tf;
    if (pep_fixture_load(&tf, ref_path) != 0) fail_msg("%s", tf.err);
    const struct pep_fixture_tensor *ids = pep_fixture_find(&tf, "input_ids");
    const struct pep_fixture_tensor *labels = pep_fixture_find(&tf, "labels");
    const struct pep_fixture_tensor *logits = pep_fixture_find(&tf, "logits");
    double ref_loss = 0;
    assert_non_null(ids);
    assert_non_null(labels);
    assert_non_null(logits);
    assert_int_equal(pep_fixture_scalar(&tf, "loss", &ref_loss), 0);
    assert_int_equal(ids->ndim, 2);
    int B = (int)ids->dims[0], T = (int)ids->dims[1];
    assert_int_equal(B, 2);
    assert_int_equal(T, 12);

    /* import + base.h5, the same calls as `peprime import-hf` */
    struct pep_hf_import_options opt;
    pep_hf_import_default_options(&opt);
    opt.config_path = cfg_path;
    struct pep_hf_model hm;
    assert_int_equal(pep_hf_import(path, &opt, &hm), PEP_OK);
    assert_string_equal(hm.source_dtype, !strcmp(variant, "f32") ? "F32" : !strcmp(variant, "f16") ? "F16" : "BF16");
    char *ini = NULL;
    assert_int_equal(pep_hf_model_ini(&hm, "/nonexistent/spm.model", &ini), PEP_OK);
    assert_int_equal(pep_hf_write_checkpoint(&hm, ckpt, ini, MPI_COMM_SELF), PEP_OK);
    pep_free(ini);

    /* a model as a stage builds it, random weights, then --init's read */
    struct pep_model_spec spec;
    assert_int_equal(pep_hf_model_spec(&hm, B, T, &spec), PEP_OK);
    spec.head = head;
    pep_hf_model_fini(&hm);
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(&spec, &m), PEP_OK);
    pep_model_init_weights(m, 99, PEP_GROUPS_ALL);
    struct pep_ckpt_reader *r = NULL;
    assert_int_equal(pep_ckpt_open(ckpt, &r), PEP_OK);
    const struct pep_ckpt_info *info = pep_ckpt_info(r);
    assert_string_equal(info->stage, "import-hf");
    assert_true(info->has_spec);
    assert_int_equal(info->spec.L, spec.L);
    assert_int_equal(info->spec.C, spec.C);
    assert_int_equal(info->spec.NH, spec.NH);
    assert_int_equal(info->spec.FF, spec.FF);
    assert_int_equal(info->spec.V, spec.V);
    assert_int_equal(info->spec.max_positions, spec.max_positions);
    assert_int_equal(info->spec.ntags, 7);
    assert_int_equal(pep_ckpt_read_params(r, &m->table, m->params,
                                          PEP_GROUP_BIT(PEP_GROUP_PLM) | PEP_GROUP_BIT(PEP_GROUP_HEAD)),
                     PEP_OK);
    pep_ckpt_close(&r);
    if (perturb) {
        int row = pep_param_table_find(&m->table, perturb);
        assert_true(row >= 0);
        m->params[m->table.rows[row].offset + 3] += delta;
    }

    /* peprime runs the real tokens only: cut the padded reference batch, and compare the tagger
     * logits at those tokens (Hugging Face's rows at padding are not part of the result) */
    struct pep_batch b;
    pep_test_batch_from_padded(&b, ids->data, labels->data, B, T);
    float loss = 0;
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &loss), PEP_OK);
    size_t n = head == PEP_HEAD_KIND_MLM ? (size_t)pep_model_ntargets(m) * (size_t)spec.V
                                         : (size_t)pep_batch_tokens(&b) * (size_t)spec.ntags;
    float *ref_rows = NULL;
    const float *c = pep_model_logits(m), *ref = logits->data;
    if (head == PEP_HEAD_KIND_MLM) {
        assert_int_equal(n, logits->numel);
    } else {
        assert_int_equal((size_t)B * T * spec.ntags, logits->numel);
        ref_rows = malloc(n * sizeof *ref_rows);
        assert_non_null(ref_rows);
        pep_test_gather_rows(ref_rows, logits->data, &b, T, spec.ntags);
        ref = ref_rows;
    }
    res->worst = 0;
    res->n = n;
    res->rel = pep_test_rel_err(c, ref, n);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)c[i] - (double)ref[i]) / fmax(fabs((double)ref[i]), 1.0);
        if (!(e <= res->worst)) res->worst = e; /* NaN counts */
    }
    res->loss_rel = fabs((double)loss - ref_loss) / fmax(fabs(ref_loss), 1.0);
    free(ref_rows);
    pep_batch_free(&b);
    pep_model_destroy(&m);
    pep_fixture_fini(&tf);
}

static void check_case(const char *variant, enum pep_head_kind head)
{
    struct result res;
    run_case(variant, head, NULL, 0, &res);
    printf("  %-4s %-6s %4zu logits: rel err (2-norm) %.3g, worst element %.3g, loss rel err %.3g\n", variant,
           pep_head_kind_name(head), res.n, res.rel, res.worst, res.loss_rel);
    assert_true(res.rel <= REL_TOL);
    assert_true(res.worst <= ELEM_TOL);
    assert_true(res.loss_rel <= REL_TOL);
}

static void test_f32_tagger(void **state) { (void)state; check_case("f32", PEP_HEAD_KIND_TAGGER); }
static void test_f32_mlm(void **state) { (void)state; check_case("f32", PEP_HEAD_KIND_MLM); }
static void test_f16_tagger(void **state) { (void)state; check_case("f16", PEP_HEAD_KIND_TAGGER); }
static void test_f16_mlm(void **state) { (void)state; check_case("f16", PEP_HEAD_KIND_MLM); }
static void test_bf16_tagger(void **state) { (void)state; check_case("bf16", PEP_HEAD_KIND_TAGGER); }
static void test_bf16_mlm(void **state) { (void)state; check_case("bf16", PEP_HEAD_KIND_MLM); }

/* The comparison can fail: one element of one imported weight changed by 0.05 (weights have
 * std 0.5) breaks it. */
static void test_can_fail(void **state)
{
    (void)state;
    struct result res;
    run_case("f32", PEP_HEAD_KIND_TAGGER, "encoder.layer.1.output.dense.weight", 5e-2f, &res);
    printf("  perturbed layer-1 weight: rel err %.3g (must exceed %.0e)\n", res.rel, REL_TOL);
    assert_true(res.rel > REL_TOL);
    run_case("f32", PEP_HEAD_KIND_MLM, "lm_head.dense.weight", 5e-2f, &res);
    printf("  perturbed lm_head weight: rel err %.3g (must exceed %.0e)\n", res.rel, REL_TOL);
    assert_true(res.rel > REL_TOL);
}

static void test_rounding_matters(void **state)
{
    (void)state;
    /* the BF16 rounding changes the logits far beyond the tolerance, so comparing each file with
     * the reference on its own rounded weights is a real check of the F16 / BF16 conversion */
    char a[PEP_TEST_PATH_MAX], b[PEP_TEST_PATH_MAX];
    snprintf(a, sizeof a, "%s/logits_f32_tagger.safetensors", g_dir);
    snprintf(b, sizeof b, "%s/logits_bf16_tagger.safetensors", g_dir);
    struct pep_fixture ta, tb;
    assert_int_equal(pep_fixture_load(&ta, a), 0);
    assert_int_equal(pep_fixture_load(&tb, b), 0);
    const struct pep_fixture_tensor *la = pep_fixture_find(&ta, "logits"), *lb = pep_fixture_find(&tb, "logits");
    assert_int_equal(la->numel, lb->numel);
    double rel = pep_test_rel_err(lb->data, la->data, la->numel);
    printf("  bf16 vs f32 reference: rel diff %.3g\n", rel);
    assert_true(rel > 100 * REL_TOL);
    pep_fixture_fini(&ta);
    pep_fixture_fini(&tb);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (made by tests/ref/make_hf_logits.py --out DIR)\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_tagger),  cmocka_unit_test(test_f32_mlm),  cmocka_unit_test(test_f16_tagger),
        cmocka_unit_test(test_f16_mlm),     cmocka_unit_test(test_bf16_tagger), cmocka_unit_test(test_bf16_mlm),
        cmocka_unit_test(test_can_fail),    cmocka_unit_test(test_rounding_matters),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
