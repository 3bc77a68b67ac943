/* Placement plan on synthetic hwloc topologies: exact core sets and BLAS threads for 1, 2, 3
 * and 8 ranks, pre-bound cpusets, oversubscription, thread caps and bad arguments. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "placement.h"
#include "testutil.h"

static hwloc_topology_t synthetic(const char *desc)
{
    hwloc_topology_t topo;
    assert_int_equal(hwloc_topology_init(&topo), 0);
    assert_int_equal(hwloc_topology_set_synthetic(topo, desc), 0);
    assert_int_equal(hwloc_topology_load(topo), 0);
    return topo;
}

/* Plans rank `gr` of `gs` and checks cores / cpus as hwloc list strings and the threads. */
static void expect_plan(hwloc_topology_t topo, const char *bound_list, int gr, int gs, int req,
                        const char *cores, const char *cpus, int threads, int capped, int shared)
{
    hwloc_bitmap_t bound = NULL;
    if (bound_list) {
        bound = hwloc_bitmap_alloc();
        assert_int_equal(hwloc_bitmap_list_sscanf(bound, bound_list), 0);
    }
    struct pep_placement p;
    assert_int_equal(pep_placement_plan(topo, bound, gr, gs, req, &p), PEP_OK);
    char text[256];
    hwloc_bitmap_list_snprintf(text, sizeof text, p.cores);
    assert_string_equal(text, cores);
    hwloc_bitmap_list_snprintf(text, sizeof text, p.cpuset);
    assert_string_equal(text, cpus);
    assert_int_equal(p.threads, threads);
    assert_int_equal(p.ncores, hwloc_bitmap_weight(p.cores));
    assert_int_equal(p.capped, capped);
    assert_int_equal(p.shared, shared);
    if (bound) assert_true(hwloc_bitmap_isincluded(p.cpuset, bound));
    pep_placement_fini(&p);
    assert_null(p.cpuset);
    pep_placement_fini(&p); /* idempotent */
    if (bound) hwloc_bitmap_free(bound);
}

static void test_placement_two_packages(void **state)
{
    hwloc_topology_t topo = synthetic("pack:2 core:4 pu:2");
    /* 1 rank: everything, one thread per core (not per hyperthread) */
    expect_plan(topo, NULL, 0, 1, 0, "0-7", "0-15", 8, 0, 0);
    /* 2 ranks: one package each */
    expect_plan(topo, NULL, 0, 2, 0, "0-3", "0-7", 4, 0, 0);
    expect_plan(topo, NULL, 1, 2, 0, "4-7", "8-15", 4, 0, 0);
    /* 3 ranks: 3 + 3 + 2 cores, contiguous */
    expect_plan(topo, NULL, 0, 3, 0, "0-2", "0-5", 3, 0, 0);
    expect_plan(topo, NULL, 1, 3, 0, "3-5", "6-11", 3, 0, 0);
    expect_plan(topo, NULL, 2, 3, 0, "6-7", "12-15", 2, 0, 0);
    /* 8 ranks: one core each */
    for (int r = 0; r < 8; r++) {
        char cores[16], cpus[32]; /* room for any int: -O1 checks the bound */
        snprintf(cores, sizeof cores, "%d", r);
        snprintf(cpus, sizeof cpus, "%d-%d", 2 * r, 2 * r + 1);
        expect_plan(topo, NULL, r, 8, 0, cores, cpus, 1, 0, 0);
    }
    hwloc_topology_destroy(topo);
}

static void test_placement_thread_requests(void **state)
{
    hwloc_topology_t topo = synthetic("pack:2 core:4 pu:2");
    /* fewer threads than cores: honoured, binding keeps all the rank's cores */
    expect_plan(topo, NULL, 1, 2, 2, "4-7", "8-15", 2, 0, 0);
    expect_plan(topo, NULL, 0, 2, 4, "0-3", "0-7", 4, 0, 0);
    /* more than the rank's cores: capped */
    expect_plan(topo, NULL, 0, 2, 6, "0-3", "0-7", 4, 1, 0);
    expect_plan(topo, NULL, 0, 8, 2, "0", "0-1", 1, 1, 0);
    hwloc_topology_destroy(topo);
}

