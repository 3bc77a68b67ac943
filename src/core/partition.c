/* Round-robin task partition of a meta-batch over ranks or task groups, and the shares of a
 * task's sentences inside a group (see partition.h). */
#include "core/partition.h"

#include "core/error.h"

int pep_partition_range(int rank, int size, int m, struct pep_task_range *out)
{
    PEP_CHECK(out != NULL, PEP_ERR_INTERNAL, "pep_partition_range: out is NULL");
    PEP_CHECK(size >= 1, PEP_ERR_USAGE, "task partition: %d ranks (need at least 1)", size);
    PEP_CHECK(rank >= 0 && rank < size, PEP_ERR_USAGE,
              "task partition: rank %d outside [0, %d)", rank, size);
    PEP_CHECK(m >= 0, PEP_ERR_USAGE, "task partition: meta-batch of %d tasks (must be >= 0)", m);
    out->first = rank;
    out->stride = size;
    /* tasks rank, rank+size, ... below m: ceil((m - rank) / size) when m > rank */
    out->count = m > rank ? (m - rank + size - 1) / size : 0;
    return PEP_OK;
}

int pep_partition_owner(int task, int size) { return size > 0 && task >= 0 ? task % size : -1; }

int pep_partition_local_index(int task, int size) { return size > 0 && task >= 0 ? task / size : -1; }

void pep_partition_share(int rank, int size, int n, int *first, int *count)
{
    int base = n / size, extra = n % size;
    *count = base + (rank < extra ? 1 : 0);
    *first = rank * base + (rank < extra ? rank : extra);
}

int pep_partition_check_groups(int size, int group_size, int meta_batch, int support, int query)
{
    int G = group_size;
    PEP_CHECK(G >= 1, PEP_ERR_USAGE, "maml.group_size = %d: a task group needs at least 1 rank", G);
    PEP_CHECK(size % G == 0, PEP_ERR_USAGE,
              "maml.group_size = %d does not divide the %d ranks of this run: start a multiple of %d ranks, or "
              "set maml.group_size to a divisor of %d", G, size, G, size);
    PEP_CHECK(meta_batch >= 1, PEP_ERR_USAGE, "maml.meta_batch = %d: a meta-step needs at least one task", meta_batch);
    PEP_CHECK(G <= support && G <= query, PEP_ERR_USAGE,
              "maml.group_size = %d is larger than maml.support_size = %d or maml.query_size = %d: every rank of a "
              "task group needs at least one support and one query sentence; lower maml.group_size or raise the sizes",
              G, support, query);
    return PEP_OK;
}

/* floor(n * r / size) rounded down to `align`: the boundary before rank r's slice */
static size_t slice_edge(int r, int size, size_t n, size_t align)
{
    if (r >= size) return n;
    /* n * r could overflow size_t only for absurd n; split it */
    size_t q = n / (size_t)size, rem = n % (size_t)size;
    size_t e = q * (size_t)r + rem * (size_t)r / (size_t)size;
    return e / align * align;
}

void pep_partition_slice(int rank, int size, size_t n, size_t align, size_t *lo, size_t *hi)
{
    if (align == 0) align = 1;
    *lo = slice_edge(rank, size, n, align);
    *hi = slice_edge(rank + 1, size, n, align);
}
