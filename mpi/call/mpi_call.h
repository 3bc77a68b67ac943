/* The one MPI error check and the one error agreement that both io/ (the collective HDF5
 * writer) and mpi/ use: PEP_CALL_MPI, which turns a failing MPI call into a peprime error
 * with MPI's own message, and pep_mpi_agree, which makes every rank take the same branch
 * after a step that only some ranks may have failed. Its own small library (pep_mpi_call:
 * MPI + pep_core), so io/ gets it without depending on the rest of mpi/. */
#ifndef PEP_MPI_CALL_H
#define PEP_MPI_CALL_H

#include <mpi.h>

#include "core/error.h"

/* Records an MPI failure: PEP_ERR_MPI with MPI_Error_string's text and the failing call. */
int pep_mpi_error_(int mpi_rc, const char *call, const char *file, int line, const char *func);

/* Return PEP_ERR_MPI (with MPI's own message and file:line) if the MPI call fails. Needs the
 * communicator's error handler to be MPI_ERRORS_RETURN (pep_mpi_init sets it on
 * MPI_COMM_WORLD and ctx->comm), otherwise MPI aborts before the macro sees the code. */
#define PEP_CALL_MPI(expr)                                                              \
    do {                                                                                \
        int pep_mpi_rc_ = (expr);                                                       \
        if (pep_mpi_rc_ != MPI_SUCCESS)                                                 \
            return pep_mpi_error_(pep_mpi_rc_, #expr, __FILE__, __LINE__, __func__);    \
    } while (0)
#define PEP_CALL_MPI_GOTO(rc, expr)                                                     \
    do {                                                                                \
        int pep_mpi_rc_ = (expr);                                                       \
        if (pep_mpi_rc_ != MPI_SUCCESS) {                                               \
            (rc) = pep_mpi_error_(pep_mpi_rc_, #expr, __FILE__, __LINE__, __func__);    \
            goto cleanup;                                                               \
        }                                                                               \
    } while (0)

/* Collective. Agreement on a status that only some ranks may have failed (every rank then takes the same branch):
 * returns the largest status of all ranks (PEP_OK if every rank passed PEP_OK). When it is
 * not PEP_OK, the lowest rank with that status broadcasts its pep_error_message() and every
 * other rank records it as its own error ("rank R: <message>"), so all ranks can report and
 * stop the same way (R as MPI_COMM_WORLD numbers the rank, also when comm is a sub-communicator
 * such as a task group). The failing rank keeps its own error record untouched. Returns
 * PEP_ERR_MPI if the agreement itself fails. */
int pep_mpi_agree(int local_status, MPI_Comm comm);

/* Local. Whether an agreement on this process found a failure. Every rank of that agreement
 * returns the same, so a stage that stops on an agreed failure can skip its final agreement
 * (a second one would wait for ranks that already went on to MPI_Finalize). */
int pep_mpi_failure_agreed(void);

#endif
