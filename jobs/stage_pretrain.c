/* `peprime pretrain`: masked-LM pretraining (15% of subwords, 80/10/10 mask / random / keep)
 * of the encoder on the untagged text of the chosen languages' training splits, writing the
 * base model (<out>/base.h5: /model + the MLM head). This is how experiments on a machine
 * without downloads get a multilingual encoder; on a cluster, import-hf gives the same
 * layout from XLM-R. With --init BASE.h5 it continues from that base (fresh optimizer, step
 * 0). Ranks split each batch (data parallel). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/mlm.h"
#include "jobs.h"
#include "nerdata.h"
#include "stage.h"
#include "tokenizer_train.h"
#include "train_loop.h"

#define MAX_LANGS 128
#define NSERIES 7

/* The pretraining languages: data.pretrain_languages, else languages + source + targets. */
static int pretrain_langs(const struct pep_config *cfg, char names[][PEP_LANG_MAX], int *n)
{
    *n = 0;
    const char *lists[3] = {cfg->data.languages, cfg->data.source, cfg->data.targets};
    int nl = cfg->data.pretrain_languages[0] ? 1 : 3;
    if (nl == 1) lists[0] = cfg->data.pretrain_languages;
    for (int l = 0; l < nl; l++)
        for (int i = 0; i < pep_list_count(lists[l]); i++) {
            char x[PEP_LANG_MAX];
            PEP_CALL(pep_list_item(lists[l], i, x, sizeof x));
            int dup = 0;
            for (int j = 0; j < *n; j++) dup |= !strcmp(names[j], x);
            if (dup) continue;
            PEP_CHECK(*n < MAX_LANGS, PEP_ERR_USAGE, "more than %d pretraining languages", MAX_LANGS);
            strcpy(names[(*n)++], x);
        }
    PEP_CHECK(*n > 0, PEP_ERR_USAGE, "no pretraining languages (set data.pretrain_languages)");
    return PEP_OK;
}

/* The MLM part of a training step: the masking of the rank's slice and the dropout seed. */
struct mlm_step {
    const struct pep_config *cfg;
    int V, rank, size;
};

static int mlm_prepare(void *ud, struct pep_batch *b, long step)
{
    const struct mlm_step *ms = ud;
    return pep_mlm_mask(b, ms->V, ms->cfg->optim.mask_prob, (uint64_t)ms->cfg->run.seed,
                        (uint64_t)step * (uint64_t)ms->size + (uint64_t)ms->rank, NULL);
}

/* The same on every rank: the slice's place in the batch (pep_batch.seq0) keys its masks. */
static uint64_t mlm_dropout_seed(void *ud, long step)
{
    (void)ud;
    return pep_splitmix64((uint64_t)step * 7);
}

