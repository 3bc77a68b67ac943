/* Task groups in one process: G threads, each with its own replica of the model, run one
 * task on contiguous shares of its sentences, with pep_maml_opts.group_sum summing over the
 * threads (a pthread barrier in place of MPI). The shares' meta-gradients must add up to the
 * whole task's in one process, with the same losses and adapted state, for first and second
 * order, with dropout on (the shares draw the whole batch's masks), with meta-learned PE +
 * head in the outer set (group-summed rows counted once), for both multi-task methods and for
 * G = 2 and 3 (uneven shares). A failure on one thread ends the task on all of them with its
 * status (nothing waits forever). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "core/partition.h"
#include "core/rng.h"
#include "maml/maml.h"
#include "model/model.h"
#include "testutil.h"

#define NSENT 6
#define MAXG 3

/* The in-process "communicator": every member posts its buffer, all sum them in member order. */
struct tgroup {
    pthread_barrier_t bar;
    int size;
    float *x[MAXG];
    size_t n[MAXG];
    int status[MAXG];
    float *sum;
};

struct member {
    struct tgroup *g;
    int rank;
    struct pep_model *m;
    struct pep_maml *mm;
    struct pep_batch support, query;
    struct pep_maml_task_result res;
    int rc;
    float *meta; /* copy of this member's meta-gradient */
};

static int tgroup_sum(float *x, size_t n, int status, void *ud)
{
    struct member *me = ud;
    struct tgroup *g = me->g;
    g->x[me->rank] = x, g->n[me->rank] = n, g->status[me->rank] = status;
    pthread_barrier_wait(&g->bar);
    int worst = PEP_OK;
    for (int r = 0; r < g->size; r++) worst = g->status[r] > worst ? g->status[r] : worst;
    if (worst == PEP_OK && me->rank == 0)
        for (size_t i = 0; i < n; i++) {
            float acc = g->x[0][i];
            for (int r = 1; r < g->size; r++) acc += g->x[r][i];
            g->sum[i] = acc;
        }
    pthread_barrier_wait(&g->bar);
    if (worst == PEP_OK) memcpy(x, g->sum, n * sizeof(float));
    pthread_barrier_wait(&g->bar); /* nobody reuses sum before all have copied it */
    return worst;
}

static void *member_run(void *arg)
{
    struct member *me = arg;
    pep_maml_zero(me->mm);
    me->rc = pep_maml_task(me->mm, &me->support, &me->query, 77, &me->res);
    size_t n = me->m->table.numel;
    me->meta = malloc(n * sizeof(float));
    memcpy(me->meta, pep_maml_grad(me->mm), n * sizeof(float));
    return NULL;
}

/* NSENT sentences of 3..8 tokens with random ids and tags (some ignored). */
struct sentences {
    int ids[NSENT * 8], labels[NSENT * 8], offs[NSENT + 1];
};

static void make_sentences(struct sentences *s, uint64_t seed)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, 4, 4);
    s->offs[0] = 0;
    for (int q = 0; q < NSENT; q++) s->offs[q + 1] = s->offs[q] + 3 + (int)pep_rng_below(&r, 6);
    for (int i = 0; i < s->offs[NSENT]; i++) {
        s->ids[i] = 4 + (int)pep_rng_below(&r, 30);
        s->labels[i] = pep_rng_below(&r, 4) == 0 ? PEP_IGNORE_INDEX : (int)pep_rng_below(&r, 5);
    }
}

/* Sentences [first, first + count) of s as a batch (its own storage) that knows its place. */
static void share_batch(struct pep_batch *b, const struct sentences *s, int first, int count)
{
    assert_int_equal(pep_batch_alloc(b, NSENT, NSENT * 8), PEP_OK);
    for (int q = first; q < first + count; q++)
        assert_int_equal(pep_batch_append(b, s->ids + s->offs[q], s->labels + s->offs[q], s->offs[q + 1] - s->offs[q]),
                         PEP_OK);
    b->seq0 = first;
}

