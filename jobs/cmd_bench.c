/* `peprime bench encoder|maml|outer|sgemm`: fwd+bwd throughput of the encoder and MAML meta-steps on
 * synthetic full-length batches or real WikiAnn sentences (--data, no padding: tokens/s
 * counts real tokens), printed as tokens/s, GFLOP/s, ms/step, pad fraction and peak RSS, one
 * human line and one JSON line per run; the outer optimizer step alone on 1 and T threads; and
 * the sgemm ceiling of an encoder step. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>

#include "core/clock.h"
#include "core/gemm.h"
#include "core/error.h"
#include "core/rng.h"
#include "jobs.h"
#include "maml/maml.h"
#include "model/model.h"
#include "nerdata.h"
#include "optim/optim.h"
#include "spm_file.h"

double pep_peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

int pep_bench_shape(const char *name, struct pep_model_spec *s, int *B, int *T)
{
    memset(s, 0, sizeof *s);
    s->type_vocab = 1, s->ntags = 7, s->ln_eps = 1e-5f, s->init_std = 0.02f;
    s->head = PEP_HEAD_KIND_TAGGER, s->pe = PEP_PE_METHOD_ADAPTER, s->placement = PEP_ADAPTER_PLACEMENT_PFEIFFER;
    s->adapter_act = PEP_ACTIVATION_RELU;
    s->prefix_len = 30, s->prefix_hidden = 512, s->lora_rank = 8, s->lora_alpha = 16;
    if (!strcmp(name, "tiny")) {
        s->L = 4, s->C = 256, s->NH = 4, s->FF = 1024, s->V = 16000, *T = 64, *B = 16;
    } else if (!strcmp(name, "base")) {
        s->L = 12, s->C = 768, s->NH = 12, s->FF = 3072, s->V = 250002, *T = 128, *B = 8;
    } else {
        PEP_FAIL(PEP_ERR_USAGE, "unknown benchmark shape '%s' (valid: tiny, base)", name);
    }
    s->bottleneck = s->C / 16;
    s->max_T = *T, s->max_B = *B, s->max_positions = 514 > *T + 2 ? 514 : *T + 2;
    return PEP_OK;
}

/* B full-length sequences of T random ids and tags (the synthetic batches). */
static int random_batch(struct pep_batch *b, int B, int T, int V, int ntags, uint64_t seed)
{
    PEP_CHECK(B <= b->cap_seqs && (size_t)B * T <= (size_t)b->cap_tokens, PEP_ERR_INTERNAL,
              "bench batch storage too small for %d x %d", B, T);
    struct pep_rng r;
    pep_rng_seed(&r, seed, 1, 2);
    b->nseq = B;
    for (int i = 0; i < B; i++) b->offsets[i + 1] = (i + 1) * T;
    for (int i = 0; i < B * T; i++) {
        b->input_ids[i] = 4 + (int)pep_rng_below(&r, (uint64_t)V - 5);
        b->labels[i] = (int)pep_rng_below(&r, (uint64_t)ntags);
    }
    return PEP_OK;
}

/* Where the benchmark batches come from: synthetic full-length ones, or (--data LANG
 * --tokenizer FILE) seeded random draws of sentences from LANG's WikiAnn train split
 * ($PEPRIME_DATA), tokenized with FILE and cut at the shape's T. */
struct bench_source {
    const char *lang, *tokenizer, *dump; /* NULL: synthetic; dump: file naming every drawn sentence */
    struct pep_spm *spm;
    struct pep_nerset set;
    FILE *df;
    int V, ntags, T;
    long tokens, padded; /* real tokens drawn, and what padding each batch to its longest would make */
};

