/* The task stream: a pure function of (seed, step, task), distinct sentences, honest sampling
 * weights, and a clear error for a language too small for an episode. */
#include <string.h>

#include "core/error.h"
#include "maml/tasks.h"
#include "testutil.h"

static void test_tasks_independent_of_partition(void **st)
{
    int sizes[3] = {100, 50, 30};
    float w[3];
    pep_task_weights(3, sizes, 0, 1.0f, w);
    int l1, l2, s1[4], s2[4], q1[4], q2[4];
    /* the same (seed, step, task) gives the same task whatever else was drawn before */
    pep_task_draw(7, 5, 3, 3, sizes, w, 4, 4, &l1, s1, q1);
    for (int t = 0; t < 10; t++) pep_task_draw(7, 5, t, 3, sizes, w, 4, 4, &l2, s2, q2);
    pep_task_draw(7, 5, 3, 3, sizes, w, 4, 4, &l2, s2, q2);
    assert_int_equal(l1, l2);
    assert_memory_equal(s1, s2, sizeof s1);
    assert_memory_equal(q1, q2, sizeof q1);
    /* another task differs */
    pep_task_draw(7, 5, 4, 3, sizes, w, 4, 4, &l2, s2, q2);
    assert_true(l1 != l2 || memcmp(s1, s2, sizeof s1) != 0);
}

static void test_tasks_distinct_sentences_and_weights(void **st)
{
    int sizes[2] = {9, 1000};
    float w[2];
    pep_task_weights(2, sizes, 1, 1.0f, w); /* T = 1: proportional to size */
    assert_float_equal(w[0], 9.0f / 1009.0f, 1e-6);
    pep_task_weights(2, sizes, 0, 1.0f, w);
    assert_float_equal(w[0], 0.5f, 1e-7);
    int counts[2] = {0, 0};
    for (int t = 0; t < 2000; t++) {
        int l, s[4], q[5];
        pep_task_draw(1, 0, t, 2, sizes, w, 4, 5, &l, s, q);
        counts[l]++;
        int all[9];
        memcpy(all, s, sizeof s);
        memcpy(all + 4, q, sizeof q);
        for (int i = 0; i < 9; i++) {
            assert_true(all[i] >= 0 && all[i] < sizes[l]);
            for (int j = 0; j < i; j++) assert_true(all[i] != all[j]);
        }
    }
    assert_in_range(counts[0], 900, 1100); /* uniform over languages: binomial(2000, 0.5) */
}

static void test_tasks_too_small_language_is_an_error(void **st)
{
    int sizes[2] = {100, 10};
    const char *names[2] = {"de", "yo"};
    pep_error_clear();
    assert_int_equal(pep_task_check_sizes(2, sizes, names, 8, 8), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "'yo' has 10"));
    pep_error_clear();
    assert_int_equal(pep_task_check_sizes(2, sizes, names, 4, 4), PEP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tasks_independent_of_partition),
        cmocka_unit_test(test_tasks_distinct_sentences_and_weights),
        cmocka_unit_test(test_tasks_too_small_language_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
