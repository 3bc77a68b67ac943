/* `peprime bench encoder|pe`: fwd+bwd throughput of the encoder on random data, printed
 * as tokens/s, GFLOP/s, ms/step and peak RSS, one human line and one JSON line per run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "core/error.h"
#include "core/rng.h"
#include "jobs.h"
#include "maml/maml.h"
#include "model/model.h"
#include "optim/optim.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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

void pep_bench_random_batch(struct pep_batch *b, int *ids, int *labels, int B, int T, int V, int ntags, uint64_t seed)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, 1, 2);
    b->B = B, b->T = T, b->input_ids = ids, b->labels = labels;
    for (int i = 0; i < B * T; i++) {
        ids[i] = 4 + (int)pep_rng_below(&r, (uint64_t)V - 5);
        labels[i] = (int)pep_rng_below(&r, (uint64_t)ntags);
    }
}

/* Median of n step times (sorts a copy; n is small). */
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

static int bench_encoder(int argc, char **argv)
{
    const char *shape = "tiny", *mode = "full", *pe = "adapter";
    int steps = 10, warm = 2;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
        else if (!strcmp(argv[i], "--pe") && i + 1 < argc) pe = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warm = atoi(argv[++i]);
        else PEP_FAIL(PEP_ERR_USAGE, "bench encoder: unknown argument '%s' (use --shape tiny|base --mode full|pe "
                      "--pe adapter|prefix|lora|none --steps N)", argv[i]);
    }
    PEP_CHECK(!strcmp(mode, "full") || !strcmp(mode, "pe"), PEP_ERR_USAGE, "--mode must be full or pe, got '%s'", mode);
    PEP_CHECK(!strcmp(pe, "adapter") || !strcmp(pe, "prefix") || !strcmp(pe, "lora") || !strcmp(pe, "none"),
              PEP_ERR_USAGE, "--pe must be adapter, prefix, lora or none, got '%s'", pe);
    PEP_CHECK(steps >= 1 && warm >= 0, PEP_ERR_USAGE, "--steps must be positive and --warmup not negative");
    struct pep_model_spec s;
    int B, T;
    PEP_CALL(pep_bench_shape(shape, &s, &B, &T));
    s.pe = !strcmp(pe, "adapter") ? PEP_PE_METHOD_ADAPTER : !strcmp(pe, "prefix") ? PEP_PE_METHOD_PREFIX
         : !strcmp(pe, "lora") ? PEP_PE_METHOD_LORA : PEP_PE_METHOD_NONE;
    struct pep_model *m = NULL;
    PEP_CALL(pep_model_create(&s, &m));
    pep_model_init_weights(m, 1, PEP_GROUPS_ALL);
    int *ids = malloc((size_t)B * T * sizeof(int)), *labels = malloc((size_t)B * T * sizeof(int));
    struct pep_batch b;
    pep_bench_random_batch(&b, ids, labels, B, T, s.V, s.ntags, 1);
    unsigned groups = !strcmp(mode, "full") ? PEP_GROUPS_ALL : PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    int rc = PEP_OK;
    double *times = NULL;
    PEP_ALLOC_GOTO(rc, times, steps);
    for (int it = 0; it < warm + steps; it++) {
        double t0 = now_s();
        float loss;
        pep_model_zero_grad(m, groups);
        PEP_CALL_GOTO(rc, pep_model_forward(m, &b, 1, (uint64_t)it, &loss));
        PEP_CALL_GOTO(rc, pep_model_backward(m, groups));
        if (it >= warm) times[it - warm] = now_s() - t0;
    }
    double dt = median_s(times, steps); /* median, as tests/bench/torch_encoder.py: robust to a noisy neighbour */
    double flops = pep_model_flops(&s, B, T, groups);
    size_t pe_n = pep_param_table_group_numel(&m->table, PEP_GROUP_BIT(PEP_GROUP_PE));
    size_t plm_n = pep_param_table_group_numel(&m->table, PEP_GROUP_BIT(PEP_GROUP_PLM));
    printf("encoder %-4s %-4s pe=%-7s B=%d T=%d: %8.0f tokens/s  %7.1f ms/step  %6.1f GFLOP/s  peak RSS %7.0f MiB  "
           "(PE params %zu = %.2f%% of base)\n",
           shape, mode, pe, B, T, B * T / dt, 1e3 * dt, flops / dt * 1e-9, pep_peak_rss_mib(), pe_n,
           100.0 * (double)pe_n / (double)plm_n);
    printf("{\"bench\":\"encoder\",\"impl\":\"peprime\",\"shape\":\"%s\",\"mode\":\"%s\",\"pe\":\"%s\",\"B\":%d,\"T\":%d,"
           "\"tokens_per_s\":%.1f,\"ms_per_step\":%.3f,\"gflops\":%.2f,\"peak_rss_mib\":%.0f}\n",
           shape, mode, pe, B, T, B * T / dt, 1e3 * dt, flops / dt * 1e-9, pep_peak_rss_mib());
