/* `peprime finetune`: parameter-efficient fine-tuning of the PE modules + tagging head on the
 * source language(s) with the encoder frozen (its weights are never written), model
 * selection by entity F1 on the source dev split. Ranks split each batch (data parallel,
 * one gradient allreduce per step). The PE start is pe.init: fresh, meta (the primed /pe
 * and /head) or task:<lang> (a language's adapted state from /tasks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "jobs.h"
#include "nerdata.h"
#include "stage.h"

#define MAX_SRC 16

/* PE + head initialisation from the --init checkpoint, per pe.init. */
static int init_pe(const struct pep_run *run, struct pep_model *m, unsigned trainable)
{
    const char *how = run->cfg.pe.init;
    if (!strcmp(how, "fresh")) return PEP_OK;
    PEP_CHECK(run->init[0], PEP_ERR_USAGE, "pe.init = %s needs --init PRIMED.h5", how);
    struct pep_ckpt_reader *r = NULL;
    PEP_CALL(pep_ckpt_open(run->init, &r));
    int rc = PEP_OK;
    if (!strcmp(how, "meta")) {
        rc = pep_ckpt_read_params(r, &m->table, m->params, trainable);
        if (rc) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", pep_error_message());
            pep_error_clear();
            rc = pep_error_set(rc, __FILE__, __LINE__, __func__,
                               "pe.init = meta: %s (is %s a primed checkpoint with the same pe.* settings?)", msg,
                               run->init);
        }
    } else if (!strncmp(how, "task:", 5)) {
        size_t b, e;
        rc = pep_param_table_range(&m->table, trainable, &b, &e);
        if (rc == PEP_OK) rc = pep_ckpt_read_task(r, how + 5, &m->table, trainable, m->params + b, NULL);
    } else {
        rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                           "pe.init = '%s' is not one of fresh, meta, task:<lang>", how);
    }
    pep_ckpt_close(&r);
    return rc;
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
    char src[MAX_SRC][32], tags[64][32];
    const char *tagp[64];
    int nsrc = pep_list_count(cfg->data.source), ntags = 0;
    int *idx = NULL;
    struct pep_batch b = {0};
    float *best = NULL;
    struct pep_series series[4] = {{.name = "step"}, {.name = "loss"}, {.name = "dev_f1"}, {.name = "wall_time"}};
    memset(train, 0, sizeof train);
    memset(dev, 0, sizeof dev);
    PEP_CHECK(nsrc >= 1 && nsrc <= MAX_SRC, PEP_ERR_USAGE, "data.source must list 1 to %d languages", MAX_SRC);
    PEP_CALL(pep_run_tags(run, tags, 64, &ntags));
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
    int GB = cfg->optim.batch_size, LB = (GB + size - 1) / size; /* global batch, per-rank share */
    PEP_CHECK_GOTO(rc, total >= GB, PEP_ERR_USAGE, "the source data has %d sentences, fewer than optim.batch_size = %d",
                   total, GB);

    struct pep_model_spec spec;
    PEP_CALL_GOTO(rc, pep_model_spec_from_config(cfg, pep_spm_fairseq_vocab(spm), ntags, PEP_HEAD_KIND_TAGGER,
                                                 LB > 32 ? LB : 32, &spec));
    PEP_CALL_GOTO(rc, pep_model_create(&spec, &m));
    pep_model_init_weights(m, (uint64_t)cfg->run.seed, PEP_GROUPS_ALL);
    unsigned trainable = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    if (run->init[0]) {
        lrc = pep_stage_load(run->init, m, PEP_GROUP_BIT(PEP_GROUP_PLM), NULL);
        if (lrc == PEP_OK) lrc = init_pe(run, m, trainable);
        PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
    } else if (rank == 0) {
        pep_warn("finetune: no --init checkpoint: the encoder is randomly initialised");
    }
    size_t tb, te;
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, trainable, &tb, &te));
    PEP_CALL_GOTO(rc, pep_optim_init(&opt, cfg, tb, te));
    PEP_ALLOC_GOTO(rc, best, te - tb);
    memcpy(best, m->params + tb, (te - tb) * sizeof(float));
    if (rank == 0) {
        size_t plm = pep_param_table_group_numel(&m->table, PEP_GROUP_BIT(PEP_GROUP_PLM));
        pep_info("finetune: %s on %s (%d sentences), %zu trainable floats (%.2f%% of the encoder), PE init %s, "
                 "batch %d over %d rank%s", cfg->pe.method, cfg->data.source, total, te - tb,
                 100.0 * (double)(te - tb) / (double)plm, cfg->pe.init, GB, size, size == 1 ? "" : "s");
    }

    long start = 0;
    double best_f1 = -1.0;
    char rpath[1200];
    int found = 0;
    PEP_CALL_GOTO(rc, pep_stage_resume_path(run, "finetune", rpath, sizeof rpath, &found));
    if (found) {
        lrc = pep_stage_resume_state(rpath, m, trainable, &opt, series, 4, &start);
        PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
        for (size_t i = 0; i < series[2].n; i++)
            if (series[2].v[i] > best_f1) best_f1 = series[2].v[i];
        memcpy(best, m->params + tb, (te - tb) * sizeof(float));
        if (rank == 0) pep_info("finetune: resumed from %s at step %ld", rpath, start);
    }

    int T = spec.max_T;
    PEP_CALL_GOTO(rc, pep_batch_alloc(&b, LB, LB * T));
    PEP_ALLOC_GOTO(rc, idx, (size_t)GB);
    struct pep_progress prog;
    pep_progress_start(&prog, "finetune", cfg->optim.steps);
    double t0 = pep_now_s(), loss_win = 0, tok_win = 0;
    int win = 0;
    long step = start;
    struct pep_stage_save sv = {.stage = "finetune", .run = run, .m = m, .groups = trainable, .opt = &opt,
                                .opt_groups = trainable, .series = series, .nseries = 4,
                                .rng = {(uint64_t)cfg->run.seed, 0, 0, 0}};
    int eval_every = cfg->optim.eval_every > 0 ? cfg->optim.eval_every : cfg->optim.steps;
    for (; step < cfg->optim.steps; step++) {
        /* the global batch is a function of (seed, step): one source language (by data size),
         * then GB of its sentences; rank r takes its slice */
        struct pep_rng r;
        pep_rng_seed(&r, (uint64_t)cfg->run.seed, (uint64_t)step, 0xf17e);
        int lang = 0;
        for (long pick = (long)pep_rng_below(&r, (uint64_t)total); pick >= train[lang].n; lang++) pick -= train[lang].n;
        for (int i = 0; i < GB; i++) idx[i] = (int)pep_rng_below(&r, (uint64_t)train[lang].n);
        int lo = rank * LB, hi = lo + LB < GB ? lo + LB : GB;
        double sums[2] = {0, 0};
        pep_model_zero_grad(m, trainable);
        lrc = PEP_OK;
        if (hi > lo) {
            float loss = 0.0f;
            lrc = pep_nerset_batch(&train[lang], idx + lo, hi - lo, &b);
            if (lrc == PEP_OK) lrc = pep_model_forward(m, &b, 1, pep_splitmix64((uint64_t)cfg->run.seed * 31 + (uint64_t)step), &loss);
            if (lrc == PEP_OK) lrc = pep_model_backward(m, trainable);
            sums[0] = (double)loss * (hi - lo);
            sums[1] = pep_batch_tokens(&b);
        }
        PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
        /* each rank's gradient is the mean over its slice: weight by the slice, sum over ranks */
        if (size > 1) {
            float share = (float)(hi > lo ? hi - lo : 0) / (float)GB;
            for (size_t i = tb; i < te; i++) m->grads[i] *= share;
            PEP_CALL_GOTO(rc, pep_mpi_reduce_grad(m->grads + tb, te - tb, &stg->mpi));
        }
        PEP_CALL_MPI_GOTO(rc, MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm));
        PEP_CALL_GOTO(rc, pep_optim_step(&opt, m->params, m->grads, NULL));
        loss_win += sums[0] / GB;
        tok_win += sums[1];
        win++;
        pep_series_push(&series[0], (double)(step + 1));
        pep_series_push(&series[1], sums[0] / GB);
        if ((step + 1) % eval_every == 0 || step + 1 == cfg->optim.steps) {
            pep_conlleval_reset(ev);
            for (int i = 0; i < nsrc; i++) PEP_CALL_GOTO(rc, pep_nerset_score(m, &dev[i], ev, comm, rank, size));
            struct pep_eval_summary sm;
            pep_conlleval_summary(ev, "dev", &sm);
            double p, rcl, f1;
            pep_eval_prf(&sm.all, &p, &rcl, &f1);
            pep_series_push(&series[2], f1);
            if (f1 > best_f1) {
                best_f1 = f1;
                memcpy(best, m->params + tb, (te - tb) * sizeof(float));
            }
            if (rank == 0) pep_info("finetune step %ld: %s dev entity F1 %.2f (best %.2f)", step + 1, cfg->data.source,
                                    100 * f1, 100 * best_f1);
        } else {
            pep_series_push(&series[2], -1.0);
        }
        pep_series_push(&series[3], pep_now_s() - t0);
        if (rank == 0 && ((step + 1) % cfg->run.log_every == 0 || step + 1 == cfg->optim.steps)) {
            pep_progress_report(&prog, step + 1 - start, loss_win / win, tok_win, NULL);
            loss_win = tok_win = 0;
            win = 0;
        }
        PEP_CALL_GOTO(rc, pep_stage_step_done(comm, &sv, step + 1, "step"));
    }
    /* the selected PE + head (best dev F1) with the frozen encoder: everything evaluate needs */
    memcpy(m->params + tb, best, (te - tb) * sizeof(float));
    sv.step = step, sv.rng[1] = (uint64_t)step, sv.groups = PEP_GROUPS_ALL;
    char path[1200];
    pep_run_path(run, "adapted.h5", path, sizeof path);
    PEP_CALL_GOTO(rc, pep_stage_final(comm, path, &sv));
    if (rank == 0)
        pep_info("finetune: %ld steps in %.1f s; best %s dev F1 %.2f; adapted model written to %s", step - start,
                 pep_now_s() - t0, cfg->data.source, 100 * best_f1, path);
cleanup:
    for (int i = 0; i < MAX_SRC; i++) {
        pep_nerset_free(&train[i]);
        pep_nerset_free(&dev[i]);
    }
    for (int i = 0; i < 4; i++) pep_series_free(&series[i]);
    pep_batch_free(&b);
    pep_free(idx);
    pep_free(best);
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
