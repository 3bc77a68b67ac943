/* The stages' input checkpoints, read once per job (stage.h): rank 0 loads each file
 * (pep_ckpt_load: one read of its bytes, the digest checked on the way), reads what the stage
 * asks from that copy and broadcasts it (pep_mpi_bcast, bit for bit); the other ranks never
 * open the file. Every read agrees on rank 0's status before its broadcast (pep_mpi_agree), so a
 * bad file stops every rank with rank 0's message. Also the serial pep_stage_load for the
 * commands that run on one rank. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "stage.h"
#include "watchdog.h"

/* rank 0's status on every rank: PEP_OK, or the failure with rank 0's message */
#define AGREE(in, rc) PEP_CALL(pep_mpi_agree((rc), (in)->comm))

/* The rows of `groups` of `block` (row r at rows[r].offset - base) from rank 0 to every rank,
 * one broadcast per run of adjacent rows (the block may pad between groups). */
static int bcast_rows(const struct pep_stage_input *in, const struct pep_param_table *t, float *block, size_t base,
                      unsigned groups)
{
    size_t run_b = 0, run_e = 0; /* the current run [run_b, run_e) of block offsets */
    for (int i = 0; i <= t->count; i++) {
        const struct pep_param *p = i < t->count ? &t->rows[i] : NULL;
        if (p && !(groups & PEP_GROUP_BIT(p->group))) continue;
        if (p && run_e > run_b && p->offset == run_e) {
            run_e += p->numel;
            continue;
        }
        if (run_e > run_b)
            PEP_CALL(pep_mpi_bcast(block + (run_b - base), (run_e - run_b) * sizeof(float), 0, in->comm));
        if (p) run_b = p->offset, run_e = p->offset + p->numel;
    }
    return PEP_OK;
}

/* The path and the step of rank 0's file to every rank. */
static int share_header(struct pep_stage_input *in)
{
    int64_t step = in->r ? pep_ckpt_info(in->r)->step : 0;
    PEP_CALL(pep_mpi_bcast(in->path, sizeof in->path, 0, in->comm));
    PEP_CALL(pep_mpi_bcast(&step, sizeof step, 0, in->comm));
    in->step = step;
    return PEP_OK;
}

static int input_init(MPI_Comm comm, struct pep_stage_input *in)
{
    memset(in, 0, sizeof *in);
    in->comm = comm;
    PEP_CALL_MPI(MPI_Comm_rank(comm, &in->rank));
    return PEP_OK;
}

int pep_stage_input_open(MPI_Comm comm, const char *path, struct pep_stage_input *in)
{
    PEP_CALL(input_init(comm, in));
    int rc = PEP_OK;
    if (in->rank == 0) {
        snprintf(in->path, sizeof in->path, "%s", path);
        rc = pep_ckpt_load(path, &in->r);
    }
    AGREE(in, rc);
    return share_header(in);
}

int pep_stage_input_resume(MPI_Comm comm, const struct pep_run *run, const char *stage, struct pep_stage_input *in,
                           int *found)
{
    *found = 0;
    PEP_CALL(input_init(comm, in));
    if (!strcmp(run->resume, "none") || !run->resume[0]) return PEP_OK;
    int rc = PEP_OK, have = 0;
    if (in->rank == 0) pep_heartbeat(-1, "reading the checkpoint to resume from");
    else pep_heartbeat_wait(-1, "waiting for rank 0's read of the checkpoint to resume from");
    if (in->rank == 0 && strcmp(run->resume, "auto") != 0) {
        snprintf(in->path, sizeof in->path, "%s", run->resume);
        rc = pep_ckpt_load(run->resume, &in->r);
        have = rc == PEP_OK;
    } else if (in->rank == 0) {
        char dir[PEP_RUN_DIR_MAX];
        rc = pep_run_path(run, run->cfg.checkpoint.dir, dir, sizeof dir);
        if (rc == PEP_OK) rc = pep_ckpt_load_latest(dir, stage, 1, in->path, sizeof in->path, &in->r, &have);
        if (rc == PEP_OK && !have) pep_info("%s: --resume auto found no checkpoint in %s; starting fresh", stage, dir);
    }
    AGREE(in, rc);
    PEP_CALL(pep_mpi_bcast(&have, sizeof have, 0, comm));
    *found = have;
    return have ? share_header(in) : PEP_OK;
}

void pep_stage_input_close(struct pep_stage_input *in) { pep_ckpt_close(&in->r); }

