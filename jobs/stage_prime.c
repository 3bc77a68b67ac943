/* `peprime prime`: MAML priming (src/maml) over MPI. The P ranks form P / G task groups of
 * G = maml.group_size ranks (G = 1: every rank its own group); group g runs tasks g, g + P/G,
 * ... of each meta-batch, each rank of the group a contiguous share of the task's support and
 * query sentences, with the inner set's gradients summed inside the group every pass (the
 * hook pep_maml_opts.group_sum). The meta-gradient is summed over all ranks by the exchange
 * (mpi/exchange.h: buckets started while the last local task's backward runs, word-embedding
 * rows sparsely). The outer step is sharded ZeRO-1 style (maml.outer_shard): the exchange
 * reduce-scatters the meta-gradient to contiguous 1/P slices of the outer set, each rank keeps
 * the AdamW moments of its slice and updates it (the clip norm from one ordered scalar sum),
 * and an allgather shares the updated weights; unsharded, every rank applies the same AdamW
 * step to its replica. At P = 1 both are the same step, bit for bit. The latest adapted
 * PE + head state of each language is kept by the group that produced it and written into
 * /tasks by that group's lead rank, with the state that episode's inner loop started from as
 * /tasks/<lang>.start. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/partition.h"
#include "core/rng.h"
#include "exchange.h"
#include "jobs.h"
#include "maml/maml.h"
#include "maml/tasks.h"
#include "nerdata.h"
#include "stage.h"

#define MAX_LANGS 128
#define NSERIES 8

struct lang_state {
    int owner;          /* lead rank of the group that ran this language's latest episode, -1 if none yet */
    int64_t episode, step;
    double support_loss, query_loss;
    float *state;       /* the owner's copy of the adapted state (task groups) */
    float *start;       /* the owner's copy of that episode's inner-loop start (task groups) */
};

/* Debug hook for the fault-injection test: PEP_FAULT_RANK / PEP_FAULT_STEP make that rank
 * fail that meta-step as a non-finite loss would, or, with PEP_FAULT_HANG=1, stop making
 * progress there for good while its process (and its watchdog) keeps running. */
static int fault_here(int rank, long step)
{
    const char *r = getenv("PEP_FAULT_RANK"), *s = getenv("PEP_FAULT_STEP");
    return r && s && atoi(r) == rank && atol(s) == step;
}

/* PEP_FAULT_KILL_IN=allgather (with PEP_FAULT_RANK / PEP_FAULT_STEP): that rank kills itself
 * (SIGKILL) as it reaches the weight allgather of that meta-step, its partners already inside it. */
static int fault_kill_in(int rank, long step, const char *phase)
{
    const char *k = getenv("PEP_FAULT_KILL_IN");
    return k && !strcmp(k, phase) && fault_here(rank, step);
}

static int fault_hangs(void)
{
    const char *h = getenv("PEP_FAULT_HANG");
    return h && !strcmp(h, "1");
}

/* One /tasks entry: the latest episode of language `ls` under `name`, with `state` where this rank owns it. */
static void task_entry(struct pep_ckpt_task *t, const struct lang_state *ls, const char *name, const float *state,
                       int rank)
{
    memset(t, 0, sizeof *t);
    snprintf(t->lang, sizeof t->lang, "%s", name);
    t->owner = ls->owner, t->episode = ls->episode, t->step = ls->step;
    t->support_loss = ls->support_loss, t->query_loss = ls->query_loss;
    t->state = ls->owner == rank ? state : NULL;
}

/* The /tasks list every rank passes to the writer: all languages seen so far, with owners.
 * Returns the number of entries. */
static int fill_tasks(struct pep_ckpt_task *tasks, const struct lang_state *ls, char names[][PEP_LANG_MAX], int nlang, int rank)
{
    int nt = 0;
    for (int l = 0; l < nlang; l++)
        if (ls[l].owner >= 0) task_entry(&tasks[nt++], &ls[l], names[l], ls[l].state, rank);
    return nt;
}

/* Appends "<lang>.start" entries (the inner-loop start of each language's latest episode) for
 * the languages drawn since meta-step `since` (the start of this process: starts are not
 * read back on resume). Every rank derives the same list. */
static int fill_starts(struct pep_ckpt_task *tasks, const struct lang_state *ls, char names[][PEP_LANG_MAX], int nlang, int rank,
                       long since)
{
    int nt = 0;
    char name[PEP_CKPT_LANG_MAX];
    for (int l = 0; l < nlang; l++) {
        if (ls[l].owner < 0 || ls[l].step <= since) continue;
        snprintf(name, sizeof name, "%.20s.start", names[l]);
        task_entry(&tasks[nt++], &ls[l], name, ls[l].start, rank);
    }
    return nt;
}

/* Per-task states come back from the resumed checkpoint `in` to the ranks that own their language
 * now (every rank gets them: any group's lead may write one); a language the file has must read
 * back, or the resumed run would silently restart it fresh. Languages the file lacks were not
 * drawn before it and start fresh. `ngroups` task groups of G ranks. Collective. */
