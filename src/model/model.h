/* The encoder: XLM-R / BERT family with a token-classification (or masked-LM) head and
 * optional parameter-efficient modules, forward and backward by hand over OpenBLAS sgemm.
 *
 * Parameter names and shapes are those of Hugging Face's XLMRobertaForTokenClassification
 * without the "roberta." prefix (embeddings.word_embeddings.weight, encoder.layer.0.
 * attention.self.query.weight, ..., classifier.weight); docs/model.md lists every formula.
 *
 * Usage: pep_model_create(); pep_model_init_weights() (or load the flat block from a
 * checkpoint by name); per step: pep_model_forward(), pep_model_backward(mask) which
 * ACCUMULATES into m->grads for the rows whose group is in the mask, pep_model_zero_grad().
 * Backward computes no weight gradient for groups outside the mask, and stops propagating
 * activation gradients below the lowest layer that still needs them.
 *
 * Files: model_spec.c (the spec from the config), model_create.c (parameter table, activation
 * arena, create / destroy, initialisation), model.c (forward, backward, eject / merge),
 * model_state.h (their private state), batch.c (batches), params.c (the parameter table). */
#ifndef PEP_MODEL_H
#define PEP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "layers/activation.h"
#include "model/kinds.h"
#include "model/params.h"

/* Token ids follow fairseq / XLM-R: <s>=0 <pad>=1 </s>=2 <unk>=3, SentencePiece piece i
 * (i >= 3) is id i + 1, <mask> is the last id. */
#define PEP_BOS_ID 0
#define PEP_PAD_ID 1
#define PEP_EOS_ID 2
#define PEP_UNK_ID 3
#define PEP_IGNORE_INDEX (-100)


struct pep_model_spec {
    int L, C, NH, FF, V;       /* layers, width, heads, feed-forward width, vocabulary */
    int max_T;                 /* longest sequence the model accepts (attention scratch) */
    int max_B;                 /* most sequences per batch; activations hold max_B * max_T tokens */
    int max_positions;         /* rows of position_embeddings */
    int type_vocab;
    int ntags;                 /* tagger classes (ignored for the MLM head) */
    float ln_eps;
    float dropout, attention_dropout;
    float init_std;
    enum pep_head_kind head;
    enum pep_pe_method pe;
    enum pep_adapter_placement placement;
    enum pep_activation adapter_act;
    int bottleneck;            /* adapter width */
    int prefix_len;            /* P */
    int prefix_reparam;        /* 1: prefixes come from the MLP (prefix.*); 0: flat per-layer prefixes */
    int prefix_hidden;
    int lora_rank;
    float lora_alpha;
};

/* A batch: nseq sequences laid out token-major WITHOUT padding (the layout varlen attention
 * kernels take). Sequence i is tokens offsets[i] .. offsets[i+1]-1 of input_ids / labels;
 * N = offsets[nseq] real tokens in all. Every sequence has 1 .. max_T tokens and no
 * PEP_PAD_ID; its positions are 2, 3, ... (fairseq). */
struct pep_batch {
    int nseq;
    int *offsets;   /* (nseq + 1) cumulative lengths, offsets[0] = 0 */
    int *input_ids; /* (N) fairseq ids */
    int *labels;    /* (N) tag / target, PEP_IGNORE_INDEX where there is no loss; NULL: none */
    int seq0;       /* index of sequence 0 in the whole batch this is a share of (task groups), else 0:
                       dropout masks are keyed by it, so a share draws what the whole batch would */
    int cap_seqs, cap_tokens; /* storage of pep_batch_alloc (0 when the caller owns the arrays) */
};

/* batch.c: storage for up to max_seqs sequences and max_tokens tokens (nseq = 0). */
int pep_batch_alloc(struct pep_batch *b, int max_seqs, int max_tokens);
void pep_batch_free(struct pep_batch *b);
void pep_batch_clear(struct pep_batch *b);
/* Appends one sequence of len >= 1 tokens (labels NULL: all PEP_IGNORE_INDEX); PEP_ERR_USAGE
 * beyond the capacity. */
int pep_batch_append(struct pep_batch *b, const int *ids, const int *labels, int len);
static inline int pep_batch_tokens(const struct pep_batch *b) { return b->offsets[b->nseq]; }
static inline int pep_batch_len(const struct pep_batch *b, int i) { return b->offsets[i + 1] - b->offsets[i]; }
int pep_batch_max_len(const struct pep_batch *b);

struct pep_model_state; /* row indices, activations and scratch: model_state.h, private to the model */

/* Layer-done callback of pep_model_backward: m->grads[begin, end) (whole parameter rows of one
 * group) holds its final value for this backward pass; every later step of the pass leaves it
 * alone. A non-zero return stops the pass with that status. See pep_model_set_grad_ready. */
typedef int (*pep_grad_ready_fn)(size_t begin, size_t end, void *ud);

struct pep_model {
    struct pep_model_spec spec;
    struct pep_param_table table;
    float *params; /* table.numel floats */
    float *grads;  /* table.numel floats */
    struct pep_model_state *state;
    pep_grad_ready_fn grad_ready; /* NULL = none (pep_model_set_grad_ready) */
    void *grad_ready_ud;
};

