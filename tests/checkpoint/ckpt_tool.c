/* Test driver for io/checkpoint used by the integration, MPI and crash tests:
 *   ckpt_tool write FILE       write a tiny deterministic checkpoint (any number of ranks;
 *                              task i is owned by rank i % size) and print its manifest
 *   ckpt_tool roundtrip FILE   write as above, then every rank reads the file back and checks
 *                              every value, attribute and task (the MPI test)
 *   ckpt_tool write-big FILE, roundtrip-big FILE
 *                              the same with tensors over 1 MiB whose sizes are not multiples
 *                              of 4 KiB (the writer's direct-I/O path with unaligned tails,
 *                              replicated and task-owned)
 *   ckpt_tool loop DIR [N]     write N (or endless) checkpoints after the newest one in DIR,
 *                              keeping the last 3
 *   ckpt_tool verify DIR       every final-named checkpoint in DIR opens, verifies and holds
 *                              the values of its step; exit 1 otherwise */
#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "checkpoint_digest.h"
#include "ckpt_common.h"
#include "core/error.h"

/* tiny: L=2 C=8 FF=16 V=30 P=10 R=2 K=5; loop: bigger so a kill lands inside a write */
#define TINY 2, 8, 16, 30, 10, 2, 5
#define LOOP 2, 256, 1024, 8000, 130, 16, 7
/* embeddings 3001 x 200 and FF 1500 x 200 floats, adapters 1400 x 200: all >= 1 MiB, none a
 * multiple of 4 KiB */
#define BIG 1, 200, 1500, 3001, 130, 1400, 7
#define NTASKS 4
static const char *const langs[NTASKS] = {"en", "de", "fr", "sw"};
static const unsigned task_groups = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);

#define TRY(expr)                                                                        \
    do {                                                                                 \
        if ((expr) != PEP_OK) {                                                          \
            fprintf(stderr, "ckpt_tool: %s\n%s", pep_error_message(), pep_error_where()); \
            return 1;                                                                    \
        }                                                                                \
    } while (0)
#define EXPECT(cond, ...)                                           \
    do {                                                            \
        if (!(cond)) {                                              \
            fprintf(stderr, "ckpt_tool: check failed: " __VA_ARGS__); \
            fprintf(stderr, "\n");                                  \
            return 1;                                               \
        }                                                           \
    } while (0)

static int write_file(const char *path, const struct pep_param_table *t, const struct pep_model_spec *spec,
                      int64_t step, int ntasks, int print_manifest)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    float *params = calloc(t->numel, sizeof *params), *m = calloc(t->numel, sizeof *m),
          *v = calloc(t->numel, sizeof *v);
    size_t tb, te;
    TRY(pep_param_table_range(t, task_groups, &tb, &te));
    ckpt_test_fill(t, params, PEP_GROUPS_ALL, 0, (int)step);
    ckpt_test_fill(t, m, PEP_GROUP_BIT(PEP_GROUP_PLM), 0, 1000);
    ckpt_test_fill(t, v, PEP_GROUP_BIT(PEP_GROUP_PLM), 0, 2000);
    struct pep_ckpt_task tasks[NTASKS];
    float *states[NTASKS];
    for (int i = 0; i < ntasks; i++) {
        memset(&tasks[i], 0, sizeof tasks[i]);
        snprintf(tasks[i].lang, sizeof tasks[i].lang, "%s", langs[i]);
        tasks[i].owner = i % size;
        states[i] = NULL;
        if (tasks[i].owner == rank) { /* only the owner knows the state and its scalars */
            states[i] = calloc(te - tb, sizeof(float));
            ckpt_test_fill(t, states[i], task_groups, tb, 100 * (i + 1));
            tasks[i].episode = 10 + i;
            tasks[i].step = step;
            tasks[i].support_loss = 0.5 + i;
            tasks[i].query_loss = 0.25 + i;
        } else {
            tasks[i].episode = -1;
            tasks[i].support_loss = -1e9;
        }
        tasks[i].state = states[i];
    }
    const char *config = "[model]\nlayers = 2\nhidden = 8\n\n[maml]\ninner_steps = 1\n";
    uint64_t rng[4] = {11, 22, 33, (uint64_t)step};
    struct pep_ckpt_header h = {"prime", step, config, rng, 4, spec, NULL, NULL};
    double steps[10], loss[10];
    for (int i = 0; i < 10; i++) steps[i] = i + 1, loss[i] = 1.0 / (i + 1);
    struct pep_ckpt_writer *w = NULL;
    TRY(pep_ckpt_create(path, MPI_COMM_WORLD, NULL, &w));
    TRY(pep_ckpt_write_header(w, &h));
    TRY(pep_ckpt_write_params(w, t, params, PEP_GROUPS_ALL));
    TRY(pep_ckpt_write_moments(w, t, m, v, PEP_GROUP_BIT(PEP_GROUP_PLM), 77));
    TRY(pep_ckpt_write_tasks(w, t, task_groups, tasks, ntasks));
    TRY(pep_ckpt_write_log(w, "step", steps, 10));
    TRY(pep_ckpt_write_log(w, "meta_loss", loss, 10));
    TRY(pep_ckpt_commit(&w));
    if (print_manifest && rank == 0)
        for (int r = 0; r < t->count; r++)
            printf("row %d %s %s %zu %zu\n", r, pep_group_name(t->rows[r].group), t->rows[r].name,
                   t->rows[r].shape[0], t->rows[r].ndim > 1 ? t->rows[r].shape[1] : 0);
    for (int i = 0; i < ntasks; i++) free(states[i]);
    free(params), free(m), free(v);
    return 0;
}