static int source_open(struct bench_source *src, struct pep_model_spec *s, int T)
{
    src->T = T;
    src->V = s->V, src->ntags = s->ntags;
    if (!src->lang) {
        PEP_CHECK(!src->tokenizer && !src->dump, PEP_ERR_USAGE, "bench: --tokenizer and --dump go with --data LANG");
        return PEP_OK;
    }
    PEP_CHECK(src->tokenizer, PEP_ERR_USAGE, "bench: --data %s needs --tokenizer FILE (a SentencePiece .model, e.g. from "
              "`peprime tokenizer train`)", src->lang);
    PEP_CALL(pep_spm_read_file(src->tokenizer, &src->spm));
    struct pep_run run;
    memset(&run, 0, sizeof run);
    run.stage = "bench", run.size = 1;
    pep_config_defaults(&run.cfg);
    run.cfg.model.max_seq_len = T;
    PEP_CALL(pep_nerset_load(&run, src->spm, src->lang, "train", &src->set));
    PEP_CHECK(src->set.n >= 1, PEP_ERR_FORMAT, "bench: the %s train split has no sentences", src->lang);
    int names = pep_list_count(run.cfg.data.tags);
    src->V = s->V = pep_spm_fairseq_vocab(src->spm);
    src->ntags = s->ntags = names;
    if (src->dump) {
        src->df = fopen(src->dump, "w");
        PEP_CHECK(src->df, PEP_ERR_IO, "bench: cannot write --dump file '%s'", src->dump);
        fprintf(src->df, "# peprime bench batches: lang %s tokenizer %s T %d\n", src->lang, src->tokenizer, T);
    }
    return PEP_OK;
}

static void source_close(struct bench_source *src)
{
    if (src->df) fclose(src->df);
    pep_nerset_free(&src->set);
    pep_spm_destroy(&src->spm);
}

/* Batch `seq` of B sentences (a function of (seed, seq) only). With --dump, writes
 * "batch SEQ NSEQ" then one line per sentence: its index in the split and its ids. */
static int source_batch(struct bench_source *src, struct pep_batch *b, int B, uint64_t seed, long seq, int *idx)
{
    if (!src->lang) return random_batch(b, B, src->T, src->V, src->ntags, seed * 1000003u + (uint64_t)seq);
    struct pep_rng r;
    pep_rng_seed(&r, seed, (uint64_t)seq, 0xbe7c);
    for (int i = 0; i < B; i++) idx[i] = (int)pep_rng_below(&r, (uint64_t)src->set.n);
    PEP_CALL(pep_nerset_batch(&src->set, idx, B, b));
    src->tokens += pep_batch_tokens(b);
    src->padded += (long)B * pep_batch_max_len(b);
    if (src->df) {
        fprintf(src->df, "batch %ld %d\n", seq, B);
        for (int i = 0; i < B; i++) {
            fprintf(src->df, "%d", idx[i]);
            for (int t = b->offsets[i]; t < b->offsets[i + 1]; t++) fprintf(src->df, " %d", b->input_ids[t]);
            fputc('\n', src->df);
        }
    }
    return PEP_OK;
}

static double pad_fraction(const struct bench_source *src)
{
    return src->padded > 0 ? 1.0 - (double)src->tokens / (double)src->padded : 0.0;
}

/* Parses the options every benchmark shares; returns 1 if argv[*i] was one. */
static int source_option(struct bench_source *src, int argc, char **argv, int *i, int *batch)
{
    if (*i + 1 >= argc) return 0;
    if (!strcmp(argv[*i], "--data")) src->lang = argv[++*i];
    else if (!strcmp(argv[*i], "--tokenizer")) src->tokenizer = argv[++*i];
    else if (!strcmp(argv[*i], "--dump")) src->dump = argv[++*i];
    else if (batch && !strcmp(argv[*i], "--batch")) *batch = atoi(argv[++*i]);
    else return 0;
    return 1;
}

/* Median of n step times (sorts a copy; n is small). */
/* The benches' threads: OPENBLAS_NUM_THREADS (as a stage's placement gives run.threads). As in
 * a stage they become peprime's own (the model's sgemm split, the optimizer step) and OpenBLAS
 * is held to one thread (mpi/placement.c). */
static int bench_threads(void)
{
    static int threads;
    if (!threads) {
        threads = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    return threads;
}

static double median_s(const double *t, int n)
{
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) return t[0];
    memcpy(c, t, (size_t)n * sizeof *c);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && c[j - 1] > c[j]; j--) {
            double x = c[j];
            c[j] = c[j - 1], c[j - 1] = x;
        }
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* fwd+bwd steps of the encoder. Synthetic batches: one batch of B x T, tokens/s from the
 * median step. Real data: a new batch every step (the same sequence for any run with the
 * same seed), tokens/s = real tokens of the timed steps / their time. */