int pep_model_create(const struct pep_model_spec *spec, struct pep_model **out);
void pep_model_destroy(struct pep_model **m);
/* Runs the forward/backward sgemm calls on `threads` threads, the caller included (core/gemm.h:
 * each call split by output rows or columns; OpenBLAS must then be on one thread). 1, the
 * default, is one plain call each, the bits of a model that never had threads; more threads
 * give the same bits run to run for a given count. Replaces any earlier pool. PEP_ERR_USAGE for
 * threads < 1, PEP_ERR_NOMEM, PEP_ERR_INTERNAL (a thread could not start); on failure the
 * model runs in the caller only. */
int pep_model_set_threads(struct pep_model *m, int threads);
/* Seeded initialisation of the groups in the mask: normal(0, init_std) matrices, zero biases,
 * unit LayerNorm gains; adapter up-projections and LoRA B zero (near-identity). */
void pep_model_init_weights(struct pep_model *m, uint64_t seed, unsigned groups);
/* Forward pass; saves what backward needs. `train` turns dropout on, with masks drawn from
 * `dropout_seed` so the same seed replays the same masks. *loss = mean cross-entropy over
 * labels != PEP_IGNORE_INDEX (0 if there are none). Returns PEP_ERR_NUMERIC on a non-finite loss. */
int pep_model_forward(struct pep_model *m, const struct pep_batch *b, int train, uint64_t dropout_seed, float *loss);
/* Backward of the last forward: accumulates dloss/dparam into m->grads for rows whose group is
 * in `groups`. */
int pep_model_backward(struct pep_model *m, unsigned groups);
/* The same for a batch that is one share of a larger one (gradient accumulation): accumulates
 * the gradient of (sum of this batch's target cross-entropies) / ntargets_total, so the
 * backward passes of the shares add up to that of the mean over all ntargets_total targets.
 * pep_model_backward(m, g) is pep_model_backward_share(m, g, pep_model_ntargets(m)).
 * PEP_ERR_USAGE when ntargets_total is less than this batch's targets. */
int pep_model_backward_share(struct pep_model *m, unsigned groups, int ntargets_total);
/* Installs (fn != NULL) or removes (NULL) the layer-done callback: during pep_model_backward,
 * the rows of the groups in the pass are reported as they become final, top down — the head
 * after the head, layer l's rows of each group after layer l (l = L-1 .. 0), the embeddings
 * after them, prefix rows (their gradient is gathered from every layer) last. Each row is
 * reported at most once per pass; rows not reported (a pass that stops early, a batch without
 * labels) are final when pep_model_backward returns. This lets a caller start reducing the
 * finished layers' gradients while the lower layers still compute (jobs/stage_prime.c). */
void pep_model_set_grad_ready(struct pep_model *m, pep_grad_ready_fn fn, void *ud);
void pep_model_zero_grad(struct pep_model *m, unsigned groups);
/* The rows of the gradient block in [begin, end) that can be non-zero, span by span: returns
 * the start of the first span at or after `begin` (`end` when there is none) and its end in
 * *span_end. All rows are, except a tagger's word-embedding gradient (V x C, the largest tensor),
 * of which only the rows of the tokens of the backward passes since their group was last
 * zeroed are; the others are zero. Loop:
 *   for (size_t i = b, e; (i = pep_model_grad_span(m, i, end, &e)) < end; i = e) ... rows [i, e) ... */
size_t pep_model_grad_span(const struct pep_model *m, size_t begin, size_t end, size_t *span_end);
/* ReLU patterns (second-order MAML's finite-difference HVP, docs/model.md "MAML priming"): the
 * on/off state of every ReLU adapter unit for each token of a batch, one bit each.
 * pep_model_relu_pattern_words(m, N): the 64-bit words a batch of N tokens needs (0 when the
 * model has no ReLU: no adapters, or pe.activation gelu / swish; modes are then no-ops).
 * From the next forward on, mode OWN (the default): ReLU by the sign of its own input; RECORD:
 * the same, and the forward writes its pattern into `bits`; REPLAY: the forward and its
 * backward let a unit through iff its bit in `bits` is set — a pattern RECORDed on the same
 * batch — whatever the sign of its input. The model keeps the pointer, not a copy. */
enum pep_relu_pattern { PEP_RELU_PATTERN_OWN, PEP_RELU_PATTERN_RECORD, PEP_RELU_PATTERN_REPLAY };
size_t pep_model_relu_pattern_words(const struct pep_model *m, int N);
void pep_model_set_relu_pattern(struct pep_model *m, enum pep_relu_pattern mode, uint64_t *bits);
/* Tells the model that m->grads[begin, end) was written outside backward (a task group's sum
 * over its ranks), so the next pep_model_zero_grad clears all of it, not only the word-embedding
 * rows this process's batches touched. */
void pep_model_grads_written(struct pep_model *m, size_t begin, size_t end);
/* Logits of the last forward: tagger (N, ntags), one row per token of the batch; masked LM
 * (M, V) for the M labelled tokens only, in batch order (the MLM head skips the others). */
const float *pep_model_logits(const struct pep_model *m);
/* Number of labelled targets in the last forward. */
int pep_model_ntargets(const struct pep_model *m);
/* Folds the prefix MLP into flat prefixes (eject) / LoRA into the base weights (merge).
 * Both are pure re-parameterisations: outputs stay the same. */
int pep_model_eject_prefix(struct pep_model *m, struct pep_model **out);
int pep_model_merge_lora(struct pep_model *m, struct pep_model **out);

#endif
