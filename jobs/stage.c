/* Stage helpers (stage.h). */
#include "stage.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/blas_info.h"
#include "core/error.h"
#include "placement.h"

int pep_series_push(struct pep_series *s, double x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *v = realloc(s->v, cap * sizeof *v);
        PEP_CHECK(v, PEP_ERR_NOMEM, "out of memory growing the %s log", s->name);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return PEP_OK;
}

int pep_series_push_row(struct pep_series *s, int n, const double *x)
{
    for (int i = 0; i < n; i++) PEP_CALL(pep_series_push(&s[i], x[i]));
    return PEP_OK;
}

void pep_series_free(struct pep_series *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

/* log.csv's leading columns and the series each takes; then the stage's other series. */
static const char *const csv_common[][2] = {{"step", "step"},          {"loss", "loss"},
                                            {"loss", "meta_loss"},     {"lr", "lr"},
                                            {"tokens_per_s", "tokens_per_s"}, {"grad_norm", "grad_norm"},
                                            {"elapsed_s", "wall_time"}, {"tokens", "tokens"}};

int pep_stage_csv_open(struct pep_stage_csv *c, const struct pep_run *run, const struct pep_series *series,
                       int nseries, long start)
{
    memset(c, 0, sizeof *c);
    if (run->rank != 0) return PEP_OK;
    PEP_CHECK(nseries >= 1 && nseries <= PEP_LOGCSV_COLS_MAX && !strcmp(series[0].name, "step"), PEP_ERR_INTERNAL,
              "log.csv needs 1 to %d series, the first the step", PEP_LOGCSV_COLS_MAX);
    const char *names[PEP_LOGCSV_COLS_MAX];
    int used[PEP_LOGCSV_COLS_MAX] = {0};
    size_t ncommon = sizeof csv_common / sizeof csv_common[0];
    for (size_t k = 0; k < ncommon; k++)
        for (int i = 0; i < nseries; i++)
            if (!used[i] && !strcmp(series[i].name, csv_common[k][1])) {
                names[c->ncols] = csv_common[k][0];
                c->col[c->ncols++] = i;
                used[i] = 1;
            }
    for (int i = 0; i < nseries; i++)
        if (!used[i]) names[c->ncols] = series[i].name, c->col[c->ncols++] = i;
    /* the checkpoint's rows, should the file have to be written anew */
    size_t nrows = series[0].n;
    double *rows = NULL;
    int rc = PEP_OK, rebuilt = 0;
    if (start > 0 && nrows > 0) {
        PEP_ALLOC(rows, nrows * (size_t)c->ncols);
        for (size_t r = 0; r < nrows; r++)
            for (int k = 0; k < c->ncols; k++)
                rows[r * (size_t)c->ncols + k] = r < series[c->col[k]].n ? series[c->col[k]].v[r] : NAN;
    }
    char path[PEP_RUN_PATH_MAX];
    rc = pep_run_path(run, "log.csv", path, sizeof path);
    if (rc == PEP_OK) rc = pep_logcsv_open(&c->lc, path, names, c->ncols, start, rows, nrows, &rebuilt);
    if (rc == PEP_OK && rebuilt)
        pep_info("%s: %s did not hold this run's rows up to step %ld: written anew from the checkpoint's /log",
                 run->stage, path, start);
    pep_free(rows);
    return rc;
}

void pep_stage_csv_row(struct pep_stage_csv *c, const struct pep_series *series)
{
    if (!c->lc.f) return;
    double row[PEP_LOGCSV_COLS_MAX];
    for (int k = 0; k < c->ncols; k++) {
        const struct pep_series *s = &series[c->col[k]];
        row[k] = s->n ? s->v[s->n - 1] : NAN;
    }
    if (pep_logcsv_row(&c->lc, row) != PEP_OK) {
        pep_warn("%s; no more rows go to it (the checkpoints' /log keeps them all)", pep_error_message());
        pep_error_clear();
        pep_logcsv_close(&c->lc);
    }
}

void pep_stage_csv_close(struct pep_stage_csv *c) { pep_logcsv_close(&c->lc); }

int pep_stage_begin(struct pep_stage *st, const char *stage, int argc, char **argv)
{
    memset(st, 0, sizeof *st);
    PEP_CALL(pep_mpi_init(NULL, NULL, &st->mpi));
    st->mpi_up = 1;
    int rc = pep_run_parse(&st->run, stage, argc, argv);
    PEP_CALL(pep_mpi_agree(rc, st->mpi.comm));
    st->run.rank = st->mpi.rank;
    st->run.size = st->mpi.size;
    pep_run_install_signals();
    struct pep_placement pl;
    memset(&pl, 0, sizeof pl);
    PEP_CALL(pep_placement_setup(st->mpi.comm, st->run.cfg.run.threads, &pl));
    st->threads = pl.threads;
    pep_placement_fini(&pl);
    if (st->mpi.rank == 0) pep_blas_check();
    rc = pep_run_start(&st->run);
    PEP_CALL(pep_mpi_agree(rc, st->mpi.comm));
    /* the watchdog starts once the output folder exists (rank 0 made it before the agreement) */
    char dir[PEP_RUN_PATH_MAX];
    rc = pep_run_path(&st->run, ".heartbeat", dir, sizeof dir);
    const char *unit = !strcmp(stage, "prime") ? "meta-step" : !strcmp(stage, "fidelity") ? "task" : "step";
    struct pep_watchdog_opts wo = {.setting = st->run.cfg.run.watchdog_s, .dir = dir, .unit = unit,
                                   .rank = st->mpi.rank, .size = st->mpi.size};
    if (rc == PEP_OK) rc = pep_watchdog_create(&wo, &st->watchdog);
    PEP_CALL(pep_mpi_agree(rc, st->mpi.comm));
    return PEP_OK;
}

/* The bytes this rank read from checkpoint files (pep_ckpt_bytes_read): a debug line, and with
 * PEP_IO_STATS=FILE in the environment one line appended to FILE per rank,
 * "<stage> rank <r> of <P> checkpoint_bytes_read <bytes>" (tests/pipeline/resume_reads.sh). */
static void report_reads(const struct pep_stage *st)
{
    uint64_t bytes = pep_ckpt_bytes_read();
    const char *stage = st->run.stage ? st->run.stage : "", *path = getenv("PEP_IO_STATS");
    int rank = st->mpi_up ? st->mpi.rank : 0, size = st->mpi_up ? st->mpi.size : 1;
    pep_debug("%s: %" PRIu64 " bytes read from checkpoint files on rank %d", stage, bytes, rank);
    if (!path || !*path) return;
    char line[256];
    int n = snprintf(line, sizeof line, "%s rank %d of %d checkpoint_bytes_read %" PRIu64 "\n", stage, rank, size,
                     bytes);
    /* one short O_APPEND write per rank: the ranks' lines do not interleave */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || n <= 0 || write(fd, line, (size_t)n) != (ssize_t)n)
        pep_warn("PEP_IO_STATS: cannot append to %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
}

int pep_stage_end(struct pep_stage *st, int rc)
{
    pep_heartbeat_wait(-1, "finishing (agreeing on the outcome)");
    report_reads(st);
    /* one agreement on the outcome, unless the failure was agreed already: then every rank
     * is here with it, and a second agreement would be matched by no one */
    if (st->mpi_up && !(rc != PEP_OK && pep_mpi_failure_agreed())) {
        int agreed = pep_mpi_agree(rc, st->mpi.comm);
        if (agreed != PEP_OK) rc = agreed;
    }
    if (rc != PEP_OK && rc != PEP_ERR_INTERRUPTED && (!st->mpi_up || st->mpi.rank == 0 || st->mpi.size == 1)) {
        fprintf(stderr, "peprime %s: error: %s\n", st->run.stage ? st->run.stage : "", pep_error_message());
        if (pep_log_level() >= PEP_LOG_DEBUG) fprintf(stderr, "%s", pep_error_where());
    }
    if (rc == PEP_ERR_INTERRUPTED && (!st->mpi_up || st->mpi.rank == 0))
        fprintf(stderr, "peprime %s: stopped on a signal after writing a checkpoint; resume with --resume auto\n",
                st->run.stage);
    pep_watchdog_destroy(&st->watchdog); /* before MPI_Finalize: it may call MPI_Abort */
    if (st->mpi_up) pep_mpi_finalize(&st->mpi);
    st->mpi_up = 0;
    /* status already printed: tell main not to print it again */
    return rc == PEP_OK ? 0 : rc == PEP_ERR_INTERRUPTED ? PEP_EXIT_PREEMPTED : rc == PEP_ERR_USAGE ? 2 : 1;
}

int pep_stage_save(MPI_Comm comm, const char *path, const struct pep_stage_save *s)
{
    struct pep_ckpt_writer *w = NULL;
    char *ini = NULL;
    int rc = PEP_OK;
    /* a local failure (memory) is agreed on before the collective create */
    PEP_CALL_GOTO(rc, pep_mpi_agree(pep_config_to_ini(&s->run->cfg, &ini), comm));
    const struct pep_ckpt_hints hints = {
        .striping_unit = s->run->cfg.checkpoint.striping_unit, .striping_factor = s->run->cfg.checkpoint.striping_factor,
        .cb_nodes = s->run->cfg.checkpoint.cb_nodes, .cb_write = s->run->cfg.checkpoint.romio_cb_write};
    PEP_CALL_GOTO(rc, pep_ckpt_create(path, comm, &hints, &w));
    struct pep_ckpt_header h = {.stage = s->stage, .step = s->step, .config = ini, .rng_state = s->rng,
                                .rng_words = 4, .spec = &s->m->spec, .base_path = s->base_path,
                                .base_sha256 = s->base_sha256};
    PEP_CALL_GOTO(rc, pep_ckpt_write_header(w, &h));
    PEP_CALL_GOTO(rc, pep_ckpt_write_params(w, &s->m->table, s->m->params, s->groups));
    if (s->opt && s->opt->m && s->opt_gather) {
        /* sharded: one moment at a time gathered whole into the scratch block, then written as
         * today's whole tensors (a checkpoint does not depend on the number of ranks) */
        PEP_CALL_GOTO(rc, s->opt_gather(s->opt->m, s->opt_scratch, s->opt_gather_ud));
        PEP_CALL_GOTO(rc, pep_ckpt_write_moments(w, &s->m->table, s->opt_scratch, NULL, s->opt_groups, s->opt->t));
        PEP_CALL_GOTO(rc, s->opt_gather(s->opt->v, s->opt_scratch, s->opt_gather_ud));
        PEP_CALL_GOTO(rc, pep_ckpt_write_moments(w, &s->m->table, NULL, s->opt_scratch, s->opt_groups, s->opt->t));
    } else if (s->opt && s->opt->m) {
        /* the moments cover the optimizer's range [begin, end); the writer indexes them like params */
        PEP_CALL_GOTO(rc, pep_ckpt_write_moments(w, &s->m->table, s->opt->m - s->opt->begin, s->opt->v - s->opt->begin,
                                                 s->opt_groups, s->opt->t));
    }
    if (s->ntasks > 0) PEP_CALL_GOTO(rc, pep_ckpt_write_tasks(w, &s->m->table, s->task_groups, s->tasks, s->ntasks));
    if (s->best)
        PEP_CALL_GOTO(rc, pep_ckpt_write_best(w, &s->m->table, s->best->w, s->best->groups, s->best->f1,
                                              (int64_t)s->best->step));
    for (int i = 0; i < s->nseries; i++)
        PEP_CALL_GOTO(rc, pep_ckpt_write_log(w, s->series[i].name, s->series[i].v, s->series[i].n));
    PEP_CALL_GOTO(rc, pep_ckpt_commit(&w));
cleanup:
    if (w) pep_ckpt_abort(&w);
    pep_free(ini);
    return rc;
}

/* About the bytes a checkpoint of `s` takes: its float tensors, up to 1 MiB of alignment for
 * each tensor of 1 MiB or more (io/checkpoint_write.c aligns them), the log, HDF5's metadata. */
static double checkpoint_bytes(const struct pep_stage_save *s)
{
    const struct pep_param_table *t = &s->m->table;
    double floats = (double)pep_param_table_group_numel(t, s->groups);
    if (s->opt && s->opt->m) floats += 2.0 * (double)pep_param_table_group_numel(t, s->opt_groups);
    floats += (double)s->ntasks * (double)pep_param_table_group_numel(t, s->task_groups);
    if (s->best) floats += (double)pep_param_table_group_numel(t, s->best->groups);
    double bytes = 4.0 * floats + (1 << 18);
    for (int i = 0; i < t->count; i++)
        if (t->rows[i].numel * sizeof(float) >= (1u << 20)) bytes += 1 << 20;
    for (int i = 0; i < s->nseries; i++) bytes += 8.0 * (double)s->series[i].n;
    return bytes;
}

/* Rank 0: PEP_ERR_IO when the folder has less free space than the checkpoint needs, so a full
 * disk is a clean error before the write instead of a failure inside it. PEP_CKPT_SPACE_CHECK=0
 * turns the check off (the fault tests use it to fill the disk during a write). */
static int check_space(const char *dir, const struct pep_stage_save *s)
{
    const char *env = getenv("PEP_CKPT_SPACE_CHECK");
    if (env && !strcmp(env, "0")) return PEP_OK;
    struct statvfs vf;
    PEP_CHECK(statvfs(dir, &vf) == 0, PEP_ERR_IO, "cannot query the free space of %s: %s", dir, strerror(errno));
    double free_bytes = (double)vf.f_bavail * (double)vf.f_frsize, need = checkpoint_bytes(s);
    PEP_CHECK(free_bytes >= need, PEP_ERR_IO,
              "%s has %.1f MB free, the %s checkpoint of step %ld needs about %.1f MB: free space (or set "
              "checkpoint.dir / checkpoint.keep), then resume with --resume auto; the checkpoints already "
              "there are intact",
              dir, free_bytes / 1e6, s->stage, s->step, need / 1e6);
    return PEP_OK;
}

static int checkpoint_to(MPI_Comm comm, const struct pep_stage_save *s, char *path, size_t len)
{
    char dir[PEP_RUN_DIR_MAX];
    PEP_CALL(pep_run_path(s->run, s->run->cfg.checkpoint.dir, dir, sizeof dir));
    int mk = PEP_OK;
    if (s->run->rank == 0 && mkdir(dir, 0755) != 0 && errno != EEXIST)
        mk = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "cannot create the checkpoint folder %s: %s", dir,
                           strerror(errno));
    if (mk == PEP_OK && s->run->rank == 0) mk = check_space(dir, s);
    PEP_CALL(pep_mpi_agree(mk, comm));
    PEP_CALL(pep_ckpt_name(dir, s->stage, s->step, path, len));
    const char *name = strrchr(path, '/');
    pep_heartbeat(-1, "writing checkpoint %s", name ? name + 1 : path);
    PEP_CALL(pep_stage_save(comm, path, s));
    int rc = PEP_OK;
    if (s->run->rank == 0) {
        pep_info("%s: checkpoint %s", s->stage, path);
        rc = pep_ckpt_rotate(dir, s->stage, s->run->cfg.checkpoint.keep);
    }
    rc = pep_mpi_agree(rc, comm);
    pep_heartbeat(-1, "checkpoint written");
    return rc;
}

