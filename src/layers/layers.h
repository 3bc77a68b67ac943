/* Layer kernels: forward/backward pairs on caller-owned buffers, llm.c argument order
 * (outputs, saved-for-backward, const inputs, dimensions). No allocation, no I/O, no
 * globals. Every backward ACCUMULATES (+=) into the gradients it writes; a NULL gradient
 * pointer means "not needed" and skips that work. Activations are N rows, one per real token of
 * the batch (no padding), sequence after sequence; `offsets` (nseq + 1 cumulative lengths)
 * say where each sequence starts. */
#ifndef PEP_LAYERS_H
#define PEP_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "layers/activation.h"

/* linear.c: out (N, OC) = inp (N, IC) W^T + b, W (OC, IC) row-major (Hugging Face layout).
 * ldi / ldo are the row strides of inp / out (>= IC / OC), for views into wider buffers. The
 * sgemm calls run on `pool`'s threads (core/gemm.h; NULL = the caller only). */
void linear_forward(pep_pool_t *pool, float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC,
                    int ldi, int ldo);
void linear_backward(pep_pool_t *pool, float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                     int N, int IC, int OC, int ldi, int ldo);
/* Fast path when dinp has no other contributor: dinp = dout W (overwritten, no memset needed). */
void linear_backward_set(pep_pool_t *pool, float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                         int N, int IC, int OC, int ldi, int ldo);
void linear_forward_ref(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC);
void linear_backward_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                         int N, int IC, int OC);

/* layernorm.c: out = (inp - mean) * rstd * w + b per row of C. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       int N, int C, float eps);
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        const float *mean, const float *rstd, int N, int C);

/* activation.c: activations used by the feed-forward block, adapters and the prefix MLP
 * (enum pep_activation and its names: layers/activation.h). */
void activation_forward(float *out, const float *inp, size_t n, enum pep_activation kind);
void activation_backward(float *dinp, const float *inp, const float *dout, size_t n, enum pep_activation kind);
/* Fast path when the input gradient has no other contributor: d *= f'(inp), in place. */
void activation_backward_inplace(float *d, const float *inp, size_t n, enum pep_activation kind);
/* ReLU with a stored on/off pattern: one bit per unit, unit i in bit i % 64 of word i / 64.
 * relu_pattern_record sets bit i to inp[i] > 0 (what ReLU does); forward and backward given a
 * pattern let unit i through iff its bit is set, whatever the sign of their own input. Second-
 * order MAML's finite-difference HVP evaluates its two passes at the pattern of the point it
 * differentiates at (autograd's ReLU'' = 0). */
static inline size_t relu_pattern_words(size_t n) { return (n + 63) / 64; }
void relu_pattern_record(uint64_t *on, const float *inp, size_t n);
void relu_pattern_forward(float *out, const float *inp, const uint64_t *on, size_t n);
void relu_pattern_backward(float *dinp, const uint64_t *on, const float *dout, size_t n);

/* embedding.c: summed word + position + type embeddings of N tokens (pos: position-table rows). */
void embedding_forward(float *out, const int *ids, const int *pos, const float *wte, const float *wpe,
                       const float *wtt, int N, int C);
void embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int *ids, const int *pos,
                        int N, int C);

/* dropout.c: replayable dropout whose mask does not depend on the batch layout (docs/model.md,
 * "Dropout"). x is N rows of W; row i is token t of sequence b of the batch and carries
 * rowkey[i] = b * PEP_DROPOUT_STRIDE + t; element c keeps iff
 * hash(seed, site, rowkey[i] * W + c) >= p, kept values scaled 1/(1-p). */
#define PEP_DROPOUT_STRIDE 4096
void dropout_forward(float *x, const uint64_t *rowkey, int N, int W, float p, uint64_t seed, uint64_t site);
void dropout_backward(float *dx, const uint64_t *rowkey, int N, int W, float p, uint64_t seed, uint64_t site);

/* attention.c: multi-head attention of each sequence over its own tokens, on a fused qkv
 * buffer (N, 3C) (q | k | v columns), with optional prefix keys/values pk, pv (P, C)
 * prepended to every sequence's keys and values. Sequence b (length L_b) owns the rows
 * offsets[b] .. offsets[b+1]-1; att saves its softmax probabilities (before attention dropout)
 * as NH blocks of (L_b, P + L_b), sequence after sequence.
 * The attention-dropout mask of probability (sequence b, head h, query i, key slot j; slots
 * 0..P-1 are the prefix keys, P + t token t) has key (((seq0 + b) * NH + h) * S + i) * S + j,
 * S = PEP_DROPOUT_STRIDE, seq0 the index of sequence 0 in the whole batch this one is a share
 * of (task groups; else 0), so a share draws the whole batch's masks.
 * pool: its threads take contiguous ranges of heads (NULL: the caller alone); any thread count
 * gives the same bits. scratch: one slice of scratch_stride >= attention_scratch_floats(longest
 * sequence, P) floats per pool thread. */
