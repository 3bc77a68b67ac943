/* Conversion of a Hugging Face XLM-R / BERT safetensors checkpoint (+ optional config.json)
 * into peprime's parameter table and one flat float32 block, and the base checkpoint
 * (base.h5, written by io/checkpoint_write.c) plus the [model] INI section the stages need.
 * pep_hf_import is not collective (run it on one process); pep_hf_write_checkpoint is.
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

#include <mpi.h>
#include <stddef.h>

#include "model/model.h"
#include "model/params.h"

/* max_seq_len written into the [model] section when the position table allows it. */
#define PEP_HF_DEFAULT_SEQ_LEN 128

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

/* The encoder spec of the imported model: its shape, pe = none, head = tagger if a classifier
 * was imported, else mlm if lm_head.* was, else tagger (ntags 0). max_T <= 0 picks
 * pep_hf_default_seq_len(); max_T + 2 must fit the position table (XLM-R: 514 rows -> 512). */
int pep_hf_model_spec(const struct pep_hf_model *m, int max_B, int max_T, struct pep_model_spec *spec);
/* min(PEP_HF_DEFAULT_SEQ_LEN, max_positions - 2). */
int pep_hf_default_seq_len(const struct pep_hf_model *m);
/* The [model] section (INI text, pep_alloc'ed, pep_free) that makes a stage build exactly this
 * model: layers hidden heads ff vocab max_seq_len max_positions type_vocab layer_norm_eps and
 * tokenizer = `tokenizer` (give an absolute path: relative ones are resolved under run.out).
 * max_positions is written explicitly because the config default is max_seq_len + 2. */
int pep_hf_model_ini(const struct pep_hf_model *m, const char *tokenizer, char **out);
/* Writes `m` as a peprime checkpoint through io/checkpoint.h: root attributes with stage
 * "import-hf", step 0, `config_ini` as the config text and the model spec of
 * pep_hf_model_spec (so `peprime inspect` and the stages' shape checks see it); /model/<name>
 * (plm rows) and /head/<name> (head rows). This is the file `prime --init` and
 * `finetune --init` read. Collective over `comm` (MPI_COMM_SELF for one process). */
int pep_hf_write_checkpoint(const struct pep_hf_model *m, const char *path, const char *config_ini, MPI_Comm comm);

#endif