static int resume_tasks(struct pep_stage_input *in, char names[][PEP_LANG_MAX], int nlang,
                        const struct pep_param_table *t, unsigned task_groups, struct lang_state *ls, int ngroups,
                        int G)
{
    for (int i = 0; i < nlang; i++) {
        struct pep_ckpt_task_info ti;
        int has = 0, rc = pep_stage_input_task(in, names[i], t, task_groups, ls[i].state, &ti, &has);
        if (rc) {
            char msg[PEP_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", pep_error_message());
            pep_error_clear();
            return pep_error_set(rc, __FILE__, __LINE__, __func__,
                                 "cannot resume the task state /tasks/%s of %s: %s; resume from an older "
                                 "checkpoint with --resume PATH (or delete this one)",
                                 names[i], in->path, msg);
        }
        if (!has) continue;
        ls[i].owner = (i % ngroups) * G;
        ls[i].episode = ti.episode, ls[i].step = ti.step;
        ls[i].support_loss = ti.support_loss, ls[i].query_loss = ti.query_loss;
    }
    return PEP_OK;
}

/* The meta-gradient exchange of the update range [ub, ue) of the model's flat block. */
struct exchange_ctx {
    struct pep_exchange *x;
    size_t ub;
};

/* The sharded step's norm hook, timed: its CPU seconds (MPI may poll) are left out of the
 * update's CPU time in the report. */
struct norm_sum_ctx {
    struct pep_mpi_ctx *mpi;
    double cpu_s;
};

static int norm_sum(double *sumsq, void *ud)
{
    struct norm_sum_ctx *nc = ud;
    double c0 = pep_thread_cpu_s();
    int rc = pep_mpi_sum_double_ordered(sumsq, nc->mpi);
    nc->cpu_s += pep_thread_cpu_s() - c0;
    return rc;
}

/* pep_stage_save's opt_gather: a sharded moment's slices into full[ub, ue) on every rank. */
static int gather_moment(const float *slice, float *full, void *ud)
{
    struct exchange_ctx *xc = ud;
    return pep_exchange_allgather(xc->x, slice, full + xc->ub);
}

/* pep_maml_set_ready's callback: a finished range of the last local task's backward. */
static int exchange_ready(size_t begin, size_t end, void *ud)
{
    struct exchange_ctx *xc = ud;
    return pep_exchange_ready(xc->x, begin - xc->ub, end - xc->ub);
}

/* The exchange's options from [maml]: the word embeddings go sparse when they are updated. */
static void exchange_opts(const struct pep_config *cfg, const struct pep_model *m, size_t ub, size_t ue,
                          struct pep_exchange_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ordered = !strcmp(cfg->maml.exchange_sum, "ordered");
    o->bucket = (size_t)((double)cfg->maml.exchange_bucket_mb * (double)(1 << 20) / sizeof(float));
    if (o->bucket == 0) o->bucket = 1;
    int wte = pep_param_table_find(&m->table, "embeddings.word_embeddings.weight");
    if (cfg->maml.exchange_sparse && wte >= 0) {
        const struct pep_param *p = &m->table.rows[wte];
        if (p->offset >= ub && p->offset + p->numel <= ue)
            o->rows_begin = p->offset - ub, o->nrows = p->shape[0], o->width = p->shape[1];
    }
}

/* "pe sgd 0.01, head sgd 0.01" or, for the finetune rule, the replayed optimizer and window. */
static void inner_rules_text(const struct pep_maml_opts *o, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int g = 0; g < PEP_GROUP_COUNT && used < len; g++) {
        if (!(o->inner & PEP_GROUP_BIT(g))) continue;
        struct pep_maml_rule r = pep_maml_rule_of(o, (enum pep_group)g);
        const char *name = pep_group_name((enum pep_group)g), *sep = used ? ", " : "";
        if (r.optim == PEP_MAML_INNER_FINETUNE)
            used += (size_t)snprintf(buf + used, len - used, "%s%s finetune (%s lr %g at steps %ld..%ld)", sep, name,
                                     pep_optim_kind_name(o->replay.kind),
                                     (double)pep_optim_lr_at(&o->replay, o->replay_start),
                                     o->replay_start, o->replay_start + o->inner_steps - 1);
        else
            used += (size_t)snprintf(buf + used, len - used, "%s%s %s %g", sep, name,
                                     pep_maml_inner_optim_name(r.optim), (double)r.lr);
    }
}

/* Totals for the report. The split of a meta-step (tasks, exchange, update, allgather) skips
 * this process's first meta-step: its first touch of the moments' pages is not the steady state. */
struct prime_times {
    double start, prev;                 /* the run's start; the previous meta-step's log entry */
    double loss_window, tokens_window;  /* since the last progress line ... */
    int window;                         /* ... over this many meta-steps */
    double x_ready, x_finish, x_bytes, x_rows; /* exchange totals over the run */
    int x_buckets, x_early;
    double tasks, update, gather;       /* this rank's seconds in tasks, its slice's step, the allgather */
    double xready, xfinish;             /* the exchange's, over the same meta-steps */
    double c_update; /* CPU seconds of the slice's step (sum of squares + update), without the norm's sum: the
                        main thread's only (CLOCK_THREAD_CPUTIME_ID), not the outer step's pool workers */
};

