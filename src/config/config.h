/* The run configuration (src/config/: above every other folder of src/, which it configures):
 * one plain struct with defaults, set key by key through
 * pep_config_set() from the job file (io/ini.c) and `--set section.key=value` overrides.
 * Every key is listed in the table in config.c with its type, range or choices and a
 * one-line help; docs/config.md is generated from the same table (`peprime config --doc`). */
#ifndef PEP_CONFIG_H
#define PEP_CONFIG_H

#include <stddef.h>

#include "core/names.h"
#include "model/model.h"

/* Buffer sizes of the config's strings: paths and lists; a one-word choice (pe.method ...);
 * a language code, as listed in data.languages, data.source ... (with its NUL). */
#define PEP_CFG_STR 512
#define PEP_CFG_WORD 32
#define PEP_LANG_MAX 32

struct pep_config {
    struct {
        int layers;           /* L */
        int hidden;           /* C */
        int heads;            /* NH */
        int ff;               /* feed-forward width */
        int vocab;            /* V; 0 = take it from the tokenizer */
        int max_seq_len;      /* T: subwords per sentence incl. <s> </s> */
        int max_positions;    /* rows of position_embeddings (XLM-R: T + 2) ; 0 = T + 2 */
        int type_vocab;       /* rows of token_type_embeddings */
        float layer_norm_eps;
        float dropout;        /* hidden dropout */
        float attention_dropout;
        float init_std;
        char tokenizer[PEP_CFG_STR]; /* SentencePiece .model path */
        int tokenizer_vocab;         /* pieces when pretrain has to train the tokenizer */
    } model;
    struct {
        char method[PEP_CFG_WORD];      /* adapter | prefix | lora | none */
        char placement[PEP_CFG_WORD];   /* pfeiffer | houlsby */
        int reduction;        /* adapter bottleneck = hidden / reduction */
        char activation[PEP_CFG_WORD];  /* relu | gelu | swish */
        int prefix_length;    /* P */
        int prefix_reparam;   /* bool: Li & Liang MLP reparameterisation */
        int prefix_hidden;
        int lora_rank;
        float lora_alpha;
        char init[PEP_CFG_STR]; /* fresh | meta | task:<lang> (finetune) */
    } pe;
    struct {
        char method[PEP_CFG_WORD];      /* maml | multitask | multitask-matched */
        int order;            /* 1 | 2 */
        int inner_steps;      /* k */
        float inner_lr;
        char inner_set[PEP_CFG_WORD];   /* pe+head | all */
        char outer_set[PEP_CFG_WORD];   /* plm | plm+pe | all */
        char pe_init[PEP_CFG_WORD];     /* fresh | meta | episode */
        char inner_optim[PEP_CFG_WORD]; /* sgd | adam | finetune: the rule of every inner group */
        char inner_pe_optim[PEP_CFG_WORD];   /* same | sgd | adam | finetune: the PE group's rule */
        char inner_head_optim[PEP_CFG_WORD]; /* same | sgd | adam | finetune: the head's rule */
        float inner_pe_lr;    /* < 0: maml.inner_lr */
        float inner_head_lr;  /* < 0: maml.inner_lr */
        char replay_from[PEP_CFG_STR]; /* fine-tuning job file whose [optim] the finetune rule replays */
        int replay_start;     /* first fine-tuning step of the replayed window */
        float fd_eps;         /* eps0 of the finite-difference HVP */
        int meta_batch;       /* tasks per meta-step */
        int support_size;     /* sentences */
        int query_size;       /* sentences */
        int group_size;       /* ranks per task group (G): they split one task's batches */
        char sampling[PEP_CFG_WORD]; /* uniform | temperature */
        float temperature;
        int exchange_overlap;    /* bool: meta-gradient buckets summed during the last task's backward */
        int exchange_sparse;     /* bool: only the touched word-embedding rows are summed */
        int outer_shard;         /* bool: ZeRO-1 sharded outer step (reduce-scatter, slice update, allgather) */
        float exchange_bucket_mb;/* MiB per bucket */
        char exchange_sum[32];   /* mpi | ordered */
    } maml;
    struct {
        char root[PEP_CFG_STR];       /* data root; "" = $PEPRIME_DATA or ../shared/data */
        char corpus[PEP_CFG_WORD];              /* wikiann | generated */
        char languages[PEP_CFG_STR];  /* priming / pretraining languages, comma separated */
        char source[PEP_CFG_STR];     /* fine-tuning source language(s) */
        char targets[PEP_CFG_STR];    /* evaluation languages */
        char pretrain_languages[PEP_CFG_STR]; /* MLM pretraining languages; "" = languages + source + targets */
        char tags[PEP_CFG_STR];       /* tag set, comma separated */
        int max_sentences;            /* per language and split; 0 = all */
        int strict_iob2;              /* bool: strict chunking in evaluate */
        char path[PEP_CFG_STR];       /* file template with {lang} and {split}; "" = <root>/ner/wikiann/... */
        char separator[PEP_CFG_WORD];           /* tab | whitespace */
        char scheme[PEP_CFG_WORD];              /* iob2 | iob1 | iobes: how the files write tags */
        char unknown_types[PEP_CFG_WORD];       /* error | O */
    } data;
    struct {
        char name[PEP_CFG_WORD];        /* adamw | sgd */
        float lr;
        float weight_decay;
        float beta1, beta2, eps;
        int warmup;           /* steps */
        char schedule[PEP_CFG_WORD];    /* linear | constant | cosine */
        float min_lr_ratio;   /* cosine: end rate / lr */
        float clip;           /* global grad-norm clip; 0 = off */
        int steps;
        int batch_size;       /* sentences per optimizer step over all ranks (pretrain / finetune) */
        int accumulate;       /* micro-batches per rank and step (gradient accumulation) */
        int eval_every;
        float mask_prob;      /* MLM (pretrain) */
    } optim;
    struct {
        char dir[PEP_CFG_STR];
        int every;            /* steps between checkpoints; 0 = only at the end */
        float every_minutes;  /* wall-clock minutes between checkpoints; 0 = off */
        char encoder[PEP_CFG_WORD]; /* reference | copy: what finetune's adapted.h5 keeps of the frozen encoder */
        int keep;             /* how many periodic checkpoints to keep */
        int striping_unit, striping_factor, cb_nodes; /* MPI-IO hints for new files; 0 = default */
        char romio_cb_write[PEP_CFG_WORD];            /* automatic | enable | disable */
    } checkpoint;
    struct {
        int seed;
        int threads;          /* threads per rank (BLAS, and the outer step's update); 0 = cores / ranks */
        int log_every;
        char out[PEP_CFG_STR];  /* output directory */
        float watchdog_s;     /* progress watchdog bound: > 0 seconds, 0 = auto, < 0 = off */
    } run;
};

