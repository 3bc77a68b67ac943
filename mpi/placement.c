/* Binding plan from an hwloc topology and its application under MPI (placement.h). */
#include "placement.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "pep_mpi.h"

#define PEP_CPUSET_TEXT 1024

void pep_placement_fini(struct pep_placement *p)
{
    if (!p) return;
    if (p->cpuset) hwloc_bitmap_free(p->cpuset);
    if (p->cores) hwloc_bitmap_free(p->cores);
    p->cpuset = NULL;
    p->cores = NULL;
}

int pep_placement_plan(hwloc_topology_t topo, hwloc_const_cpuset_t bound, int group_rank,
                       int group_size, int threads, struct pep_placement *out)
{
    memset(out, 0, sizeof *out);
    PEP_CHECK(topo != NULL, PEP_ERR_INTERNAL, "pep_placement_plan: no topology");
    PEP_CHECK(group_size >= 1 && group_rank >= 0 && group_rank < group_size, PEP_ERR_USAGE,
              "placement: rank %d of %d ranks sharing a binding is out of range", group_rank, group_size);
    PEP_CHECK(threads >= 0, PEP_ERR_USAGE, "run.threads = %d must be >= 0 (0 = cores per rank)", threads);
    int rc = PEP_OK;
    hwloc_bitmap_t allowed = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topo));
    out->cpuset = hwloc_bitmap_alloc();
    out->cores = hwloc_bitmap_alloc();
    PEP_CHECK_GOTO(rc, allowed && out->cpuset && out->cores, PEP_ERR_NOMEM, "placement: out of memory for cpusets");
    /* hwloc's bitmap operations fail only when they cannot grow a bitmap */
    PEP_CHECK_GOTO(rc, !bound || hwloc_bitmap_and(allowed, allowed, bound) == 0, PEP_ERR_NOMEM,
                   "placement: out of memory for cpusets");
    PEP_CHECK_GOTO(rc, !hwloc_bitmap_iszero(allowed), PEP_ERR_USAGE,
                   "placement: the process binding holds no processor of this node's topology "
                   "(check the cpuset given by Slurm / mpirun --bind-to)");

    /* cores in logical order that have at least one allowed PU; no core level -> PUs */
    hwloc_obj_type_t unit = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    int nunits = hwloc_get_nbobjs_by_type(topo, unit);
    int navail = 0;
    for (int i = 0; i < nunits; i++) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(topo, unit, (unsigned)i);
        if (obj && hwloc_bitmap_intersects(obj->cpuset, allowed)) navail++;
    }
    PEP_CHECK_GOTO(rc, navail > 0, PEP_ERR_USAGE, "placement: no core inside the process binding");

    int first, count;
    if (group_size <= navail) {
        /* contiguous blocks; the first navail % group_size ranks get one core more */
        int base = navail / group_size, extra = navail % group_size;
        first = group_rank * base + (group_rank < extra ? group_rank : extra);
        count = base + (group_rank < extra ? 1 : 0);
    } else {
        first = group_rank % navail;
        count = 1;
        out->shared = 1;
    }
    int k = 0;
    for (int i = 0; i < nunits; i++) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(topo, unit, (unsigned)i);
        if (!obj || !hwloc_bitmap_intersects(obj->cpuset, allowed)) continue;
        if (k >= first && k < first + count) {
            hwloc_bitmap_t part = hwloc_bitmap_alloc();
            PEP_CHECK_GOTO(rc, part != NULL, PEP_ERR_NOMEM, "placement: out of memory for cpusets");
            int hrc = hwloc_bitmap_and(part, obj->cpuset, allowed);
            if (hrc == 0) hrc = hwloc_bitmap_or(out->cpuset, out->cpuset, part);
            hwloc_bitmap_free(part);
            if (hrc == 0) hrc = hwloc_bitmap_set(out->cores, obj->logical_index);
            PEP_CHECK_GOTO(rc, hrc == 0, PEP_ERR_NOMEM, "placement: out of memory for cpusets");
        }
        k++;
    }
    out->ncores = count;
    out->requested = threads;
    out->threads = threads == 0 || threads > count ? count : threads;
    out->capped = threads > count;
    out->group_rank = group_rank;
    out->group_size = group_size;