/* One priming run: what the setup builds, the meta-steps use and the report prints. */
struct prime {
    struct pep_stage *stg;
    const struct pep_config *cfg;
    MPI_Comm comm;
    int rank, size;
    int G;                            /* maml.group_size: ranks per task group */
    struct pep_mpi_group grp;
    /* every rank holds every priming language (tasks pick languages at random) */
    int nlang;
    char names[MAX_LANGS][PEP_LANG_MAX];
    struct pep_spm *spm;
    struct pep_nerset sets[MAX_LANGS];
    int sizes[MAX_LANGS];             /* training sentences per language */
    float weights[MAX_LANGS];         /* the languages' sampling weights */
    struct lang_state ls[MAX_LANGS];
    /* the model, MAML and the outer step */
    struct pep_model_spec spec;
    struct pep_model *m;
    struct pep_maml_opts mo;
    struct pep_maml *mm;
    size_t ub, ue, ib, ie;            /* the update range (outer set) and the inner set */
    size_t tb, te;                    /* a per-task state: the non-PLM part of the inner set */
    unsigned update_groups, task_groups;
    float *meta;                      /* the meta-gradient block, the same every meta-step */
    struct pep_exchange_opts xo;
    struct exchange_ctx xc;
    size_t slo, shi;                  /* this rank's slice of the outer set (all of it on one rank or unsharded) */
    int sharded;
    struct pep_optim opt;
    struct norm_sum_ctx nsc;
    /* the checkpoint resumed from (found) and the first meta-step this process runs */
    struct pep_stage_input rin;
    int found;
    long start;
    /* a meta-step's working set */
    int s0, sn, q0, qn;               /* this rank's share of every task's support and query sentences */
    int *sidx, *qidx;
    struct pep_batch bs, bq;
    struct pep_task_range tr;         /* this group's tasks: round-robin over the groups */
    int last_task[MAX_LANGS];         /* per language: the meta-batch's last task of it, -1 if none */
    double *stats;                    /* [query sum, support sum, tokens, per language: support, query] */
    size_t nstats;
    /* log, checkpoints, report */
    struct pep_series series[NSERIES];
    struct pep_stage_csv csv;
    struct pep_ckpt_task *tasks;
    struct pep_stage_save sv;
    struct pep_progress prog;
    struct prime_times t;
};

static void prime_init(struct prime *p, struct pep_stage *stg)
{
    static const char *series[NSERIES] = {"step", "meta_loss", "support_loss", "tokens_per_s",
                                          "wall_time", "tokens", "lr", "grad_norm"};
    memset(p, 0, sizeof *p);
    p->stg = stg;
    p->cfg = &stg->run.cfg;
    p->comm = stg->mpi.comm;
    p->rank = stg->mpi.rank, p->size = stg->mpi.size;
    p->G = p->cfg->maml.group_size;
    p->grp.comm = MPI_COMM_NULL;
    p->rin.comm = MPI_COMM_NULL;
    p->nsc.mpi = &stg->mpi;
    for (int i = 0; i < NSERIES; i++) snprintf(p->series[i].name, sizeof p->series[i].name, "%s", series[i]);
}

static void prime_fini(struct prime *p)
{
    pep_stage_csv_close(&p->csv);
    pep_stage_input_close(&p->rin);
    pep_mpi_group_free(&p->grp);
    pep_free(p->stats);
    pep_batch_free(&p->bs);
    pep_batch_free(&p->bq);
    pep_free(p->sidx);
    pep_free(p->qidx);
    pep_free(p->tasks);
    for (int i = 0; i < MAX_LANGS; i++) {
        pep_nerset_free(&p->sets[i]);
        pep_free(p->ls[i].state);
        pep_free(p->ls[i].start);
    }
    for (int i = 0; i < NSERIES; i++) pep_series_free(&p->series[i]);
    pep_optim_fini(&p->opt);
    pep_exchange_destroy(&p->xc.x);
    pep_maml_destroy(&p->mm);
    pep_model_destroy(&p->m);
    pep_spm_destroy(&p->spm);
}

/* The priming languages' training sets and their sampling weights. Collective. */
static int setup_data(struct prime *p)
{
    const struct pep_config *cfg = p->cfg;
    int lrc = pep_run_tokenizer(&p->stg->run, &p->spm);
    for (int i = 0; i < p->nlang && lrc == PEP_OK; i++) {
        lrc = pep_list_item(cfg->data.languages, i, p->names[i], sizeof p->names[i]);
        if (lrc == PEP_OK) lrc = pep_nerset_load(&p->stg->run, p->spm, p->names[i], "train", &p->sets[i]);
    }
    PEP_CALL(pep_mpi_agree(lrc, p->comm));
    const char *cnames[MAX_LANGS];
    for (int i = 0; i < p->nlang; i++) p->sizes[i] = p->sets[i].n, cnames[i] = p->names[i];
    PEP_CALL(pep_task_check_sizes(p->nlang, p->sizes, cnames, cfg->maml.support_size, cfg->maml.query_size));
    pep_task_weights(p->nlang, p->sizes, !strcmp(cfg->maml.sampling, "temperature"), cfg->maml.temperature,
                     p->weights);
    return PEP_OK;
}

/* The model: the pretrained encoder from --init, fresh PE + head; opens the checkpoint to
 * resume from, if any. Collective. */
static int setup_model(struct prime *p)
{
    const struct pep_config *cfg = p->cfg;
    struct pep_run *run = &p->stg->run;
    char tag_names[PEP_TAGS_MAX][PEP_TAG_NAME_MAX];
    int ntags;
    PEP_CALL(pep_run_tags(run, tag_names, PEP_TAGS_MAX, &ntags));
    /* a rank holds its group share of a batch: the first ranks of a group hold the most */
    int maxB = cfg->maml.support_size > cfg->maml.query_size ? cfg->maml.support_size : cfg->maml.query_size;
    maxB = (maxB + p->G - 1) / p->G;
    PEP_CALL(pep_model_spec_from_config(cfg, pep_spm_fairseq_vocab(p->spm), ntags, PEP_HEAD_KIND_TAGGER, maxB,
                                        &p->spec));
    PEP_CALL(pep_model_create(&p->spec, &p->m));
    PEP_CALL(pep_model_set_threads(p->m, p->stg->threads)); /* the sgemm calls on the rank's threads */
    pep_model_init_weights(p->m, (uint64_t)cfg->run.seed, PEP_GROUPS_ALL);
    /* a resume supplies every parameter, so --init is read only for a fresh start; each file is
     * read once, by rank 0, and broadcast */
    PEP_CALL(pep_stage_input_resume(p->comm, run, "prime", &p->rin, &p->found));
    if (run->init[0] && !p->found) {
        PEP_CALL(pep_stage_load_init(p->comm, run->init, p->m, PEP_GROUP_BIT(PEP_GROUP_PLM)));
        if (p->rank == 0) pep_info("prime: pretrained encoder from %s", run->init);
    } else if (run->init[0] && p->rank == 0) {
        pep_info("prime: --init %s not read: %s holds every parameter", run->init, p->rin.path);
    } else if (p->rank == 0) {
        pep_warn("prime: no --init checkpoint given: priming a randomly initialised encoder");
    }
    return PEP_OK;
}

