/* Finite-difference gradient checks: every parameter row of a small model, for each PE
 * method and both heads, in training mode (dropout and attention dropout on: the masks replay
 * from the seed, so L is a smooth function of the weights), plus the fast linear kernel
 * against its _ref twin. The check per row is directional: (L(w + e d) - L(w - e d)) / 2e
 * against g . d for a random direction d over that tensor, which is well conditioned in
 * float32. Also ReLU adapters at a stored on/off pattern (second-order MAML's HVP passes) and
 * the spans of possibly non-zero gradient rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "layers/layers.h"
#include "model/model.h"
#include "testutil.h"

static struct pep_model_spec small_spec(enum pep_pe_method pe, enum pep_head_kind head)
{
    struct pep_model_spec s = {0};
    s.L = 2, s.C = 16, s.NH = 2, s.FF = 32, s.V = 40, s.max_T = 9, s.max_B = 4, s.max_positions = 11;
    s.type_vocab = 1, s.ntags = 5, s.ln_eps = 1e-5f, s.init_std = 0.3f, s.head = head, s.pe = pe;
    s.placement = PEP_ADAPTER_PLACEMENT_HOULSBY, s.adapter_act = PEP_ACTIVATION_GELU, s.bottleneck = 4;
    s.prefix_len = 3, s.prefix_reparam = 0, s.prefix_hidden = 8, s.lora_rank = 2, s.lora_alpha = 4.0f;
    return s;
}

/* A model of spec s with every weight drawn by the model's initialiser from `seed`. */
static struct pep_model *new_model(const struct pep_model_spec *s, uint64_t seed)
{
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(s, &m), PEP_OK);
    pep_model_init_weights(m, seed, PEP_GROUPS_ALL);
    return m;
}

/* A mixed-length batch without padding: sentences of 9 (= max_T), 1, 6 and 4 tokens. The
 * one-token sentence is a single labelled token; the others are <s> ... </s> with ~80% of the
 * inner tokens labelled. Storage: ids / labels NTOK, offsets NSEQ + 1. */
enum { NSEQ = 4, NTOK = 20 };
static const int batch_lens[NSEQ] = {9, 1, 6, 4};

static void make_batch(struct pep_batch *b, int *ids, int *labels, int *offsets, int V, int ntags, int mlm,
                       uint64_t seed)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, 0, 0);
    b->nseq = NSEQ, b->offsets = offsets, b->input_ids = ids, b->labels = labels, b->seq0 = 0;
    offsets[0] = 0;
    for (int i = 0; i < NSEQ; i++) {
        int len = batch_lens[i];
        offsets[i + 1] = offsets[i] + len;
        for (int t = 0; t < len; t++) {
            int k = offsets[i] + t, inner = len == 1 || (t > 0 && t < len - 1);
            ids[k] = !inner && t == 0 ? PEP_BOS_ID : !inner ? PEP_EOS_ID : 4 + (int)pep_rng_below(&r, (uint64_t)V - 5);
            int labelled = inner && (len == 1 || pep_rng_uniform(&r) < 0.8f);
            labels[k] = labelled ? (mlm ? (int)pep_rng_below(&r, (uint64_t)V) : (int)pep_rng_below(&r, (uint64_t)ntags))
                                 : PEP_IGNORE_INDEX;
        }
    }
}

#define FD_DROPOUT_SEED 77

static double loss_at(struct pep_model *m, const struct pep_batch *b)
{
    float loss;
    assert_int_equal(pep_model_forward(m, b, 1, FD_DROPOUT_SEED, &loss), PEP_OK);
    return loss;
}

static int fd_check_rows(struct pep_model *m, const struct pep_batch *b, struct pep_rng *r);

/* A model of spec s with seeded weights plus noise from r (seeded with `noise`), so that no
 * tensor is trivial and every gradient path is exercised. */
static struct pep_model *noisy_model(const struct pep_model_spec *s, uint64_t noise, struct pep_rng *r)
{
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(s, &m), PEP_OK);
    pep_model_init_weights(m, 7, PEP_GROUPS_ALL);
    pep_rng_seed(r, noise, 0, 0);
    for (size_t i = 0; i < m->table.numel; i++) m->params[i] += 0.05f * pep_rng_normal(r);
    return m;
}