cleanup:
    if (allowed) hwloc_bitmap_free(allowed);
    if (rc != PEP_OK) pep_placement_fini(out);
    return rc;
}

void pep_placement_describe(const struct pep_placement *p, char *buf, size_t len)
{
    char cores[PEP_CPUSET_TEXT] = "?", cpus[PEP_CPUSET_TEXT] = "?";
    if (p->cores) hwloc_bitmap_list_snprintf(cores, sizeof cores, p->cores);
    if (p->cpuset) hwloc_bitmap_list_snprintf(cpus, sizeof cpus, p->cpuset);
    snprintf(buf, len, "cores %s cpus %s threads %d", cores, cpus, p->threads);
}

/* Among the ranks of this node, those with the same binding as ours: our index, their count. */
static int binding_group(MPI_Comm comm, hwloc_const_cpuset_t bound, int *group_rank, int *group_size)
{
    int rc = PEP_OK, rank, node_rank, node_size;
    MPI_Comm node = MPI_COMM_NULL;
    char *all = NULL;
    char mine[PEP_CPUSET_TEXT];
    memset(mine, 0, sizeof mine);
    int need = hwloc_bitmap_list_snprintf(mine, sizeof mine, bound);
    if (need < 0 || need >= (int)sizeof mine)
        rc = pep_error_set(PEP_ERR_INTERNAL, __FILE__, __LINE__, __func__,
                           "placement: cpuset text longer than %d characters", PEP_CPUSET_TEXT);
    /* local failures are agreed on before each collective, so no rank is left waiting */
    PEP_CALL(pep_mpi_agree(rc, comm));
    PEP_CALL_MPI(MPI_Comm_rank(comm, &rank));
    PEP_CALL_MPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN));
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_rank(node, &node_rank));
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_size(node, &node_size));
    all = pep_alloc_((size_t)node_size * PEP_CPUSET_TEXT, "all", __FILE__, __LINE__, __func__);
    PEP_CALL_GOTO(rc, pep_mpi_agree(all ? PEP_OK : PEP_ERR_NOMEM, node));
    PEP_CALL_MPI_GOTO(rc, MPI_Allgather(mine, PEP_CPUSET_TEXT, MPI_CHAR, all, PEP_CPUSET_TEXT, MPI_CHAR, node));
    *group_rank = 0;
    *group_size = 0;
    for (int r = 0; r < node_size; r++) {
        if (strcmp(all + (size_t)r * PEP_CPUSET_TEXT, mine) != 0) continue;
        if (r < node_rank) (*group_rank)++;
        (*group_size)++;
    }
cleanup:
    pep_free(all);
    if (node != MPI_COMM_NULL && MPI_Comm_free(&node) != MPI_SUCCESS && rc == PEP_OK)
        rc = pep_error_set(PEP_ERR_MPI, __FILE__, __LINE__, __func__, "placement: MPI_Comm_free failed");
    return rc;
}

#define PEP_MAP_LINE 1024

