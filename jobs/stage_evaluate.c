/* `peprime evaluate`: zero-shot entity-level F1 of a fine-tuned model on each target
 * language's test split (conlleval rules, or strict IOB2 with data.strict_iob2), written as
 * <out>/results.json and <out>/results.csv and printed as a table, and every word's gold and
 * predicted tag as <out>/predictions/<lang>.conll. Sentences are sharded over the ranks; the
 * counts are summed and the predictions gathered on rank 0, which writes the files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "json.h"
#include "jobs.h"
#include "nerdata.h"
#include "results.h"
#include "stage.h"

#define MAX_TARGETS 64

/* The "run" object of results.json; every string escaped (a path may hold any byte). */
static int run_json_text(const struct pep_run *run, char **out)
{
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    PEP_CHECK(f, PEP_ERR_NOMEM, "out of memory formatting results.json");
    fputs("{\"stage\": \"evaluate\", \"model\": ", f);
    pep_json_write_string(f, run->model);
    fputs(", \"pe_method\": ", f);
    pep_json_write_string(f, run->cfg.pe.method);
    fputs(", \"source\": ", f);
    pep_json_write_string(f, run->cfg.data.source);
    fprintf(f, ", \"seed\": %d}", run->cfg.run.seed);
    PEP_CHECK(fclose(f) == 0, PEP_ERR_NOMEM, "out of memory formatting results.json");
    return PEP_OK;
}

static int run_evaluate(struct pep_stage *stg)
{
    struct pep_run *run = &stg->run;
    const struct pep_config *cfg = &run->cfg;
    MPI_Comm comm = stg->mpi.comm;
    int rank = stg->mpi.rank, size = stg->mpi.size, rc = PEP_OK, lrc;
    struct pep_spm *spm = NULL;
    struct pep_model *m = NULL;
    struct pep_conlleval *ev = NULL;
    struct pep_eval_summary *sum = NULL;
    struct pep_stage_input min = {.comm = MPI_COMM_NULL};
    char *run_json = NULL;
    char tags[PEP_TAGS_MAX][PEP_TAG_NAME_MAX];
    const char *tagp[PEP_TAGS_MAX];
    int ntags, ntgt = pep_list_count(cfg->data.targets);
    PEP_CHECK(run->model[0], PEP_ERR_USAGE, "peprime evaluate needs --model ADAPTED.h5 (the output of finetune)");
    PEP_CHECK(ntgt >= 1 && ntgt <= MAX_TARGETS, PEP_ERR_USAGE, "data.targets must list 1 to %d languages", MAX_TARGETS);
    PEP_CALL(pep_run_tags(run, tags, PEP_TAGS_MAX, &ntags));
    for (int i = 0; i < ntags; i++) tagp[i] = tags[i];
    PEP_CALL(pep_conlleval_create(tagp, ntags, cfg->data.strict_iob2, &ev));
    PEP_ALLOC_GOTO(rc, sum, ntgt);
    lrc = pep_run_tokenizer(run, &spm);
    PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
    struct pep_model_spec spec;
    PEP_CALL_GOTO(rc, pep_model_spec_from_config(cfg, pep_spm_fairseq_vocab(spm), ntags, PEP_HEAD_KIND_TAGGER, 32, &spec));
    PEP_CALL_GOTO(rc, pep_model_create(&spec, &m));
    PEP_CALL_GOTO(rc, pep_model_set_threads(m, stg->threads)); /* the sgemm calls on the rank's threads */
    /* the model file must hold the same PE method as the config: check the stored shape; the
     * file is read once, by rank 0, and broadcast; an adapted.h5 of checkpoint.encoder = reference
     * gets its encoder from the base it names (or --init), checked by SHA-256 on rank 0 */
    lrc = pep_stage_input_open(comm, run->model, &min);
    if (lrc == PEP_OK) lrc = pep_stage_input_check_spec(&min, &spec);
    if (lrc == PEP_OK) lrc = pep_stage_input_params_based(&min, run->init, &m->table, m->params, PEP_GROUPS_ALL);
    pep_stage_input_close(&min);
    PEP_CALL_GOTO(rc, lrc); /* agreed on inside */
    char pred_dir[PEP_RUN_PATH_MAX];
    pep_run_path(run, "predictions", pred_dir, sizeof pred_dir);
    lrc = PEP_OK;
    if (rank == 0 && mkdir(pred_dir, 0755) != 0 && errno != EEXIST)
        lrc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "cannot create '%s': %s", pred_dir,
                            strerror(errno));
    PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
    double t0 = pep_now_s();
    for (int i = 0; i < ntgt; i++) {
        char lang[PEP_LANG_MAX];
        struct pep_nerset set;
        PEP_CALL_GOTO(rc, pep_list_item(cfg->data.targets, i, lang, sizeof lang));
        lrc = pep_nerset_load(run, spm, lang, "test", &set);
        if (lrc == PEP_OK && (lrc = pep_nerset_alloc_pred(&set)) != PEP_OK) pep_nerset_free(&set);
        PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
        pep_conlleval_reset(ev);
        pep_heartbeat(-1, "test evaluation of %s", lang);
        lrc = pep_nerset_score(m, &set, ev, comm, rank, size);
        if (lrc == PEP_OK) lrc = pep_nerset_gather_pred(&set, comm, rank, size);
        if (lrc == PEP_OK && rank == 0) {
            char path[PEP_RUN_TMP_MAX];
            snprintf(path, sizeof path, "%s/%s.conll", pred_dir, lang);
            lrc = pep_results_write_predictions(path, set.corpus, set.pred);
        }
        pep_nerset_free(&set);
        PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
        pep_conlleval_summary(ev, lang, &sum[i]);
    }
    if (rank == 0) {
        char table[16384], path[PEP_RUN_PATH_MAX];
        PEP_CALL_GOTO(rc, pep_eval_format_table(sum, ntgt, table, sizeof table));
        pep_info("evaluate: zero-shot entity F1 (%s chunking) of %s on the test splits, %.1f s\n%s",
                 cfg->data.strict_iob2 ? "strict IOB2" : "conlleval", run->model, pep_now_s() - t0, table);
        PEP_CALL_GOTO(rc, run_json_text(run, &run_json));
        PEP_CALL_GOTO(rc, pep_run_path(run, "results.json", path, sizeof path));
        PEP_CALL_GOTO(rc, pep_results_write_json(path, sum, ntgt, run_json));
        PEP_CALL_GOTO(rc, pep_run_path(run, "results.csv", path, sizeof path));
        PEP_CALL_GOTO(rc, pep_results_write_csv(path, sum, ntgt));
        pep_info("evaluate: results in %s/results.json and results.csv, predictions in %s/<lang>.conll", run->out,
                 pred_dir);
    }
cleanup:
    free(run_json);
    pep_free(sum);
    pep_conlleval_destroy(&ev);
    pep_model_destroy(&m);
    pep_spm_destroy(&spm);
    return rc;
}

int pep_cmd_evaluate(int argc, char **argv)
{
    struct pep_stage st;
    int rc = pep_stage_begin(&st, "evaluate", argc - 1, argv + 1);
    if (rc == PEP_OK) rc = run_evaluate(&st);
    return pep_stage_end(&st, rc);
}
