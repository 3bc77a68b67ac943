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

static int run_prime(struct pep_stage *stg)
{
    struct pep_run *run = &stg->run;
    const struct pep_config *cfg = &run->cfg;
    MPI_Comm comm = stg->mpi.comm;
    int rank = stg->mpi.rank, size = stg->mpi.size;
    int rc = PEP_OK;
    struct pep_spm *spm = NULL;
    struct pep_model *m = NULL;
    struct pep_maml *mm = NULL;
    struct pep_optim opt = {0};
    struct pep_nerset sets[MAX_LANGS];
    struct lang_state ls[MAX_LANGS];
    char names[MAX_LANGS][PEP_LANG_MAX];
    int nlang = pep_list_count(cfg->data.languages);
    int *sidx = NULL, *qidx = NULL;
    struct pep_batch bs = {0}, bq = {0};
    double *all = NULL;   /* rank 0: every rank's peak RSS and times, for the report */
    double *stats = NULL; /* [query sum, support sum, tokens, per language: support, query] */
    struct pep_ckpt_task *tasks = NULL;
    struct pep_mpi_group grp = {.comm = MPI_COMM_NULL};
    struct pep_stage_input rin = {.comm = MPI_COMM_NULL};
    struct exchange_ctx xc = {0};
    struct pep_stage_csv csv = {0};
    struct pep_series series[NSERIES] = {{.name = "step"},         {.name = "meta_loss"}, {.name = "support_loss"},
                                         {.name = "tokens_per_s"}, {.name = "wall_time"}, {.name = "tokens"},
                                         {.name = "lr"},           {.name = "grad_norm"}};
    memset(sets, 0, sizeof sets);
    memset(ls, 0, sizeof ls);
    PEP_CHECK(nlang >= 1 && nlang <= MAX_LANGS, PEP_ERR_USAGE,
              "data.languages must list between 1 and %d priming languages, got '%s'", MAX_LANGS, cfg->data.languages);
    /* task groups: the same check on every rank, so a bad group size stops all of them alike */
    int G = cfg->maml.group_size;
    PEP_CALL(pep_partition_check_groups(size, G, cfg->maml.meta_batch, cfg->maml.support_size, cfg->maml.query_size));
    PEP_CALL(pep_mpi_group_split(&stg->mpi, G, &grp));

    /* data: every rank holds every priming language (tasks pick languages at random) */
    int lrc = pep_run_tokenizer(run, &spm);
    for (int i = 0; i < nlang && lrc == PEP_OK; i++) {
        lrc = pep_list_item(cfg->data.languages, i, names[i], sizeof names[i]);
        if (lrc == PEP_OK) lrc = pep_nerset_load(run, spm, names[i], "train", &sets[i]);
    }
    PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
    int sizes[MAX_LANGS];
    const char *cnames[MAX_LANGS];
    for (int i = 0; i < nlang; i++) sizes[i] = sets[i].n, cnames[i] = names[i];
    PEP_CALL_GOTO(rc, pep_task_check_sizes(nlang, sizes, cnames, cfg->maml.support_size, cfg->maml.query_size));
    float weights[MAX_LANGS];
    pep_task_weights(nlang, sizes, !strcmp(cfg->maml.sampling, "temperature"), cfg->maml.temperature, weights);

    /* model: the pretrained encoder from --init, fresh PE + head */
    char ntag_names[PEP_TAGS_MAX][PEP_TAG_NAME_MAX];
    int ntags;
    PEP_CALL_GOTO(rc, pep_run_tags(run, ntag_names, PEP_TAGS_MAX, &ntags));
    struct pep_model_spec spec;
    /* a rank holds its group share of a batch: the first ranks of a group hold the most */
    int maxB = cfg->maml.support_size > cfg->maml.query_size ? cfg->maml.support_size : cfg->maml.query_size;
    maxB = (maxB + G - 1) / G;
    PEP_CALL_GOTO(rc, pep_model_spec_from_config(cfg, pep_spm_fairseq_vocab(spm), ntags, PEP_HEAD_KIND_TAGGER, maxB,
                                                 &spec));
    PEP_CALL_GOTO(rc, pep_model_create(&spec, &m));
    pep_model_init_weights(m, (uint64_t)cfg->run.seed, PEP_GROUPS_ALL);
    /* a resume supplies every parameter, so --init is read only for a fresh start; each file is
     * read once, by rank 0, and broadcast */
    int found = 0;
    PEP_CALL_GOTO(rc, pep_stage_input_resume(comm, run, "prime", &rin, &found));
    if (run->init[0] && !found) {
        PEP_CALL_GOTO(rc, pep_stage_load_init(comm, run->init, m, PEP_GROUP_BIT(PEP_GROUP_PLM)));
        if (rank == 0) pep_info("prime: pretrained encoder from %s", run->init);
    } else if (run->init[0] && rank == 0) {
        pep_info("prime: --init %s not read: %s holds every parameter", run->init, rin.path);
    } else if (rank == 0) {
        pep_warn("prime: no --init checkpoint given: priming a randomly initialised encoder");
    }

    struct pep_maml_opts mo;
    PEP_CALL_GOTO(rc, pep_maml_opts_from_config(cfg, m, &mo));
    if (cfg->maml.replay_from[0]) {
        PEP_CALL_GOTO(rc, pep_mpi_agree(pep_run_replay_optim(run, &mo.replay), comm));
        mo.replay_start = cfg->maml.replay_start;
    }
    if (G > 1) {
        mo.group_sum = pep_mpi_group_sum;
        mo.group_ud = &grp;
        mo.group_lead = grp.rank == 0;
    }
    PEP_CALL_GOTO(rc, pep_maml_create(m, &mo, &mm));
    size_t ub, ue, ib, ie;
    pep_maml_update_range(mm, &ub, &ue);
    pep_maml_inner_range(mm, &ib, &ie);
    struct pep_exchange_opts xo;
    exchange_opts(cfg, m, ub, ue, &xo);
    xo.shard = cfg->maml.outer_shard;
    xc.ub = ub;
    float *meta = pep_maml_grad(mm); /* the same block every meta-step */
    PEP_CALL_GOTO(rc, pep_mpi_agree(pep_exchange_create(comm, ue - ub, &xo, &xc.x), comm));
    /* this rank's slice of the outer set (all of it on one rank or unsharded) */
    size_t slo, shi;
    pep_exchange_slice(xc.x, &slo, &shi);
    int sharded = shi - slo != ue - ub;
    int orc = pep_optim_from_config(cfg, &opt);
    if (orc == PEP_OK) orc = pep_optim_init_slice(&opt, ub, ue, ub + slo, ub + shi);
    PEP_CALL_GOTO(rc, pep_mpi_agree(orc, comm));
    unsigned update_groups = mo.method == PEP_MAML_METHOD_MULTITASK ? (mo.inner | mo.outer) : mo.outer;
    /* per-task states: the non-PLM part of the inner set (the whole model for inner = all is too big) */
    unsigned task_groups = mo.inner & ~PEP_GROUP_BIT(PEP_GROUP_PLM);
    size_t tb, te;
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, task_groups, &tb, &te));
    for (int i = 0; i < nlang; i++) {
        ls[i].owner = -1;
        PEP_ALLOC_GOTO(rc, ls[i].state, te - tb);
        PEP_ALLOC_GOTO(rc, ls[i].start, te - tb);
    }
    if (rank == 0) {
        size_t n_in = ie - ib, n_up = ue - ub;
        char rules[256];
        inner_rules_text(&mo, rules, sizeof rules);
        pep_info("prime: %s, order %d, k = %d, inner rules %s, inner set %s (%zu floats), outer set %s (%zu floats), "
                 "meta-batch %d over %d rank%s (%d task group%s of %d), %d languages",
                 cfg->maml.method, cfg->maml.order, cfg->maml.inner_steps, rules,
                 cfg->maml.inner_set, n_in, cfg->maml.outer_set, n_up, cfg->maml.meta_batch, size,
                 size == 1 ? "" : "s", grp.count, grp.count == 1 ? "" : "s", G, nlang);
        if (grp.count > cfg->maml.meta_batch) {
            int better = G; /* the smallest group size that leaves no group idle */
            while (better < size && (size % better || size / better > cfg->maml.meta_batch)) better++;
            pep_warn("prime: %d task groups for a meta-batch of %d tasks: %d group%s idle every meta-step; "
                     "maml.group_size = %d would split each task over more ranks instead (docs/scaling.md)",
                     grp.count, cfg->maml.meta_batch, grp.count - cfg->maml.meta_batch,
                     grp.count - cfg->maml.meta_batch == 1 ? " stays" : "s stay", better);
        }
    }

    /* resume */
    long start = 0;
    if (found) {
        int64_t t = 0;
        PEP_CALL_GOTO(rc, pep_stage_input_params(&rin, &m->table, m->params, PEP_GROUPS_ALL));
        if (sharded && opt.m) {
            /* one moment at a time, whole, into the meta-gradient block (free until the first
             * task), then this rank's slice of it: a checkpoint written at any P resumes here */
            PEP_CALL_GOTO(rc, pep_stage_input_moments(&rin, &m->table, meta, NULL, update_groups, &t));
            memcpy(opt.m, meta + opt.lo, (opt.hi - opt.lo) * sizeof(float));
            PEP_CALL_GOTO(rc, pep_stage_input_moments(&rin, &m->table, NULL, meta, update_groups, &t));
            memcpy(opt.v, meta + opt.lo, (opt.hi - opt.lo) * sizeof(float));
        } else {
            PEP_CALL_GOTO(rc, pep_stage_input_moments(&rin, &m->table, opt.m - opt.lo, opt.v - opt.lo, update_groups, &t));
        }
        opt.t = (long)t;
        start = (long)rin.step;
        PEP_CALL_GOTO(rc, resume_tasks(&rin, names, nlang, &m->table, task_groups, ls, grp.count, G));
        PEP_CALL_GOTO(rc, pep_stage_input_series(&rin, series, NSERIES));
        pep_stage_input_close(&rin);
        if (rank == 0) pep_info("prime: resumed from %s at meta-step %ld", rin.path, start);
    }

    int S = cfg->maml.support_size, Q = cfg->maml.query_size, M = cfg->maml.meta_batch, T = spec.max_T;
    /* this rank's contiguous share of every task's support and query sentences */
    int s0, sn, q0, qn;
    pep_partition_share(grp.rank, G, S, &s0, &sn);
    pep_partition_share(grp.rank, G, Q, &q0, &qn);
    PEP_CALL_GOTO(rc, pep_batch_alloc(&bs, sn, sn * T));
    PEP_CALL_GOTO(rc, pep_batch_alloc(&bq, qn, qn * T));
    PEP_ALLOC_GOTO(rc, sidx, S);
    PEP_ALLOC_GOTO(rc, qidx, Q);
    PEP_ALLOC_GOTO(rc, tasks, 2 * (size_t)nlang);
    struct pep_task_range tr; /* round-robin over the groups */
    PEP_CALL_GOTO(rc, pep_partition_range(grp.index, grp.count, M, &tr));
    size_t nstats = 3 + 2 * (size_t)nlang;
    int last_task[MAX_LANGS]; /* per language: the meta-batch's last task of it, -1 if none */
    PEP_ALLOC_GOTO(rc, stats, nstats);
    struct pep_progress prog;
    pep_progress_start(&prog, "prime", start, cfg->optim.steps);
    double t_start = pep_now_s(), tokens_window = 0, loss_window = 0;
    double x_ready = 0, x_finish = 0, x_bytes = 0, x_rows = 0; /* exchange totals over the run */
    double t_tasks = 0, t_update = 0, t_gather = 0; /* this rank's seconds in tasks, its slice's step, the allgather */
    double t_xready = 0, t_xfinish = 0; /* the exchange's, over the same meta-steps */
    double c_update = 0; /* CPU seconds of the slice's step (sum of squares + update), without the norm's sum */
    struct norm_sum_ctx nsc = {.mpi = &stg->mpi};
    int x_buckets = 0, x_early = 0;
    int window = 0;
    long step = start;
    struct pep_stage_save sv = {.stage = "prime", .run = run, .m = m, .groups = PEP_GROUPS_ALL, .opt = &opt,
                                .opt_groups = update_groups, .tasks = tasks, .task_groups = task_groups,
                                .series = series, .nseries = NSERIES, .rng = {(uint64_t)cfg->run.seed, 0, 0, 0}};
    if (sharded) sv.opt_gather = gather_moment, sv.opt_gather_ud = &xc, sv.opt_scratch = meta;
    PEP_CALL_GOTO(rc, pep_mpi_agree(pep_stage_csv_open(&csv, run, series, NSERIES, start), comm));
    /* a step's time runs from the previous step's log entry to its own, so /log/wall_time's
     * differences are the step times and tokens_per_s * step time = tokens */
    double t_prev = pep_now_s();
    for (; step < cfg->optim.steps; step++) {
        memset(stats, 0, nstats * sizeof *stats);
        pep_maml_zero(mm);
        PEP_CALL_GOTO(rc, pep_exchange_begin(xc.x, meta + ub)); /* zeroed lazily by the first task */
        /* every rank knows which task draws which language: the last task of a language is the
         * episode whose state /tasks keeps (its owner runs it last), so only it reports losses */
        for (int l = 0; l < nlang; l++) last_task[l] = -1;
        for (int t = 0; t < M; t++) {
            int l;
            pep_task_draw((uint64_t)cfg->run.seed, step, t, nlang, sizes, weights, S, Q, &l, sidx, qidx);
            last_task[l] = t;
        }
        int trc = PEP_OK;
        double t_task0 = pep_now_s();
        for (int i = 0; i < tr.count && trc == PEP_OK; i++) {
            int t = pep_task_range_task(&tr, i), l;
            pep_task_draw((uint64_t)cfg->run.seed, step, t, nlang, sizes, weights, S, Q, &l, sidx, qidx);
            pep_heartbeat(step + 1, "task %d of %d (language %s)", t, M, names[l]);
            while (fault_here(rank, step) && fault_hangs()) sleep(60);
            struct pep_maml_task_result res;
            uint64_t tseed = pep_splitmix64((uint64_t)cfg->run.seed ^ pep_splitmix64((uint64_t)step * 1000003u + (uint64_t)t));
            trc = pep_nerset_batch(&sets[l], sidx + s0, sn, &bs);
            if (trc == PEP_OK) trc = pep_nerset_batch(&sets[l], qidx + q0, qn, &bq);
            bs.seq0 = s0, bq.seq0 = q0; /* the whole batch's dropout masks */
            /* a group runs the task together: a rank that failed must not leave the others in it */
            if (G > 1) trc = pep_mpi_agree(trc, grp.comm);
            if (trc) break;
            /* the rows this task's passes may give gradient: its batches' token ids; with task groups
             * the whole task's (the lead adds the group-summed inner rows, which hold the word
             * embeddings too when maml.inner_set = all) */
            if (G > 1) {
                for (int q = 0; q < S + Q; q++) {
                    int x = q < S ? sidx[q] : qidx[q - S];
                    pep_exchange_mark_rows(xc.x, sets[l].ids + (size_t)x * sets[l].T, (size_t)sets[l].len[x]);
                }
            } else {
                pep_exchange_mark_rows(xc.x, bs.input_ids, (size_t)pep_batch_tokens(&bs));
                pep_exchange_mark_rows(xc.x, bq.input_ids, (size_t)pep_batch_tokens(&bq));
            }
            if (i == tr.count - 1 && cfg->maml.exchange_overlap) pep_maml_set_ready(mm, exchange_ready, &xc);
            trc = pep_maml_task(mm, &bs, &bq, tseed, &res);
            int injected = fault_here(rank, step) && !getenv("PEP_FAULT_KILL_IN");
            if (trc == PEP_OK && (injected || !isfinite(res.query_loss)))
                trc = pep_error_set(PEP_ERR_NUMERIC, __FILE__, __LINE__, __func__,
                                    "non-finite meta-loss at meta-step %ld, task %d (language %s) on rank %d%s", step + 1,
                                    t, names[l], rank, injected ? " (injected by PEP_FAULT_RANK)" : "");
            if (G > 1) trc = pep_mpi_agree(trc, grp.comm);
            if (trc) break;
            memcpy(ls[l].state, res.adapted + (tb - ib), (te - tb) * sizeof(float));
            memcpy(ls[l].start, res.start + (tb - ib), (te - tb) * sizeof(float));
            stats[2] += (double)(pep_batch_tokens(&bs) + pep_batch_tokens(&bq)); /* this rank's share */
            if (grp.rank != 0) continue; /* the losses are the whole task's: its group's lead counts them */
            stats[0] += res.query_loss;
            stats[1] += res.support_loss;
            if (t == last_task[l]) { /* one rank contributes each language's losses: the sum is that one */
                stats[3 + 2 * l] = res.support_loss;
                stats[4 + 2 * l] = res.query_loss;
            }
        }
        /* every rank finishes the exchange, also after a failed task (its partners have posted
         * their buckets), then all agree */
        struct pep_exchange_stats xs;
        /* the split's times skip this process's first meta-step (first touch of the moments' pages) */
        int timed = step > start || cfg->optim.steps - start == 1;
        if (timed) t_tasks += pep_now_s() - t_task0; /* includes the exchange's ready calls inside the backward */
        (void)pep_maml_grad(mm); /* zeroes it on a rank that ran no task */
        pep_heartbeat_wait(step + 1, "meta-gradient exchange");
        int xrc = pep_exchange_finish(xc.x, &xs);
        PEP_CALL_GOTO(rc, pep_mpi_agree(trc != PEP_OK ? trc : xrc, comm));
        x_ready += xs.ready_s, x_finish += xs.finish_s, x_bytes += xs.bytes, x_rows += (double)xs.rows;
        if (timed) t_xready += xs.ready_s, t_xfinish += xs.finish_s;
        x_buckets += xs.buckets, x_early += xs.early;
        /* every rank knows which task ran which language, so ownership needs no message */
        for (int l = 0; l < nlang; l++) {
            if (last_task[l] < 0) continue;
            ls[l].owner = pep_partition_owner(last_task[l], grp.count) * G; /* the group's lead */
            ls[l].episode = (int64_t)step * M + last_task[l];
            ls[l].step = step + 1;
        }
        pep_heartbeat_wait(-1, "loss sum");
        PEP_CALL_MPI_GOTO(rc, MPI_Allreduce(MPI_IN_PLACE, stats, (int)nstats, MPI_DOUBLE, MPI_SUM, comm));
        pep_heartbeat(-1, "outer step");
        for (int l = 0; l < nlang; l++)
            if (ls[l].step == step + 1) ls[l].support_loss = stats[3 + 2 * l], ls[l].query_loss = stats[4 + 2 * l];
        double gnorm, lr = pep_optim_lr_at(&opt, opt.t);
        /* the meta-gradient summed by the exchange (on this rank's slice, sharded); one ordered
         * scalar sum of the slices' squared norms for the clip, then the slice's step and the
         * allgather of the weights */
        double t_o = pep_now_s(), c_o = pep_thread_cpu_s(), hook0 = nsc.cpu_s;
        PEP_CALL_GOTO(rc, pep_optim_step_slice(&opt, m->params, meta, sharded ? norm_sum : NULL, &nsc, &gnorm));
        double t_g = pep_now_s();
        if (timed) c_update += pep_thread_cpu_s() - c_o - (nsc.cpu_s - hook0);
        if (sharded) {
            pep_heartbeat_wait(-1, "weight allgather");
            if (fault_kill_in(rank, step, "allgather")) raise(SIGKILL);
            PEP_CALL_GOTO(rc, pep_exchange_allgather(xc.x, NULL, m->params + ub));
        }
        if (timed) t_update += t_g - t_o, t_gather += pep_now_s() - t_g;
        double meta_loss = stats[0] / M;
        loss_window += meta_loss;
        tokens_window += stats[2];
        window++;
        double now = pep_now_s();
        /* a rank out of memory for its log must not leave the others in the next collective */
        double row[NSERIES] = {(double)(step + 1), meta_loss, stats[1] / M, stats[2] / (now - t_prev), now - t_start,
                               stats[2], lr, gnorm};
        PEP_CALL_GOTO(rc, pep_mpi_agree(pep_series_push_row(series, NSERIES, row), comm));
        pep_stage_csv_row(&csv, series);
        t_prev = now;
        if (rank == 0 && ((step + 1) % cfg->run.log_every == 0 || step + 1 == cfg->optim.steps)) {
            char extra[64];
            snprintf(extra, sizeof extra, "grad norm %.3g", gnorm);
            prog.total = cfg->optim.steps;
            pep_progress_report(&prog, step + 1, loss_window / window, tokens_window, extra);
            loss_window = tokens_window = 0;
            window = 0;
        }
        sv.ntasks = fill_tasks(tasks, ls, names, nlang, rank); /* the /tasks list a checkpoint would write */
        sv.ntasks += fill_starts(tasks + sv.ntasks, ls, names, nlang, rank, start);
        PEP_CALL_GOTO(rc, pep_stage_step_done(comm, &sv, step + 1, "meta-step"));
    }
    sv.ntasks = fill_tasks(tasks, ls, names, nlang, rank);
    sv.ntasks += fill_starts(tasks + sv.ntasks, ls, names, nlang, rank, start);
    sv.step = step, sv.rng[1] = (uint64_t)step;
    char path[PEP_RUN_PATH_MAX];
    PEP_CALL_GOTO(rc, pep_run_path(run, "primed.h5", path, sizeof path));
    PEP_CALL_GOTO(rc, pep_stage_final(comm, path, &sv));
    /* per-rank peak RSS and outer-step times to rank 0 for the report */
    double mine[5] = {pep_peak_rss_mib(), t_update, t_gather, t_tasks, c_update};
    PEP_ALLOC_GOTO(rc, all, 5 * (size_t)size);
    PEP_CALL_MPI_GOTO(rc, MPI_Gather(mine, 5, MPI_DOUBLE, all, 5, MPI_DOUBLE, 0, comm));
    if (rank == 0) {
        double ns = (double)(step - start > 1 ? step - start - 1 : 1); /* the timed meta-steps */
        char rss[512];
        size_t used = 0;
        double rss_max = 0, up_max = 0, ga_max = 0, cpu_max = 0;
        rss[0] = '\0';
        for (int r = 0; r < size; r++) {
            const double *a = all + 5 * r;
            if (used < sizeof rss) used += (size_t)snprintf(rss + used, sizeof rss - used, "%s%.0f", r ? " " : "", a[0]);
            if (a[0] > rss_max) rss_max = a[0];
            if (a[1] > up_max) up_max = a[1];
            if (a[2] > ga_max) ga_max = a[2];
            if (a[4] > cpu_max) cpu_max = a[4];
        }
        /* rank 0's split of a meta-step: tasks (without the exchange's calls inside the backward),
         * exposed exchange, outer step (update + allgather) */
        pep_info("prime: per meta-step after the first, on rank 0: tasks %.2f ms, exposed exchange %.2f ms, outer step %.2f ms "
                 "(update %.2f + allgather %.2f; slowest rank %.2f + %.2f; update CPU time %.2f, the most of any rank "
                 "%.2f); outer step %s, %zu of %zu floats per rank, moments %.1f MB per rank; peak RSS per rank %s MiB "
                 "(max %.0f)",
                 1e3 * (all[3] - t_xready) / ns, 1e3 * (t_xready + t_xfinish) / ns, 1e3 * (all[1] + all[2]) / ns,
                 1e3 * all[1] / ns, 1e3 * all[2] / ns, 1e3 * up_max / ns, 1e3 * ga_max / ns, 1e3 * all[4] / ns,
                 1e3 * cpu_max / ns,
                 sharded ? "sharded" : "replicated", shi - slo, ue - ub, opt.m ? 8e-6 * (double)(shi - slo) : 0.0,
                 rss, rss_max);
    }
    if (rank == 0) {
        double wall = pep_now_s() - t_start, ns = (double)(step - start > 0 ? step - start : 1);
        pep_info("prime: %ld meta-steps in %.1f s (%.1f ms per meta-step); primed model written to %s", step - start,
                 wall, 1e3 * wall / ns, path);
        /* rank 0's view; the exposed time includes waiting for slower ranks */
        pep_info("prime: exchange %.1f%% of the time, %.2f ms per meta-step exposed (%.2f in the backward's ready "
                 "calls + %.2f finishing), %d of %d buckets started during the backward; %.2f MB per meta-step "
                 "summed of %.2f MB dense (%.0f embedding rows, overlap %s, sparse %s, sum %s)",
                 100.0 * (x_ready + x_finish) / wall, 1e3 * (x_ready + x_finish) / ns, 1e3 * x_ready / ns,
                 1e3 * x_finish / ns, x_early, x_buckets, x_bytes / ns * 1e-6, (double)(ue - ub) * 4e-6, x_rows / ns,
                 cfg->maml.exchange_overlap ? "on" : "off", xo.nrows ? "on" : "off", cfg->maml.exchange_sum);
        if (G > 1)
            pep_info("prime: task groups of %d ranks: %.3f MB summed inside rank 0's group per meta-step, %.1f%% of "
                     "the time in those sums",
                     G, grp.bytes * 1e-6 / ns, 100.0 * grp.seconds / wall);
    }
cleanup:
    pep_free(all);
    pep_stage_csv_close(&csv);
    pep_stage_input_close(&rin);
    pep_mpi_group_free(&grp);
    pep_free(stats);
    pep_batch_free(&bs);
    pep_batch_free(&bq);
    pep_free(sidx);
    pep_free(qidx);
    pep_free(tasks);
    for (int i = 0; i < MAX_LANGS; i++) {
        pep_nerset_free(&sets[i]);
        pep_free(ls[i].state);
        pep_free(ls[i].start);
    }
    for (int i = 0; i < NSERIES; i++) pep_series_free(&series[i]);
    pep_optim_fini(&opt);
    pep_exchange_destroy(&xc.x);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
    pep_spm_destroy(&spm);
    return rc;
}

int pep_cmd_prime(int argc, char **argv)
{
    struct pep_stage st;
    int rc = pep_stage_begin(&st, "prime", argc - 1, argv + 1);
    if (rc == PEP_OK) rc = run_prime(&st);
    return pep_stage_end(&st, rc);
}