/* The error for a file whose model shape differs from the config's. */
static int check_shape(const struct pep_ckpt_info *in, const struct pep_model *m, const char *path)
{
    if (!in->has_spec) return PEP_OK;
    const struct pep_model_spec *a = &in->spec, *b = &m->spec;
    PEP_CHECK(a->L == b->L && a->C == b->C && a->NH == b->NH && a->FF == b->FF && a->V == b->V, PEP_ERR_USAGE,
              "%s holds a model with layers=%d hidden=%d heads=%d ff=%d vocab=%d, but the config asks for "
              "layers=%d hidden=%d heads=%d ff=%d vocab=%d (set the [model] keys to match the checkpoint)",
              path, a->L, a->C, a->NH, a->FF, a->V, b->L, b->C, b->NH, b->FF, b->V);
    return PEP_OK;
}

int pep_stage_input_check_model(struct pep_stage_input *in, const struct pep_model *m)
{
    AGREE(in, in->rank == 0 ? check_shape(pep_ckpt_info(in->r), m, in->path) : PEP_OK);
    return PEP_OK;
}

int pep_stage_input_check_spec(struct pep_stage_input *in, const struct pep_model_spec *spec)
{
    AGREE(in, in->rank == 0 ? pep_ckpt_check_spec(in->r, spec) : PEP_OK);
    return PEP_OK;
}

int pep_stage_input_params(struct pep_stage_input *in, const struct pep_param_table *t, float *params,
                           unsigned groups)
{
    AGREE(in, in->rank == 0 ? pep_ckpt_read_params(in->r, t, params, groups) : PEP_OK);
    return bcast_rows(in, t, params, 0, groups);
}

int pep_stage_input_params_based(struct pep_stage_input *in, const char *base, const struct pep_param_table *t,
                                 float *params, unsigned groups)
{
    AGREE(in, in->rank == 0 ? pep_ckpt_read_params_based(in->r, base, t, params, groups) : PEP_OK);
    return bcast_rows(in, t, params, 0, groups);
}

int pep_stage_input_moments(struct pep_stage_input *in, const struct pep_param_table *t, float *m, float *v,
                            unsigned groups, int64_t *step)
{
    AGREE(in, in->rank == 0 ? pep_ckpt_read_moments(in->r, t, m, v, groups, step) : PEP_OK);
    if (m) PEP_CALL(bcast_rows(in, t, m, 0, groups));
    if (v) PEP_CALL(bcast_rows(in, t, v, 0, groups));
    return pep_mpi_bcast(step, sizeof *step, 0, in->comm);
}

int pep_stage_input_task(struct pep_stage_input *in, const char *lang, const struct pep_param_table *t,
                         unsigned groups, float *state, struct pep_ckpt_task_info *info, int *found)
{
    int rc = PEP_OK, have = 1;
    struct pep_ckpt_task_info ti;
    memset(&ti, 0, sizeof ti);
    if (in->rank == 0 && found) { /* optional: is the language in the file? */
        int n = 0;
        have = 0;
        rc = pep_ckpt_task_count(in->r, &n);
        for (int j = 0; j < n && rc == PEP_OK && !have; j++) {
            rc = pep_ckpt_task_info(in->r, j, &ti);
            have = rc == PEP_OK && !strcmp(ti.lang, lang);
        }
    }
    if (in->rank == 0 && rc == PEP_OK && have) rc = pep_ckpt_read_task(in->r, lang, t, groups, state, &ti);
    AGREE(in, rc);
    PEP_CALL(pep_mpi_bcast(&have, sizeof have, 0, in->comm));
    if (found) *found = have;
    if (!have) return PEP_OK;
    size_t begin, end;
    PEP_CALL(pep_param_table_range(t, groups, &begin, &end));
    PEP_CALL(bcast_rows(in, t, state, begin, groups));
    PEP_CALL(pep_mpi_bcast(&ti, sizeof ti, 0, in->comm));
    if (info) *info = ti;
    return PEP_OK;
}

int pep_stage_input_best(struct pep_stage_input *in, const struct pep_param_table *t, struct pep_stage_best *best,
                         int *found)
{
    double f1 = -1.0;
    int64_t step = 0;
    int have = 0;
    AGREE(in, in->rank == 0 ? pep_ckpt_read_best(in->r, t, best->groups, best->w, &f1, &step, &have) : PEP_OK);
    PEP_CALL(pep_mpi_bcast(&have, sizeof have, 0, in->comm));
    *found = have;
    if (!have) return PEP_OK; /* best is left untouched */
    size_t begin, end;
    PEP_CALL(pep_param_table_range(t, best->groups, &begin, &end));
    PEP_CALL(bcast_rows(in, t, best->w, begin, best->groups));
    PEP_CALL(pep_mpi_bcast(&f1, sizeof f1, 0, in->comm));
    PEP_CALL(pep_mpi_bcast(&step, sizeof step, 0, in->comm));
    best->f1 = f1, best->step = (long)step;
    return PEP_OK;
}