int pep_stage_checkpoint(MPI_Comm comm, const struct pep_stage_save *s)
{
    char path[PEP_RUN_PATH_MAX];
    return checkpoint_to(comm, s, path, sizeof path);
}

/* The seconds Slurm leaves between its warning signal and the kill: PEP_SIGNAL_LEAD_S (set by
 * slurm/common.sh from the script's #SBATCH --signal=...@N), 0 when unknown. */
static double signal_lead_s(void)
{
    const char *e = getenv("PEP_SIGNAL_LEAD_S");
    return e && *e ? atof(e) : 0.0;
}

/* A checkpoint's expected write time before the first one was timed: its float bytes at the
 * 0.3 GB/s a 3.5 GB base-size checkpoint sustained here with its digest (docs/benchmarks.md). */
static double estimated_save_s(const struct pep_stage_save *s)
{
    double floats = (double)pep_param_table_group_numel(&s->m->table, s->groups);
    if (s->opt) floats += 2.0 * (double)pep_param_table_group_numel(&s->m->table, s->opt_groups);
    return 4.0 * floats / 0.3e9;
}

static void check_lead(struct pep_stage_save *s, double secs, int measured)
{
    double lead = signal_lead_s();
    if (s->lead_warned || lead <= 0 || secs <= 0.5 * lead || s->run->rank != 0) return;
    s->lead_warned = 1;
    pep_warn("%s: a checkpoint %s %.0f s, more than half of the %.0f s between Slurm's warning signal and the kill "
             "(#SBATCH --signal=B:USR1@%.0f, PEP_SIGNAL_LEAD_S): a preempted or timed-out job may be killed while "
             "it writes (the previous checkpoint stays intact, but the steps since are lost); raise the lead, e.g. "
             "sbatch --signal=B:USR1@%.0f, and set PEP_SIGNAL_LEAD_S to it", s->stage,
             measured ? "took" : "is estimated to take", secs, lead, lead, 4.0 * secs + 60.0);
}

