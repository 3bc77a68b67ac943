/* Checkpoint write/read benchmark at XLM-R base size: ~278M parameters (250002 x 768
 * embeddings, 12 layers, Pfeiffer adapters of width 48, 7-tag head), AdamW m and v of every
 * parameter, and 40 per-task adapter+head states owned round-robin by the ranks. Compares the
 * write speed with `dd if=/dev/zero bs=16M conv=fsync` of the same number of bytes on the same
 * folder, and with plain 16 MiB pwrite()s of the same in-memory blocks (no HDF5).
 *
 *   mpiexec -n P bench_checkpoint DIR [NTASKS] [LAYERS] [TABLE.md]
 *
 * Starting state: on the VMs this was measured on, writing into page-cache pages that are
 * new memory costs 0.2-0.3 GB/s while reusing pages freed a moment ago runs at memory speed,
 * and freed memory goes back to the host within seconds. So the checkpoint write and one dd
 * ("dd cold") both start after `sync; drop_caches; sleep 3`; a second dd ("dd warm") runs
 * right after the checkpoint file is removed and reuses its pages, as the raw pwrite does.
 * The table's dd column is the faster of the two and write/dd is against it.
 *
 * Prints a Markdown table row (ranks, data path, file GB, write s, write GB/s, dd GB/s,
 * write/dd, read s, read GB/s) with its header; with TABLE.md the row is appended to that file
 * (header first if the file is new or empty), so runs with -n 1 and -n 2 build one table for
 * docs/benchmarks.md. PEP_CKPT_DIRECT=0 benchmarks the all-HDF5 (buffered) data path.
 *
 * Needs ~3.5 GB of memory per rank and ~3.5 GB of disk in DIR; removes its files. */
#define _GNU_SOURCE /* O_DIRECT */
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "ckpt_common.h"
#include "core/clock.h"
#include "core/error.h"

#define TRY(expr)                                                                          \
    do {                                                                                   \
        if ((expr) != PEP_OK) {                                                            \
            fprintf(stderr, "bench_checkpoint: %s\n%s", pep_error_message(), pep_error_where()); \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                  \
        }                                                                                  \
    } while (0)

