/* Round-robin task partition of a meta-batch over ranks (see partition.h). */
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
