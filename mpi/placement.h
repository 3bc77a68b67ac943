/* hwloc placement: which cores each rank binds to and how many BLAS threads it runs.
 *
 * Ranks on one node (MPI_Comm_split_type SHARED) that start with the same binding (the
 * whole machine when unbound, or a cpuset from Slurm / mpirun --bind-to) split the cores of
 * that binding into contiguous blocks in hwloc's logical order (so blocks stay inside a
 * package when the counts allow); a rank never leaves the binding it was started with.
 * BLAS threads = the rank's cores (run.threads = 0) or the requested count capped there, so
 * ranks x threads never exceed the cores. More ranks than cores: one core each, round-robin,
 * 1 thread. Threads count cores, not hyperthreads: a rank binds to all PUs of its cores.
 *
 * pep_placement_plan() is a pure function of an hwloc topology, so tests run it on synthetic
 * topologies; pep_placement_setup() is the MPI driver that applies and prints the plan. */
#ifndef PEP_PLACEMENT_H
#define PEP_PLACEMENT_H

#include <hwloc.h>
#include <mpi.h>
#include <stddef.h>

struct pep_placement {
    hwloc_bitmap_t cpuset;  /* PUs (OS indices) to bind to: the PUs of the rank's cores inside the binding */
    hwloc_bitmap_t cores;   /* logical indices of those cores */
    int ncores;
    int threads;            /* BLAS threads */
    int requested;          /* run.threads as asked; 0 = auto */
    int capped;             /* requested > ncores: lowered to ncores */
    int shared;             /* more ranks than cores in the binding: cores are shared */
    int group_rank;         /* position among the ranks of this node with the same binding */
    int group_size;         /* number of such ranks */
};

/* Local, pure. Plans rank `group_rank` of `group_size` ranks that share the binding `bound`
 * (NULL = the topology's allowed cpuset) on topology `topo`; `threads` is run.threads
 * (0 = auto). Fills `out` (release with pep_placement_fini). PEP_ERR_USAGE if the binding
 * holds no PU of the topology or the group arguments are out of range. */
int pep_placement_plan(hwloc_topology_t topo, hwloc_const_cpuset_t bound, int group_rank,
                       int group_size, int threads, struct pep_placement *out);
/* Local. Frees the bitmaps; NULL-safe, idempotent. */
void pep_placement_fini(struct pep_placement *p);
/* Local. "cores 0-3 cpus 0-7 threads 4" into buf. */
void pep_placement_describe(const struct pep_placement *p, char *buf, size_t len);

/* Collective over comm. Loads this node's topology, reads the current process binding,
 * groups the ranks of each node by binding, plans, then binds the process with
 * hwloc_set_cpubind and holds OpenBLAS to one thread: the plan's threads are peprime's own pools
 * (the stages give them to the model's sgemm calls, core/gemm.h, and to the optimizer step,
 * src/core/pool.h), each calling OpenBLAS single-threaded. Rank 0 prints the map (rank, host, cores, cpus, BLAS threads, BLAS kernel) and
 * one warning if threads were capped or cores are shared. A failed binding (e.g. a
 * container forbids it) is a warning, not an error. */
int pep_placement_setup(MPI_Comm comm, int threads, struct pep_placement *out);

#endif