/* Page cache dropped, freed memory settled: the same starting state for every cold write. */
static void settle(int rank)
{
    if (rank == 0 && system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && sleep 3") != 0)
        fprintf(stderr, "bench_checkpoint: cannot drop the page cache (not root?)\n");
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Seconds for `dd` of `count` 16 MiB blocks with fsync into DIR/bench-dd.tmp (removed). */
static double run_dd(const char *dir, long count)
{
    char cmd[PEP_CKPT_PATH_MAX + 200];
    snprintf(cmd, sizeof cmd, "dd if=/dev/zero of=%s/bench-dd.tmp bs=16M count=%ld conv=fsync status=none", dir,
             count);
    double a = pep_now_s();
    int rc = system(cmd);
    double b = pep_now_s();
    snprintf(cmd, sizeof cmd, "%s/bench-dd.tmp", dir);
    unlink(cmd);
    return rc == 0 ? b - a : -1;
}

/* Whether DIR accepts O_DIRECT (else the checkpoint writer falls back to buffered HDF5 I/O). */
static int direct_ok(const char *dir)
{
    const char *env = getenv("PEP_CKPT_DIRECT");
    if (env && !strcmp(env, "0")) return 0;
    char path[PEP_CKPT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/bench-probe.tmp", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    if (fd >= 0) close(fd);
    unlink(path);
    return fd >= 0;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2) {
        if (rank == 0) fprintf(stderr, "usage: bench_checkpoint DIR [NTASKS] [LAYERS] [TABLE.md]\n");
        MPI_Finalize();
        return 2;
    }
    const char *dir = argv[1];
    int ntasks = argc > 2 ? atoi(argv[2]) : 40;
    int L = argc > 3 ? atoi(argv[3]) : 12;
    const char *table = argc > 4 ? argv[4] : NULL;
    const int C = 768, FF = 3072, V = 250002, P = 514, R = 48, K = 7;
    const unsigned tg = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    struct pep_param_table t;
    struct pep_model_spec spec;
    TRY(ckpt_test_table(&t, L, C, FF, V, P, R, K));
    ckpt_test_spec(&spec, L, C, FF, V, P, R, K);
    size_t tb, te;
    TRY(pep_param_table_range(&t, tg, &tb, &te));
    float *params = malloc(t.numel * 4), *m = malloc(t.numel * 4), *v = malloc(t.numel * 4);
    if (!params || !m || !v) MPI_Abort(MPI_COMM_WORLD, 1);
    ckpt_test_fill(&t, params, PEP_GROUPS_ALL, 0, 1);
    ckpt_test_fill(&t, m, PEP_GROUPS_ALL, 0, 2);
    ckpt_test_fill(&t, v, PEP_GROUPS_ALL, 0, 3);
    struct pep_ckpt_task *tasks = calloc((size_t)ntasks, sizeof *tasks);
    static const char *const names[] = {"af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi",
                                        "fr", "he", "hi", "hu", "id", "it", "ja", "jv", "ka", "kk", "ko", "ml",
                                        "mr", "ms", "my", "nl", "pt", "ru", "sw", "ta", "te", "th", "tl", "tr",
                                        "ur", "vi", "yo", "zh"};
    for (int i = 0; i < ntasks; i++) {
        snprintf(tasks[i].lang, sizeof tasks[i].lang, "%s%s", i < 40 ? names[i] : "x", i < 40 ? "" : "");
        if (i >= 40) snprintf(tasks[i].lang, sizeof tasks[i].lang, "x%d", i);
        tasks[i].owner = i % size;
        if (tasks[i].owner == rank) {
            float *s = malloc((te - tb) * 4);
            ckpt_test_fill(&t, s, tg, tb, 10 * i);
            tasks[i].state = s;
        }
    }
    double logv[1000];
    for (int i = 0; i < 1000; i++) logv[i] = i;
    char path[PEP_CKPT_PATH_MAX];
    snprintf(path, sizeof path, "%s/bench-ckpt.h5", dir);
    struct pep_ckpt_header h = {"prime", 1000, "[bench]\n", NULL, 0, &spec, NULL, NULL};

    /* the plain write from the same starting state, sized like the checkpoint (3.49 GB at
     * base size; measured before it so both see the same disk) */
    double dd_cold = -1;
    const double est = (3.0 * (double)t.numel + (double)ntasks * (double)(te - tb)) * 4;
    const long count = (long)(est / (16.0 * 1024 * 1024) + 0.5);
    settle(rank);
    if (rank == 0) dd_cold = run_dd(dir, count);
    settle(rank);
    double t0 = pep_now_s();
    struct pep_ckpt_writer *w = NULL;
    TRY(pep_ckpt_create(path, MPI_COMM_WORLD, NULL, &w));
    TRY(pep_ckpt_write_header(w, &h));
    TRY(pep_ckpt_write_params(w, &t, params, PEP_GROUPS_ALL));
    double t_params = pep_now_s();
    TRY(pep_ckpt_write_moments(w, &t, m, v, PEP_GROUPS_ALL, 1000));
    double t_moments = pep_now_s();
    TRY(pep_ckpt_write_tasks(w, &t, tg, tasks, ntasks));
    double t_tasks = pep_now_s();
    TRY(pep_ckpt_write_log(w, "step", logv, 1000));
    TRY(pep_ckpt_commit(&w));
    MPI_Barrier(MPI_COMM_WORLD);
    double t1 = pep_now_s();

    struct stat st;
    stat(path, &st);
    double bytes = (double)st.st_size;

    /* read back: every rank reads the replicated state and its own tasks (as on resume) */
    int dropped = 0;
    if (rank == 0) dropped = system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null") == 0;
    MPI_Bcast(&dropped, 1, MPI_INT, 0, MPI_COMM_WORLD);
    memset(params, 0, t.numel * 4);
    MPI_Barrier(MPI_COMM_WORLD);
    double r0 = pep_now_s();
    struct pep_ckpt_reader *r = NULL;
    TRY(pep_ckpt_open(path, &r));
    TRY(pep_ckpt_read_params(r, &t, params, PEP_GROUPS_ALL));
    int64_t tt;
    TRY(pep_ckpt_read_moments(r, &t, m, v, PEP_GROUPS_ALL, &tt));
    float *s = malloc((te - tb) * 4);
    double mine = (double)t.numel * 3 * 4;
    for (int i = 0; i < ntasks; i++)
        if (tasks[i].owner == rank) {
            TRY(pep_ckpt_read_task(r, tasks[i].lang, &t, tg, s, NULL));
            mine += (double)(te - tb) * 4;
        }
    pep_ckpt_close(&r);
    double r1 = pep_now_s(), rt = r1 - r0, read_bytes = mine;
    MPI_Allreduce(MPI_IN_PLACE, &rt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &read_bytes, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    size_t bad = ckpt_test_compare(&t, params, PEP_GROUPS_ALL, 0, 1);
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);

    if (rank == 0) {
        unlink(path);
        /* plain sequential write again, right away: reuses the pages just freed */
        double dd_warm = run_dd(dir, count);
        double ddbytes = count * 16.0 * 1024 * 1024;
        double ddc = dd_cold > 0 ? ddbytes / dd_cold / 1e9 : 0, ddw = dd_warm > 0 ? ddbytes / dd_warm / 1e9 : 0;
        double ddrate = ddc > ddw ? ddc : ddw;
        /* plain pwrite of the same in-memory blocks in 16 MiB pieces + fsync: the cost of
         * copying this process's memory into the page cache, without HDF5 */
        char cmd[PEP_CKPT_PATH_MAX + 200];
        snprintf(cmd, sizeof cmd, "%s/bench-raw.tmp", dir);
        int fd = open(cmd, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        double p0 = pep_now_s(), raw = 0;
        const float *blocks[3] = {params, m, v};
        for (int b = 0; b < 3 && fd >= 0; b++)
            for (size_t o = 0; o < t.numel * 4; o += (size_t)16 << 20) {
                size_t len = t.numel * 4 - o < ((size_t)16 << 20) ? t.numel * 4 - o : (size_t)16 << 20;
                if (pwrite(fd, (const char *)blocks[b] + o, len, (off_t)raw) != (ssize_t)len) break;
                raw += (double)len;
            }
        if (fd >= 0) fsync(fd), close(fd);
        double p1 = pep_now_s();
        unlink(cmd);
        double rawrate = raw / (p1 - p0) / 1e9;
        double wrate = bytes / (t1 - t0) / 1e9;
        printf("checkpoint benchmark: %d layers, %zu parameters, %d tasks of %zu floats, file %.2f GB\n", L,
               t.numel, ntasks, te - tb, bytes / 1e9);
        printf("  phases (s): params %.2f  moments %.2f  tasks %.2f  log+commit %.2f\n", t_params - t0,
               t_moments - t_params, t_tasks - t_moments, t1 - t_tasks);
        printf("  dd cold %.3f GB/s, dd warm %.3f GB/s, raw pwrite (warm) %.3f GB/s, read %s, %zu wrong values\n",
               ddc, ddw, rawrate, dropped ? "after a cache drop" : "from the page cache", bad);
        static const char *const head =
            "| ranks | data path | file GB | write s | write GB/s | dd GB/s | write/dd | read s | read GB/s |\n"
            "|---|---|---|---|---|---|---|---|---|\n";
        char row[512];
        snprintf(row, sizeof row, "| %d | %s | %.2f | %.2f | %.3f | %.3f | %.0f%% | %.2f | %.3f |\n", size,
                 direct_ok(dir) ? "O_DIRECT" : "buffered", bytes / 1e9, t1 - t0, wrate, ddrate,
                 ddrate > 0 ? 100 * wrate / ddrate : 0, rt, read_bytes / rt / 1e9);
        printf("%s%s", head, row);
        if (table) {
            FILE *f = fopen(table, "a");
            if (!f) {
                fprintf(stderr, "bench_checkpoint: cannot append to %s\n", table);
            } else {
                fseek(f, 0, SEEK_END);
                if (ftell(f) == 0) fputs(head, f);
                fputs(row, f);
                fclose(f);
            }
        }
        if (bad) fprintf(stderr, "bench_checkpoint: %zu values read back wrong\n", bad);
    }
    for (int i = 0; i < ntasks; i++) free((void *)tasks[i].state);
    free(tasks), free(s), free(params), free(m), free(v);
    pep_param_table_fini(&t);
    MPI_Finalize();
    return 0;
}
