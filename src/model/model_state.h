/* The model's private state (model.h keeps it opaque as struct pep_model_state): the row
 * index of every parameter in the table, the activations the last forward saved, and the
 * backward scratch, all carved from one arena. Included by model_create.c (which builds it)
 * and model.c (forward and backward) only. */
#ifndef PEP_MODEL_STATE_H
#define PEP_MODEL_STATE_H

#include <stdint.h>

#include "core/pool.h"
#include "model/model.h"

struct adapter_ids {
    int wd, bd, wu, bu; /* -1 when absent */
};

struct layer_ids {
    int wq, bq, wo, bo, ln1w, ln1b, wi, bi, wout, bout, ln2w, ln2b; /* wq/bq start the fused q|k|v block */
    struct adapter_ids att_ad, out_ad;
    int pk, pv;           /* flat prefixes */
    int qa, qb, va, vb;   /* LoRA */
};

struct layer_acts {
    float *x;                 /* (N, C) layer input */
    float *qkv;               /* (N, 3C) */
    float *xa_q, *xa_v;       /* (N, r) LoRA */
    float *att;               /* per sequence b: (NH, L_b, P+L_b) */
    float *ctx, *ao, *ao_ad;  /* (N, C) */
    float *ah_pre, *ah_act;   /* (N, R) Houlsby attention adapter */
    float *ln1_in, *ln1_mean, *ln1_rstd, *x1;
    float *fc, *fc_act;       /* (N, FF) */
    float *oo, *oo_ad;        /* (N, C) */
    float *oh_pre, *oh_act;   /* (N, R) output adapter */
    float *ln2_in, *ln2_mean, *ln2_rstd;
};

struct pep_model_state {
    /* parameter row indices */
    int wte, wpe, wtt, embw, embb;
    struct layer_ids *lid;
    int cls_w, cls_b;                           /* tagger */
    int lm_dw, lm_db, lm_lnw, lm_lnb, lm_bias;  /* masked LM */
    int pre_emb, pre_w0, pre_b0, pre_w2, pre_b2; /* prefix MLP */

    /* last forward */
    int nseq, N, M, ntargets;
    int seq0;                       /* the batch's pep_batch.seq0 (dropout keys) */
    int *offsets; /* (nseq + 1) of the last batch */
    float loss;
    int train;
    uint64_t seed;
    enum pep_relu_pattern relu_mode; /* pep_model_set_relu_pattern */
    uint64_t *relu_bits;
    const uint64_t *relu_fwd; /* the pattern the last forward replayed (its backward replays it too), or NULL */
    int *ids, *pos, *labels, *rows; /* rows: gathered MLM positions */
    uint64_t *rowkey;               /* (N) dropout key of each row: sequence * PEP_DROPOUT_STRIDE + position */
    uint8_t *wte_dirty;             /* (V) rows of the word-embedding gradient written since the last zero */
    int wte_all_dirty;
    int *labels_g;
    void *arena_raw; /* the activation arena's allocation; every float buffer below is carved from it */
    float *emb_sum, *emb_mean, *emb_rstd;
    float *xs; /* (L + 1) slots of (N, C): layer inputs and the final output */
    struct layer_acts *acts;
    float *hx, *logits; /* tagger: (N, C), (N, K); MLM: (M, C), (M, V) */
    float *lm_d, *lm_g, *lm_ln, *lm_mean, *lm_rstd;
    float *pre_h, *pre_act, *kv;  /* prefix MLP: (P, H), (P, H), (P, 2LC) */
    float *pk, *pv;               /* (L, P, C) per-layer prefix keys / values in use */

    /* backward scratch */
    float *dx, *dx_next, *dtmp, *dtmp2, *dqkv, *dfc_act, *dlogits, *dhx, *att_scratch, *ad_scratch, *lora_scratch;
    float *dpk, *dpv, *dkv, *dpre;

    pep_pool_t *pool; /* the sgemm calls' and attention's threads (pep_model_set_threads); NULL = the caller only */
    size_t att_stride; /* att_scratch's floats per thread: it holds one slice per pool thread */
    float *lm_dd, *lm_dg, *lm_dln;
};

#endif
