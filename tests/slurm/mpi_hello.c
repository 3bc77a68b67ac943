/* Smoke-test program for the localhost Slurm: every rank reports rank, size, host and pid,
 * and the sum of (rank + 1) over MPI_COMM_WORLD, so the driver can check that srun started
 * one MPI job of the expected size (not N singletons). */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rank = -1, size = -1, one = 0, sum = 0;
    char host[MPI_MAX_PROCESSOR_NAME] = {0};
    int len = 0;
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "mpi_hello: MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(host, &len);
    one = rank + 1;
    MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("mpi_hello rank=%d size=%d sum=%d host=%s pid=%ld\n", rank, size, sum, host, (long)getpid());
    MPI_Finalize();
    return 0;
}