void attention_forward(pep_pool_t *pool, float *ctx, float *att, const float *qkv, const float *pk, const float *pv,
                       const int *offsets, int nseq, int seq0, int C, int NH, int P, float drop_p, uint64_t seed,
                       uint64_t site, float *scratch, size_t scratch_stride);
/* dqkv (N, 3C) accumulated, or NULL when only the prefix gradients are wanted (a frozen layer
 * with nothing trainable below); dpk, dpv (P, C) accumulated when non-NULL. */
void attention_backward(pep_pool_t *pool, float *dqkv, float *dpk, float *dpv, const float *dctx, const float *qkv,
                        const float *pk, const float *pv, const float *att, const int *offsets, int nseq, int seq0,
                        int C, int NH, int P, float drop_p, uint64_t seed, uint64_t site, float *scratch,
                        size_t scratch_stride);
size_t attention_scratch_floats(int T, int P);

/* xent.c: softmax cross-entropy over rows of K logits with an ignore label. Returns the summed
 * loss over labelled rows; *count gets their number. dlogits (N, K) = (softmax - onehot) * scale
 * for labelled rows, 0 elsewhere (overwritten, not accumulated: the loss is the graph's root). */
double xent_forward(const float *logits, const int *labels, int N, int K, int ignore, int *count);
void xent_backward(float *dlogits, const float *logits, const int *labels, int N, int K, int ignore, float scale);

/* adapter.c: bottleneck adapter delta = up(act(down(x))); out += delta (residual added by caller
 * layout: out may alias x for in-place "x = x + adapter(x)"). h_pre, h_act (N, R) saved.
 * relu_on: NULL, or (act ReLU only) the on/off pattern of the N x R units to use instead of
 * the sign of h_pre (relu_pattern_* above); pass the same one to the backward. */
void adapter_forward(pep_pool_t *pool, float *out, float *h_pre, float *h_act, const float *x, const float *wd, const float *bd,
                     const float *wu, const float *bu, int N, int C, int R, enum pep_activation act,
                     const uint64_t *relu_on);
/* Given dout (gradient at the adapter's output y = x + delta), accumulates dx (= dout + d/dx delta)
 * when dx != NULL — dx must not alias dout — and the weight gradients when non-NULL. */
void adapter_backward(pep_pool_t *pool, float *dx, float *dwd, float *dbd, float *dwu, float *dbu, const float *dout, const float *x,
                      const float *h_pre, const float *h_act, const float *wd, const float *wu, int N, int C, int R,
                      enum pep_activation act, const uint64_t *relu_on, float *scratch);

/* prefix.c: prefix-tuning's reparameterisation MLP (Li & Liang): kv (P, 2LC) = W2 tanh(W0 emb + b0) + b2
 * with emb (P, C), W0 (H, C), W2 (2LC, H), split into pk, pv (L, P, C); h, act (P, H) and kv
 * saved. Backward accumulates into demb, dw0, db0, dw2, db2 from dpk, dpv (L, P, C), with
 * dkv (P, 2LC) and scratch (2 P H) as work space. */
void prefix_mlp_forward(float *pk, float *pv, float *kv, float *h, float *act, const float *emb, const float *w0,
                        const float *b0, const float *w2, const float *b2, int L, int P, int C, int H);
void prefix_mlp_backward(float *demb, float *dw0, float *db0, float *dw2, float *db2, float *dkv, float *scratch,
                         const float *dpk, const float *dpv, const float *emb, const float *w0, const float *w2,
                         const float *h, const float *act, int L, int P, int C, int H);

/* lora.c: out (N, OC, stride ldo) += scale * (x A^T) B^T; xa (N, r) saved. A (r, IC), B (OC, r). */
void lora_forward(float *out, float *xa, const float *x, const float *a, const float *b, int N, int IC, int OC,
                  int r, float scale, int ldi, int ldo);
void lora_backward(float *dx, float *da, float *db, const float *dout, const float *x, const float *xa,
                   const float *a, const float *b, int N, int IC, int OC, int r, float scale, int ldi, int ldo,
                   float *scratch);

#endif