static int bench_encoder(int argc, char **argv)
{
    const char *shape = "tiny", *mode = "full", *pe = pep_pe_method_name(PEP_PE_METHOD_ADAPTER);
    int steps = 10, warm = 2, batch = 0;
    struct bench_source src = {0};
    char pes[64];
    pep_names_list(&pep_pe_method_names, "|", "|", pes, sizeof pes);
    for (int i = 0; i < argc; i++) {
        if (source_option(&src, argc, argv, &i, &batch)) continue;
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
        else if (!strcmp(argv[i], "--pe") && i + 1 < argc) pe = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warm = atoi(argv[++i]);
        else PEP_FAIL(PEP_ERR_USAGE, "bench encoder: unknown argument '%s' (use --shape tiny|base --mode full|pe "
                      "--pe %s --steps N [--data LANG --tokenizer FILE [--dump FILE]] [--batch B])", argv[i], pes);
    }
    PEP_CHECK(!strcmp(mode, "full") || !strcmp(mode, "pe"), PEP_ERR_USAGE, "--mode must be full or pe, got '%s'", mode);
    enum pep_pe_method pe_method;
    if (pep_pe_method_parse(pe, &pe_method) != 0) {
        char valid[128];
        pep_names_list(&pep_pe_method_names, ", ", " or ", valid, sizeof valid);
        PEP_FAIL(PEP_ERR_USAGE, "--pe must be %s, got '%s'", valid, pe);
    }
    PEP_CHECK(steps >= 1 && warm >= 0, PEP_ERR_USAGE, "--steps must be positive and --warmup not negative");
    struct pep_model_spec s;
    int B, T;
    PEP_CALL(pep_bench_shape(shape, &s, &B, &T));
    if (src.lang && !batch) batch = 32;
    PEP_CHECK(batch >= 0 && batch <= 4096, PEP_ERR_USAGE, "--batch must be 1..4096");
    if (batch) B = s.max_B = batch;
    s.pe = pe_method;
    struct pep_model *m = NULL;
    struct pep_batch b = {0};
    int rc = PEP_OK, *idx = NULL;
    double *times = NULL, flops = 0, tokens = 0, busy = 0;
    PEP_CALL_GOTO(rc, source_open(&src, &s, T));
    PEP_CALL_GOTO(rc, pep_model_create(&s, &m));
    PEP_CALL_GOTO(rc, pep_model_set_threads(m, bench_threads()));
    pep_model_init_weights(m, 1, PEP_GROUPS_ALL);
    PEP_CALL_GOTO(rc, pep_batch_alloc(&b, B, B * T));
    PEP_ALLOC_GOTO(rc, idx, (size_t)B);
    PEP_ALLOC_GOTO(rc, times, steps);
    unsigned groups = !strcmp(mode, "full") ? PEP_GROUPS_ALL : PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    if (!src.lang) PEP_CALL_GOTO(rc, source_batch(&src, &b, B, 1, 0, idx));
    for (int it = 0; it < warm + steps; it++) {
        if (src.lang) {
            if (it == warm) src.tokens = src.padded = 0; /* pad_fraction over the timed batches */
            PEP_CALL_GOTO(rc, source_batch(&src, &b, B, 1, it, idx));
        }
        double t0 = pep_now_s();
        float loss;
        pep_model_zero_grad(m, groups);
        PEP_CALL_GOTO(rc, pep_model_forward(m, &b, 1, (uint64_t)it, &loss));
        PEP_CALL_GOTO(rc, pep_model_backward(m, groups));
        if (it >= warm) {
            times[it - warm] = pep_now_s() - t0;
            busy += times[it - warm];
            tokens += pep_batch_tokens(&b);
            flops += pep_bench_flops(&s, &b, groups);
        }
    }
    double dt = median_s(times, steps); /* median, as tests/bench/torch_encoder.py: robust to a noisy neighbour */
    /* synthetic: the median step; real data: every timed step's tokens over their time */
    double tps = src.lang ? tokens / busy : pep_batch_tokens(&b) / dt, gfs = src.lang ? flops / busy * 1e-9 : flops / steps / dt * 1e-9;
    size_t pe_n = pep_param_table_group_numel(&m->table, PEP_GROUP_BIT(PEP_GROUP_PE));
    size_t plm_n = pep_param_table_group_numel(&m->table, PEP_GROUP_BIT(PEP_GROUP_PLM));
    printf("encoder %-4s %-4s pe=%-7s B=%d T=%d%s%s: %8.0f tokens/s  %7.1f ms/step  %6.1f GFLOP/s  peak RSS %7.0f MiB  "
           "(PE params %zu = %.2f%% of base; pad fraction %.3f)\n",
           shape, mode, pe, B, T, src.lang ? " data=" : "", src.lang ? src.lang : "", tps, 1e3 * dt, gfs,
           pep_peak_rss_mib(), pe_n, 100.0 * (double)pe_n / (double)plm_n, pad_fraction(&src));
    printf("{\"bench\":\"encoder\",\"impl\":\"peprime\",\"shape\":\"%s\",\"mode\":\"%s\",\"pe\":\"%s\",\"B\":%d,\"T\":%d,"
           "\"data\":\"%s\",\"steps\":%d,\"tokens_per_s\":%.1f,\"pad_fraction\":%.4f,\"ms_per_step\":%.3f,"
           "\"gflops\":%.2f,\"peak_rss_mib\":%.0f}\n",
           shape, mode, pe, B, T, src.lang ? src.lang : "synthetic", steps, tps, pad_fraction(&src), 1e3 * dt, gfs,
           pep_peak_rss_mib());
cleanup:
    pep_free(times);
    pep_free(idx);
    pep_batch_free(&b);
    source_close(&src);
    pep_model_destroy(&m);
    return rc;
}