static void check_model(enum pep_pe_method pe, enum pep_head_kind head, int reparam, enum pep_adapter_placement pl)
{
    struct pep_model_spec s = small_spec(pe, head);
    s.prefix_reparam = reparam;
    s.placement = pl;
    s.dropout = 0.1f, s.attention_dropout = 0.1f;
    struct pep_rng r;
    struct pep_model *m = noisy_model(&s, 11, &r);
    int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
    struct pep_batch b;
    make_batch(&b, ids, labels, offs, s.V, s.ntags, head == PEP_HEAD_KIND_MLM, 3);
    int bad = fd_check_rows(m, &b, &r);
    pep_model_destroy(&m);
    assert_null(m);
    assert_int_equal(bad, 0);
}

/* The backward of one forward at the model's weights against a central difference of the loss
 * along a random direction per parameter row (r draws the directions); prints and counts the
 * rows that disagree. */
static int fd_check_rows(struct pep_model *m, const struct pep_batch *bp, struct pep_rng *rp)
{
    const struct pep_batch b = *bp;
    struct pep_rng r = *rp;
    float loss;
    pep_model_zero_grad(m, PEP_GROUPS_ALL);
    assert_int_equal(pep_model_forward(m, &b, 1, FD_DROPOUT_SEED, &loss), PEP_OK);
    assert_int_equal(pep_model_backward(m, PEP_GROUPS_ALL), PEP_OK);
    float *dir = malloc(m->table.numel * sizeof(float));
    int bad = 0;
    for (int i = 0; i < m->table.count; i++) {
        const struct pep_param *p = &m->table.rows[i];
        float *w = m->params + p->offset;
        const float *g = m->grads + p->offset;
        double gd = 0, dn = 0;
        for (size_t j = 0; j < p->numel; j++) {
            dir[j] = pep_rng_normal(&r);
            gd += (double)g[j] * dir[j];
            dn += (double)dir[j] * dir[j];
        }
        double e = 1e-2 / sqrt(dn);
        for (size_t j = 0; j < p->numel; j++) w[j] += (float)(e * dir[j]);
        double lp = loss_at(m, &b);
        for (size_t j = 0; j < p->numel; j++) w[j] -= (float)(2 * e * dir[j]);
        double lm = loss_at(m, &b);
        for (size_t j = 0; j < p->numel; j++) w[j] += (float)(e * dir[j]);
        /* per unit direction; the floor keeps float32 noise on near-zero gradients (a key bias,
         * which softmax ignores) from counting as an error */
        double fd = (lp - lm) / (2 * e) / sqrt(dn);
        gd /= sqrt(dn);
        double err = fabs(fd - gd) / fmax(fabs(fd) + fabs(gd), 5e-3);
        if (err > 2e-2) {
            printf("  %s: fd %.6g analytic %.6g (rel %.3g)\n", p->name, fd, gd, err);
            bad++;
        }
    }
    free(dir);
    *rp = r;
    return bad;
}

static void test_model_grad_plain_tagger(void **st) { check_model(PEP_PE_METHOD_NONE, PEP_HEAD_KIND_TAGGER, 0, 0); }
static void test_model_grad_mlm(void **st) { check_model(PEP_PE_METHOD_NONE, PEP_HEAD_KIND_MLM, 0, 0); }
static void test_model_grad_houlsby(void **st)
{
    check_model(PEP_PE_METHOD_ADAPTER, PEP_HEAD_KIND_TAGGER, 0, PEP_ADAPTER_PLACEMENT_HOULSBY);
}
static void test_model_grad_pfeiffer(void **st)
{
    check_model(PEP_PE_METHOD_ADAPTER, PEP_HEAD_KIND_TAGGER, 0, PEP_ADAPTER_PLACEMENT_PFEIFFER);
}
static void test_model_grad_prefix(void **st) { check_model(PEP_PE_METHOD_PREFIX, PEP_HEAD_KIND_TAGGER, 0, 0); }
static void test_model_grad_prefix_reparam(void **st) { check_model(PEP_PE_METHOD_PREFIX, PEP_HEAD_KIND_TAGGER, 1, 0); }
static void test_model_grad_lora(void **st) { check_model(PEP_PE_METHOD_LORA, PEP_HEAD_KIND_TAGGER, 0, 0); }

/* Frozen groups get no gradient, and a PE-only backward (which stops in layer 0 below the
 * lowest trainable module) gives the same PE and head gradients as a full one — for every
 * method and placement, with dropout on. */