enum pep_config_type {
    PEP_CONFIG_TYPE_INT,
    PEP_CONFIG_TYPE_FLOAT,
    PEP_CONFIG_TYPE_BOOL,
    PEP_CONFIG_TYPE_STRING,
    PEP_CONFIG_TYPE_ENUM,
};

struct pep_config_key {
    const char *name;        /* "section.key" */
    enum pep_config_type type;
    size_t offset;
    size_t size;             /* for strings */
    double min, max;         /* for numbers */
    const char *choices;     /* for enums without a name table: "a|b|c" */
    const struct pep_names *names; /* for enums with one (core/names.h): the choices */
    const char *def;         /* the default, as a job file writes it */
    const char *help;
};

/* Fills `cfg` with the defaults. */
void pep_config_defaults(struct pep_config *cfg);
/* Sets one key from its text value. `where` names the origin for messages
 * ("prime.ini:12", "--set"). Unknown keys, bad values and out-of-range numbers are
 * PEP_ERR_USAGE with a message that lists the valid choices / range and, for near misses,
 * suggests the closest key. */
int pep_config_set(struct pep_config *cfg, const char *key, const char *value, const char *where);
/* Parses "section.key=value" (a --set argument) and applies it. */
int pep_config_set_arg(struct pep_config *cfg, const char *arg);
/* Cross-key checks after all values are in (heads divide hidden, ...). */
int pep_config_validate(const struct pep_config *cfg);
/* The resolved config as INI text (every key), malloc'ed; caller frees with pep_free. */
int pep_config_to_ini(const struct pep_config *cfg, char **out);
/* Key table, for docs and tests. */
const struct pep_config_key *pep_config_keys(size_t *count);
/* The valid values of an enum or bool key as "a|b|c" ("" for other keys). */
void pep_config_choices(const struct pep_config_key *k, char *buf, size_t len);
/* Writes the value of a key as text. */
int pep_config_get(const struct pep_config *cfg, const char *key, char *buf, size_t len);

/* Helpers for list-valued string keys ("en,de,fr"): number of items and the i-th item. */
int pep_list_count(const char *list);
int pep_list_item(const char *list, int i, char *buf, size_t len);

/* The config turned into what the layers below it take. Fills a model spec (model_spec.c)
 * from model.* and pe.*, the vocabulary size and the tag count. */
int pep_model_spec_from_config(const struct pep_config *cfg, int vocab, int ntags, enum pep_head_kind head,
                               int max_B, struct pep_model_spec *spec);
struct pep_optim;
struct pep_maml_opts;
/* An optimizer's hyperparameters from [optim] into a zeroed *o (opts.c): no range and no
 * moments yet (pep_optim_init gives them). Errors name the key and its valid values. */
int pep_optim_from_config(const struct pep_config *cfg, struct pep_optim *o);
/* Reads [maml] and checks the sets against the model (clear errors for empty sets and O n I
 * groups that restart fresh each episode) (opts.c). The FINETUNE rule's optimizer (o->replay)
 * comes from another job file: the caller reads maml.replay_from and sets it. */
int pep_maml_opts_from_config(const struct pep_config *cfg, const struct pep_model *m, struct pep_maml_opts *o);

#endif