/* MAML over the model, the meta-gradient exchange, this rank's slice of the outer step and the
 * per-task states. Collective. */
static int setup_maml(struct prime *p)
{
    const struct pep_config *cfg = p->cfg;
    PEP_CALL(pep_maml_opts_from_config(cfg, p->m, &p->mo));
    if (cfg->maml.replay_from[0]) {
        PEP_CALL(pep_mpi_agree(pep_run_replay_optim(&p->stg->run, &p->mo.replay), p->comm));
        p->mo.replay_start = cfg->maml.replay_start;
    }
    if (p->G > 1) {
        p->mo.group_sum = pep_mpi_group_sum;
        p->mo.group_ud = &p->grp;
        p->mo.group_lead = p->grp.rank == 0;
    }
    PEP_CALL(pep_maml_create(p->m, &p->mo, &p->mm));
    pep_maml_update_range(p->mm, &p->ub, &p->ue);
    pep_maml_inner_range(p->mm, &p->ib, &p->ie);
    exchange_opts(cfg, p->m, p->ub, p->ue, &p->xo);
    p->xo.shard = cfg->maml.outer_shard;
    p->xc.ub = p->ub;
    p->meta = pep_maml_grad(p->mm);
    PEP_CALL(pep_mpi_agree(pep_exchange_create(p->comm, p->ue - p->ub, &p->xo, &p->xc.x), p->comm));
    pep_exchange_slice(p->xc.x, &p->slo, &p->shi);
    p->sharded = p->shi - p->slo != p->ue - p->ub;
    int orc = pep_optim_from_config(cfg, &p->opt);
    p->opt.threads = p->stg->threads; /* the element-wise step on the rank's threads (BLAS is idle then) */
    if (orc == PEP_OK) orc = pep_optim_init_slice(&p->opt, p->ub, p->ue, p->ub + p->slo, p->ub + p->shi);
    PEP_CALL(pep_mpi_agree(orc, p->comm));
    p->update_groups = p->mo.method == PEP_MAML_METHOD_MULTITASK ? (p->mo.inner | p->mo.outer) : p->mo.outer;
    /* per-task states: the non-PLM part of the inner set (the whole model for inner = all is too big) */
    p->task_groups = p->mo.inner & ~PEP_GROUP_BIT(PEP_GROUP_PLM);
    PEP_CALL(pep_param_table_range(&p->m->table, p->task_groups, &p->tb, &p->te));
    for (int i = 0; i < p->nlang; i++) {
        p->ls[i].owner = -1;
        PEP_ALLOC(p->ls[i].state, p->te - p->tb);
        PEP_ALLOC(p->ls[i].start, p->te - p->tb);
    }
    return PEP_OK;
}

/* Rank 0: what this run primes, and a warning when task groups would sit idle. */
static void print_setup(const struct prime *p)
{
    const struct pep_config *cfg = p->cfg;
    int ngroups = p->grp.count, M = cfg->maml.meta_batch;
    char rules[256];
    inner_rules_text(&p->mo, rules, sizeof rules);
    pep_info("prime: %s, order %d, k = %d, inner rules %s, inner set %s (%zu floats), outer set %s (%zu floats), "
             "meta-batch %d over %d rank%s (%d task group%s of %d), %d languages",
             cfg->maml.method, cfg->maml.order, cfg->maml.inner_steps, rules, cfg->maml.inner_set, p->ie - p->ib,
             cfg->maml.outer_set, p->ue - p->ub, M, p->size, p->size == 1 ? "" : "s", ngroups,
             ngroups == 1 ? "" : "s", p->G, p->nlang);
    if (ngroups <= M) return;
    int better = p->G; /* the smallest group size that leaves no group idle */
    while (better < p->size && (p->size % better || p->size / better > M)) better++;
    pep_warn("prime: %d task groups for a meta-batch of %d tasks: %d group%s idle every meta-step; "
             "maml.group_size = %d would split each task over more ranks instead (docs/scaling.md)",
             ngroups, M, ngroups - M, ngroups - M == 1 ? " stays" : "s stay", better);
}

/* Languages, task groups, model, MAML and the outer step. Collective. */
static int setup(struct prime *p)
{
    const struct pep_config *cfg = p->cfg;
    p->nlang = pep_list_count(cfg->data.languages);
    PEP_CHECK(p->nlang >= 1 && p->nlang <= MAX_LANGS, PEP_ERR_USAGE,
              "data.languages must list between 1 and %d priming languages, got '%s'", MAX_LANGS, cfg->data.languages);
    /* task groups: the same check on every rank, so a bad group size stops all of them alike */
    PEP_CALL(pep_partition_check_groups(p->size, p->G, cfg->maml.meta_batch, cfg->maml.support_size,
                                        cfg->maml.query_size));
    PEP_CALL(pep_mpi_group_split(&p->stg->mpi, p->G, &p->grp));
    PEP_CALL(setup_data(p));
    PEP_CALL(setup_model(p));
    PEP_CALL(setup_maml(p));
    if (p->rank == 0) print_setup(p);
    return PEP_OK;
}