static void check_frozen_groups(enum pep_pe_method pe, int reparam, enum pep_adapter_placement pl)
{
    struct pep_model_spec s = small_spec(pe, PEP_HEAD_KIND_TAGGER);
    s.prefix_reparam = reparam, s.placement = pl, s.dropout = 0.1f, s.attention_dropout = 0.1f;
    struct pep_model *m = new_model(&s, 5);
    for (size_t i = 0; i < m->table.numel; i++) m->params[i] += 0.01f * (float)((i * 7919) % 13) / 13.0f;
    int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
    struct pep_batch b;
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 9);
    float loss;
    size_t pb, pe_end;
    unsigned ph = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    assert_int_equal(pep_param_table_range(&m->table, ph, &pb, &pe_end), PEP_OK);
    pep_model_zero_grad(m, PEP_GROUPS_ALL);
    assert_int_equal(pep_model_forward(m, &b, 1, 42, &loss), PEP_OK);
    assert_int_equal(pep_model_backward(m, PEP_GROUPS_ALL), PEP_OK);
    float *full = malloc((pe_end - pb) * sizeof(float));
    memcpy(full, m->grads + pb, (pe_end - pb) * sizeof(float));
    pep_model_zero_grad(m, PEP_GROUPS_ALL);
    assert_int_equal(pep_model_forward(m, &b, 1, 42, &loss), PEP_OK);
    assert_int_equal(pep_model_backward(m, ph), PEP_OK);
    for (size_t i = m->table.group_begin[PEP_GROUP_PLM]; i < m->table.group_end[PEP_GROUP_PLM]; i++)
        assert_true(m->grads[i] == 0.0f);
    double err = pep_test_rel_err(m->grads + pb, full, pe_end - pb);
    if (err >= 1e-6) printf("  pe %d reparam %d placement %d: PE-only vs full rel err %.3g\n", pe, reparam, pl, err);
    assert_true(err < 1e-6);
    free(full);
    pep_model_destroy(&m);
}

static void test_model_grad_frozen_groups_untouched(void **st)
{
    check_frozen_groups(PEP_PE_METHOD_ADAPTER, 0, PEP_ADAPTER_PLACEMENT_HOULSBY);
    check_frozen_groups(PEP_PE_METHOD_ADAPTER, 0, PEP_ADAPTER_PLACEMENT_PFEIFFER);
    check_frozen_groups(PEP_PE_METHOD_PREFIX, 0, 0);
    check_frozen_groups(PEP_PE_METHOD_PREFIX, 1, 0);
    check_frozen_groups(PEP_PE_METHOD_LORA, 0, 0);
}

/* What the layer-done callback saw: each reported range and a copy of its gradient then. */
struct ready_log {
    struct pep_model *m;
    int n;
    size_t b[256], e[256];
    float *copy; /* numel: the gradient of each reported float when it was reported */
};

static int log_ready(size_t begin, size_t end, void *ud)
{
    struct ready_log *lg = ud;
    assert_true(lg->n < 256 && begin < end && end <= lg->m->table.numel);
    lg->b[lg->n] = begin, lg->e[lg->n] = end, lg->n++;
    memcpy(lg->copy + begin, lg->m->grads + begin, (end - begin) * sizeof(float));
    return PEP_OK;
}

/* The layer-done callback reports every row of the pass's groups exactly once, whole rows of
 * one group, top down (head first, then layers from L-1, embeddings after the layers), and a
 * reported gradient never changes afterwards — for each method, head and group set. */