int pep_stage_step_done(MPI_Comm comm, struct pep_stage_save *s, long done, const char *unit)
{
    const struct pep_config *cfg = &s->run->cfg;
    double now = pep_now_s();
    if (s->last_save_s == 0.0) { /* the first step: the clock of the time cadence starts, the lead is checked */
        s->last_save_s = now;
        check_lead(s, estimated_save_s(s), 0);
    }
    int flag[2] = {pep_run_stop_requested(),
                   cfg->checkpoint.every_minutes > 0 && now - s->last_save_s >= 60.0 * cfg->checkpoint.every_minutes};
    /* ranks get the signal (and reach the time) at slightly different moments: all act after the same step */
    pep_heartbeat_wait(-1, "stop and checkpoint agreement");
    PEP_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, flag, 2, MPI_INT, MPI_MAX, comm));
    int stop = flag[0];
    int periodic = done < cfg->optim.steps &&
                   ((cfg->checkpoint.every > 0 && done % cfg->checkpoint.every == 0) || flag[1]);
    if (periodic || stop) {
        s->step = done;
        s->rng[1] = (uint64_t)done;
        PEP_CALL(pep_stage_checkpoint(comm, s));
        double t = pep_now_s();
        check_lead(s, t - now, 1);
        s->last_save_s = t;
    }
    if (stop) PEP_FAIL(PEP_ERR_INTERRUPTED, "stopped at %s %ld on a signal", unit, done);
    return PEP_OK;
}

int pep_stage_final(MPI_Comm comm, const char *final_path, const struct pep_stage_save *s)
{
    char path[PEP_RUN_PATH_MAX];
    PEP_CALL(checkpoint_to(comm, s, path, sizeof path));
    int rc = PEP_OK;
    if (s->run->rank == 0) {
        /* a hard link, swapped in by rename: the final name never shows a half file */
        char tmp[PEP_RUN_TMP_MAX];
        snprintf(tmp, sizeof tmp, "%s.tmp", final_path);
        unlink(tmp);
        if (link(path, tmp) != 0 || rename(tmp, final_path) != 0)
            rc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "cannot publish %s as %s: %s", path,
                               final_path, strerror(errno));
    }
    return pep_mpi_agree(rc, comm);
}