/* One MAML meta-step (1 task): k inner SGD steps on adapters + head over a support batch,
 * the query loss on another, the meta-gradient for the PLM, and the outer step (gradient-norm
 * clip at optim.clip = 1 and AdamW over the PLM; --no-update: the meta-gradient only) — the
 * same work as tests/bench/torch_maml.py (--no-update likewise). Synthetic: 8 + 8 full-length sequences; real
 * data: maml.support_size + maml.query_size (8 + 8) sentences drawn afresh every meta-step. */
static int bench_maml(int argc, char **argv)
{
    const char *shape = "tiny";
    int order = 1, k = 1, steps = 5, warm = 1, update = 1;
    struct bench_source src = {0};
    for (int i = 0; i < argc; i++) {
        if (source_option(&src, argc, argv, &i, NULL)) continue;
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--no-update")) update = 0;
        else if (!strcmp(argv[i], "--order") && i + 1 < argc) order = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--k") && i + 1 < argc) k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warm = atoi(argv[++i]);
        else PEP_FAIL(PEP_ERR_USAGE, "bench maml: unknown argument '%s' (use --shape tiny|base --order 1|2 --k N "
                      "--steps N [--no-update] [--data LANG --tokenizer FILE [--dump FILE]])", argv[i]);
    }
    PEP_CHECK(order == 1 || order == 2, PEP_ERR_USAGE, "--order must be 1 or 2");
    PEP_CHECK(k >= 1 && steps >= 1 && warm >= 0, PEP_ERR_USAGE, "--k and --steps must be positive");
    struct pep_model_spec s;
    int B, T;
    PEP_CALL(pep_bench_shape(shape, &s, &B, &T));
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    int S = src.lang ? cfg.maml.support_size : 8, Q = src.lang ? cfg.maml.query_size : 8;
    B = s.max_B = S > Q ? S : Q;
    cfg.maml.order = order, cfg.maml.inner_steps = k, cfg.maml.meta_batch = 1, cfg.maml.inner_lr = 0.1f;
    cfg.optim.steps = warm + steps;
    struct pep_model *m = NULL;
    struct pep_maml_opts o;
    struct pep_maml *mm = NULL;
    struct pep_optim opt = {0};
    struct pep_batch bs = {0}, bq = {0};
    int rc = PEP_OK, *idx = NULL;
    double busy = 0, outer = 0, lq = 0, *times = NULL;
    size_t ub, ue;
    PEP_CALL_GOTO(rc, source_open(&src, &s, T));
    PEP_CALL_GOTO(rc, pep_model_create(&s, &m));
    PEP_CALL_GOTO(rc, pep_model_set_threads(m, bench_threads()));
    pep_model_init_weights(m, 1, PEP_GROUPS_ALL);
    PEP_CALL_GOTO(rc, pep_batch_alloc(&bs, S, S * T));
    PEP_CALL_GOTO(rc, pep_batch_alloc(&bq, Q, Q * T));
    PEP_ALLOC_GOTO(rc, idx, (size_t)B);
    PEP_CALL_GOTO(rc, pep_maml_opts_from_config(&cfg, m, &o));
    PEP_CALL_GOTO(rc, pep_maml_create(m, &o, &mm));
    pep_maml_update_range(mm, &ub, &ue);
    PEP_CALL_GOTO(rc, pep_optim_from_config(&cfg, &opt));
    opt.threads = bench_threads(); /* as a stage's placement gives the model and the optimizer */
    PEP_CALL_GOTO(rc, pep_optim_init(&opt, ub, ue));
    if (!src.lang) {
        PEP_CALL_GOTO(rc, source_batch(&src, &bs, S, 1, 0, idx));
        PEP_CALL_GOTO(rc, source_batch(&src, &bq, Q, 2, 0, idx));
    }
    PEP_ALLOC_GOTO(rc, times, steps);
    for (int it = 0; it < warm + steps; it++) {
        if (src.lang) {
            if (it == warm) src.tokens = src.padded = 0;
            PEP_CALL_GOTO(rc, source_batch(&src, &bs, S, 1, 2 * (long)it, idx));
            PEP_CALL_GOTO(rc, source_batch(&src, &bq, Q, 1, 2 * (long)it + 1, idx));
        }
        double t0 = pep_now_s();
        struct pep_maml_task_result res;
        pep_maml_zero(mm);
        PEP_CALL_GOTO(rc, pep_maml_task(mm, &bs, &bq, (uint64_t)it, &res));
        double t_o = pep_now_s();
        if (update) PEP_CALL_GOTO(rc, pep_maml_outer_step(mm, &opt, NULL, NULL, NULL));
        lq = res.query_loss;
        if (it >= warm) busy += times[it - warm] = pep_now_s() - t0, outer += pep_now_s() - t_o;
    }
    /* synthetic: the mean meta-step, as before; real data: the mean too (batches differ); the
     * outer step (norm, clip, AdamW on opt.threads threads) is part of it */
    double dt = busy / steps, dto = outer / steps;
    printf("maml %-4s order %d k %d%s%s%s: %8.1f ms/meta-step (outer step %.1f ms on %d threads)  peak RSS %7.0f MiB  "
           "(query loss %.4f; pad fraction %.3f)\n",
           shape, order, k, src.lang ? " data=" : "", src.lang ? src.lang : "", update ? "" : " no update", 1e3 * dt,
           1e3 * dto, pep_pool_threads(opt.pool), pep_peak_rss_mib(), lq, pad_fraction(&src));
    printf("{\"bench\":\"maml\",\"impl\":\"peprime\",\"shape\":\"%s\",\"order\":%d,\"k\":%d,\"data\":\"%s\","
           "\"update\":%s,\"support\":%d,\"query\":%d,\"steps\":%d,\"ms_per_step\":%.2f,\"outer_ms_per_step\":%.2f,"
           "\"outer_threads\":%d,\"pad_fraction\":%.4f,\"peak_rss_mib\":%.0f}\n",
           shape, order, k, src.lang ? src.lang : "synthetic", update ? "true" : "false", S, Q, steps, 1e3 * dt,
           1e3 * dto, pep_pool_threads(opt.pool), pad_fraction(&src), pep_peak_rss_mib());
cleanup:
    pep_free(times);
    pep_free(idx);
    pep_batch_free(&bs);
    pep_batch_free(&bq);
    source_close(&src);
    pep_optim_fini(&opt);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
    return rc;
}