/* Reads `path` back and checks everything written by write_file(). */
static int check_file(const char *path, const struct pep_param_table *t, const struct pep_model_spec *spec,
                      int64_t expect_step, int expect_world, int ntasks)
{
    struct pep_ckpt_reader *r = NULL;
    TRY(pep_ckpt_open(path, &r));
    const struct pep_ckpt_info *in = pep_ckpt_info(r);
    int64_t step = in->step;
    EXPECT(expect_step < 0 || step == expect_step, "%s: step %lld, expected %lld", path, (long long)step,
           (long long)expect_step);
    EXPECT(expect_world <= 0 || in->world_size == expect_world, "%s: world_size %d", path, in->world_size);
    EXPECT(!strcmp(in->stage, "prime") && in->rng_words == 4 && in->rng_state[3] == (uint64_t)step,
           "%s: root attributes", path);
    TRY(pep_ckpt_check_spec(r, spec));
    TRY(pep_ckpt_verify(r));
    float *x = calloc(t->numel, sizeof *x), *v = calloc(t->numel, sizeof *v);
    TRY(pep_ckpt_read_params(r, t, x, PEP_GROUPS_ALL));
    EXPECT(ckpt_test_compare(t, x, PEP_GROUPS_ALL, 0, (int)step) == 0, "%s: parameter values", path);
    int64_t tt = 0;
    TRY(pep_ckpt_read_moments(r, t, x, v, PEP_GROUP_BIT(PEP_GROUP_PLM), &tt));
    EXPECT(tt == 77 && ckpt_test_compare(t, x, PEP_GROUP_BIT(PEP_GROUP_PLM), 0, 1000) == 0 &&
               ckpt_test_compare(t, v, PEP_GROUP_BIT(PEP_GROUP_PLM), 0, 2000) == 0,
           "%s: moments", path);
    int n = 0;
    TRY(pep_ckpt_task_count(r, &n));
    EXPECT(n == ntasks, "%s: %d tasks, expected %d", path, n, ntasks);
    size_t tb, te;
    TRY(pep_param_table_range(t, task_groups, &tb, &te));
    for (int i = 0; i < ntasks; i++) {
        struct pep_ckpt_task_info ti;
        TRY(pep_ckpt_read_task(r, langs[i], t, task_groups, x, &ti));
        EXPECT(ckpt_test_compare(t, x, task_groups, tb, 100 * (i + 1)) == 0, "%s: task %s values", path, langs[i]);
        EXPECT(ti.episode == 10 + i && ti.step == step && ti.support_loss == 0.5 + i && ti.query_loss == 0.25 + i,
               "%s: task %s attributes (episode %lld)", path, langs[i], (long long)ti.episode);
    }
    double *log = NULL;
    size_t nl = 0;
    TRY(pep_ckpt_read_log(r, "meta_loss", &log, &nl));
    EXPECT(nl == 10 && log[9] == 0.1, "%s: log", path);
    pep_free(log);
    pep_ckpt_close(&r);
    free(x), free(v);
    return 0;
}

/* 0 when one process sealing `path` again writes the same digest header as the `size` ranks
 * that sealed it, each hashing its own pieces (checkpoint_digest.h). */
