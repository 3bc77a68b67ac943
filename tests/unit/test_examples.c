/* Examples from a corpus with a toy word encoder (one piece per byte, id 4 + byte - 'a';
 * the word "~" has no pieces): exact ids and labels, truncation, batches, permutations. */
#include <string.h>

#include "core/error.h"
#include "data/corpus.h"
#include "data/examples.h"
#include "testutil.h"

static int calls;

static int toy_encode(void *ud, const char *word, size_t len, int *ids, int cap, int *n)
{
    calls++;
    *n = 0;
    if (len == 1 && word[0] == '~') return PEP_OK;
    for (size_t i = 0; i < len && *n < cap; i++) ids[(*n)++] = 4 + (word[i] - 'a');
    return PEP_OK;
}

static int failing_encode(void *ud, const char *word, size_t len, int *ids, int cap, int *n)
{
    PEP_FAIL(PEP_ERR_FORMAT, "cannot encode '%.*s'", (int)len, word);
}

static const char *const TAGS[] = {"O", "B-PER", "I-PER"};

static struct pep_corpus *corpus(void)
{
    struct pep_corpus *c = NULL;
    assert_int_equal(pep_corpus_create("toy", TAGS, 3, &c), PEP_OK);
    /* s0: "ab"/B-PER "c"/I-PER "~"/O ; s1: "dddd"/O "e"/B-PER ; s2: "f"/O */
    assert_int_equal(pep_corpus_add_word(c, "ab", 2, 1), PEP_OK);
    assert_int_equal(pep_corpus_add_word(c, "c", 1, 2), PEP_OK);
    assert_int_equal(pep_corpus_add_word(c, "~", 1, 0), PEP_OK);
    assert_int_equal(pep_corpus_end_sentence(c), PEP_OK);
    assert_int_equal(pep_corpus_end_sentence(c), PEP_OK); /* empty: ignored */
    assert_int_equal(pep_corpus_add_word(c, "dddd", 4, 0), PEP_OK);
    assert_int_equal(pep_corpus_add_word(c, "e", 1, 1), PEP_OK);
    assert_int_equal(pep_corpus_end_sentence(c), PEP_OK);
    assert_int_equal(pep_corpus_add_word(c, "f", 1, 0), PEP_OK);
    assert_int_equal(pep_corpus_end_sentence(c), PEP_OK);
    assert_int_equal(c->nsent, 3);
    return c;
}

#define X PEP_IGNORE_INDEX

static void expect_row(const int *got, const int *want, int n)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("position %d: got %d, want %d", i, got[i], want[i]);
}

static void test_examples_exact(void **state)
{
    struct pep_corpus *c = corpus();
    struct pep_examples *ex = NULL;
    assert_int_equal(pep_examples_build(c, toy_encode, NULL, 64, &ex), PEP_OK);
    assert_int_equal(ex->count, 3);
    assert_int_equal(ex->truncated, 0);
    assert_int_equal(pep_examples_len(ex, 0), 6);
    const int ids0[] = {0, 4, 5, 6, 3, 2}, lab0[] = {X, 1, X, 2, 0, X}; /* "~" -> <unk> keeps its O */
    expect_row(ex->ids + ex->start[0], ids0, 6);
    expect_row(ex->labels + ex->start[0], lab0, 6);
    const int ids1[] = {0, 7, 7, 7, 7, 8, 2}, lab1[] = {X, 0, X, X, X, 1, X};
    assert_int_equal(pep_examples_len(ex, 1), 7);
    expect_row(ex->ids + ex->start[1], ids1, 7);
    expect_row(ex->labels + ex->start[1], lab1, 7);
    assert_int_equal(ex->longest, 7);
    const int wp[] = {1, 3, 4, 1, 5, 1};
    expect_row(ex->word_pos, wp, 6);
    /* word tags back from per-position predictions */
    int pos_tags[8] = {9, 1, 9, 2, 0, 9, 9, 9}, wt[3];
    pep_examples_word_tags(ex, c, 0, pos_tags, 0, wt);
    assert_int_equal(wt[0], 1);
    assert_int_equal(wt[1], 2);
    assert_int_equal(wt[2], 0);
    pep_examples_destroy(&ex);
    assert_null(ex);
    pep_corpus_destroy(&c);
}