static struct pep_model *replica(float dropout)
{
    struct pep_model_spec sp = {0};
    sp.L = 2, sp.C = 16, sp.NH = 2, sp.FF = 24, sp.V = 36, sp.max_T = 8, sp.max_B = NSENT, sp.max_positions = 10;
    sp.type_vocab = 1, sp.ntags = 5, sp.ln_eps = 1e-5f, sp.init_std = 0.2f, sp.head = PEP_HEAD_KIND_TAGGER;
    sp.pe = PEP_PE_METHOD_ADAPTER, sp.placement = PEP_ADAPTER_PLACEMENT_HOULSBY, sp.adapter_act = PEP_ACTIVATION_RELU;
    sp.bottleneck = 3, sp.dropout = sp.attention_dropout = dropout;
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(&sp, &m), PEP_OK);
    pep_model_init_weights(m, 21, PEP_GROUPS_ALL);
    struct pep_rng r; /* no zero tensors (adapter up-projections included) */
    pep_rng_seed(&r, 22, 0, 0);
    for (size_t i = 0; i < m->table.numel; i++) m->params[i] += 0.03f * pep_rng_normal(&r);
    return m;
}

struct setup {
    const char *method, *outer, *pe_init;
    int order, k, G;
    float dropout;
    int bad_rank; /* >= 0: that member gets a token id outside the vocabulary */
};

static struct pep_maml_opts opts_for(const struct setup *su, const struct pep_model *m)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    strcpy(cfg.maml.method, su->method);
    strcpy(cfg.maml.outer_set, su->outer);
    strcpy(cfg.maml.pe_init, su->pe_init);
    cfg.maml.order = su->order, cfg.maml.inner_steps = su->k, cfg.maml.inner_lr = 0.3f, cfg.maml.meta_batch = 1;
    struct pep_maml_opts o;
    assert_int_equal(pep_maml_opts_from_config(&cfg, m, &o), PEP_OK);
    return o;
}

