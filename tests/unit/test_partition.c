/* Task partition: every task owned exactly once, round-robin order, M < P, bad arguments;
 * task-group shares (contiguous, covering, balanced) and the checks of maml.group_size. */
#include <string.h>

#include "core/error.h"
#include "core/partition.h"
#include "testutil.h"

static void test_partition_examples(void **state)
{
    struct pep_task_range r;
    /* M = 10 tasks on P = 4 ranks: 0,4,8 | 1,5,9 | 2,6 | 3,7 */
    assert_int_equal(pep_partition_range(0, 4, 10, &r), PEP_OK);
    assert_int_equal(r.count, 3);
    assert_int_equal(pep_task_range_task(&r, 0), 0);
    assert_int_equal(pep_task_range_task(&r, 2), 8);
    assert_int_equal(pep_partition_range(1, 4, 10, &r), PEP_OK);
    assert_int_equal(r.count, 3);
    assert_int_equal(pep_task_range_task(&r, 2), 9);
    assert_int_equal(pep_partition_range(2, 4, 10, &r), PEP_OK);
    assert_int_equal(r.count, 2);
    assert_int_equal(pep_task_range_task(&r, 1), 6);
    assert_int_equal(pep_partition_range(3, 4, 10, &r), PEP_OK);
    assert_int_equal(r.count, 2);
    assert_int_equal(pep_task_range_task(&r, 1), 7);
    /* one rank owns everything */
    assert_int_equal(pep_partition_range(0, 1, 5, &r), PEP_OK);
    assert_int_equal(r.count, 5);
    assert_int_equal(r.stride, 1);
}

static void test_partition_fewer_tasks_than_ranks(void **state)
{
    struct pep_task_range r;
    /* M = 3 on P = 8: ranks 0..2 get one task each, ranks 3..7 none */
    for (int rank = 0; rank < 8; rank++) {
        assert_int_equal(pep_partition_range(rank, 8, 3, &r), PEP_OK);
        assert_int_equal(r.count, rank < 3 ? 1 : 0);
        if (rank < 3) assert_int_equal(pep_task_range_task(&r, 0), rank);
    }
    assert_int_equal(pep_partition_range(5, 8, 0, &r), PEP_OK);
    assert_int_equal(r.count, 0);
}

static void test_partition_covers_each_task_once(void **state)
{
    int seen[64];
    for (int size = 1; size <= 9; size++) {
        for (int m = 0; m <= 64; m++) {
            memset(seen, 0, sizeof seen);
            int total = 0;
            for (int rank = 0; rank < size; rank++) {
                struct pep_task_range r;
                assert_int_equal(pep_partition_range(rank, size, m, &r), PEP_OK);
                /* balanced: counts differ by at most one, earlier ranks never get fewer */
                assert_true(r.count == m / size || r.count == m / size + 1);
                for (int i = 0; i < r.count; i++) {
                    int t = pep_task_range_task(&r, i);
                    assert_true(t >= 0 && t < m);
                    assert_int_equal(pep_partition_owner(t, size), rank);
                    assert_int_equal(pep_partition_local_index(t, size), i);
                    seen[t]++;
                    total++;
                }
            }
            assert_int_equal(total, m);
            for (int t = 0; t < m; t++) assert_int_equal(seen[t], 1);
        }
    }
}

static void test_partition_bad_arguments(void **state)
{
    struct pep_task_range r;
    pep_error_clear();
    assert_int_equal(pep_partition_range(4, 4, 10, &r), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "rank 4 outside [0, 4)"));
    pep_error_clear();
    assert_int_equal(pep_partition_range(0, 0, 10, &r), PEP_ERR_USAGE);
    pep_error_clear();
    assert_int_equal(pep_partition_range(0, 2, -1, &r), PEP_ERR_USAGE);
    pep_error_clear();
    assert_int_equal(pep_partition_owner(5, 0), -1);
    assert_int_equal(pep_partition_owner(-1, 3), -1);
}

static void test_partition_share_covers_contiguously(void **state)
{
    for (int size = 1; size <= 8; size++)
        for (int n = size; n <= 40; n++) {
            int next = 0;
            for (int rank = 0; rank < size; rank++) {
                int first, count;
                pep_partition_share(rank, size, n, &first, &count);
                assert_int_equal(first, next); /* contiguous, in rank order */
                assert_true(count == n / size || count == n / size + 1);
                assert_true(count >= 1);
                next = first + count;
            }
            assert_int_equal(next, n);
        }
    int first, count;
    pep_partition_share(2, 4, 10, &first, &count); /* 3 + 3 + 2 + 2 */
    assert_int_equal(first, 6);
    assert_int_equal(count, 2);
}

static void test_partition_slice_tiles_in_rank_order(void **state)
{
    (void)state;
    size_t ns[] = {0, 1, 5, 16, 17, 1000, 277500000};
    for (size_t a = 1; a <= 16; a *= 4)
        for (int size = 1; size <= 7; size++)
            for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
                size_t prev = 0, n = ns[k];
                for (int rank = 0; rank < size; rank++) {
                    size_t lo, hi;
                    pep_partition_slice(rank, size, n, a, &lo, &hi);
                    assert_true(lo == prev && lo <= hi && hi <= n);
                    if (rank + 1 < size) assert_true(hi % a == 0);
                    /* about n / size each: never more than n / size + align short of it */
                    assert_true(hi - lo <= n / (size_t)size + a + 1);
                    prev = hi;
                }
                assert_true(prev == n);
            }
    size_t lo, hi;
    pep_partition_slice(0, 1, 12345, 16, &lo, &hi); /* one rank: everything */
    assert_true(lo == 0 && hi == 12345);
    pep_partition_slice(1, 3, 100, 1, &lo, &hi); /* 33 + 33 + 34 */
    assert_true(lo == 33 && hi == 66);
}

static void test_partition_group_checks(void **state)
{
    assert_int_equal(pep_partition_check_groups(4, 2, 4, 8, 8), PEP_OK);
    assert_int_equal(pep_partition_check_groups(4, 4, 4, 4, 4), PEP_OK);
    assert_int_equal(pep_partition_check_groups(1, 1, 1, 1, 1), PEP_OK);
    pep_error_clear();
    assert_int_equal(pep_partition_check_groups(4, 0, 4, 8, 8), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "maml.group_size = 0"));
    pep_error_clear();
    assert_int_equal(pep_partition_check_groups(4, 3, 4, 8, 8), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "does not divide the 4 ranks"));
    pep_error_clear();
    /* more ranks per group than tasks per meta-step is the point of groups (P = 2, M = 1: G = 2) */
    assert_int_equal(pep_partition_check_groups(2, 2, 1, 8, 8), PEP_OK);
    assert_int_equal(pep_partition_check_groups(4, 4, 4, 3, 8), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "maml.support_size = 3"));
    pep_error_clear();
    assert_int_equal(pep_partition_check_groups(4, 4, 4, 8, 3), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "maml.query_size = 3"));
    pep_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_examples),
        cmocka_unit_test(test_partition_slice_tiles_in_rank_order),
        cmocka_unit_test(test_partition_fewer_tasks_than_ranks),
        cmocka_unit_test(test_partition_covers_each_task_once),
        cmocka_unit_test(test_partition_bad_arguments),
        cmocka_unit_test(test_partition_share_covers_contiguously),
        cmocka_unit_test(test_partition_group_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
