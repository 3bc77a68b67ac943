/* conlleval / strict IOB2 chunking and scoring on hand-made sequences, ill-formed ones included,
 * against hand-computed counts; micro / macro averages and the table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "metrics/conlleval.h"
#include "testutil.h"

static const char *const TAGS[] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"};
enum { O, BP, IP, BO, IO, BL, IL };

static void chunks_of(int strict, const int *tags, int n, const int *expect, int nexpect, int expect_ill)
{
    struct pep_conlleval *ev = NULL;
    assert_int_equal(pep_conlleval_create(TAGS, 7, strict, &ev), PEP_OK);
    struct pep_chunk ch[16];
    int nc = -1, ill = -1;
    assert_int_equal(pep_conlleval_chunks(ev, tags, n, ch, &nc, &ill), PEP_OK);
    assert_int_equal(nc, nexpect);
    for (int i = 0; i < nc; i++) {
        assert_int_equal(ch[i].start, expect[3 * i]);
        assert_int_equal(ch[i].end, expect[3 * i + 1]);
        assert_int_equal(ch[i].type, expect[3 * i + 2]);
    }
    assert_int_equal(ill, expect_ill);
    pep_conlleval_destroy(&ev);
}

/* Types are numbered in order of appearance: PER 0, ORG 1, LOC 2. */
static void test_conlleval_chunks_well_formed(void **state)
{
    const int s1[] = {BP, IP, O, BL};
    const int e1[] = {0, 2, 0, 3, 4, 2};
    chunks_of(0, s1, 4, e1, 2, 0);
    chunks_of(1, s1, 4, e1, 2, 0);
    const int s2[] = {BP, BP, IP, IP}; /* B-B: two chunks */
    const int e2[] = {0, 1, 0, 1, 4, 0};
    chunks_of(0, s2, 4, e2, 2, 0);
    chunks_of(1, s2, 4, e2, 2, 0);
    const int s3[] = {O, BO, IO}; /* trailing chunk */
    const int e3[] = {1, 3, 1};
    chunks_of(0, s3, 3, e3, 1, 0);
    chunks_of(1, s3, 3, e3, 1, 0);
    const int s4[] = {BP, BO, IO, BL, IL, IL}; /* adjacent chunks of different types */
    const int e4[] = {0, 1, 0, 1, 3, 1, 3, 6, 2};
    chunks_of(0, s4, 6, e4, 3, 0);
}

static void test_conlleval_chunks_ill_formed(void **state)
{
    const int s1[] = {O, IP, IP, O}; /* I- after O */
    const int e1[] = {1, 3, 0};
    chunks_of(0, s1, 4, e1, 1, 1);
    chunks_of(1, s1, 4, NULL, 0, 2);
    const int s2[] = {BL, IP, IP}; /* I-X after B-Y */
    const int e2c[] = {0, 1, 2, 1, 3, 0};
    const int e2s[] = {0, 1, 2};
    chunks_of(0, s2, 3, e2c, 2, 1);
    chunks_of(1, s2, 3, e2s, 1, 2);
    const int s3[] = {IO, IO, O, BP}; /* I- at sentence start */
    const int e3c[] = {0, 2, 1, 3, 4, 0};
    const int e3s[] = {3, 4, 0};
    chunks_of(0, s3, 4, e3c, 2, 1);
    chunks_of(1, s3, 4, e3s, 1, 2);
    const int s4[] = {BP, IP, IO, IP}; /* I-Y inside X, then I-X again */
    const int e4c[] = {0, 2, 0, 2, 3, 1, 3, 4, 0};
    const int e4s[] = {0, 2, 0};
    chunks_of(0, s4, 4, e4c, 3, 2);
    chunks_of(1, s4, 4, e4s, 1, 2);
}

static void check_prf(const struct pep_eval_counts *c, long g, long p, long k, double P, double R, double F)
{
    assert_int_equal(c->gold, g);
    assert_int_equal(c->pred, p);
    assert_int_equal(c->correct, k);
    double pp, rr, ff;
    pep_eval_prf(c, &pp, &rr, &ff);
    assert_float_equal(pp, P, 1e-12);
    assert_float_equal(rr, R, 1e-12);
    assert_float_equal(ff, F, 1e-12);
}

static void test_conlleval_scores(void **state)
{
    struct pep_conlleval *ev = NULL;
    assert_int_equal(pep_conlleval_create(TAGS, 7, 0, &ev), PEP_OK);
    /* gold PER[0,2) LOC[3,4) ORG[5,6); pred PER[0,1) LOC[3,5) ORG[5,6): only ORG matches. */
    const int g[] = {BP, IP, O, BL, O, BO};
    const int p[] = {BP, O, O, BL, IL, BO};
    assert_int_equal(pep_conlleval_add(ev, g, p, 6), PEP_OK);
    check_prf(&ev->all, 3, 3, 1, 1.0 / 3, 1.0 / 3, 1.0 / 3);
    check_prf(&ev->per_type[0], 1, 1, 0, 0, 0, 0);
    check_prf(&ev->per_type[1], 1, 1, 1, 1, 1, 1);
    check_prf(&ev->per_type[2], 1, 1, 0, 0, 0, 0);
    assert_int_equal(ev->tokens, 6);
    assert_int_equal(ev->tokens_correct, 4);
    /* Sentence boundaries end chunks: B-PER I-PER | I-PER is two chunks. */
    pep_conlleval_reset(ev);
    const int a[] = {BP, IP}, b[] = {IP};
    assert_int_equal(pep_conlleval_add(ev, a, a, 2), PEP_OK);
    assert_int_equal(pep_conlleval_add(ev, b, b, 1), PEP_OK);
    check_prf(&ev->all, 2, 2, 2, 1, 1, 1);
    assert_int_equal(ev->sentences, 2);
    /* An empty prediction: P = 0 by convention, R = 0. */
    pep_conlleval_reset(ev);
    const int none[] = {O, O};
    assert_int_equal(pep_conlleval_add(ev, a, none, 2), PEP_OK);
    check_prf(&ev->all, 1, 0, 0, 0, 0, 0);
    pep_conlleval_destroy(&ev);
}