/* Continues from the checkpoint setup found: every parameter, the outer step's moments (this
 * rank's slice of them), the per-task states and the log so far. Collective. */
static int resume(struct prime *p)
{
    if (!p->found) return PEP_OK;
    struct pep_stage_input *in = &p->rin;
    const struct pep_param_table *table = &p->m->table;
    struct pep_optim *opt = &p->opt;
    int64_t t = 0;
    PEP_CALL(pep_stage_input_params(in, table, p->m->params, PEP_GROUPS_ALL));
    if (p->sharded && opt->m) {
        /* one moment at a time, whole, into the meta-gradient block (free until the first
         * task), then this rank's slice of it: a checkpoint written at any P resumes here */
        PEP_CALL(pep_stage_input_moments(in, table, p->meta, NULL, p->update_groups, &t));
        memcpy(opt->m, p->meta + opt->lo, (opt->hi - opt->lo) * sizeof(float));
        PEP_CALL(pep_stage_input_moments(in, table, NULL, p->meta, p->update_groups, &t));
        memcpy(opt->v, p->meta + opt->lo, (opt->hi - opt->lo) * sizeof(float));
    } else {
        PEP_CALL(pep_stage_input_moments(in, table, opt->m - opt->lo, opt->v - opt->lo, p->update_groups, &t));
    }
    opt->t = (long)t;
    p->start = (long)in->step;
    PEP_CALL(resume_tasks(in, p->names, p->nlang, table, p->task_groups, p->ls, p->grp.count, p->G));
    PEP_CALL(pep_stage_input_series(in, p->series, NSERIES));
    pep_stage_input_close(in);
    if (p->rank == 0) pep_info("prime: resumed from %s at meta-step %ld", in->path, p->start);
    return PEP_OK;
}

/* The meta-steps' buffers, this group's tasks, log.csv and the checkpoint description.
 * Collective. */
static int setup_loop(struct prime *p)
{
    const struct pep_config *cfg = p->cfg;
    int S = cfg->maml.support_size, Q = cfg->maml.query_size, T = p->spec.max_T;
    pep_partition_share(p->grp.rank, p->G, S, &p->s0, &p->sn);
    pep_partition_share(p->grp.rank, p->G, Q, &p->q0, &p->qn);
    PEP_CALL(pep_batch_alloc(&p->bs, p->sn, p->sn * T));
    PEP_CALL(pep_batch_alloc(&p->bq, p->qn, p->qn * T));
    PEP_ALLOC(p->sidx, S);
    PEP_ALLOC(p->qidx, Q);
    PEP_ALLOC(p->tasks, 2 * (size_t)p->nlang);
    PEP_CALL(pep_partition_range(p->grp.index, p->grp.count, cfg->maml.meta_batch, &p->tr));
    p->nstats = 3 + 2 * (size_t)p->nlang;
    PEP_ALLOC(p->stats, p->nstats);
    pep_progress_start(&p->prog, "prime", p->start, cfg->optim.steps);
    p->t.start = pep_now_s();
    p->sv = (struct pep_stage_save){.stage = "prime", .run = &p->stg->run, .m = p->m, .groups = PEP_GROUPS_ALL,
                                    .opt = &p->opt, .opt_groups = p->update_groups, .tasks = p->tasks,
                                    .task_groups = p->task_groups, .series = p->series, .nseries = NSERIES,
                                    .rng = {(uint64_t)cfg->run.seed, 0, 0, 0}};
    if (p->sharded) p->sv.opt_gather = gather_moment, p->sv.opt_gather_ud = &p->xc, p->sv.opt_scratch = p->meta;
    PEP_CALL(pep_mpi_agree(pep_stage_csv_open(&p->csv, &p->stg->run, p->series, NSERIES, p->start), p->comm));
    /* a step's time runs from the previous step's log entry to its own, so /log/wall_time's
     * differences are the step times and tokens_per_s * step time = tokens */
    p->t.prev = pep_now_s();
    return PEP_OK;
}

/* Every rank knows which task draws which language: the last task of a language is the episode
 * whose state /tasks keeps (its owner runs it last), so only it reports losses. */
static void find_last_tasks(struct prime *p, long step)
{
    const struct pep_config *cfg = p->cfg;
    for (int l = 0; l < p->nlang; l++) p->last_task[l] = -1;
    for (int t = 0; t < cfg->maml.meta_batch; t++) {
        int l;
        pep_task_draw((uint64_t)cfg->run.seed, step, t, p->nlang, p->sizes, p->weights, cfg->maml.support_size,
                      cfg->maml.query_size, &l, p->sidx, p->qidx);
        p->last_task[l] = t;
    }
}

/* The rows the passes of a task of language l may give gradient: its batches' token ids; with
 * task groups the whole task's (the lead adds the group-summed inner rows, which hold the word
 * embeddings too when maml.inner_set = all). */
