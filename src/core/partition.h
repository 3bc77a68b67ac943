/* Task partition of a meta-batch over ranks: rank r of P processes tasks r, r+P, r+2P, ...
 * With task groups (maml.group_size = G) the same round-robin runs over the P / G groups
 * (group index in place of rank), and a group splits each task's sentences into contiguous
 * shares, one per rank of the group. Pure functions so the sharding is tested in one process;
 * the caller passes the rank and size (jobs/stage_prime.c: the task group's index and the
 * number of groups, from pep_mpi_group_split). */
#ifndef PEP_PARTITION_H
#define PEP_PARTITION_H

#include <stddef.h>

/* The tasks of one rank: first, first + stride, ..., count of them (count may be 0 when the
 * meta-batch has fewer tasks than there are ranks). */
struct pep_task_range {
    int first;   /* global index of the rank's first task (== rank) */
    int stride;  /* == size */
    int count;   /* number of tasks this rank owns */
};

/* Fills `out` for `rank` of `size` ranks and a meta-batch of `m` tasks.
 * PEP_ERR_USAGE if size < 1, rank outside [0, size) or m < 0. */
int pep_partition_range(int rank, int size, int m, struct pep_task_range *out);
/* Global index of the i-th task of a range (i in [0, count)). */
static inline int pep_task_range_task(const struct pep_task_range *r, int i)
{
    return r->first + i * r->stride;
}
/* The rank that owns global task `task` (task >= 0, size >= 1): task mod size. */
int pep_partition_owner(int task, int size);
/* The position of `task` inside its owner's range: task / size. */
int pep_partition_local_index(int task, int size);

/* The contiguous share of n items (sentences of a task's batch) that rank `rank` of `size`
 * holds: items [*first, *first + *count); the first n % size ranks hold one more. */
void pep_partition_share(int rank, int size, int n, int *first, int *count);
/* The contiguous slice [*lo, *hi) of n floats that rank `rank` of `size` owns in a sharded
 * (ZeRO-1) outer step: slices tile [0, n) in rank order, each about n / size long, cut at
 * multiples of `align` floats (>= 1) so every slice but the last starts and ends on a vector
 * boundary; a slice may be empty when n is small. */
void pep_partition_slice(int rank, int size, size_t n, size_t align, size_t *lo, size_t *hi);
/* Checks maml.group_size = group_size for `size` ranks: at least 1, divides size, and at most
 * the support and query sizes (every rank of a group needs a sentence of each: an empty share
 * has no forward pass). A group size above the meta-batch is fine (P = 64 ranks, 4 tasks:
 * G = 16); more groups than tasks leave groups idle, which the stage warns about. PEP_ERR_USAGE
 * with a message naming the keys and what to change. */
int pep_partition_check_groups(int size, int group_size, int meta_batch, int support, int query);

#endif