static void test_placement_more_ranks_than_cores(void **state)
{
    hwloc_topology_t topo = synthetic("core:2 pu:1");
    expect_plan(topo, NULL, 0, 1, 0, "0-1", "0-1", 2, 0, 0);
    expect_plan(topo, NULL, 0, 2, 0, "0", "0", 1, 0, 0);
    expect_plan(topo, NULL, 1, 2, 0, "1", "1", 1, 0, 0);
    /* 3 and 8 ranks on 2 cores: round-robin, 1 thread, flagged as shared */
    expect_plan(topo, NULL, 0, 3, 0, "0", "0", 1, 0, 1);
    expect_plan(topo, NULL, 1, 3, 0, "1", "1", 1, 0, 1);
    expect_plan(topo, NULL, 2, 3, 0, "0", "0", 1, 0, 1);
    expect_plan(topo, NULL, 7, 8, 4, "1", "1", 1, 1, 1);
    hwloc_topology_destroy(topo);
}

static void test_placement_no_core_level(void **state)
{
    /* a topology without cores: PUs are the units */
    hwloc_topology_t topo = synthetic("pack:2 pu:2");
    assert_int_equal(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE), 0);
    expect_plan(topo, NULL, 0, 2, 0, "0-1", "0-1", 2, 0, 0);
    expect_plan(topo, NULL, 1, 2, 0, "2-3", "2-3", 2, 0, 0);
    hwloc_topology_destroy(topo);
}

static void test_placement_prebound(void **state)
{
    hwloc_topology_t topo = synthetic("pack:2 core:4 pu:2");
    /* bound to package 1 (e.g. mpirun --bind-to socket): stay inside it */
    expect_plan(topo, "8-15", 0, 1, 0, "4-7", "8-15", 4, 0, 0);
    expect_plan(topo, "8-15", 0, 2, 0, "4-5", "8-11", 2, 0, 0);
    expect_plan(topo, "8-15", 1, 2, 0, "6-7", "12-15", 2, 0, 0);
    expect_plan(topo, "8-15", 2, 3, 0, "7", "14-15", 1, 0, 0);
    /* bound to one core (mpirun --bind-to core): that core, 1 thread even if 4 asked */
    expect_plan(topo, "2-3", 0, 1, 4, "1", "2-3", 1, 1, 0);
    /* a Slurm cpuset with one hyperthread of cores 0, 1, 2: three cores, only those PUs */
    expect_plan(topo, "0,2,4", 0, 1, 0, "0-2", "0,2,4", 3, 0, 0);
    expect_plan(topo, "0,2,4", 1, 2, 0, "2", "4", 1, 0, 0);
    hwloc_topology_destroy(topo);
}

static void test_placement_bad_arguments(void **state)
{
    hwloc_topology_t topo = synthetic("core:2 pu:1");
    struct pep_placement p;
    hwloc_bitmap_t outside = hwloc_bitmap_alloc();
    hwloc_bitmap_set(outside, 40);
    pep_error_clear();
    assert_int_equal(pep_placement_plan(topo, outside, 0, 1, 0, &p), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "binding holds no processor"));
    assert_null(p.cpuset);
    pep_error_clear();
    assert_int_equal(pep_placement_plan(topo, NULL, 2, 2, 0, &p), PEP_ERR_USAGE);
    pep_error_clear();
    assert_int_equal(pep_placement_plan(topo, NULL, 0, 1, -1, &p), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "run.threads"));
    pep_error_clear();
    hwloc_bitmap_free(outside);
    hwloc_topology_destroy(topo);
}

static void test_placement_describe(void **state)
{
    hwloc_topology_t topo = synthetic("pack:2 core:4 pu:2");
    struct pep_placement p;
    assert_int_equal(pep_placement_plan(topo, NULL, 1, 2, 3, &p), PEP_OK);
    char text[256];
    pep_placement_describe(&p, text, sizeof text);
    assert_string_equal(text, "cores 4-7 cpus 8-15 threads 3");
    pep_placement_fini(&p);
    hwloc_topology_destroy(topo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement_two_packages),
        cmocka_unit_test(test_placement_thread_requests),
        cmocka_unit_test(test_placement_more_ranks_than_cores),
        cmocka_unit_test(test_placement_no_core_level),
        cmocka_unit_test(test_placement_prebound),
        cmocka_unit_test(test_placement_bad_arguments),
        cmocka_unit_test(test_placement_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