static void check_grad_ready(enum pep_pe_method pe, enum pep_head_kind head, int reparam, enum pep_adapter_placement pl,
                             unsigned groups)
{
    struct pep_model_spec s = small_spec(pe, head);
    s.prefix_reparam = reparam, s.placement = pl, s.dropout = 0.1f, s.attention_dropout = 0.1f;
    struct pep_model *m = new_model(&s, 5);
    int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
    struct pep_batch b;
    make_batch(&b, ids, labels, offs, s.V, s.ntags, head == PEP_HEAD_KIND_MLM, 9);
    struct ready_log lg = {.m = m, .copy = calloc(m->table.numel, sizeof(float))};
    int *seen = calloc(m->table.numel, sizeof(int));
    float loss;
    pep_model_zero_grad(m, PEP_GROUPS_ALL);
    pep_model_set_grad_ready(m, log_ready, &lg);
    assert_int_equal(pep_model_forward(m, &b, 1, 42, &loss), PEP_OK);
    assert_int_equal(pep_model_backward(m, groups), PEP_OK);
    pep_model_set_grad_ready(m, NULL, NULL);
    for (int k = 0; k < lg.n; k++)
        for (size_t i = lg.b[k]; i < lg.e[k]; i++) seen[i]++;
    for (int r = 0; r < m->table.count; r++) {
        const struct pep_param *p = &m->table.rows[r];
        int want = (groups & PEP_GROUP_BIT(p->group)) ? 1 : 0;
        for (size_t i = p->offset; i < p->offset + p->numel; i++) {
            if (seen[i] != want) printf("  pe %d head %d groups %#x: %s reported %d times\n", pe, head, groups, p->name, seen[i]);
            assert_int_equal(seen[i], want);
            if (want) assert_memory_equal(&lg.copy[i], &m->grads[i], sizeof(float)); /* final when reported */
        }
    }
    /* top down: the first encoder row reported belongs to the top layer, the embeddings come after every layer */
    int wte = pep_param_table_find(&m->table, "embeddings.word_embeddings.weight");
    int top = pep_param_table_find(&m->table, "encoder.layer.1.attention.self.query.weight");
    int bottom = pep_param_table_find(&m->table, "encoder.layer.0.attention.self.query.weight");
    int k_wte = -1, k_top = -1, k_bottom = -1;
    for (int k = 0; k < lg.n; k++) {
        if (lg.b[k] == m->table.rows[wte].offset) k_wte = k;
        if (lg.b[k] == m->table.rows[top].offset) k_top = k;
        if (lg.b[k] == m->table.rows[bottom].offset) k_bottom = k;
    }
    if (groups & PEP_GROUP_BIT(PEP_GROUP_PLM)) assert_true(k_top >= 0 && k_top < k_bottom && k_bottom < k_wte);
    free(seen);
    free(lg.copy);
    pep_model_destroy(&m);
}

static void test_model_grad_ready_callback(void **st)
{
    unsigned all = PEP_GROUPS_ALL, ph = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    unsigned plm = PEP_GROUP_BIT(PEP_GROUP_PLM);
    for (int gi = 0; gi < 3; gi++) {
        unsigned g = gi == 0 ? all : gi == 1 ? ph : plm;
        check_grad_ready(PEP_PE_METHOD_ADAPTER, PEP_HEAD_KIND_TAGGER, 0, PEP_ADAPTER_PLACEMENT_HOULSBY, g);
        check_grad_ready(PEP_PE_METHOD_ADAPTER, PEP_HEAD_KIND_TAGGER, 0, PEP_ADAPTER_PLACEMENT_PFEIFFER, g);
        check_grad_ready(PEP_PE_METHOD_PREFIX, PEP_HEAD_KIND_TAGGER, 0, 0, g);
        check_grad_ready(PEP_PE_METHOD_PREFIX, PEP_HEAD_KIND_TAGGER, 1, 0, g);
        check_grad_ready(PEP_PE_METHOD_LORA, PEP_HEAD_KIND_TAGGER, 0, 0, g);
        check_grad_ready(PEP_PE_METHOD_NONE, PEP_HEAD_KIND_MLM, 0, 0, g);
    }
}

/* Dropout replays exactly with the same seed and differs with another. */
static void test_model_dropout_replay(void **st)
{
    struct pep_model_spec s = small_spec(PEP_PE_METHOD_NONE, PEP_HEAD_KIND_TAGGER);
    s.dropout = 0.3f, s.attention_dropout = 0.2f;
    struct pep_model *m = new_model(&s, 5);
    int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
    struct pep_batch b;
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 4);
    float l1, l2, l3, l0;
    assert_int_equal(pep_model_forward(m, &b, 1, 42, &l1), PEP_OK);
    assert_int_equal(pep_model_forward(m, &b, 1, 42, &l2), PEP_OK);
    assert_int_equal(pep_model_forward(m, &b, 1, 43, &l3), PEP_OK);
    assert_int_equal(pep_model_forward(m, &b, 0, 42, &l0), PEP_OK);
    assert_true(l1 == l2);
    assert_true(l1 != l3);
    assert_true(l1 != l0);
    pep_model_destroy(&m);
}

