/* `peprime finetune`: parameter-efficient fine-tuning of the PE modules + tagging head on the
 * source language(s) with the encoder frozen (its weights are never written), model
 * selection by entity F1 on the source dev split. Ranks split each batch (data parallel,
 * one gradient allreduce per step). The PE start is pe.init: fresh, meta (the primed /pe
 * and /head) or task:<lang> (a language's adapted state from /tasks). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "jobs.h"
#include "nerdata.h"
#include "sha256.h"
#include "stage.h"
#include "train_loop.h"

#define MAX_SRC 16
#define NSERIES 8

/* PE + head initialisation from the --init checkpoint `in` (open on rank 0), per pe.init.
 * Collective. */
static int init_pe(struct pep_stage_input *in, const struct pep_run *run, struct pep_model *m, unsigned trainable)
{
    const char *how = run->cfg.pe.init;
    if (!strcmp(how, "fresh")) return PEP_OK;
    PEP_CHECK(run->init[0], PEP_ERR_USAGE, "pe.init = %s needs --init PRIMED.h5", how);
    if (!strncmp(how, "task:", 5)) {
        size_t b, e;
        PEP_CALL(pep_param_table_range(&m->table, trainable, &b, &e));
        return pep_stage_input_task(in, how + 5, &m->table, trainable, m->params + b, NULL, NULL);
    }
    PEP_CHECK(!strcmp(how, "meta"), PEP_ERR_USAGE, "pe.init = '%s' is not one of fresh, meta, task:<lang>", how);
    int rc = pep_stage_input_params(in, &m->table, m->params, trainable);
    if (rc) {
        char msg[PEP_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", pep_error_message());
        pep_error_clear();
        rc = pep_error_set(rc, __FILE__, __LINE__, __func__,
                           "pe.init = meta: %s (is %s a primed checkpoint with the same pe.* settings?)", msg,
                           run->init);
    }
    return rc;
}

/* The fine-tuning part of a training step: the dropout seed and the model selection on the
 * source dev sets (the PE + head of the best entity F1 so far are kept in `best`, which every
 * checkpoint carries as /best). */
struct dev_eval {
    const struct pep_run *run;
    struct pep_stage *stg;
    struct pep_model *m;
    struct pep_conlleval *ev;
    const struct pep_nerset *dev;
    int ndev;
    struct pep_stage_best *best;
    size_t tb, te;
};

static uint64_t tagger_dropout_seed(void *ud, long step)
{
    const struct dev_eval *de = ud;
    return pep_splitmix64((uint64_t)de->run->cfg.run.seed * 31 + (uint64_t)step);
}

static int dev_eval(void *ud, long done, double *score)
{
    struct dev_eval *de = ud;
    pep_heartbeat(-1, "dev evaluation");
    pep_conlleval_reset(de->ev);
    for (int i = 0; i < de->ndev; i++)
        PEP_CALL(pep_nerset_score(de->m, &de->dev[i], de->ev, de->stg->mpi.comm, de->stg->mpi.rank, de->stg->mpi.size));
    struct pep_eval_summary sm;
    pep_conlleval_summary(de->ev, "dev", &sm);
    double p, rcl, f1;
    pep_eval_prf(&sm.all, &p, &rcl, &f1);
    *score = f1;
    if (f1 > de->best->f1) {
        de->best->f1 = f1;
        de->best->step = done;
        memcpy(de->best->w, de->m->params + de->tb, (de->te - de->tb) * sizeof(float));
    }
    if (de->stg->mpi.rank == 0)
        pep_info("finetune step %ld: %s dev entity F1 %.2f (best %.2f)", done, de->run->cfg.data.source, 100 * f1,
                 100 * de->best->f1);
    return PEP_OK;
}

/* A resume from a checkpoint without /best (written before finetune checkpoints kept the
 * best-so-far weights): those weights are lost, so the selection restarts from the resumed
 * ones, with the dev F1 they scored if the checkpoint's step was an evaluation step, else -1
 * (the next evaluation replaces them): `best` and its F1 always describe the same weights. */
static void best_without_record(struct pep_stage_best *best, const struct pep_model *m, size_t tb, size_t te,
                                const struct pep_series *step, const struct pep_series *dev_f1, long start,
                                const char *path, int rank)
{
    double lost = -1.0, lost_step = 0;
    for (size_t i = 0; i < dev_f1->n && i < step->n; i++)
        if (dev_f1->v[i] > lost) lost = dev_f1->v[i], lost_step = step->v[i];
    memcpy(best->w, m->params + tb, (te - tb) * sizeof(float));
    best->f1 = -1.0, best->step = start;
    size_t n = step->n < dev_f1->n ? step->n : dev_f1->n;
    if (n > 0 && step->v[n - 1] == (double)start && dev_f1->v[n - 1] >= 0) best->f1 = dev_f1->v[n - 1];
    if (rank != 0) return;
    char now[64] = "not evaluated at that step";
    if (best->f1 >= 0) snprintf(now, sizeof now, "dev F1 %.2f", 100 * best->f1);
    if (lost >= 0 && lost_step != (double)start)
        pep_warn("finetune: %s has no /best (written before checkpoints kept the best-so-far weights): the weights "
                 "of the best dev F1 so far (%.2f after step %.0f) are not in it and cannot be restored; the model "
                 "selection restarts from the resumed weights of step %ld (%s), so adapted.h5 will hold the best "
                 "of those and of the evaluations after step %ld",
                 path, 100 * lost, lost_step, start, now, start);
    else if (lost >= 0)
        pep_warn("finetune: %s has no /best (written before checkpoints kept the best-so-far weights); the best dev "
                 "F1 so far (%.2f) is that of the resumed weights of step %ld, so the selection continues from them",
                 path, 100 * lost, start);
    else
        pep_warn("finetune: %s has no /best (written before checkpoints kept the best-so-far weights); no dev "
                 "evaluation was logged before step %ld, so the selection starts from the resumed weights",
                 path, start);
}

static int run_finetune(struct pep_stage *stg)
{
    struct pep_run *run = &stg->run;
    const struct pep_config *cfg = &run->cfg;
    MPI_Comm comm = stg->mpi.comm;
    int rank = stg->mpi.rank, size = stg->mpi.size, rc = PEP_OK, lrc = PEP_OK;
    struct pep_spm *spm = NULL;
    struct pep_model *m = NULL;
    struct pep_optim opt = {0};
    struct pep_conlleval *ev = NULL;
    struct pep_nerset train[MAX_SRC], dev[MAX_SRC];
    char src[MAX_SRC][PEP_LANG_MAX], tags[PEP_TAGS_MAX][PEP_TAG_NAME_MAX];
    const char *tagp[PEP_TAGS_MAX];
    int nsrc = pep_list_count(cfg->data.source), ntags = 0;
    struct pep_stage_best best = {.w = NULL, .f1 = -1.0, .step = 0};
    struct pep_stage_input rin = {.comm = MPI_COMM_NULL}, iin = {.comm = MPI_COMM_NULL};
    int found = 0;
    struct pep_series series[NSERIES] = {{.name = "step"},         {.name = "loss"}, {.name = "dev_f1"},
                                         {.name = "wall_time"},    {.name = "tokens"},
                                         {.name = "tokens_per_s"}, {.name = "lr"},   {.name = "grad_norm"}};
    memset(train, 0, sizeof train);
    memset(dev, 0, sizeof dev);
    PEP_CHECK(nsrc >= 1 && nsrc <= MAX_SRC, PEP_ERR_USAGE, "data.source must list 1 to %d languages", MAX_SRC);
    PEP_CALL(pep_run_tags(run, tags, PEP_TAGS_MAX, &ntags));
    for (int i = 0; i < ntags; i++) tagp[i] = tags[i];
    PEP_CALL_GOTO(rc, pep_conlleval_create(tagp, ntags, cfg->data.strict_iob2, &ev));

    lrc = pep_run_tokenizer(run, &spm);
    for (int i = 0; i < nsrc && lrc == PEP_OK; i++) {
        lrc = pep_list_item(cfg->data.source, i, src[i], sizeof src[i]);
        if (lrc == PEP_OK) lrc = pep_nerset_load(run, spm, src[i], "train", &train[i]);
        if (lrc == PEP_OK) lrc = pep_nerset_load(run, spm, src[i], "dev", &dev[i]);
    }
    PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
    int total = 0;
    for (int i = 0; i < nsrc; i++) total += train[i].n;
    int GB = cfg->optim.batch_size; /* the global batch */
    PEP_CHECK_GOTO(rc, total >= GB, PEP_ERR_USAGE, "the source data has %d sentences, fewer than optim.batch_size = %d",
                   total, GB);

    struct pep_model_spec spec;
    /* activations for one micro-batch (all of the rank's share without optim.accumulate), or 32 dev sentences */
    int MB = pep_train_loop_micro_batch(cfg, size);
    PEP_CALL_GOTO(rc, pep_model_spec_from_config(cfg, pep_spm_fairseq_vocab(spm), ntags, PEP_HEAD_KIND_TAGGER,
                                                 MB > 32 ? MB : 32, &spec));
    PEP_CALL_GOTO(rc, pep_model_create(&spec, &m));
    PEP_CALL_GOTO(rc, pep_model_set_threads(m, stg->threads)); /* the sgemm calls on the rank's threads */
    pep_model_init_weights(m, (uint64_t)cfg->run.seed, PEP_GROUPS_ALL);
    unsigned trainable = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    /* each input file is read once, by rank 0, and broadcast; a resume supplies the PE + head
     * (not the frozen encoder: finetune checkpoints do not hold it), so pe.init is not read then */
    PEP_CALL_GOTO(rc, pep_stage_input_resume(comm, run, "finetune", &rin, &found));
    if (run->init[0]) {
        PEP_CALL_GOTO(rc, pep_stage_input_open(comm, run->init, &iin));
        PEP_CALL_GOTO(rc, pep_stage_input_check_model(&iin, m));
        PEP_CALL_GOTO(rc, pep_stage_input_params(&iin, &m->table, m->params, PEP_GROUP_BIT(PEP_GROUP_PLM)));
        if (!found) PEP_CALL_GOTO(rc, init_pe(&iin, run, m, trainable));
        pep_stage_input_close(&iin);
    } else if (rank == 0) {
        pep_warn("finetune: no --init checkpoint: the encoder is randomly initialised");
    }
    size_t tb, te;
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, trainable, &tb, &te));
    PEP_CALL_GOTO(rc, pep_optim_from_config(cfg, &opt));
    opt.threads = stg->threads; /* the element-wise step on the rank's threads (BLAS is idle then) */
    PEP_CALL_GOTO(rc, pep_optim_init(&opt, tb, te));
    best.groups = trainable;
    PEP_ALLOC_GOTO(rc, best.w, te - tb);
    memcpy(best.w, m->params + tb, (te - tb) * sizeof(float));
    if (rank == 0) {
        size_t plm = pep_param_table_group_numel(&m->table, PEP_GROUP_BIT(PEP_GROUP_PLM));
        pep_info("finetune: %s on %s (%d sentences), %zu trainable floats (%.2f%% of the encoder), PE init %s, "
                 "batch %d over %d rank%s", cfg->pe.method, cfg->data.source, total, te - tb,
                 100.0 * (double)(te - tb) / (double)plm, cfg->pe.init, GB, size, size == 1 ? "" : "s");
    }

    long start = 0, step = 0;
    int has_best = 0;
    if (found) {
        PEP_CALL_GOTO(rc, pep_stage_resume_state(&rin, m, trainable, &opt, series, NSERIES, &start));
        PEP_CALL_GOTO(rc, pep_stage_input_best(&rin, &m->table, &best, &has_best));
        pep_stage_input_close(&rin);
        if (!has_best) best_without_record(&best, m, tb, te, &series[0], &series[2], start, rin.path, rank);
        if (rank == 0 && best.f1 >= 0)
            pep_info("finetune: resumed from %s at step %ld; best %s dev F1 %.2f after step %ld", rin.path, start,
                     cfg->data.source, 100 * best.f1, best.step);
        else if (rank == 0)
            pep_info("finetune: resumed from %s at step %ld; the kept weights have no dev F1 yet", rin.path, start);
    }

    double t0 = pep_now_s();
    struct pep_stage_save sv = {.stage = "finetune", .run = run, .m = m, .groups = trainable, .opt = &opt,
                                .opt_groups = trainable, .best = &best, .series = series, .nseries = NSERIES,
                                .rng = {(uint64_t)cfg->run.seed, 0, 0, 0}};
    struct dev_eval de = {.run = run, .stg = stg, .m = m, .ev = ev, .dev = dev, .ndev = nsrc, .best = &best,
                          .tb = tb, .te = te};
    struct pep_train_loop tl = {.stage = "finetune", .stream = 0xf17e, .sets = train, .nsets = nsrc, .m = m,
                                .groups = trainable, .opt = &opt, .save = &sv,
                                .series = series, .nseries = NSERIES, .eval_series = "dev_f1",
                                .dropout_seed = tagger_dropout_seed, .eval = dev_eval, .ud = &de};
    PEP_CALL_GOTO(rc, pep_train_loop_run(stg, &tl, start, &step));
    /* the selected PE + head (best dev F1) with the frozen encoder: everything evaluate needs
     * (the final checkpoint keeps /best too: equal to its /pe + /head, so a resume from it
     * selects the same weights) */
    memcpy(m->params + tb, best.w, (te - tb) * sizeof(float));
    sv.step = step, sv.rng[1] = (uint64_t)step, sv.groups = PEP_GROUPS_ALL;
    /* checkpoint.encoder = reference: PE + head only, naming the checkpoint that holds the encoder */
    static char base_abs[PATH_MAX], base_hex[72];
    if (!strcmp(cfg->checkpoint.encoder, "reference") && run->init[0]) {
        lrc = PEP_OK;
        if (rank == 0) {
            if (!realpath(run->init, base_abs))
                lrc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "%s: %s", run->init, strerror(errno));
            else
                lrc = pep_sha256_file(base_abs, base_hex);
        }
        PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
        PEP_CALL_MPI_GOTO(rc, MPI_Bcast(base_abs, (int)sizeof base_abs, MPI_CHAR, 0, comm));
        PEP_CALL_MPI_GOTO(rc, MPI_Bcast(base_hex, (int)sizeof base_hex, MPI_CHAR, 0, comm));
        sv.groups = trainable, sv.base_path = base_abs, sv.base_sha256 = base_hex;
    }
    char path[PEP_RUN_PATH_MAX];
    PEP_CALL_GOTO(rc, pep_run_path(run, "adapted.h5", path, sizeof path));
    PEP_CALL_GOTO(rc, pep_stage_final(comm, path, &sv));
    if (rank == 0)
        pep_info("finetune: %ld steps in %.1f s; best %s dev F1 %.2f (after step %ld); adapted model written to %s",
                 step - start, pep_now_s() - t0, cfg->data.source, 100 * best.f1, best.step, path);
cleanup:
    pep_stage_input_close(&rin);
    pep_stage_input_close(&iin);
    for (int i = 0; i < MAX_SRC; i++) {
        pep_nerset_free(&train[i]);
        pep_nerset_free(&dev[i]);
    }
    for (int i = 0; i < NSERIES; i++) pep_series_free(&series[i]);
    pep_free(best.w);
    pep_conlleval_destroy(&ev);
    pep_optim_fini(&opt);
    pep_model_destroy(&m);
    pep_spm_destroy(&spm);
    return rc;
}

int pep_cmd_finetune(int argc, char **argv)
{
    struct pep_stage st;
    int rc = pep_stage_begin(&st, "finetune", argc - 1, argv + 1);
    if (rc == PEP_OK) rc = run_finetune(&st);
    return pep_stage_end(&st, rc);
}
