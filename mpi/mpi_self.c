/* MPI for one process (mpi_self.h). */
#include "mpi_self.h"

#include "core/error.h"
#include "mpi_call.h"

int pep_mpi_self_init(struct pep_mpi_self *s)
{
    int up = 0;
    s->comm = MPI_COMM_NULL;
    s->owns_mpi = 0;
    MPI_Initialized(&up);
    if (!up) {
        PEP_CHECK(MPI_Init(NULL, NULL) == MPI_SUCCESS, PEP_ERR_MPI, "MPI_Init failed (a single process)");
        s->owns_mpi = 1;
        /* before the duplicate, so that a failing MPI_Comm_dup returns too */
        PEP_CALL_MPI(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN));
    }
    PEP_CALL_MPI(MPI_Comm_dup(MPI_COMM_SELF, &s->comm));
    PEP_CALL_MPI(MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN));
    return PEP_OK;
}

void pep_mpi_self_fini(struct pep_mpi_self *s)
{
    if (s->comm != MPI_COMM_NULL) MPI_Comm_free(&s->comm);
    s->comm = MPI_COMM_NULL;
    if (s->owns_mpi) MPI_Finalize();
    s->owns_mpi = 0;
}
