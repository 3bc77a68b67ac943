/* `peprime fidelity`: how well the priming inner loop simulates PE fine-tuning (issue 29,
 * docs/results.md "Fidelity"). For T tasks drawn as priming draws them (language, support batch,
 * inner-loop start by maml.pe_init), it runs the inner loop's k steps (pep_maml_task) and, from
 * the same start, real PE fine-tuning: the optimizer and schedule of the fine-tuning job file
 * maml.replay_from, steps [S, S + N) of its schedule, batches of maml.support_size fresh
 * sentences of the task's language, dropout as in training. Per group (pe, head, both) it
 * compares the two updates: their norms, the ratio inner / fine-tuning and their cosine, per
 * task (<out>/fidelity.csv) and summarised (<out>/fidelity_summary.csv and a printed table).
 * One process does the work (rank 0); it is minutes at the experiments' sizes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "jobs.h"
#include "maml/maml.h"
#include "maml/tasks.h"
#include "nerdata.h"
#include "stage.h"

#define MAX_LANGS 128
#define NGROUPS 3 /* pe, head, pe + head */

struct fidelity_args {
    int tasks;      /* T */
    long steps;     /* N; 0 = maml.inner_steps */
    long from_step; /* S; -1 = maml.replay_start */
};

/* Takes --tasks, --steps and --from-step out of argv (the rest goes to the stage parser). */
static int take_args(int *argc, char **argv, struct fidelity_args *a)
{
    a->tasks = 16, a->steps = 0, a->from_step = -1;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--tasks") && strcmp(o, "--steps") && strcmp(o, "--from-step")) {
            argv[out++] = argv[i];
            continue;
        }
        PEP_CHECK(i + 1 < *argc, PEP_ERR_USAGE, "peprime fidelity: %s needs a number", o);
        char *end = NULL;
        long v = strtol(argv[i + 1], &end, 10);
        PEP_CHECK(end && !*end && v >= (strcmp(o, "--from-step") ? 1 : 0) && v <= 1000000, PEP_ERR_USAGE,
                  "peprime fidelity: %s %s is not a count (1 .. 1000000; --from-step may be 0)", o, argv[i + 1]);
        if (!strcmp(o, "--tasks")) a->tasks = (int)v;
        else if (!strcmp(o, "--steps")) a->steps = v;
        else a->from_step = v;
        i++;
    }
    *argc = out;
    return PEP_OK;
}