/* ReLU adapters at a stored pattern (what second-order MAML's HVP passes run): the pattern
 * recorded at w0 and replayed at w1 = w0 + a large step of the adapters, where units have
 * crossed their kink (w1's own pattern differs), is the network whose ReLUs are switched by
 * w0's signs — a smooth function of the weights near w1 — and forward and backward must both
 * use it: the gradient passes the finite-difference check there. Replaying w1's own pattern
 * gives ReLU's own loss; mode OWN is plain ReLU again. */
static void test_model_relu_pattern_replay(void **st)
{
    struct pep_model_spec s = small_spec(PEP_PE_METHOD_ADAPTER, PEP_HEAD_KIND_TAGGER);
    s.adapter_act = PEP_ACTIVATION_RELU, s.dropout = 0.1f, s.attention_dropout = 0.1f;
    struct pep_rng r;
    struct pep_model *m = noisy_model(&s, 13, &r);
    int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
    struct pep_batch b;
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 3);
    size_t words = pep_model_relu_pattern_words(m, NTOK);
    assert_int_equal(words, 2 * s.L * ((NTOK * s.bottleneck + 63) / 64)); /* Houlsby: 2 adapters a layer */
    uint64_t *p0 = calloc(words, sizeof *p0), *p1 = calloc(words, sizeof *p1);
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_RECORD, p0);
    float l0, l1, l1own, l1rep;
    assert_int_equal(pep_model_forward(m, &b, 1, FD_DROPOUT_SEED, &l0), PEP_OK);
    size_t pb, pe;
    assert_int_equal(pep_param_table_range(&m->table, PEP_GROUP_BIT(PEP_GROUP_PE), &pb, &pe), PEP_OK);
    for (size_t i = pb; i < pe; i++) m->params[i] += 0.3f * pep_rng_normal(&r);
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_RECORD, p1);
    assert_int_equal(pep_model_forward(m, &b, 1, FD_DROPOUT_SEED, &l1), PEP_OK);
    int crossed = 0;
    for (size_t w = 0; w < words; w++) crossed += __builtin_popcountll(p0[w] ^ p1[w]);
    print_message("ReLU units that crossed their kink between w0 and w1: %d\n", crossed);
    assert_true(crossed > 0);
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_REPLAY, p1);
    assert_int_equal(pep_model_forward(m, &b, 1, FD_DROPOUT_SEED, &l1rep), PEP_OK);
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_OWN, NULL);
    assert_int_equal(pep_model_forward(m, &b, 1, FD_DROPOUT_SEED, &l1own), PEP_OK);
    assert_true(l1rep == l1 && l1own == l1);
    /* at w1 with w0's pattern: a different function, and a consistent forward and backward */
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_REPLAY, p0);
    float l10;
    assert_int_equal(pep_model_forward(m, &b, 1, FD_DROPOUT_SEED, &l10), PEP_OK);
    assert_true(l10 != l1);
    assert_int_equal(fd_check_rows(m, &b, &r), 0);
    pep_model_set_relu_pattern(m, PEP_RELU_PATTERN_OWN, NULL);
    free(p0);
    free(p1);
    pep_model_destroy(&m);
}

/* pep_model_grad_span: increasing, disjoint spans inside [begin, end) that cover every
 * non-zero gradient row and skip the word-embedding rows of tokens no backward has seen since
 * the last zeroing — also when the range starts or ends inside that tensor. */
static void check_spans(const struct pep_model *m, size_t begin, size_t end, size_t *covered)
{
    char *in = calloc(m->table.numel, 1);
    size_t last = begin;
    *covered = 0;
    for (size_t i = begin, e; (i = pep_model_grad_span(m, i, end, &e)) < end; i = e) {
        assert_true(i >= last && e > i && e <= end);
        memset(in + i, 1, e - i);
        *covered += e - i;
        last = e;
    }
    for (size_t i = begin; i < end; i++)
        if (m->grads[i] != 0.0f) assert_true(in[i]);
    free(in);
}