static int same_seal(const char *path, int size)
{
    unsigned char before[40], after[40];
    FILE *f = fopen(path, "rb");
    if (!f || fread(before, 1, sizeof before, f) != sizeof before) return fprintf(stderr, "cannot read %s\n", path), 1;
    fclose(f);
    TRY(pep_ckpt_digest_seal(path));
    f = fopen(path, "rb");
    if (!f || fread(after, 1, sizeof after, f) != sizeof after) return fprintf(stderr, "cannot read %s\n", path), 1;
    fclose(f);
    struct stat st;
    unsigned long long pieces = stat(path, &st) == 0 ? (unsigned long long)pep_ckpt_digest_npieces((uint64_t)st.st_size) : 0;
    if (memcmp(before, after, sizeof before)) return fprintf(stderr, "%s: %d ranks sealed another digest\n", path, size), 1;
    printf("digest of %llu piece(s) sealed by %d rank(s) = sealed by one process\n", pieces, size);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ckpt_tool write|roundtrip|write-big|roundtrip-big FILE | loop DIR [N] | verify DIR\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    int rank, size, rc = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    struct pep_param_table t;
    struct pep_model_spec spec;
    const char *mode = argv[1], *arg = argv[2];
    int loop = !strcmp(mode, "loop") || !strcmp(mode, "verify");
    int big = !strcmp(mode, "write-big") || !strcmp(mode, "roundtrip-big");
    if (big) {
        TRY(ckpt_test_table(&t, BIG));
        ckpt_test_spec(&spec, BIG);
    } else if (loop) {
        TRY(ckpt_test_table(&t, LOOP));
        ckpt_test_spec(&spec, LOOP);
    } else {
        TRY(ckpt_test_table(&t, TINY));
        ckpt_test_spec(&spec, TINY);
    }
    if (!strcmp(mode, "write") || !strcmp(mode, "write-big")) {
        rc = write_file(arg, &t, &spec, 7, NTASKS, 1);
    } else if (!strcmp(mode, "roundtrip") || !strcmp(mode, "roundtrip-big")) {
        rc = write_file(arg, &t, &spec, 7, NTASKS, 0);
        MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (!rc) rc = check_file(arg, &t, &spec, 7, size, NTASKS); /* every rank reads independently */
        if (!rc) printf("rank %d/%d: read back %d tasks, all values equal\n", rank, size, NTASKS);
        MPI_Barrier(MPI_COMM_WORLD);
        if (!rc && rank == 0) rc = same_seal(arg, size); /* the digest does not depend on the rank count */
    } else if (!strcmp(mode, "loop")) {
        long n = argc > 3 ? atol(argv[3]) : -1;
        /* resume after the newest committed step, as `--resume auto` would */
        char latest[PEP_CKPT_PATH_MAX];
        int found = 0;
        long first = 1;
        if (rank == 0) {
            TRY(pep_ckpt_find_latest(arg, "prime", 0, latest, sizeof latest, &found));
            struct pep_ckpt_reader *r = NULL;
            if (found && pep_ckpt_open(latest, &r) == PEP_OK) first = (long)pep_ckpt_info(r)->step + 1;
            pep_ckpt_close(&r);
        }
        MPI_Bcast(&first, 1, MPI_LONG, 0, MPI_COMM_WORLD);
        for (long s = first; n < 0 || s < first + n; s++) {
            char path[PEP_CKPT_PATH_MAX];
            TRY(pep_ckpt_name(arg, "prime", s, path, sizeof path));
            rc = write_file(path, &t, &spec, s, 2, 0);
            if (rc) break;
            if (rank == 0) TRY(pep_ckpt_rotate(arg, "prime", 3));
            if (rank == 0) printf("committed %s\n", path), fflush(stdout);
        }
    } else if (!strcmp(mode, "verify")) {
        DIR *d = opendir(arg);
        EXPECT(d, "cannot list %s", arg);
        struct dirent *e;
        int files = 0;
        while ((e = readdir(d)) && !rc) {
            size_t l = strlen(e->d_name);
            if (l < 4 || strcmp(e->d_name + l - 3, ".h5")) continue;
            char path[PEP_CKPT_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", arg, e->d_name);
            rc = check_file(path, &t, &spec, -1, 0, 2);
            files++;
        }
        closedir(d);
        if (!rc) printf("verified %d checkpoint(s) in %s\n", files, arg);
    } else {
        fprintf(stderr, "ckpt_tool: unknown mode %s\n", mode);
        rc = 2;
    }
    pep_param_table_fini(&t);
    MPI_Finalize();
    return rc;
}
