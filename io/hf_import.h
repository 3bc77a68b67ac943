/* Conversion of a Hugging Face XLM-R / BERT safetensors checkpoint (+ optional config.json)
 * into peprime's parameter table and one flat float32 block, and the minimal HDF5 writer of
 * the result (base.h5). Not collective: run it on one process.
 *
 * pep_hf_import() maps names (hf_names.h), infers the model shape from the tensors
 * (L = number of encoder.layer.N, C and V from the word embeddings, FF from the intermediate
 * layer, max_positions, type_vocab; NH from config.json's num_attention_heads, else
 * options.heads, else C / 64), cross-checks config.json, and reports every missing,
 * unexpected and wrongly shaped tensor by name before failing. The table rows come in
 * docs/model.md order: embeddings, layers 0..L-1, then the heads that the file has
 * (classifier.*, lm_head.*). */
#ifndef PEP_HF_IMPORT_H
#define PEP_HF_IMPORT_H

#include <stddef.h>

#include "model/params.h"

struct pep_hf_import_options {
    const char *config_path; /* Hugging Face config.json, or NULL */
    int heads;               /* attention heads when there is no config.json; 0 = hidden / 64 */
    int allow_unexpected;    /* 1: skip unknown tensors with a warning instead of failing */
    int drop_heads;          /* 1: import embeddings + encoder only (no classifier / lm_head) */
};

struct pep_hf_shape {
    int L, C, NH, FF, V;
    int max_positions;
    int type_vocab;
    int ntags;         /* classifier rows; 0 = no token-classification head imported */
    int has_mlm_head;  /* lm_head.* imported */
    float ln_eps;      /* config.json layer_norm_eps, else 1e-5 (XLM-R) */
    char model_type[32]; /* config.json model_type, or "" */
};

struct pep_hf_model {
    struct pep_hf_shape shape;
    struct pep_param_table table; /* plm rows, then head rows */
    float *params;                /* table.numel floats (pep_free) */
    char source_dtype[16];        /* dtype of the imported tensors ("F32", "F16", "BF16" or "mixed") */
};

void pep_hf_import_default_options(struct pep_hf_import_options *o);
/* Reads and converts. On failure *m is left empty (safe to pep_hf_model_fini). */
int pep_hf_import(const char *weights_path, const struct pep_hf_import_options *o, struct pep_hf_model *m);
void pep_hf_model_fini(struct pep_hf_model *m);

/* Number of pieces in a SentencePiece ModelProto file (top-level field 1 entries). */
int pep_spm_count_pieces(const char *path, int *pieces);

/* Writes `m` as a peprime checkpoint: /model/<name> (plm rows) and /head/<name> (head rows)
 * as H5T_IEEE_F32LE datasets of the row's shape, root attributes format_version, stage
 * ("import-hf"), step (0), created, config (INI text of the model keys), git_revision,
 * world_size (1), source (the weights path); the SentencePiece model is stored as the byte
 * dataset /tokenizer/sentencepiece.model. Written to `path`.tmp, then renamed.
 * Serial (not collective). To be replaced by io/checkpoint.c's writer once it lands. */
int pep_hf_write_h5(const struct pep_hf_model *m, const char *path, const char *spm_path, const char *source);

#endif
