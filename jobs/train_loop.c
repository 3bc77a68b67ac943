/* The training-step loop shared by pretrain and finetune (train_loop.h). */
#include "train_loop.h"

#include <string.h>

#include "core/error.h"
#include "core/partition.h"
#include "core/rng.h"
#include "watchdog.h"

enum { COL_STEP, COL_LOSS, COL_WALL, COL_TOKENS, COL_TOKENS_PER_S, COL_LR, COL_GRAD_NORM, COL_EVAL, NCOLS };

int pep_train_loop_micro_batch(const struct pep_config *cfg, int size)
{
    int LB = (cfg->optim.batch_size + size - 1) / size, NA = cfg->optim.accumulate < LB ? cfg->optim.accumulate : LB;
    return (LB + NA - 1) / NA;
}

/* Which of the loop's values each of the stage's series takes. */
static int map_series(const struct pep_train_loop *tl, int *col)
{
    static const char *const names[NCOLS - 1] = {"step",         "loss", "wall_time", "tokens",
                                                 "tokens_per_s", "lr",   "grad_norm"};
    for (int i = 0; i < tl->nseries; i++) {
        col[i] = -1;
        for (int c = 0; c < NCOLS - 1; c++)
            if (!strcmp(tl->series[i].name, names[c])) col[i] = c;
        if (tl->eval_series && !strcmp(tl->series[i].name, tl->eval_series)) col[i] = COL_EVAL;
        PEP_CHECK(col[i] >= 0, PEP_ERR_USAGE, "%s: the training loop has no value for the log series '%s'", tl->stage,
                  tl->series[i].name);
    }
    return PEP_OK;
}

/* Gradient accumulation: forward + backward of this rank's slice `b` (prepared) in `na`
 * micro-batches of consecutive sentences copied into `mb`. Each backward takes its share of
 * the slice's mean over all its targets (pep_model_backward_share), so the accumulated gradient
 * is the one-pass gradient of the slice to float rounding; each micro-batch keeps the slice's
 * sequence numbers (seq0) and dropout seed, so its dropout masks are the ones the slice would
 * draw. *loss = the slice's mean loss over its targets, *ntargets their number. */
static int accumulate_slice(const struct pep_train_loop *tl, const struct pep_batch *b, struct pep_batch *mb, int na,
                            uint64_t dropout_seed, double *loss, int *ntargets)
{
    int n = 0, seen = 0;
    double sum = 0;
    for (int i = 0; i < pep_batch_tokens(b); i++) n += b->labels[i] != PEP_IGNORE_INDEX;
    for (int k = 0; k < na; k++) {
        int first, count;
        pep_partition_share(k, na, b->nseq, &first, &count);
        if (count == 0) continue;
        pep_batch_clear(mb);
        for (int q = first; q < first + count; q++)
            PEP_CALL(pep_batch_append(mb, b->input_ids + b->offsets[q], b->labels + b->offsets[q], pep_batch_len(b, q)));
        mb->seq0 = b->seq0 + first;
        float l = 0.0f;
        PEP_CALL(pep_model_forward(tl->m, mb, 1, dropout_seed, &l));
        PEP_CALL(pep_model_backward_share(tl->m, tl->groups, n));
        int nk = pep_model_ntargets(tl->m);
        sum += (double)l * nk, seen += nk;
    }
    PEP_CHECK(seen == n, PEP_ERR_INTERNAL, "%s: the micro-batches held %d targets, the slice %d", tl->stage, seen, n);
    *loss = n > 0 ? sum / n : 0.0, *ntargets = n;
    return PEP_OK;
}