static double rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void check_group(const struct setup *su)
{
    struct sentences ss, sq;
    make_sentences(&ss, 1);
    make_sentences(&sq, 2);
    /* the whole task in one process */
    struct member whole = {.rank = 0};
    whole.m = replica(su->dropout);
    struct pep_maml_opts o = opts_for(su, whole.m);
    assert_int_equal(pep_maml_create(whole.m, &o, &whole.mm), PEP_OK);
    share_batch(&whole.support, &ss, 0, NSENT);
    share_batch(&whole.query, &sq, 0, NSENT);
    member_run(&whole);
    assert_int_equal(whole.rc, PEP_OK);
    /* the same task on G threads */
    struct tgroup g = {.size = su->G};
    pthread_barrier_init(&g.bar, NULL, (unsigned)su->G);
    size_t numel = whole.m->table.numel;
    g.sum = malloc(numel * sizeof(float));
    struct member mem[MAXG];
    pthread_t th[MAXG];
    for (int r = 0; r < su->G; r++) {
        struct member *me = &mem[r];
        memset(me, 0, sizeof *me);
        me->g = &g, me->rank = r, me->m = replica(su->dropout);
        struct pep_maml_opts og = opts_for(su, me->m);
        og.group_sum = tgroup_sum, og.group_ud = me, og.group_lead = r == 0;
        assert_int_equal(pep_maml_create(me->m, &og, &me->mm), PEP_OK);
        int f, c;
        pep_partition_share(r, su->G, NSENT, &f, &c);
        share_batch(&me->support, &ss, f, c);
        share_batch(&me->query, &sq, f, c);
        if (r == su->bad_rank) me->query.input_ids[0] = 1000;
    }
    for (int r = 0; r < su->G; r++) assert_int_equal(pthread_create(&th[r], NULL, member_run, &mem[r]), 0);
    for (int r = 0; r < su->G; r++) pthread_join(th[r], NULL);
    size_t ub, ue, ib, ie;
    pep_maml_update_range(whole.mm, &ub, &ue);
    pep_maml_inner_range(whole.mm, &ib, &ie);
    if (su->bad_rank >= 0) {
        for (int r = 0; r < su->G; r++) assert_int_equal(mem[r].rc, PEP_ERR_USAGE); /* every member stopped */
    } else {
        float *sum = calloc(numel, sizeof(float));
        for (int r = 0; r < su->G; r++) {
            assert_int_equal(mem[r].rc, PEP_OK);
            for (size_t i = ub; i < ue; i++) sum[i] += mem[r].meta[i];
            /* every member holds the whole task's losses and adapted state */
            assert_true(fabsf(mem[r].res.query_loss - whole.res.query_loss) <= 1e-5f * fabsf(whole.res.query_loss));
            assert_true(fabsf(mem[r].res.support_loss - whole.res.support_loss) <=
                        1e-5f * fabsf(whole.res.support_loss));
            assert_true(rel_diff(mem[r].res.adapted, whole.res.adapted, ie - ib) < 1e-5);
        }
        double d = rel_diff(sum + ub, whole.meta + ub, ue - ub);
        print_message("%s order %d k %d outer %s G %d dropout %.1f: meta-gradient relative difference %.2e\n",
                      su->method, su->order, su->k, su->outer, su->G, (double)su->dropout, d);
        /* order 2's finite differences divide rounding by 2e: a looser bound */
        assert_true(d < (su->order == 2 ? 2e-4 : 1e-5));
        free(sum);
    }
    for (int r = 0; r < su->G; r++) {
        free(mem[r].meta);
        pep_batch_free(&mem[r].support);
        pep_batch_free(&mem[r].query);
        pep_maml_destroy(&mem[r].mm);
        pep_model_destroy(&mem[r].m);
    }
    free(whole.meta);
    pep_batch_free(&whole.support);
    pep_batch_free(&whole.query);
    pep_maml_destroy(&whole.mm);
    pep_model_destroy(&whole.m);
    free(g.sum);
    pthread_barrier_destroy(&g.bar);
}

static void test_maml_groups_first_order(void **st)
{
    check_group(&(struct setup){"maml", "plm", "fresh", 1, 2, 2, 0.0f, -1});
    check_group(&(struct setup){"maml", "plm", "fresh", 1, 1, 3, 0.0f, -1});
}

static void test_maml_groups_second_order(void **st)
{
    check_group(&(struct setup){"maml", "plm", "fresh", 2, 2, 2, 0.0f, -1});
    check_group(&(struct setup){"maml", "plm", "fresh", 2, 1, 3, 0.0f, -1});
}

static void test_maml_groups_dropout(void **st)
{
    check_group(&(struct setup){"maml", "plm", "fresh", 2, 1, 2, 0.2f, -1});
}

static void test_maml_groups_meta_learned_init(void **st)
{
    check_group(&(struct setup){"maml", "all", "meta", 2, 2, 2, 0.0f, -1});
    check_group(&(struct setup){"maml", "plm+pe", "meta", 1, 1, 3, 0.0f, -1});
}

static void test_maml_groups_multitask(void **st)
{
    check_group(&(struct setup){"multitask", "plm", "fresh", 1, 1, 2, 0.0f, -1});
    check_group(&(struct setup){"multitask-matched", "plm", "fresh", 1, 1, 3, 0.0f, -1});
}

static void test_maml_groups_failure_stops_all(void **st)
{
    check_group(&(struct setup){"maml", "plm", "fresh", 2, 1, 2, 0.0f, 1});
    check_group(&(struct setup){"multitask", "plm", "fresh", 1, 1, 3, 0.0f, 2});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maml_groups_first_order),     cmocka_unit_test(test_maml_groups_second_order),
        cmocka_unit_test(test_maml_groups_dropout),         cmocka_unit_test(test_maml_groups_meta_learned_init),
        cmocka_unit_test(test_maml_groups_multitask),       cmocka_unit_test(test_maml_groups_failure_stops_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