cleanup:
    pep_free(times);
    free(ids);
    free(labels);
    pep_model_destroy(&m);
    return rc;
}

/* One MAML meta-step (1 task): k inner SGD steps on adapters + head over a support batch of
 * 8 full-length sequences, the query loss on another 8, the meta-gradient for the PLM, and
 * the outer AdamW step — the same shapes as tests/bench/torch_maml.py. */
static int bench_maml(int argc, char **argv)
{
    const char *shape = "tiny";
    int order = 1, k = 1, steps = 5, warm = 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc) shape = argv[++i];
        else if (!strcmp(argv[i], "--order") && i + 1 < argc) order = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--k") && i + 1 < argc) k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warm = atoi(argv[++i]);
        else PEP_FAIL(PEP_ERR_USAGE, "bench maml: unknown argument '%s' (use --shape tiny|base --order 1|2 --k N "
                      "--steps N)", argv[i]);
    }
    PEP_CHECK(order == 1 || order == 2, PEP_ERR_USAGE, "--order must be 1 or 2");
    PEP_CHECK(k >= 1 && steps >= 1, PEP_ERR_USAGE, "--k and --steps must be positive");
    struct pep_model_spec s;
    int B, T;
    PEP_CALL(pep_bench_shape(shape, &s, &B, &T));
    B = 8;
    s.max_B = B;
    struct pep_model *m = NULL;
    PEP_CALL(pep_model_create(&s, &m));
    pep_model_init_weights(m, 1, PEP_GROUPS_ALL);
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    cfg.maml.order = order, cfg.maml.inner_steps = k, cfg.maml.meta_batch = 1, cfg.maml.inner_lr = 0.1f;
    cfg.optim.steps = warm + steps;
    struct pep_maml_opts o;
    struct pep_maml *mm = NULL;
    struct pep_optim opt = {0};
    int *ids = malloc((size_t)4 * B * T * sizeof(int));
    struct pep_batch bs, bq;
    pep_bench_random_batch(&bs, ids, ids + B * T, B, T, s.V, s.ntags, 1);
    pep_bench_random_batch(&bq, ids + 2 * B * T, ids + 3 * B * T, B, T, s.V, s.ntags, 2);
    int rc = PEP_OK;
    size_t ub, ue;
    PEP_CALL_GOTO(rc, pep_maml_opts_from_config(&cfg, m, &o));
    PEP_CALL_GOTO(rc, pep_maml_create(m, &o, &mm));
    pep_maml_update_range(mm, &ub, &ue);
    PEP_CALL_GOTO(rc, pep_optim_init(&opt, &cfg, ub, ue));
    double t0 = 0, lq = 0;
    for (int it = 0; it < warm + steps; it++) {
        if (it == warm) t0 = now_s();
        struct pep_maml_task_result res;
        pep_maml_zero(mm);
        PEP_CALL_GOTO(rc, pep_maml_task(mm, &bs, &bq, (uint64_t)it, &res));
        PEP_CALL_GOTO(rc, pep_maml_outer_step(mm, &opt, NULL, NULL, NULL));
        lq = res.query_loss;
    }
    double dt = (now_s() - t0) / steps;
    printf("maml %-4s order %d k %d: %8.1f ms/meta-step  peak RSS %7.0f MiB  (query loss %.4f)\n", shape, order, k,
           1e3 * dt, pep_peak_rss_mib(), lq);
    printf("{\"bench\":\"maml\",\"impl\":\"peprime\",\"shape\":\"%s\",\"order\":%d,\"k\":%d,\"ms_per_step\":%.2f,"
           "\"peak_rss_mib\":%.0f}\n", shape, order, k, 1e3 * dt, pep_peak_rss_mib());
