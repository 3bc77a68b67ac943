/* MPI for one process: the commands that write a checkpoint without mpirun (`import-hf`,
 * `strip`) start MPI as a singleton if nobody did and hand the checkpoint writer a private
 * duplicate of MPI_COMM_SELF whose errors are returned (MPI_ERRORS_RETURN), so a failing
 * MPI-IO call becomes a peprime error with MPI's message instead of aborting the process. */
#ifndef PEP_MPI_SELF_H
#define PEP_MPI_SELF_H

#include <mpi.h>

struct pep_mpi_self {
    MPI_Comm comm; /* duplicate of MPI_COMM_SELF, MPI_ERRORS_RETURN; MPI_COMM_NULL when not up */
    int owns_mpi;  /* pep_mpi_self_init called MPI_Init, so pep_mpi_self_fini calls MPI_Finalize */
};

/* Local (one process). Initialises MPI unless it is up, duplicates MPI_COMM_SELF into
 * s->comm and sets MPI_ERRORS_RETURN on it. PEP_ERR_MPI on failure (s is then safe to fini). */
int pep_mpi_self_init(struct pep_mpi_self *s);
/* Local. Frees s->comm and finalises MPI if init started it. Safe after a failed init and
 * twice. */
void pep_mpi_self_fini(struct pep_mpi_self *s);

#endif
