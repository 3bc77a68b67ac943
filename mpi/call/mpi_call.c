/* MPI error checks and agreement on errors across ranks (mpi_call.h). */
#include "mpi_call.h"

#include <stdio.h>
#include <string.h>

int pep_mpi_error_(int mpi_rc, const char *call, const char *file, int line, const char *func)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error code %d", mpi_rc);
    return pep_error_set(PEP_ERR_MPI, file, line, func, "%s failed: %s", call, text);
}

/* Set by an agreement that found a failure: every rank of that agreement has it. */
static int failure_agreed;

int pep_mpi_failure_agreed(void) { return failure_agreed; }

int pep_mpi_agree(int local_status, MPI_Comm comm)
{
    int rank;
    PEP_CALL_MPI(MPI_Comm_rank(comm, &rank));
    /* MPI_MAXLOC: the largest status, and the lowest rank holding it */
    struct {
        int status;
        int rank;
    } mine = {local_status, rank}, worst = {PEP_OK, 0};
    PEP_CALL_MPI(MPI_Allreduce(&mine, &worst, 1, MPI_2INT, MPI_MAXLOC, comm));
    if (worst.status == PEP_OK) return PEP_OK;
    failure_agreed = 1;
    char msg[2048];
    memset(msg, 0, sizeof msg);
    if (rank == worst.rank) {
        const char *own = pep_error_code() != PEP_OK ? pep_error_message() : "";
        snprintf(msg, sizeof msg, "%s", *own ? own : pep_status_name(worst.status));
    }
    PEP_CALL_MPI(MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, worst.rank, comm));
    msg[sizeof msg - 1] = '\0';
    if (local_status == PEP_OK) {
        /* this rank was fine: adopt the failing rank's message as its own error, naming the
         * failing rank as MPI_COMM_WORLD numbers it (comm may be a task group's) */
        int world = worst.rank;
        MPI_Group cg = MPI_GROUP_NULL, wg = MPI_GROUP_NULL;
        if (MPI_Comm_group(comm, &cg) == MPI_SUCCESS && MPI_Comm_group(MPI_COMM_WORLD, &wg) == MPI_SUCCESS &&
            (MPI_Group_translate_ranks(cg, 1, &worst.rank, wg, &world) != MPI_SUCCESS || world == MPI_UNDEFINED))
            world = worst.rank;
        if (cg != MPI_GROUP_NULL) MPI_Group_free(&cg);
        if (wg != MPI_GROUP_NULL) MPI_Group_free(&wg);
        pep_error_clear();
        pep_error_set(worst.status, __FILE__, __LINE__, __func__, "rank %d: %s", world, msg);
    }
    return worst.status;
}