static void test_model_grad_spans(void **st)
{
    struct pep_model_spec s = small_spec(PEP_PE_METHOD_ADAPTER, PEP_HEAD_KIND_TAGGER);
    struct pep_model *m = new_model(&s, 7);
    int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
    struct pep_batch b;
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 3);
    float loss;
    pep_model_zero_grad(m, PEP_GROUPS_ALL);
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &loss), PEP_OK);
    assert_int_equal(pep_model_backward(m, PEP_GROUPS_ALL), PEP_OK);
    const struct pep_param *w = &m->table.rows[pep_param_table_find(&m->table, "embeddings.word_embeddings.weight")];
    size_t covered, n = m->table.numel, C = (size_t)s.C;
    check_spans(m, 0, n, &covered);
    int seen[64] = {0}, rows = 0;
    for (int i = 0; i < NTOK; i++) rows += !seen[ids[i]]++;
    assert_int_equal(covered, n - w->numel + (size_t)rows * C); /* exactly the batch's rows of the table */
    check_spans(m, w->offset + 3 * C + 5, w->offset + w->numel - 7, &covered); /* starts and ends mid-row */
    check_spans(m, 0, w->offset + 1, &covered);
    check_spans(m, w->offset + w->numel - 1, n, &covered);
    pep_model_zero_grad(m, PEP_GROUPS_ALL);
    check_spans(m, w->offset, w->offset + w->numel, &covered);
    assert_int_equal(covered, 0);
    pep_model_destroy(&m);
}

static void test_linear_fast_matches_ref(void **st)
{
    enum { N = 37, IC = 29, OC = 23 };
    static float x[N * IC], w[OC * IC], b[OC], y[N * OC], yr[N * OC], dy[N * OC];
    static float dx[N * IC], dxr[N * IC], dw[OC * IC], dwr[OC * IC], db[OC], dbr[OC];
    struct pep_rng r;
    pep_rng_seed(&r, 1, 2, 3);
    for (int i = 0; i < N * IC; i++) x[i] = pep_rng_normal(&r);
    for (int i = 0; i < OC * IC; i++) w[i] = pep_rng_normal(&r);
    for (int i = 0; i < OC; i++) b[i] = pep_rng_normal(&r);
    for (int i = 0; i < N * OC; i++) dy[i] = pep_rng_normal(&r);
    linear_forward(NULL, y, x, w, b, N, IC, OC, IC, OC);
    linear_forward_ref(yr, x, w, b, N, IC, OC);
    assert_true(pep_test_rel_err(y, yr, N * OC) < 1e-6);
    linear_backward(NULL, dx, dw, db, dy, x, w, N, IC, OC, IC, OC);
    linear_backward_ref(dxr, dwr, dbr, dy, x, w, N, IC, OC);
    assert_true(pep_test_rel_err(dx, dxr, N * IC) < 1e-6);
    assert_true(pep_test_rel_err(dw, dwr, OC * IC) < 1e-6);
    assert_true(pep_test_rel_err(db, dbr, OC) < 1e-6);
}

/* Eject (prefix MLP -> flat prefixes) and merge (LoRA -> base weights) keep the outputs. */
static void check_reparam(enum pep_pe_method pe)
{
    struct pep_model_spec s = small_spec(pe, PEP_HEAD_KIND_TAGGER);
    s.prefix_reparam = pe == PEP_PE_METHOD_PREFIX;
    struct pep_model *m = new_model(&s, 2), *m2 = NULL;
    struct pep_rng r;
    pep_rng_seed(&r, 4, 0, 0);
    for (size_t i = 0; i < m->table.numel; i++) m->params[i] += 0.05f * pep_rng_normal(&r);
    int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
    struct pep_batch b;
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 6);
    float l1, l2;
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &l1), PEP_OK);
    size_t nl = (size_t)NTOK * s.ntags;
    float *logits = malloc(nl * sizeof(float));
    memcpy(logits, pep_model_logits(m), nl * sizeof(float));
    if (pe == PEP_PE_METHOD_PREFIX) assert_int_equal(pep_model_eject_prefix(m, &m2), PEP_OK);
    else assert_int_equal(pep_model_merge_lora(m, &m2), PEP_OK);
    assert_int_equal(pep_model_forward(m2, &b, 0, 0, &l2), PEP_OK);
    double err = pep_test_rel_err(pep_model_logits(m2), logits, nl);
    printf("  %s: logits rel err after %s %.2e\n", pep_pe_method_name(pe),
           pe == PEP_PE_METHOD_PREFIX ? "eject" : "merge", err);
    assert_true(err < 1e-5);
    free(logits);
    pep_model_destroy(&m);
    pep_model_destroy(&m2);
}