cleanup:
    free(ids);
    pep_optim_fini(&opt);
    pep_maml_destroy(&mm);
    pep_model_destroy(&m);
    return rc;
}

/* GFLOP/s of one row-major sgemm C(M,N) = op(A) op(B), op(A) (M,K), op(B) (K,N): the median
 * of `reps` calls after one warm-up call. Returns a negative value when out of memory. */
static double sgemm_rate(int ta, int tb, int M, int N, int K, int reps)
{
    float *a = malloc((size_t)M * K * sizeof(float)), *b = malloc((size_t)K * N * sizeof(float));
    float *c = malloc((size_t)M * N * sizeof(float));
    double *t = malloc((size_t)reps * sizeof(double)), rate = -1.0;
    if (a && b && c && t) {
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.01f;
        for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.01f;
        for (int r = -1; r < reps; r++) {
            double t0 = now_s();
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, a,
                        ta ? M : K, b, tb ? K : N, 0.0f, c, N);
            if (r >= 0) t[r] = now_s() - t0;
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
    double peak = sgemm_rate(0, 0, n, n, n, reps);
    PEP_CHECK(peak > 0, PEP_ERR_NOMEM, "bench sgemm: out of memory for n = %d", n);
    int N = B * T, C = s.C, io[4][2] = {{C, 3 * C}, {C, C}, {C, s.FF}, {s.FF, C}};
    double fl[3] = {0}, sec[3] = {0}; /* forward, input gradient, weight gradient */
    for (int j = 0; j < 4; j++) {
        int in = io[j][0], out = io[j][1];
        double f = 2.0 * N * in * out;
        double r[3] = {sgemm_rate(0, 1, N, out, in, reps), sgemm_rate(0, 0, N, in, out, reps),
                       sgemm_rate(1, 0, out, in, N, reps)};
        for (int k = 0; k < 3; k++) {
            PEP_CHECK(r[k] > 0, PEP_ERR_NOMEM, "bench sgemm: out of memory");
            fl[k] += f, sec[k] += f / (r[k] * 1e9);
        }
    }
    printf("sgemm %dx%dx%d (1 call, median of %d): %.1f GFLOP/s\n", n, n, n, reps, peak);
    printf("encoder %s projections (N=%d tokens): forward %.1f, input gradient %.1f, weight gradient %.1f GFLOP/s\n",
           shape, N, fl[0] / sec[0] * 1e-9, fl[1] / sec[1] * 1e-9, fl[2] / sec[2] * 1e-9);
    unsigned pe_groups = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    for (int full = 1; full >= 0; full--) {
        double rate = 1e-9 * (full ? (fl[0] + fl[1] + fl[2]) / (sec[0] + sec[1] + sec[2]) : (fl[0] + fl[1]) / (sec[0] + sec[1]));
        double flops = pep_model_flops(&s, B, T, full ? PEP_GROUPS_ALL : pe_groups);
        double ms = flops / (rate * 1e9) * 1e3;
        printf("encoder %s %-4s: %.2f GFLOP per step at %.1f GFLOP/s -> sgemm floor %.1f ms/step = at most %.0f "
               "tokens/s\n", shape, full ? "full" : "pe", flops * 1e-9, rate, ms, N / ms * 1e3);
        printf("{\"bench\":\"sgemm\",\"shape\":\"%s\",\"mode\":\"%s\",\"peak_gflops\":%.1f,\"mix_gflops\":%.1f,"
               "\"floor_ms_per_step\":%.2f,\"max_tokens_per_s\":%.1f}\n",
               shape, full ? "full" : "pe", peak, rate, ms, N / ms * 1e3);
    }
    return PEP_OK;
}

int pep_cmd_bench(int argc, char **argv)
{
    PEP_CHECK(argc >= 1, PEP_ERR_USAGE, "usage: peprime bench encoder|maml|sgemm [options]");
    if (!strcmp(argv[0], "encoder")) return bench_encoder(argc - 1, argv + 1);
    if (!strcmp(argv[0], "maml")) return bench_maml(argc - 1, argv + 1);
    if (!strcmp(argv[0], "sgemm")) return bench_sgemm(argc - 1, argv + 1);
    PEP_FAIL(PEP_ERR_USAGE, "peprime bench: unknown benchmark '%s' (valid: encoder, maml, sgemm)", argv[0]);
}