static void mark_rows(struct prime *p, int l)
{
    const struct pep_nerset *set = &p->sets[l];
    int S = p->cfg->maml.support_size, Q = p->cfg->maml.query_size;
    if (p->G > 1) {
        for (int q = 0; q < S + Q; q++) {
            int x = q < S ? p->sidx[q] : p->qidx[q - S];
            pep_exchange_mark_rows(p->xc.x, set->ids + (size_t)x * set->T, (size_t)set->len[x]);
        }
    } else {
        pep_exchange_mark_rows(p->xc.x, p->bs.input_ids, (size_t)pep_batch_tokens(&p->bs));
        pep_exchange_mark_rows(p->xc.x, p->bq.input_ids, (size_t)pep_batch_tokens(&p->bq));
    }
}

/* Task i of this group's share of meta-step `step`: its batches, its meta-gradient, its language's
 * state and its losses into the stats. A task group agrees on the status (a rank that failed
 * must not leave the others in the task). */
static int run_task(struct prime *p, long step, int i)
{
    const struct pep_config *cfg = p->cfg;
    int S = cfg->maml.support_size, Q = cfg->maml.query_size, M = cfg->maml.meta_batch;
    int t = pep_task_range_task(&p->tr, i), l;
    pep_task_draw((uint64_t)cfg->run.seed, step, t, p->nlang, p->sizes, p->weights, S, Q, &l, p->sidx, p->qidx);
    pep_heartbeat(step + 1, "task %d of %d (language %s)", t, M, p->names[l]);
    while (fault_here(p->rank, step) && fault_hangs()) sleep(60);
    struct pep_maml_task_result res;
    uint64_t tseed = pep_splitmix64((uint64_t)cfg->run.seed ^ pep_splitmix64((uint64_t)step * 1000003u + (uint64_t)t));
    int trc = pep_nerset_batch(&p->sets[l], p->sidx + p->s0, p->sn, &p->bs);
    if (trc == PEP_OK) trc = pep_nerset_batch(&p->sets[l], p->qidx + p->q0, p->qn, &p->bq);
    p->bs.seq0 = p->s0, p->bq.seq0 = p->q0; /* the whole batch's dropout masks */
    if (p->G > 1) trc = pep_mpi_agree(trc, p->grp.comm);
    if (trc) return trc;
    mark_rows(p, l);
    if (i == p->tr.count - 1 && cfg->maml.exchange_overlap) pep_maml_set_ready(p->mm, exchange_ready, &p->xc);
    trc = pep_maml_task(p->mm, &p->bs, &p->bq, tseed, &res);
    int injected = fault_here(p->rank, step) && !getenv("PEP_FAULT_KILL_IN");
    if (trc == PEP_OK && (injected || !isfinite(res.query_loss)))
        trc = pep_error_set(PEP_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                            "non-finite meta-loss at meta-step %ld, task %d (language %s) on rank %d%s", step + 1, t,
                            p->names[l], p->rank, injected ? " (injected by PEP_FAULT_RANK)" : "");
    if (p->G > 1) trc = pep_mpi_agree(trc, p->grp.comm);
    if (trc) return trc;
    size_t n = p->te - p->tb;
    memcpy(p->ls[l].state, res.adapted + (p->tb - p->ib), n * sizeof(float));
    memcpy(p->ls[l].start, res.start + (p->tb - p->ib), n * sizeof(float));
    p->stats[2] += (double)(pep_batch_tokens(&p->bs) + pep_batch_tokens(&p->bq)); /* this rank's share */
    if (p->grp.rank != 0) return PEP_OK; /* the losses are the whole task's: its group's lead counts them */
    p->stats[0] += res.query_loss;
    p->stats[1] += res.support_loss;
    if (t == p->last_task[l]) { /* one rank contributes each language's losses: the sum is that one */
        p->stats[3 + 2 * l] = res.support_loss;
        p->stats[4 + 2 * l] = res.query_loss;
    }
    return PEP_OK;
}

/* Every rank finishes the exchange, also after a failed task `trc` (its partners have posted
 * their buckets), then all agree. Collective. */
static int finish_exchange(struct prime *p, long step, int trc, int timed)
{
    struct prime_times *t = &p->t;
    struct pep_exchange_stats xs;
    (void)pep_maml_grad(p->mm); /* zeroes it on a rank that ran no task */
    pep_heartbeat_wait(step + 1, "meta-gradient exchange");
    int xrc = pep_exchange_finish(p->xc.x, &xs);
    PEP_CALL(pep_mpi_agree(trc != PEP_OK ? trc : xrc, p->comm));
    t->x_ready += xs.ready_s, t->x_finish += xs.finish_s, t->x_bytes += xs.bytes, t->x_rows += (double)xs.rows;
    if (timed) t->xready += xs.ready_s, t->xfinish += xs.finish_s;
    t->x_buckets += xs.buckets, t->x_early += xs.early;
    return PEP_OK;
}

/* Each language's latest episode: its owner (every rank knows which task ran which language, so
 * ownership needs no message) and, once the stats are summed over all ranks, its losses.
 * Collective. */
static int sum_losses(struct prime *p, long step)
{
    for (int l = 0; l < p->nlang; l++) {
        if (p->last_task[l] < 0) continue;
        p->ls[l].owner = pep_partition_owner(p->last_task[l], p->grp.count) * p->G; /* the group's lead */
        p->ls[l].episode = (int64_t)step * p->cfg->maml.meta_batch + p->last_task[l];
        p->ls[l].step = step + 1;
    }
    pep_heartbeat_wait(-1, "loss sum");
    PEP_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, p->stats, (int)p->nstats, MPI_DOUBLE, MPI_SUM, p->comm));
    pep_heartbeat(-1, "outer step");
    for (int l = 0; l < p->nlang; l++)
        if (p->ls[l].step == step + 1)
            p->ls[l].support_loss = p->stats[3 + 2 * l], p->ls[l].query_loss = p->stats[4 + 2 * l];
    return PEP_OK;
}