/* Rank 0: the series from the file's /log. series[0] must be there; a later series missing from
 * an older checkpoint gets NaN for each of series[0]'s steps. */
static int read_series(struct pep_ckpt_reader *r, const char *path, struct pep_series *series, int nseries)
{
    int nlog = 0;
    PEP_CALL(pep_ckpt_log_count(r, &nlog));
    for (int i = 0; i < nseries; i++) {
        double *v = NULL;
        size_t n = 0;
        int has = 0, rc = PEP_OK;
        for (int j = 0; j < nlog && !has; j++) {
            char name[64];
            PEP_CALL(pep_ckpt_log_name(r, j, name, sizeof name));
            has = !strcmp(name, series[i].name);
        }
        series[i].n = 0;
        if (!has) {
            /* a series this version logs that an older checkpoint lacks: NaN for its steps */
            PEP_CHECK(i > 0, PEP_ERR_FORMAT, "%s: no /log/%s series to resume from", path, series[i].name);
            for (size_t j = 0; j < series[0].n; j++) PEP_CALL(pep_series_push(&series[i], NAN));
            continue;
        }
        PEP_CALL(pep_ckpt_read_log(r, series[i].name, &v, &n));
        for (size_t j = 0; j < n && rc == PEP_OK; j++) rc = pep_series_push(&series[i], v[j]);
        pep_free(v);
        PEP_CALL(rc);
    }
    return PEP_OK;
}

int pep_stage_input_series(struct pep_stage_input *in, struct pep_series *series, int nseries)
{
    uint64_t n[PEP_STAGE_SERIES_MAX];
    PEP_CHECK(nseries >= 0 && nseries <= PEP_STAGE_SERIES_MAX, PEP_ERR_INTERNAL, "%d log series, at most %d", nseries,
              PEP_STAGE_SERIES_MAX);
    AGREE(in, in->rank == 0 ? read_series(in->r, in->path, series, nseries) : PEP_OK);
    for (int i = 0; i < nseries; i++) n[i] = series[i].n;
    PEP_CALL(pep_mpi_bcast(n, (size_t)nseries * sizeof *n, 0, in->comm));
    /* the other ranks make room (a failure there is agreed on), then the values come as rank 0 holds them */
    int rc = PEP_OK;
    for (int i = 0; i < nseries && rc == PEP_OK && in->rank != 0; i++) {
        series[i].n = 0;
        for (uint64_t j = 0; j < n[i] && rc == PEP_OK; j++) rc = pep_series_push(&series[i], 0.0);
    }
    AGREE(in, rc);
    for (int i = 0; i < nseries; i++) PEP_CALL(pep_mpi_bcast(series[i].v, series[i].n * sizeof(double), 0, in->comm));
    return PEP_OK;
}

int pep_stage_load_init(MPI_Comm comm, const char *path, struct pep_model *m, unsigned groups)
{
    struct pep_stage_input in;
    int rc = pep_stage_input_open(comm, path, &in);
    if (rc == PEP_OK) rc = pep_stage_input_check_model(&in, m);
    if (rc == PEP_OK) rc = pep_stage_input_params(&in, &m->table, m->params, groups);
    pep_stage_input_close(&in);
    return rc;
}

int pep_stage_resume_state(struct pep_stage_input *in, struct pep_model *m, unsigned groups, struct pep_optim *opt,
                           struct pep_series *series, int nseries, long *start)
{
    int64_t t = 0;
    PEP_CALL(pep_stage_input_params(in, &m->table, m->params, groups));
    /* the moments cover the optimizer's slice [lo, hi) (here its whole range); the reader indexes them like params */
    PEP_CALL(pep_stage_input_moments(in, &m->table, opt->m - opt->lo, opt->v - opt->lo, groups, &t));
    PEP_CALL(pep_stage_input_series(in, series, nseries));
    *start = (long)in->step, opt->t = (long)t;
    return PEP_OK;
}

int pep_stage_load(const char *path, struct pep_model *m, unsigned groups, struct pep_ckpt_info *info_out)
{
    struct pep_ckpt_reader *r = NULL;
    PEP_CALL(pep_ckpt_load(path, &r));
    int rc = check_shape(pep_ckpt_info(r), m, path);
    if (rc == PEP_OK) rc = pep_ckpt_read_params(r, &m->table, m->params, groups);
    if (rc == PEP_OK && info_out) {
        *info_out = *pep_ckpt_info(r);
        info_out->config = NULL;
    }
    pep_ckpt_close(&r);
    return rc;
}
