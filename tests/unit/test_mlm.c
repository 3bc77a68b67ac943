/* Masked-LM masking: rates within binomial tolerance on a large batch, the 80/10/10 split,
 * special ids never chosen, labels, determinism from (seed, step). */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/mlm.h"
#include "testutil.h"

enum { B = 64, T = 512, V = 1000 };

static int offsets[B + 1];

/* B sentences of 402 + b tokens, unpadded: <s> ... </s> with some <unk> and literal <mask>. */
static void fill(struct pep_batch *b, int *ids, int *labels)
{
    struct pep_rng r;
    pep_rng_seed(&r, 7, 0, 0);
    b->nseq = B, b->offsets = offsets, b->input_ids = ids, b->labels = labels, b->seq0 = 0;
    offsets[0] = 0;
    for (int q = 0; q < B; q++) {
        int len = 402 + q;
        offsets[q + 1] = offsets[q] + len;
        for (int t = 0; t < len; t++) {
            int i = offsets[q] + t;
            if (t == 0) ids[i] = 0;
            else if (t == len - 1) ids[i] = 2;
            else if (t % 50 == 0) ids[i] = 3;     /* some <unk> */
            else if (t % 77 == 0) ids[i] = V - 1; /* a literal <mask> */
            else ids[i] = 4 + (int)pep_rng_below(&r, V - 5);
        }
    }
}

static void test_mlm_rates_and_specials(void **state)
{
    static int ids[B * T], orig[B * T], labels[B * T];
    struct pep_batch b;
    fill(&b, ids, labels);
    memcpy(orig, ids, sizeof ids);
    long chosen = -1;
    assert_int_equal(pep_mlm_mask(&b, V, 0.15f, 1234, 5, &chosen), PEP_OK);
    long eligible = 0, masked = 0, random = 0, kept = 0, n = 0;
    for (int i = 0; i < pep_batch_tokens(&b); i++) {
        int special = orig[i] <= 3 || orig[i] == V - 1;
        eligible += !special;
        if (labels[i] == PEP_IGNORE_INDEX) {
            assert_int_equal(ids[i], orig[i]); /* untouched */
            continue;
        }
        n++;
        assert_false(special);
        assert_int_equal(labels[i], orig[i]);
        if (ids[i] == V - 1) masked++;
        else if (ids[i] == orig[i]) kept++; /* (a random draw equal to the original counts here, p ~ 1e-3) */
        else {
            random++;
            assert_true(ids[i] >= 4 && ids[i] <= V - 2);
        }
    }
    assert_int_equal(n, chosen);
    /* Binomial tolerance: 5 standard deviations. */
    double p = 0.15, mu = eligible * p, sd = sqrt(eligible * p * (1 - p));
    assert_true(fabs((double)n - mu) < 5 * sd);
    double sm = sqrt(n * 0.8 * 0.2), s1 = sqrt(n * 0.1 * 0.9);
    assert_true(fabs((double)masked - 0.8 * n) < 5 * sm);
    assert_true(fabs((double)random - 0.1 * n) < 5 * s1 + 0.001 * n);
    assert_true(fabs((double)kept - 0.1 * n) < 5 * s1 + 0.001 * n);
}

static void test_mlm_deterministic(void **state)
{
    static int a[B * T], la[B * T], c[B * T], lc[B * T], d[B * T], ld[B * T];
    struct pep_batch ba, bc, bd;
    fill(&ba, a, la);
    fill(&bc, c, lc);
    fill(&bd, d, ld);
    assert_int_equal(pep_mlm_mask(&ba, V, 0.15f, 99, 3, NULL), PEP_OK);
    assert_int_equal(pep_mlm_mask(&bc, V, 0.15f, 99, 3, NULL), PEP_OK);
    assert_int_equal(pep_mlm_mask(&bd, V, 0.15f, 99, 4, NULL), PEP_OK);
    assert_memory_equal(a, c, sizeof a);
    assert_memory_equal(la, lc, sizeof la);
    int differ = 0;
    for (int i = 0; i < pep_batch_tokens(&ba); i++) differ += la[i] != ld[i];
    assert_true(differ > 1000); /* another step, another mask */
    /* mask_prob 0 chooses nothing, 1 chooses every non-special position. */
    fill(&ba, a, la);
    long k = -1;
    assert_int_equal(pep_mlm_mask(&ba, V, 0.0f, 1, 1, &k), PEP_OK);
    assert_int_equal(k, 0);
    fill(&ba, a, la);
    memcpy(c, a, sizeof a);
    assert_int_equal(pep_mlm_mask(&ba, V, 1.0f, 1, 1, &k), PEP_OK);
    long eligible = 0;
    for (int i = 0; i < pep_batch_tokens(&ba); i++) eligible += !(c[i] <= 3 || c[i] == V - 1);
    assert_int_equal(k, eligible);
    pep_error_clear();
    assert_int_equal(pep_mlm_mask(&ba, 5, 0.15f, 1, 1, &k), PEP_ERR_USAGE);
    pep_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlm_rates_and_specials),
        cmocka_unit_test(test_mlm_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