/* The outer step on the meta-gradient the exchange summed (on this rank's slice, sharded): one
 * ordered scalar sum of the slices' squared norms for the clip, then the slice's step and the
 * allgather of the weights. Collective. */
static int outer_step(struct prime *p, long step, int timed, double *gnorm)
{
    struct prime_times *t = &p->t;
    double t_o = pep_now_s(), c_o = pep_thread_cpu_s(), hook0 = p->nsc.cpu_s;
    PEP_CALL(pep_optim_step_slice(&p->opt, p->m->params, p->meta, p->sharded ? norm_sum : NULL, &p->nsc, gnorm));
    double t_g = pep_now_s();
    if (timed) t->c_update += pep_thread_cpu_s() - c_o - (p->nsc.cpu_s - hook0);
    if (p->sharded) {
        pep_heartbeat_wait(-1, "weight allgather");
        if (fault_kill_in(p->rank, step, "allgather")) raise(SIGKILL);
        PEP_CALL(pep_exchange_allgather(p->xc.x, NULL, p->m->params + p->ub));
    }
    if (timed) t->update += t_g - t_o, t->gather += pep_now_s() - t_g;
    return PEP_OK;
}

/* The /tasks list a checkpoint would write now: every language drawn so far with its owner,
 * then the inner-loop starts of those drawn since this process started. */
static void list_tasks(struct prime *p)
{
    p->sv.ntasks = fill_tasks(p->tasks, p->ls, p->names, p->nlang, p->rank);
    p->sv.ntasks += fill_starts(p->tasks + p->sv.ntasks, p->ls, p->names, p->nlang, p->rank, p->start);
}

/* The meta-step's row of /log and log.csv, the progress line every run.log_every meta-steps,
 * and a checkpoint when one is due (or a stop signal came). Collective. */
static int log_step(struct prime *p, long step, double lr, double gnorm)
{
    const struct pep_config *cfg = p->cfg;
    struct prime_times *t = &p->t;
    int M = cfg->maml.meta_batch;
    double meta_loss = p->stats[0] / M;
    t->loss_window += meta_loss;
    t->tokens_window += p->stats[2];
    t->window++;
    double now = pep_now_s();
    /* a rank out of memory for its log must not leave the others in the next collective */
    double row[NSERIES] = {(double)(step + 1), meta_loss, p->stats[1] / M, p->stats[2] / (now - t->prev),
                           now - t->start, p->stats[2], lr, gnorm};
    PEP_CALL(pep_mpi_agree(pep_series_push_row(p->series, NSERIES, row), p->comm));
    pep_stage_csv_row(&p->csv, p->series);
    t->prev = now;
    if (p->rank == 0 && ((step + 1) % cfg->run.log_every == 0 || step + 1 == cfg->optim.steps)) {
        char extra[64];
        snprintf(extra, sizeof extra, "grad norm %.3g", gnorm);
        p->prog.total = cfg->optim.steps;
        pep_progress_report(&p->prog, step + 1, t->loss_window / t->window, t->tokens_window, extra);
        t->loss_window = t->tokens_window = 0;
        t->window = 0;
    }
    list_tasks(p);
    PEP_CALL(pep_stage_step_done(p->comm, &p->sv, step + 1, "meta-step"));
    return PEP_OK;
}

/* Meta-step `step` (0-based): this group's tasks, the meta-gradient exchange, the loss sums, the
 * outer step and the log. Collective. */
static int meta_step(struct prime *p, long step)
{
    memset(p->stats, 0, p->nstats * sizeof *p->stats);
    pep_maml_zero(p->mm);
    PEP_CALL(pep_exchange_begin(p->xc.x, p->meta + p->ub)); /* zeroed lazily by the first task */
    find_last_tasks(p, step);
    int trc = PEP_OK;
    double t_task0 = pep_now_s();
    for (int i = 0; i < p->tr.count && trc == PEP_OK; i++) trc = run_task(p, step, i);
    /* the split's times skip this process's first meta-step (first touch of the moments' pages) */
    int timed = step > p->start || p->cfg->optim.steps - p->start == 1;
    if (timed) p->t.tasks += pep_now_s() - t_task0; /* includes the exchange's ready calls inside the backward */
    PEP_CALL(finish_exchange(p, step, trc, timed));
    PEP_CALL(sum_losses(p, step));
    double gnorm, lr = pep_optim_lr_at(&p->opt, p->opt.t);
    PEP_CALL(outer_step(p, step, timed, &gnorm));
    return log_step(p, step, lr, gnorm);
}

/* The last checkpoint after meta-step `step`, linked to <out>/primed.h5 (`path`). Collective. */
static int save_final(struct prime *p, long step, char *path, size_t len)
{
    list_tasks(p);
    p->sv.step = step, p->sv.rng[1] = (uint64_t)step;
    PEP_CALL(pep_run_path(&p->stg->run, "primed.h5", path, len));
    return pep_stage_final(p->comm, path, &p->sv);
}

/* Rank 0: its split of a meta-step (tasks without the exchange's calls inside the backward,
 * exposed exchange, outer step = update + allgather) over the timed meta-steps up to `step`, the
 * slowest rank's outer step and every rank's peak RSS (`all`: 5 values per rank, report_split). */