/* GFLOP/s of one row-major sgemm C(M,N) = op(A) op(B), op(A) (M,K), op(B) (K,N): the median
 * of `reps` calls after one warm-up call. Returns a negative value when out of memory. */
static double sgemm_rate(pep_pool_t *pool, int ta, int tb, int M, int N, int K, int reps)
{
    float *a = malloc((size_t)M * K * sizeof(float)), *b = malloc((size_t)K * N * sizeof(float));
    float *c = malloc((size_t)M * N * sizeof(float));
    double *t = malloc((size_t)reps * sizeof(double)), rate = -1.0;
    if (a && b && c && t) {
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.01f;
        for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.01f;
        for (int r = -1; r < reps; r++) {
            double t0 = pep_now_s();
            pep_sgemm(pool, ta, tb, M, N, K, 1.0f, a, ta ? M : K, b, tb ? K : N, 0.0f, c, N);
            if (r >= 0) t[r] = pep_now_s() - t0;
        }
        rate = 2.0 * M * N * K / median_s(t, reps) * 1e-9;
    }
    free(a), free(b), free(c), free(t);
    return rate;
}

/* `bench sgemm`: the BLAS ceiling of an encoder step. Times a square sgemm (the peak) and the
 * twelve projection sgemm calls of one layer of the shape (q|k|v, output, FF in, FF out, each
 * as forward x W^T, input gradient dY W and weight gradient dY^T x), then divides the step's
 * matmul FLOPs by their mixed rate: the step time if nothing but these sgemm calls ran, i.e.
 * the fastest any implementation over this BLAS can be. */