static void test_examples_truncation(void **state)
{
    struct pep_corpus *c = corpus();
    struct pep_examples *ex = NULL;
    /* T = 4: s0 = <s> a b </s> ("c" and "~" cut), s1 = <s> d d </s> ("dddd" cut inside, "e" cut) */
    assert_int_equal(pep_examples_build(c, toy_encode, NULL, 4, &ex), PEP_OK);
    assert_int_equal(ex->truncated, 2);
    assert_int_equal(ex->words_cut, 3);
    const int ids0[] = {0, 4, 5, 2}, lab0[] = {X, 1, X, X};
    expect_row(ex->ids + ex->start[0], ids0, 4);
    expect_row(ex->labels + ex->start[0], lab0, 4);
    const int ids1[] = {0, 7, 7, 2}, lab1[] = {X, 0, X, X};
    expect_row(ex->ids + ex->start[1], ids1, 4);
    expect_row(ex->labels + ex->start[1], lab1, 4);
    const int wp[] = {1, -1, -1, 1, -1, 1};
    expect_row(ex->word_pos, wp, 6);
    int pos_tags[4] = {0, 2, 0, 0}, wt[3];
    pep_examples_word_tags(ex, c, 0, pos_tags, 0, wt);
    assert_int_equal(wt[0], 2);
    assert_int_equal(wt[1], 0); /* cut: fallback */
    pep_examples_destroy(&ex);
    /* An exact fit is not truncated: s1 needs 7 = T. */
    assert_int_equal(pep_examples_build(c, toy_encode, NULL, 7, &ex), PEP_OK);
    assert_int_equal(ex->truncated, 0);
    pep_examples_destroy(&ex);
    pep_error_clear();
    assert_int_equal(pep_examples_build(c, toy_encode, NULL, 2, &ex), PEP_ERR_USAGE);
    pep_error_clear();
    assert_int_equal(pep_examples_build(c, failing_encode, NULL, 16, &ex), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "cannot encode 'ab'"));
    assert_null(ex);
    pep_error_clear();
    pep_corpus_destroy(&c);
}

static void test_examples_batch(void **state)
{
    struct pep_corpus *c = corpus();
    struct pep_examples *ex = NULL;
    assert_int_equal(pep_examples_build(c, toy_encode, NULL, 64, &ex), PEP_OK);
    struct pep_batch b;
    assert_int_equal(pep_batch_alloc(&b, 2, 64), PEP_OK);
    const int idx[] = {2, 1};
    assert_int_equal(pep_batch_fill(ex, idx, 2, &b), PEP_OK);
    assert_int_equal(b.B, 2);
    assert_int_equal(b.T, 8); /* longest 7 -> 8 */
    const int r0[] = {0, 9, 2, 1, 1, 1, 1, 1}, l0[] = {X, 0, X, X, X, X, X, X};
    const int r1[] = {0, 7, 7, 7, 7, 8, 2, 1}, l1[] = {X, 0, X, X, X, 1, X, X};
    expect_row(b.input_ids, r0, 8);
    expect_row(b.labels, l0, 8);
    expect_row(b.input_ids + 8, r1, 8);
    expect_row(b.labels + 8, l1, 8);
    pep_examples_destroy(&ex);
    /* T rounding never exceeds max_T: with max_T = 7 the batch is 7 wide. */
    assert_int_equal(pep_examples_build(c, toy_encode, NULL, 7, &ex), PEP_OK);
    assert_int_equal(pep_batch_fill(ex, idx, 2, &b), PEP_OK);
    assert_int_equal(b.T, 7);
    pep_error_clear();
    const int bad[] = {3};
    assert_int_equal(pep_batch_fill(ex, bad, 1, &b), PEP_ERR_USAGE);
    pep_error_clear();
    pep_batch_free(&b);
    assert_null(b.input_ids);
    pep_examples_destroy(&ex);
    pep_corpus_destroy(&c);
}

static void test_examples_permutation(void **state)
{
    enum { N = 1000 };
    static int a[N], b[N], d[N];
    static char seen[N];
    pep_permutation(a, N, 42, 3, 0);
    pep_permutation(b, N, 42, 3, 0);
    pep_permutation(d, N, 42, 4, 0);
    memset(seen, 0, sizeof seen);
    int same_as_d = 0, fixed = 0;
    for (int i = 0; i < N; i++) {
        assert_true(a[i] >= 0 && a[i] < N);
        assert_false(seen[a[i]]);
        seen[a[i]] = 1;
        assert_int_equal(a[i], b[i]);
        same_as_d += a[i] == d[i];
        fixed += a[i] == i;
    }
    /* A random permutation has ~1 fixed point and agrees with another in ~1 place. */
    assert_true(same_as_d < 10);
    assert_true(fixed < 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_exact),
        cmocka_unit_test(test_examples_truncation),
        cmocka_unit_test(test_examples_batch),
        cmocka_unit_test(test_examples_permutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