/* dot and squared norms of the updates x1 - x0 and y1 - y0 over [b, e) (double sums). */
static void compare(const float *x0, const float *x1, const float *y1, size_t b, size_t e, double *dot, double *nx,
                    double *ny)
{
    for (size_t i = b; i < e; i++) {
        double dx = (double)x1[i] - x0[i], dy = (double)y1[i] - x0[i];
        *dot += dx * dy, *nx += dx * dx, *ny += dy * dy;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static int run_fidelity(struct pep_stage *stg, const struct fidelity_args *fa)
{
    struct pep_run *run = &stg->run;
    const struct pep_config *cfg = &run->cfg;
    int rc = PEP_OK;
    struct pep_spm *spm = NULL;
    struct pep_model *m = NULL;
    struct pep_maml *mm = NULL;
    struct pep_optim ft = {0};
    struct pep_nerset sets[MAX_LANGS];
    char names[MAX_LANGS][PEP_LANG_MAX];
    int nlang = pep_list_count(cfg->data.languages), S = cfg->maml.support_size, Q = cfg->maml.query_size;
    int *sidx = NULL, *qidx = NULL, *fidx = NULL;
    struct pep_batch bs = {0}, bq = {0};
    float *start = NULL, *inner = NULL;
    double *ratio = NULL, *cosv = NULL, *nin = NULL, *nft = NULL;
    FILE *csv = NULL;
    memset(sets, 0, sizeof sets);
    PEP_CHECK(nlang >= 1 && nlang <= MAX_LANGS, PEP_ERR_USAGE, "data.languages must list 1 to %d languages", MAX_LANGS);
    PEP_CHECK(cfg->maml.replay_from[0], PEP_ERR_USAGE,
              "peprime fidelity compares the inner loop with PE fine-tuning: set maml.replay_from = the fine-tuning "
              "job file (its [optim] is the fine-tuning to compare with)");
    if (stg->mpi.rank != 0) return PEP_OK;
    if (stg->mpi.size > 1) pep_warn("fidelity: rank 0 does all the work; run it as one process");

    PEP_CALL_GOTO(rc, pep_run_tokenizer(run, &spm));
    for (int i = 0; i < nlang; i++) {
        PEP_CALL_GOTO(rc, pep_list_item(cfg->data.languages, i, names[i], sizeof names[i]));
        PEP_CALL_GOTO(rc, pep_nerset_load(run, spm, names[i], "train", &sets[i]));
    }
    int sizes[MAX_LANGS];
    const char *cnames[MAX_LANGS];
    for (int i = 0; i < nlang; i++) sizes[i] = sets[i].n, cnames[i] = names[i];
    PEP_CALL_GOTO(rc, pep_task_check_sizes(nlang, sizes, cnames, S, Q));
    float weights[MAX_LANGS];
    pep_task_weights(nlang, sizes, !strcmp(cfg->maml.sampling, "temperature"), cfg->maml.temperature, weights);

    char tag_names[PEP_TAGS_MAX][PEP_TAG_NAME_MAX];
    int ntags;
    PEP_CALL_GOTO(rc, pep_run_tags(run, tag_names, PEP_TAGS_MAX, &ntags));
    struct pep_model_spec spec;
    PEP_CALL_GOTO(rc, pep_model_spec_from_config(cfg, pep_spm_fairseq_vocab(spm), ntags, PEP_HEAD_KIND_TAGGER,
                                                 S > Q ? S : Q, &spec));
    PEP_CALL_GOTO(rc, pep_model_create(&spec, &m));
    PEP_CALL_GOTO(rc, pep_model_set_threads(m, stg->threads)); /* the sgemm calls on the rank's threads */
    pep_model_init_weights(m, (uint64_t)cfg->run.seed, PEP_GROUPS_ALL);
    PEP_CHECK_GOTO(rc, run->init[0], PEP_ERR_USAGE, "peprime fidelity needs --init BASE.h5 (a base or primed model)");
    PEP_CALL_GOTO(rc, pep_stage_load(run->init, m, PEP_GROUP_BIT(PEP_GROUP_PLM), NULL));

    struct pep_maml_opts mo;
    PEP_CALL_GOTO(rc, pep_maml_opts_from_config(cfg, m, &mo));
    PEP_CALL_GOTO(rc, pep_run_replay_optim(run, &mo.replay));
    mo.replay_start = cfg->maml.replay_start;
    mo.meta_batch = 1;
    PEP_CHECK_GOTO(rc, mo.method == PEP_MAML_METHOD_MAML, PEP_ERR_USAGE,
                   "peprime fidelity measures a MAML inner loop; maml.method = %s has none", cfg->maml.method);
    PEP_CALL_GOTO(rc, pep_maml_create(m, &mo, &mm));
    unsigned trainable = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    size_t ib, ie, tb, te, gb[NGROUPS], ge[NGROUPS];
    pep_maml_inner_range(mm, &ib, &ie);
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, trainable, &tb, &te));
    PEP_CHECK_GOTO(rc, ib <= tb && te <= ie, PEP_ERR_USAGE, "maml.inner_set = %s does not hold PE + head",
                   cfg->maml.inner_set);
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, PEP_GROUP_BIT(PEP_GROUP_PE), &gb[0], &ge[0]));
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, PEP_GROUP_BIT(PEP_GROUP_HEAD), &gb[1], &ge[1]));
    gb[2] = tb, ge[2] = te;
    static const char *const gname[NGROUPS] = {"pe", "head", "pe+head"};
    long N = fa->steps ? fa->steps : cfg->maml.inner_steps, S0 = fa->from_step >= 0 ? fa->from_step : cfg->maml.replay_start;
    int T = fa->tasks;

    PEP_CALL_GOTO(rc, pep_batch_alloc(&bs, S, S * spec.max_T));
    PEP_CALL_GOTO(rc, pep_batch_alloc(&bq, Q, Q * spec.max_T));
    PEP_ALLOC_GOTO(rc, sidx, S);
    PEP_ALLOC_GOTO(rc, qidx, Q);
    PEP_ALLOC_GOTO(rc, fidx, S);
    PEP_ALLOC_GOTO(rc, start, ie - ib);
    PEP_ALLOC_GOTO(rc, inner, ie - ib);
    PEP_ALLOC_GOTO(rc, ratio, (size_t)NGROUPS * T);
    PEP_ALLOC_GOTO(rc, cosv, (size_t)NGROUPS * T);
    PEP_ALLOC_GOTO(rc, nin, (size_t)NGROUPS * T);
    PEP_ALLOC_GOTO(rc, nft, (size_t)NGROUPS * T);
    char path[PEP_RUN_PATH_MAX];
    PEP_CALL_GOTO(rc, pep_run_path(run, "fidelity.csv", path, sizeof path));
    csv = fopen(path, "w");
    PEP_CHECK_GOTO(rc, csv, PEP_ERR_IO, "%s: cannot write", path);
    fprintf(csv, "task,language,group,inner_norm,finetune_norm,ratio,cosine\n");
    pep_info("fidelity: %d tasks, inner loop %d steps vs fine-tuning (%s) steps %ld..%ld of %s, batches of %d", T,
             cfg->maml.inner_steps, pep_optim_kind_name(mo.replay.kind), S0, S0 + N - 1, cfg->maml.replay_from, S);

    float *w = m->params;
    for (int t = 0; t < T; t++) {
        int l;
        /* the tasks of meta-steps 0, 1, ... as priming draws them, one per meta-step */
        pep_task_draw((uint64_t)cfg->run.seed, t, 0, nlang, sizes, weights, S, Q, &l, sidx, qidx);
        pep_heartbeat(t + 1, "inner loop and fine-tuning (language %s)", names[l]);
        uint64_t tseed = pep_splitmix64((uint64_t)cfg->run.seed ^ pep_splitmix64((uint64_t)t * 1000003u));
        PEP_CALL_GOTO(rc, pep_nerset_batch(&sets[l], sidx, S, &bs));
        PEP_CALL_GOTO(rc, pep_nerset_batch(&sets[l], qidx, Q, &bq));
        struct pep_maml_task_result res;
        pep_maml_zero(mm);
        PEP_CALL_GOTO(rc, pep_maml_task(mm, &bs, &bq, tseed, &res));
        memcpy(start, res.start, (ie - ib) * sizeof(float));
        memcpy(inner, res.adapted, (ie - ib) * sizeof(float));
        /* fine-tuning from the same start: its optimizer over PE + head, fresh moments */
        float *saved = NULL;
        PEP_ALLOC_GOTO(rc, saved, ie - ib);
        memcpy(saved, w + ib, (ie - ib) * sizeof(float));
        memcpy(w + ib, start, (ie - ib) * sizeof(float));
        ft = mo.replay;
        ft.begin = ft.lo = tb, ft.end = ft.hi = te, ft.m = ft.v = NULL;
        int frc = PEP_OK;
        if (ft.kind == PEP_OPTIM_KIND_ADAMW) {
            ft.m = calloc(te - tb, sizeof(float)), ft.v = calloc(te - tb, sizeof(float));
            if (!ft.m || !ft.v) frc = pep_error_set(PEP_ERR_NOMEM, __FILE__, __LINE__, __func__, "out of memory");
        }
        struct pep_rng r;
        pep_rng_seed(&r, (uint64_t)cfg->run.seed, 0xf1de, (uint64_t)t);
        for (long s = 0; s < N && frc == PEP_OK; s++) {
            pep_heartbeat_detail("fine-tuning step %ld of %ld", s + 1, N);
            for (int i = 0; i < S; i++) { /* S distinct sentences of the language */
                int x, dup;
                do {
                    x = (int)pep_rng_below(&r, (uint64_t)sets[l].n);
                    dup = 0;
                    for (int q = 0; q < i; q++) dup |= fidx[q] == x;
                } while (dup);
                fidx[i] = x;
            }
            float loss;
            frc = pep_nerset_batch(&sets[l], fidx, S, &bs);
            pep_model_zero_grad(m, trainable);
            if (frc == PEP_OK) frc = pep_model_forward(m, &bs, 1, pep_rng_next(&r), &loss);
            if (frc == PEP_OK) frc = pep_model_backward(m, trainable);
            /* the rate of schedule step S0 + s; moments and bias correction count from this run's first step */
            struct pep_optim step = ft;
            step.t = s, step.lr = pep_optim_lr_at(&mo.replay, S0 + s), step.warmup = 0, step.schedule = PEP_OPTIM_SCHEDULE_CONSTANT;
            if (frc == PEP_OK) frc = pep_optim_step(&step, w, m->grads, NULL);
        }
        double dot[NGROUPS] = {0}, nx[NGROUPS] = {0}, ny[NGROUPS] = {0};
        for (int g = 0; g < NGROUPS && frc == PEP_OK; g++)
            compare(start - ib, inner - ib, w, gb[g], ge[g], &dot[g], &nx[g], &ny[g]);
        memcpy(w + ib, saved, (ie - ib) * sizeof(float));
        pep_free(saved);
        free(ft.m), free(ft.v);
        ft.m = ft.v = NULL;
        PEP_CALL_GOTO(rc, frc);
        for (int g = 0; g < NGROUPS; g++) {
            double a = sqrt(nx[g]), b = sqrt(ny[g]);
            nin[g * T + t] = a, nft[g * T + t] = b;
            ratio[g * T + t] = b > 0 ? a / b : NAN;
            cosv[g * T + t] = a > 0 && b > 0 ? dot[g] / (a * b) : NAN;
            fprintf(csv, "%d,%s,%s,%.6g,%.6g,%.6g,%.6g\n", t, names[l], gname[g], a, b, ratio[g * T + t],
                    cosv[g * T + t]);
        }
    }
    PEP_CHECK_GOTO(rc, fclose(csv) == 0, PEP_ERR_IO, "%s: write failed", path);
    csv = NULL;

    PEP_CALL_GOTO(rc, pep_run_path(run, "fidelity_summary.csv", path, sizeof path));
    csv = fopen(path, "w");
    PEP_CHECK_GOTO(rc, csv, PEP_ERR_IO, "%s: cannot write", path);
    fprintf(csv, "group,tasks,inner_norm,finetune_norm,ratio_median,ratio_min,ratio_max,cosine_mean,cosine_sd,"
                 "cosine_min,simulates\n");
    printf("%-8s %12s %12s %22s %22s  %s\n", "group", "inner norm", "ft norm", "ratio median [min,max]",
           "cosine mean (sd) min", "simulates");
    for (int g = 0; g < NGROUPS; g++) {
        double *rt = ratio + g * T, *cs = cosv + g * T, cm = 0, cv = 0, cmin = cs[0];
        for (int t = 0; t < T; t++) cm += cs[t] / T, cmin = cs[t] < cmin || isnan(cs[t]) ? cs[t] : cmin;
        for (int t = 0; t < T; t++) cv += (cs[t] - cm) * (cs[t] - cm) / (T > 1 ? T - 1 : 1);
        double rmed = median(rt, T), rmin = rt[0], rmax = rt[T - 1];
        double ni = median(nin + g * T, T), nf = median(nft + g * T, T);
        /* the criterion of issue 29: norm ratio within 0.5-2 and a clearly positive cosine (the
         * mean at least 0.2 and two standard errors above 0) */
        int sim = rmed >= 0.5 && rmed <= 2.0 && cm >= 0.2 && cm - 2 * sqrt(cv / T) > 0;
        fprintf(csv, "%s,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s\n", gname[g], T, ni, nf, rmed, rmin, rmax, cm,
                sqrt(cv), cmin, sim ? "yes" : "no");
        printf("%-8s %12.4g %12.4g %8.3g [%.3g, %.3g] %10.3f (%.3f) %.3f  %s\n", gname[g], ni, nf, rmed, rmin, rmax, cm,
               sqrt(cv), cmin, sim ? "yes" : "no");
    }
    PEP_CHECK_GOTO(rc, fclose(csv) == 0, PEP_ERR_IO, "%s: write failed", path);
    csv = NULL;
    pep_info("fidelity: per task in %s/fidelity.csv, summary in %s", run->out, path);
cleanup:
    if (csv) fclose(csv);
    for (int i = 0; i < MAX_LANGS; i++) pep_nerset_free(&sets[i]);
    pep_batch_free(&bs);
    pep_batch_free(&bq);
    pep_free(sidx), pep_free(qidx), pep_free(fidx), pep_free(start), pep_free(inner);
    pep_free(ratio), pep_free(cosv), pep_free(nin), pep_free(nft);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
    pep_spm_destroy(&spm);
    return rc;
}

int pep_cmd_fidelity(int argc, char **argv)
{
    struct fidelity_args fa;
    int rc = take_args(&argc, argv, &fa);
    if (rc != PEP_OK) {
        pep_print_error("fidelity");
        return 2;
    }
    struct pep_stage st;
    rc = pep_stage_begin(&st, "fidelity", argc - 1, argv + 1);
    if (rc == PEP_OK) rc = run_fidelity(&st, &fa);
    return pep_stage_end(&st, rc);
}