static int bench_sgemm(int argc, char **argv)
{
    const char *shape = "tiny";
    int n = 2048, reps = 9;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else PEP_FAIL(PEP_ERR_USAGE, "bench sgemm: unknown argument '%s' (use --shape tiny|base --n N --reps R)",
                      argv[i]);
    }
    PEP_CHECK(n >= 16 && n <= 16384 && reps >= 1, PEP_ERR_USAGE, "bench sgemm: --n must be 16..16384, --reps >= 1");
    struct pep_model_spec s;
    int B, T;
    PEP_CALL(pep_bench_shape(shape, &s, &B, &T));
    pep_pool_t *pool = NULL;
    int rc = PEP_OK;
    PEP_CALL(pep_pool_create(bench_threads(), &pool));
    double peak = sgemm_rate(pool, 0, 0, n, n, n, reps);
    PEP_CHECK_GOTO(rc, peak > 0, PEP_ERR_NOMEM, "bench sgemm: out of memory for n = %d", n);
    int N = B * T, C = s.C, io[4][2] = {{C, 3 * C}, {C, C}, {C, s.FF}, {s.FF, C}};
    double fl[3] = {0}, sec[3] = {0}; /* forward, input gradient, weight gradient */
    for (int j = 0; j < 4; j++) {
        int in = io[j][0], out = io[j][1];
        double f = 2.0 * N * in * out;
        double r[3] = {sgemm_rate(pool, 0, 1, N, out, in, reps), sgemm_rate(pool, 0, 0, N, in, out, reps),
                       sgemm_rate(pool, 1, 0, out, in, N, reps)};
        for (int k = 0; k < 3; k++) {
            PEP_CHECK_GOTO(rc, r[k] > 0, PEP_ERR_NOMEM, "bench sgemm: out of memory");
            fl[k] += f, sec[k] += f / (r[k] * 1e9);
        }
    }
    printf("sgemm %dx%dx%d (1 call, median of %d): %.1f GFLOP/s\n", n, n, n, reps, peak);
    printf("encoder %s projections (N=%d tokens): forward %.1f, input gradient %.1f, weight gradient %.1f GFLOP/s\n",
           shape, N, fl[0] / sec[0] * 1e-9, fl[1] / sec[1] * 1e-9, fl[2] / sec[2] * 1e-9);
    unsigned pe_groups = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    int offs[257]; /* B full-length sequences (B <= 16 for the bench shapes) */
    PEP_CHECK_GOTO(rc, B <= 256, PEP_ERR_INTERNAL, "bench sgemm: batch of %d", B);
    for (int i = 0; i <= B; i++) offs[i] = i * T;
    for (int full = 1; full >= 0; full--) {
        double rate = 1e-9 * (full ? (fl[0] + fl[1] + fl[2]) / (sec[0] + sec[1] + sec[2]) : (fl[0] + fl[1]) / (sec[0] + sec[1]));
        struct pep_batch full_b = {.nseq = B, .offsets = offs};
        double flops = pep_bench_flops(&s, &full_b, full ? PEP_GROUPS_ALL : pe_groups);
        double ms = flops / (rate * 1e9) * 1e3;
        printf("encoder %s %-4s: %.2f GFLOP per step at %.1f GFLOP/s -> sgemm floor %.1f ms/step = at most %.0f "
               "tokens/s\n", shape, full ? "full" : "pe", flops * 1e-9, rate, ms, N / ms * 1e3);
        printf("{\"bench\":\"sgemm\",\"shape\":\"%s\",\"mode\":\"%s\",\"peak_gflops\":%.1f,\"mix_gflops\":%.1f,"
               "\"floor_ms_per_step\":%.2f,\"max_tokens_per_s\":%.1f}\n",
               shape, full ? "full" : "pe", peak, rate, ms, N / ms * 1e3);
    }
cleanup:
    pep_pool_destroy(&pool);
    return rc;
}

/* `bench outer`: the outer step alone (clip norm + AdamW or SGD over the shape's PLM, bench maml's
 * outer set) on one thread and on --threads T, the two optimizers taking turns step by step in one
 * process (the same parameters and gradient, the same neighbours): the median ms per step of
 * each after --warmup steps each. No BLAS call runs, so the pool has the cores to itself. */