static void test_conlleval_strict_differs(void **state)
{
    /* gold is ill-formed (I- after O); pred is its well-formed repair. */
    const int g[] = {O, IP, IP, O, BL};
    const int p[] = {O, BP, IP, O, BL};
    struct pep_conlleval *ev = NULL;
    assert_int_equal(pep_conlleval_create(TAGS, 7, 0, &ev), PEP_OK);
    assert_int_equal(pep_conlleval_add(ev, g, p, 5), PEP_OK);
    check_prf(&ev->all, 2, 2, 2, 1, 1, 1);
    assert_int_equal(ev->ill_formed_gold, 1);
    assert_int_equal(ev->ill_formed_pred, 0);
    pep_conlleval_destroy(&ev);
    assert_int_equal(pep_conlleval_create(TAGS, 7, 1, &ev), PEP_OK);
    assert_int_equal(pep_conlleval_add(ev, g, p, 5), PEP_OK);
    check_prf(&ev->all, 1, 2, 1, 0.5, 1, 2.0 / 3);
    assert_int_equal(ev->ill_formed_gold, 2);
    /* B-LOC I-PER predicted for gold B-LOC O: conlleval counts a spurious PER, strict does not. */
    pep_conlleval_reset(ev);
    const int g2[] = {BL, O}, p2[] = {BL, IP};
    assert_int_equal(pep_conlleval_add(ev, g2, p2, 2), PEP_OK);
    check_prf(&ev->all, 1, 1, 1, 1, 1, 1);
    pep_conlleval_destroy(&ev);
    assert_int_equal(pep_conlleval_create(TAGS, 7, 0, &ev), PEP_OK);
    assert_int_equal(pep_conlleval_add(ev, g2, p2, 2), PEP_OK);
    check_prf(&ev->all, 1, 2, 1, 0.5, 1, 2.0 / 3);
    pep_conlleval_destroy(&ev);
}

static void test_conlleval_bad_tags(void **state)
{
    struct pep_conlleval *ev = NULL;
    const char *bad[] = {"O", "X-PER"};
    pep_error_clear();
    assert_int_equal(pep_conlleval_create(bad, 2, 0, &ev), PEP_ERR_USAGE);
    assert_null(ev);
    assert_non_null(strstr(pep_error_message(), "'X-PER'"));
    pep_error_clear();
    assert_int_equal(pep_conlleval_create(TAGS, 7, 0, &ev), PEP_OK);
    const int g[] = {0, 7};
    assert_int_equal(pep_conlleval_add(ev, g, g, 2), PEP_ERR_USAGE);
    pep_error_clear();
    pep_conlleval_destroy(&ev);
}

static void test_conlleval_micro_macro_table(void **state)
{
    struct pep_eval_summary s[2];
    memset(s, 0, sizeof s);
    snprintf(s[0].name, sizeof s[0].name, "aa");
    s[0].all = (struct pep_eval_counts){4, 2, 2}; /* P 1, R .5, F 2/3 */
    s[0].sentences = 10;
    s[0].ntypes = 1;
    snprintf(s[0].type_names[0], PEP_TAG_NAME_MAX, "PER");
    s[0].per_type[0] = s[0].all;
    snprintf(s[1].name, sizeof s[1].name, "bb");
    s[1].all = (struct pep_eval_counts){2, 4, 1}; /* P .25, R .5, F 1/3 */
    s[1].sentences = 5;
    s[1].ntypes = 2;
    snprintf(s[1].type_names[0], PEP_TAG_NAME_MAX, "LOC");
    snprintf(s[1].type_names[1], PEP_TAG_NAME_MAX, "PER");
    s[1].per_type[0] = (struct pep_eval_counts){1, 1, 1};
    s[1].per_type[1] = (struct pep_eval_counts){1, 3, 0};
    struct pep_eval_summary m;
    assert_int_equal(pep_eval_micro(s, 2, &m), PEP_OK);
    check_prf(&m.all, 6, 6, 3, 0.5, 0.5, 0.5);
    assert_int_equal(m.sentences, 15);
    assert_int_equal(m.ntypes, 2);
    assert_string_equal(m.type_names[0], "PER");
    check_prf(&m.per_type[0], 5, 5, 2, 0.4, 0.4, 0.4);
    double p, r, f;
    pep_eval_macro(s, 2, &p, &r, &f);
    assert_float_equal(p, 0.625, 1e-12);
    assert_float_equal(r, 0.5, 1e-12);
    assert_float_equal(f, 0.5, 1e-12);
    char buf[4096];
    assert_int_equal(pep_eval_format_table(s, 2, buf, sizeof buf), PEP_OK);
    assert_non_null(strstr(buf, "aa"));
    assert_non_null(strstr(buf, "66.67"));
    assert_non_null(strstr(buf, "micro           50.00    50.00    50.00"));
    assert_non_null(strstr(buf, "macro           62.50    50.00    50.00"));
    pep_error_clear();
    assert_int_equal(pep_eval_format_table(s, 2, buf, 40), PEP_ERR_USAGE);
    pep_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conlleval_chunks_well_formed),
        cmocka_unit_test(test_conlleval_chunks_ill_formed),
        cmocka_unit_test(test_conlleval_scores),
        cmocka_unit_test(test_conlleval_strict_differs),
        cmocka_unit_test(test_conlleval_bad_tags),
        cmocka_unit_test(test_conlleval_micro_macro_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