int pep_train_loop_run(struct pep_stage *stg, const struct pep_train_loop *tl, long start, long *end)
{
    const struct pep_config *cfg = &stg->run.cfg;
    MPI_Comm comm = stg->mpi.comm;
    int rank = stg->mpi.rank, size = stg->mpi.size, rc = PEP_OK, lrc = PEP_OK;
    struct pep_model *m = tl->m;
    size_t gb = tl->opt->begin, ge = tl->opt->end; /* the trained float range */
    int GB = cfg->optim.batch_size, LB = (GB + size - 1) / size; /* global batch, per-rank share */
    int NA = cfg->optim.accumulate < LB ? cfg->optim.accumulate : LB; /* micro-batches per rank and step */
    int MB = pep_train_loop_micro_batch(cfg, size);                   /* the most sentences of one */
    int eval_every = cfg->optim.eval_every > 0 ? cfg->optim.eval_every : cfg->optim.steps;
    int col[64], *idx = NULL;
    struct pep_batch b = {0}, mb = {0};
    struct pep_stage_csv csv = {0};
    long total = 0, step = start;
    *end = start;
    PEP_CHECK(tl->nseries <= 64, PEP_ERR_USAGE, "%s: more than 64 log series", tl->stage);
    PEP_CALL(map_series(tl, col));
    for (int i = 0; i < tl->nsets; i++) total += tl->sets[i].n;
    PEP_CALL_GOTO(rc, pep_batch_alloc(&b, LB, LB * m->spec.max_T));
    if (NA > 1) PEP_CALL_GOTO(rc, pep_batch_alloc(&mb, MB, MB * m->spec.max_T));
    PEP_ALLOC_GOTO(rc, idx, (size_t)GB);
    PEP_CALL_GOTO(rc, pep_mpi_agree(pep_stage_csv_open(&csv, &stg->run, tl->series, tl->nseries, start), comm));
    if (rank == 0 && cfg->optim.accumulate > 1)
        pep_info("%s: gradient accumulation: each rank's %d of the batch of %d in %d micro-batches of up to %d "
                 "sentences%s", tl->stage, LB, GB, NA, MB,
                 NA < cfg->optim.accumulate ? " (optim.accumulate is more than a rank's sentences)" : "");
    struct pep_progress prog;
    pep_progress_start(&prog, tl->stage, start, cfg->optim.steps);
    double t0 = pep_now_s(), loss_win = 0, tok_win = 0;
    int win = 0;
    /* a step's time runs from the previous step's log entry to the end of its optimizer step
     * (an evaluation is not part of it), so outside evaluation steps /log/wall_time's
     * differences are the step times and tokens_per_s * step time = tokens */
    double t_prev = t0;
    for (; step < cfg->optim.steps; step++) {
        /* the global batch is a function of (seed, step): one language (by data size), then
         * GB of its sentences; rank r takes its slice */
        struct pep_rng r;
        pep_rng_seed(&r, (uint64_t)cfg->run.seed, (uint64_t)step, tl->stream);
        int lang = 0;
        for (long pick = (long)pep_rng_below(&r, (uint64_t)total); pick >= tl->sets[lang].n; lang++)
            pick -= tl->sets[lang].n;
        for (int i = 0; i < GB; i++) idx[i] = (int)pep_rng_below(&r, (uint64_t)tl->sets[lang].n);
        int lo = rank * LB, hi = lo + LB < GB ? lo + LB : GB;
        pep_heartbeat(step + 1, "forward and backward");
        /* each rank's loss is a mean over its own targets (pep_model_forward): weighting it by
         * their number makes the sum over ranks the batch's mean, the same on any rank count */
        double weight = 0, sums[3] = {0, 0, 0}; /* loss x targets, targets, tokens */
        pep_model_zero_grad(m, tl->groups);
        lrc = PEP_OK;
        if (hi > lo && NA == 1) {
            float loss = 0.0f;
            lrc = pep_nerset_batch(&tl->sets[lang], idx + lo, hi - lo, &b);
            b.seq0 = lo; /* the slice's place in the batch: its dropout masks on any rank count */
            if (lrc == PEP_OK && tl->prepare) lrc = tl->prepare(tl->ud, &b, step);
            if (lrc == PEP_OK) lrc = pep_model_forward(m, &b, 1, tl->dropout_seed(tl->ud, step), &loss);
            if (lrc == PEP_OK) lrc = pep_model_backward(m, tl->groups);
            weight = (double)pep_model_ntargets(m);
            sums[0] = (double)loss * weight, sums[1] = weight, sums[2] = pep_batch_tokens(&b);
        } else if (hi > lo) {
            double loss = 0.0;
            int ntargets = 0;
            lrc = pep_nerset_batch(&tl->sets[lang], idx + lo, hi - lo, &b);
            b.seq0 = lo;
            if (lrc == PEP_OK && tl->prepare) lrc = tl->prepare(tl->ud, &b, step);
            if (lrc == PEP_OK) lrc = accumulate_slice(tl, &b, &mb, NA, tl->dropout_seed(tl->ud, step), &loss, &ntargets);
            weight = (double)ntargets;
            sums[0] = loss * weight, sums[1] = weight, sums[2] = pep_batch_tokens(&b);
        }
        pep_heartbeat_wait(-1, "gradient sum");
        PEP_CALL_GOTO(rc, pep_mpi_agree(lrc, comm));
        PEP_CALL_MPI_GOTO(rc, MPI_Allreduce(MPI_IN_PLACE, sums, 3, MPI_DOUBLE, MPI_SUM, comm));
        if (size > 1) {
            /* each rank's gradient is a mean over its own targets: weight it by its share of
             * them, then sum over the ranks */
            float share = sums[1] > 0 ? (float)(weight / sums[1]) : 0.0f;
            for (size_t i = gb; i < ge; i++) m->grads[i] *= share;
            PEP_CALL_GOTO(rc, pep_mpi_reduce_grad(m->grads + gb, ge - gb, &stg->mpi));
        }
        pep_heartbeat(-1, "optimizer step");
        double lr = pep_optim_lr_at(tl->opt, tl->opt->t), gnorm = 0.0;
        lrc = pep_optim_step(tl->opt, m->params, m->grads, &gnorm);
        if (lrc) {
            pep_error_clear();
            PEP_CHECK_GOTO(rc, 0, PEP_ERR_NUMERIC,
                           "non-finite gradient at %s step %ld: lower optim.lr or raise optim.warmup", tl->stage,
                           step + 1);
        }
        double t_done = pep_now_s(), loss = sums[1] > 0 ? sums[0] / sums[1] : 0.0, score = -1.0;
        loss_win += loss;
        tok_win += sums[2];
        win++;
        double now = t_done;
        if (tl->eval && ((step + 1) % eval_every == 0 || step + 1 == cfg->optim.steps)) {
            pep_heartbeat(-1, "evaluation");
            PEP_CALL_GOTO(rc, tl->eval(tl->ud, step + 1, &score));
            now = pep_now_s();
        }
        double value[NCOLS] = {(double)(step + 1), loss, now - t0, sums[2], sums[2] / (t_done - t_prev), lr, gnorm,
                               score};
        double row[64];
        for (int i = 0; i < tl->nseries; i++) row[i] = value[col[i]];
        /* a rank out of memory for its log must not leave the others in the next collective */
        PEP_CALL_GOTO(rc, pep_mpi_agree(pep_series_push_row(tl->series, tl->nseries, row), comm));
        pep_stage_csv_row(&csv, tl->series);
        t_prev = now;
        if (rank == 0 && ((step + 1) % cfg->run.log_every == 0 || step + 1 == cfg->optim.steps)) {
            pep_progress_report(&prog, step + 1, loss_win / win, tok_win, NULL);
            loss_win = tok_win = 0;
            win = 0;
        }
        PEP_CALL_GOTO(rc, pep_stage_step_done(comm, tl->save, step + 1, "step"));
    }
cleanup:
    *end = step;
    pep_stage_csv_close(&csv);
    pep_batch_free(&b);
    pep_batch_free(&mb);
    pep_free(idx);
    return rc;
}