static void test_model_prefix_eject_keeps_outputs(void **st) { check_reparam(PEP_PE_METHOD_PREFIX); }
static void test_model_lora_merge_keeps_outputs(void **st) { check_reparam(PEP_PE_METHOD_LORA); }

/* An adapter whose up-projection is zero (the initialisation) leaves the model unchanged. */
static void test_model_adapter_init_is_identity(void **st)
{
    for (int pl = 0; pl < 2; pl++) {
        struct pep_model_spec s = small_spec(PEP_PE_METHOD_NONE, PEP_HEAD_KIND_TAGGER);
        struct pep_model *base = NULL, *ad = NULL;
        assert_int_equal(pep_model_create(&s, &base), PEP_OK);
        s.pe = PEP_PE_METHOD_ADAPTER;
        s.placement = pl ? PEP_ADAPTER_PLACEMENT_HOULSBY : PEP_ADAPTER_PLACEMENT_PFEIFFER;
        assert_int_equal(pep_model_create(&s, &ad), PEP_OK);
        pep_model_init_weights(base, 8, PEP_GROUPS_ALL);
        pep_model_init_weights(ad, 8, PEP_GROUPS_ALL);
        int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
        struct pep_batch b;
        make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 6);
        float l1, l2;
        assert_int_equal(pep_model_forward(base, &b, 0, 0, &l1), PEP_OK);
        assert_int_equal(pep_model_forward(ad, &b, 0, 0, &l2), PEP_OK);
        assert_true(pep_test_rel_err(pep_model_logits(ad), pep_model_logits(base), (size_t)NTOK * s.ntags) < 1e-6);
        pep_model_destroy(&base);
        pep_model_destroy(&ad);
    }
}

/* Batches the model refuses with a usage error: padding inside, an empty or too long
 * sequence, too many sequences, offsets not starting at 0; and a dropout key space too small. */
static void test_model_rejects_bad_batches(void **st)
{
    struct pep_model_spec s = small_spec(PEP_PE_METHOD_NONE, PEP_HEAD_KIND_TAGGER);
    struct pep_model *m = new_model(&s, 1);
    int ids[NTOK], labels[NTOK], offs[NSEQ + 1];
    struct pep_batch b;
    float loss;
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 2);
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &loss), PEP_OK);
    ids[3] = PEP_PAD_ID;
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &loss), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "no padding"));
    pep_error_clear();
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 2);
    offs[1] = 0; /* sequence 0 empty */
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &loss), PEP_ERR_USAGE);
    pep_error_clear();
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 2);
    offs[1] = 10; /* sequence 0 longer than max_T = 9 */
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &loss), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "model.max_seq_len"));
    pep_error_clear();
    make_batch(&b, ids, labels, offs, s.V, s.ntags, 0, 2);
    b.nseq = s.max_B + 1;
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &loss), PEP_ERR_USAGE);
    pep_error_clear();
    b.nseq = 0;
    assert_int_equal(pep_model_forward(m, &b, 0, 0, &loss), PEP_ERR_USAGE);
    pep_error_clear();
    pep_model_destroy(&m);
    s.max_T = 4000, s.max_positions = 4002, s.pe = PEP_PE_METHOD_PREFIX, s.prefix_len = 100;
    assert_int_equal(pep_model_create(&s, &m), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "dropout masks"));
    pep_error_clear();
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_fast_matches_ref),
        cmocka_unit_test(test_model_grad_plain_tagger),
        cmocka_unit_test(test_model_grad_mlm),
        cmocka_unit_test(test_model_grad_houlsby),
        cmocka_unit_test(test_model_grad_pfeiffer),
        cmocka_unit_test(test_model_grad_prefix),
        cmocka_unit_test(test_model_grad_prefix_reparam),
        cmocka_unit_test(test_model_grad_lora),
        cmocka_unit_test(test_model_grad_frozen_groups_untouched),
        cmocka_unit_test(test_model_grad_ready_callback),
        cmocka_unit_test(test_model_dropout_replay),
        cmocka_unit_test(test_model_relu_pattern_replay),
        cmocka_unit_test(test_model_grad_spans),
        cmocka_unit_test(test_model_rejects_bad_batches),
        cmocka_unit_test(test_model_prefix_eject_keeps_outputs),
        cmocka_unit_test(test_model_lora_merge_keeps_outputs),
        cmocka_unit_test(test_model_adapter_init_is_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