static int run_pretrain(struct pep_stage *stg)
{
    struct pep_run *run = &stg->run;
    const struct pep_config *cfg = &run->cfg;
    MPI_Comm comm = stg->mpi.comm;
    int rank = stg->mpi.rank, size = stg->mpi.size, rc = PEP_OK, lrc = PEP_OK;
    struct pep_spm *spm = NULL;
    struct pep_model *m = NULL;
    struct pep_optim opt = {0};
    struct pep_nerset sets[MAX_LANGS];
    struct pep_stage_input rin = {.comm = MPI_COMM_NULL};
    char names[MAX_LANGS][PEP_LANG_MAX];
    int nlang = 0;
    struct pep_series series[NSERIES] = {{.name = "step"},      {.name = "loss"},   {.name = "tokens_per_s"},
                                         {.name = "wall_time"}, {.name = "tokens"}, {.name = "lr"},
                                         {.name = "grad_norm"}};
    memset(sets, 0, sizeof sets);
    PEP_CALL(pretrain_langs(cfg, names, &nlang));
    /* no tokenizer yet: train one on the pretraining languages (rank 0), then everyone loads it */
    char tpath[PEP_RUN_PATH_MAX];
    int tfound = 0;
    lrc = pep_run_tokenizer_path(run, tpath, sizeof tpath, &tfound);
    if (lrc == PEP_OK && !tfound && rank == 0) {
        char langs[PEP_CFG_STR * 3] = "";
        for (int i = 0; i < nlang; i++) {
            strcat(langs, i ? "," : "");
            strcat(langs, names[i]);
        }
        pep_heartbeat(-1, "training the tokenizer");
        pep_info("pretrain: no tokenizer at %s: training one (%d pieces) on %s", tpath, cfg->model.tokenizer_vocab, langs);
        lrc = pep_tokenizer_train(cfg, langs, cfg->model.tokenizer_vocab, tpath,
                                  cfg->data.max_sentences > 0 ? cfg->data.max_sentences : 20000, (uint64_t)cfg->run.seed);
    }
    PEP_CALL(pep_mpi_agree(lrc, comm));
    lrc = pep_run_tokenizer(run, &spm);
    for (int i = 0; i < nlang && lrc == PEP_OK; i++) lrc = pep_nerset_load(run, spm, names[i], "train", &sets[i]);
    PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
    long total = 0, tokens = 0;
    for (int i = 0; i < nlang; i++) total += sets[i].n, tokens += sets[i].tokens;
    int GB = cfg->optim.batch_size;

    struct pep_model_spec spec;
    struct pep_config mcfg = *cfg;
    strcpy(mcfg.pe.method, pep_pe_method_name(PEP_PE_METHOD_NONE)); /* the base model has no PE modules */
    /* activations for one micro-batch (all of the rank's share without optim.accumulate) */
    PEP_CALL_GOTO(rc, pep_model_spec_from_config(&mcfg, pep_spm_fairseq_vocab(spm), 0, PEP_HEAD_KIND_MLM,
                                                 pep_train_loop_micro_batch(cfg, size), &spec));
    PEP_CALL_GOTO(rc, pep_model_create(&spec, &m));
    PEP_CALL_GOTO(rc, pep_model_set_threads(m, stg->threads)); /* the sgemm calls on the rank's threads */
    pep_model_init_weights(m, (uint64_t)cfg->run.seed, PEP_GROUPS_ALL);
    /* each input file is read once, by rank 0, and broadcast; a resume supplies every parameter,
     * so --init is read only for a fresh start */
    int found = 0;
    PEP_CALL_GOTO(rc, pep_stage_input_resume(comm, run, "pretrain", &rin, &found));
    if (run->init[0] && !found) {
        /* continued pretraining (e.g. the equal-compute control of a priming experiment): the
         * encoder and MLM head of a base, a fresh optimizer and step count */
        PEP_CALL_GOTO(rc, pep_stage_load_init(comm, run->init, m, PEP_GROUPS_ALL));
        if (rank == 0) pep_info("pretrain: continuing from the base %s", run->init);
    } else if (run->init[0] && rank == 0) {
        pep_info("pretrain: --init %s not read: %s holds every parameter", run->init, rin.path);
    }
    size_t nb = 0, ne = m->table.numel;
    PEP_CALL_GOTO(rc, pep_optim_from_config(cfg, &opt));
    opt.threads = stg->threads; /* the element-wise step on the rank's threads (BLAS is idle then) */
    PEP_CALL_GOTO(rc, pep_optim_init(&opt, nb, ne));
    if (rank == 0)
        pep_info("pretrain: masked LM on %d languages (%ld sentences, %ld subwords), vocabulary %d, %zu parameters, "
                 "batch %d over %d rank%s", nlang, total, tokens, spec.V, m->table.numel, GB, size, size == 1 ? "" : "s");

    long start = 0, step = 0;
    if (found) {
        PEP_CALL_GOTO(rc, pep_stage_resume_state(&rin, m, PEP_GROUPS_ALL, &opt, series, NSERIES, &start));
        pep_stage_input_close(&rin);
        if (rank == 0) pep_info("pretrain: resumed from %s at step %ld", rin.path, start);
    }
    double t0 = pep_now_s();
    struct pep_stage_save sv = {.stage = "pretrain", .run = run, .m = m, .groups = PEP_GROUPS_ALL, .opt = &opt,
                                .opt_groups = PEP_GROUPS_ALL, .series = series, .nseries = NSERIES,
                                .rng = {(uint64_t)cfg->run.seed, 0, 0, 0}};
    struct mlm_step ms = {.cfg = cfg, .V = spec.V, .rank = rank, .size = size};
    struct pep_train_loop tl = {.stage = "pretrain", .stream = 0x3d1, .sets = sets, .nsets = nlang, .m = m,
                                .groups = PEP_GROUPS_ALL, .opt = &opt, .save = &sv,
                                .series = series, .nseries = NSERIES, .prepare = mlm_prepare,
                                .dropout_seed = mlm_dropout_seed, .ud = &ms};
    PEP_CALL_GOTO(rc, pep_train_loop_run(stg, &tl, start, &step));
    sv.step = step, sv.rng[1] = (uint64_t)step;
    char path[PEP_RUN_PATH_MAX];
    PEP_CALL_GOTO(rc, pep_run_path(run, "base.h5", path, sizeof path));
    PEP_CALL_GOTO(rc, pep_stage_final(comm, path, &sv));
    if (rank == 0)
        pep_info("pretrain: %ld steps in %.1f s; base model written to %s", step - start, pep_now_s() - t0, path);
cleanup:
    pep_stage_input_close(&rin);
    for (int i = 0; i < MAX_LANGS; i++) pep_nerset_free(&sets[i]);
    for (int i = 0; i < NSERIES; i++) pep_series_free(&series[i]);
    pep_optim_fini(&opt);
    pep_model_destroy(&m);
    pep_spm_destroy(&spm);
    return rc;
}

int pep_cmd_pretrain(int argc, char **argv)
{
    struct pep_stage st;
    int rc = pep_stage_begin(&st, "pretrain", argc - 1, argv + 1);
    if (rc == PEP_OK) rc = run_pretrain(&st);
    return pep_stage_end(&st, rc);
}