static int bench_outer(int argc, char **argv)
{
    const char *shape = "tiny", *name = "adamw";
    int threads = 2, steps = 10, warm = 2;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--optim") && i + 1 < argc) name = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warm = atoi(argv[++i]);
        else PEP_FAIL(PEP_ERR_USAGE, "bench outer: unknown argument '%s' (use --shape tiny|base --optim adamw|sgd "
                      "--threads T --steps N --warmup N)", argv[i]);
    }
    PEP_CHECK(threads >= 1 && threads <= PEP_POOL_MAX_THREADS && steps >= 1 && warm >= 0, PEP_ERR_USAGE,
              "bench outer: --threads must be 1..%d, --steps >= 1, --warmup >= 0", PEP_POOL_MAX_THREADS);
    struct pep_model_spec s;
    int B, T;
    PEP_CALL(pep_bench_shape(shape, &s, &B, &T));
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    snprintf(cfg.optim.name, sizeof cfg.optim.name, "%s", name);
    cfg.optim.steps = warm + steps;
    struct pep_model *m = NULL;
    struct pep_optim o[2] = {{0}, {0}};
    double *times = NULL;
    size_t ub, ue;
    int rc = PEP_OK;
    PEP_CALL_GOTO(rc, pep_model_create(&s, &m));
    PEP_CALL_GOTO(rc, pep_param_table_range(&m->table, PEP_GROUP_BIT(PEP_GROUP_PLM), &ub, &ue));
    for (size_t i = ub; i < ue; i++) { /* cheap values of a weight's and a gradient's size (no RNG pass over 1 GB) */
        uint32_t h = (uint32_t)i * 2654435761u;
        m->params[i] = 0.02f * ((float)(h >> 22) / 512.0f - 1.0f);
        m->grads[i] = 1e-3f * ((float)((h >> 12) & 1023) / 512.0f - 1.0f);
    }
    for (int k = 0; k < 2; k++) {
        PEP_CALL_GOTO(rc, pep_optim_from_config(&cfg, &o[k]));
        o[k].threads = k ? threads : 1;
        PEP_CALL_GOTO(rc, pep_optim_init(&o[k], ub, ue));
    }
    PEP_ALLOC_GOTO(rc, times, 2 * (size_t)steps);
    for (int it = 0; it < warm + steps; it++)
        for (int k = 0; k < 2; k++) {
            double t0 = pep_now_s();
            PEP_CALL_GOTO(rc, pep_optim_step(&o[k], m->params, m->grads, NULL));
            if (it >= warm) times[k * steps + it - warm] = pep_now_s() - t0;
        }
    double ms[2] = {1e3 * median_s(times, steps), 1e3 * median_s(times + steps, steps)};
    int used = pep_pool_threads(o[1].pool);
    printf("outer %s %s over %zu floats: %.1f ms/step on 1 thread, %.1f ms/step on %d threads (%.2fx; medians of %d "
           "alternating steps)\n", shape, name, ue - ub, ms[0], ms[1], used, ms[0] / ms[1], steps);
    printf("{\"bench\":\"outer\",\"shape\":\"%s\",\"optim\":\"%s\",\"floats\":%zu,\"steps\":%d,"
           "\"ms_per_step_1\":%.2f,\"threads\":%d,\"ms_per_step_threads\":%.2f}\n",
           shape, name, ue - ub, steps, ms[0], used, ms[1]);
cleanup:
    pep_free(times);
    pep_optim_fini(&o[0]);
    pep_optim_fini(&o[1]);
    pep_model_destroy(&m);
    return rc;
}

int pep_cmd_bench(int argc, char **argv)
{
    PEP_CHECK(argc >= 1, PEP_ERR_USAGE, "usage: peprime bench encoder|maml|outer|sgemm [options]");
    if (!strcmp(argv[0], "encoder")) return bench_encoder(argc - 1, argv + 1);
    if (!strcmp(argv[0], "maml")) return bench_maml(argc - 1, argv + 1);
    if (!strcmp(argv[0], "outer")) return bench_outer(argc - 1, argv + 1);
    if (!strcmp(argv[0], "sgemm")) return bench_sgemm(argc - 1, argv + 1);
    PEP_FAIL(PEP_ERR_USAGE, "peprime bench: unknown benchmark '%s' (valid: encoder, maml, outer, sgemm)", argv[0]);
}