static void print_split(const struct prime *p, long step, const double *all)
{
    const struct prime_times *t = &p->t;
    double ns = (double)(step - p->start > 1 ? step - p->start - 1 : 1); /* the timed meta-steps */
    char rss[512];
    size_t used = 0;
    double rss_max = 0, up_max = 0, ga_max = 0, cpu_max = 0;
    rss[0] = '\0';
    for (int r = 0; r < p->size; r++) {
        const double *a = all + 5 * r;
        if (used < sizeof rss) used += (size_t)snprintf(rss + used, sizeof rss - used, "%s%.0f", r ? " " : "", a[0]);
        if (a[0] > rss_max) rss_max = a[0];
        if (a[1] > up_max) up_max = a[1];
        if (a[2] > ga_max) ga_max = a[2];
        if (a[4] > cpu_max) cpu_max = a[4];
    }
    pep_info("prime: per meta-step after the first, on rank 0: tasks %.2f ms, exposed exchange %.2f ms, outer step %.2f ms "
             "(update %.2f + allgather %.2f; slowest rank %.2f + %.2f; update CPU time (main thread) %.2f, the most of "
             "any rank %.2f); outer step %s, %zu of %zu floats per rank, its update on %d thread%s, moments %.1f MB "
             "per rank; peak RSS per rank %s MiB (max %.0f)",
             1e3 * (all[3] - t->xready) / ns, 1e3 * (t->xready + t->xfinish) / ns, 1e3 * (all[1] + all[2]) / ns,
             1e3 * all[1] / ns, 1e3 * all[2] / ns, 1e3 * up_max / ns, 1e3 * ga_max / ns, 1e3 * all[4] / ns,
             1e3 * cpu_max / ns, p->sharded ? "sharded" : "replicated", p->shi - p->slo, p->ue - p->ub,
             pep_pool_threads(p->opt.pool), pep_pool_threads(p->opt.pool) == 1 ? "" : "s",
             p->opt.m ? 8e-6 * (double)(p->shi - p->slo) : 0.0, rss, rss_max);
}

/* Every rank's peak RSS and outer-step times to rank 0, which prints the split. Collective. */
static int report_split(const struct prime *p, long step)
{
    const struct prime_times *t = &p->t;
    double mine[5] = {pep_peak_rss_mib(), t->update, t->gather, t->tasks, t->c_update};
    double *all = NULL;
    int rc = PEP_OK;
    PEP_ALLOC(all, 5 * (size_t)p->size);
    PEP_CALL_MPI_GOTO(rc, MPI_Gather(mine, 5, MPI_DOUBLE, all, 5, MPI_DOUBLE, 0, p->comm));
    if (p->rank == 0) print_split(p, step, all);
cleanup:
    pep_free(all);
    return rc;
}

/* Rank 0: the run's time, where the model went, the exchange's share and the task groups' sums. */
static void report_run(const struct prime *p, long step, const char *path)
{
    const struct pep_config *cfg = p->cfg;
    const struct prime_times *t = &p->t;
    double wall = pep_now_s() - t->start, ns = (double)(step - p->start > 0 ? step - p->start : 1);
    pep_info("prime: %ld meta-steps in %.1f s (%.1f ms per meta-step); primed model written to %s", step - p->start,
             wall, 1e3 * wall / ns, path);
    /* rank 0's view; the exposed time includes waiting for slower ranks */
    pep_info("prime: exchange %.1f%% of the time, %.2f ms per meta-step exposed (%.2f in the backward's ready "
             "calls + %.2f finishing), %d of %d buckets started during the backward; %.2f MB per meta-step "
             "summed of %.2f MB dense (%.0f embedding rows, overlap %s, sparse %s, sum %s)",
             100.0 * (t->x_ready + t->x_finish) / wall, 1e3 * (t->x_ready + t->x_finish) / ns, 1e3 * t->x_ready / ns,
             1e3 * t->x_finish / ns, t->x_early, t->x_buckets, t->x_bytes / ns * 1e-6, (double)(p->ue - p->ub) * 4e-6,
             t->x_rows / ns, cfg->maml.exchange_overlap ? "on" : "off", p->xo.nrows ? "on" : "off",
             cfg->maml.exchange_sum);
    if (p->G > 1)
        pep_info("prime: task groups of %d ranks: %.3f MB summed inside rank 0's group per meta-step, %.1f%% of "
                 "the time in those sums",
                 p->G, p->grp.bytes * 1e-6 / ns, 100.0 * p->grp.seconds / wall);
}

static int run_prime(struct pep_stage *stg)
{
    struct prime p;
    char path[PEP_RUN_PATH_MAX];
    int rc = PEP_OK;
    prime_init(&p, stg);
    PEP_CALL_GOTO(rc, setup(&p));
    PEP_CALL_GOTO(rc, resume(&p));
    PEP_CALL_GOTO(rc, setup_loop(&p));
    long step = p.start;
    for (; step < p.cfg->optim.steps; step++) PEP_CALL_GOTO(rc, meta_step(&p, step));
    PEP_CALL_GOTO(rc, save_final(&p, step, path, sizeof path));
    PEP_CALL_GOTO(rc, report_split(&p, step));
    if (p.rank == 0) report_run(&p, step, path);
cleanup:
    prime_fini(&p);
    return rc;
}

int pep_cmd_prime(int argc, char **argv)
{
    struct pep_stage st;
    int rc = pep_stage_begin(&st, "prime", argc - 1, argv + 1);
    if (rc == PEP_OK) rc = run_prime(&st);
    return pep_stage_end(&st, rc);
}