static int print_map(MPI_Comm comm, const struct pep_placement *p)
{
    int rc = PEP_OK, rank, size;
    char *lines = NULL;
    char line[PEP_MAP_LINE], cores[256], cpus[256], host[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    PEP_CALL_MPI(MPI_Comm_rank(comm, &rank));
    PEP_CALL_MPI(MPI_Comm_size(comm, &size));
    PEP_CALL_MPI(MPI_Get_processor_name(host, &len));
    hwloc_bitmap_list_snprintf(cores, sizeof cores, p->cores);
    hwloc_bitmap_list_snprintf(cpus, sizeof cpus, p->cpuset);
    memset(line, 0, sizeof line);
    /* where the kernel choice came from (jobs/main.c chooses one per process when unset) */
    const char *auto_core = getenv("PEP_BLAS_CORETYPE_AUTO"), *env_core = getenv("OPENBLAS_CORETYPE");
    const char *why = auto_core && !strcmp(auto_core, "1") ? "chosen for this CPU"
                      : env_core && env_core[0]            ? "OPENBLAS_CORETYPE"
                                                           : "OpenBLAS's own choice";
    snprintf(line, sizeof line, "rank %d host %s cores %s cpus %s BLAS threads %d kernel %s (%s)", rank, host,
             cores, cpus, p->threads, openblas_get_corename(), why);
    if (rank == 0) lines = pep_alloc_((size_t)size * PEP_MAP_LINE, "lines", __FILE__, __LINE__, __func__);
    PEP_CALL(pep_mpi_agree(rank != 0 || lines ? PEP_OK : PEP_ERR_NOMEM, comm));
    PEP_CALL_MPI_GOTO(rc, MPI_Gather(line, PEP_MAP_LINE, MPI_CHAR, lines, PEP_MAP_LINE, MPI_CHAR, 0, comm));
    int flags[2] = {p->capped, p->shared}, counts[2] = {0, 0};
    PEP_CALL_MPI_GOTO(rc, MPI_Reduce(flags, counts, 2, MPI_INT, MPI_SUM, 0, comm));
    if (rank == 0) {
        pep_info("placement (%d ranks):", size);
        for (int r = 0; r < size; r++) pep_info("  %s", lines + (size_t)r * PEP_MAP_LINE);
        if (counts[0])
            pep_warn("run.threads = %d is more than the cores of %d rank(s): capped to their cores "
                     "(set run.threads = 0 for one thread per core)", p->requested, counts[0]);
        if (counts[1])
            pep_warn("%d rank(s) share cores with other ranks (more ranks than cores in the "
                     "binding): expect a slowdown; start fewer ranks per node", counts[1]);
    }
cleanup:
    pep_free(lines);
    return rc;
}

/* This process's topology and binding (the allowed cpuset when unbound). Local. */
static int local_binding(hwloc_topology_t *topo, hwloc_bitmap_t *bound)
{
    PEP_CHECK(hwloc_topology_init(topo) == 0, PEP_ERR_INTERNAL, "hwloc_topology_init failed");
    PEP_CHECK(hwloc_topology_load(*topo) == 0, PEP_ERR_INTERNAL,
              "hwloc_topology_load failed: cannot read this node's topology");
    *bound = hwloc_bitmap_alloc();
    PEP_CHECK(*bound != NULL, PEP_ERR_NOMEM, "placement: out of memory for cpusets");
    hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(*topo);
    if (hwloc_get_cpubind(*topo, *bound, HWLOC_CPUBIND_PROCESS) != 0 || hwloc_bitmap_iszero(*bound))
        PEP_CHECK(hwloc_bitmap_copy(*bound, allowed) == 0, PEP_ERR_NOMEM, "placement: out of memory for cpusets");
    PEP_CHECK(hwloc_bitmap_and(*bound, *bound, allowed) == 0, PEP_ERR_NOMEM, "placement: out of memory for cpusets");
    return PEP_OK;
}

int pep_placement_setup(MPI_Comm comm, int threads, struct pep_placement *out)
{
    int rc = PEP_OK;
    hwloc_topology_t topo = NULL;
    hwloc_bitmap_t bound = NULL;
    memset(out, 0, sizeof *out);
    /* the same on every rank: all ranks fail this check or none */
    PEP_CHECK(threads >= 0, PEP_ERR_USAGE, "run.threads = %d must be >= 0 (0 = cores per rank)", threads);
    /* reading the topology and the binding can fail on one node only: agree before the
     * collectives in binding_group, and again on the (local) plan before print_map's */
    int lrc = local_binding(&topo, &bound);
    PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
    int group_rank = 0, group_size = 1;
    PEP_CALL_GOTO(rc, binding_group(comm, bound, &group_rank, &group_size));
    lrc = pep_placement_plan(topo, bound, group_rank, group_size, threads, out);
    PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
    if (hwloc_set_cpubind(topo, out->cpuset, HWLOC_CPUBIND_PROCESS) != 0) {
        char cpus[PEP_CPUSET_TEXT];
        hwloc_bitmap_list_snprintf(cpus, sizeof cpus, out->cpuset);
        pep_warn("could not bind to cpus %s (%s); running unbound", cpus, strerror(errno));
    }
    /* the plan's threads are peprime's (the model's sgemm split, core/gemm.h, and the optimizer
     * step): each calls OpenBLAS on one thread, so no OpenBLAS worker spins beside them */
    openblas_set_num_threads(1);
    PEP_CALL_GOTO(rc, print_map(comm, out));
cleanup:
    if (bound) hwloc_bitmap_free(bound);
    if (topo) hwloc_topology_destroy(topo);
    if (rc != PEP_OK) pep_placement_fini(out);
    return rc;
}
