/* Configuration table, defaults, the one setter, validation and INI rendering (config.h). */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/corpus.h"
#include "layers/activation.h"
#include "maml/kinds.h"
#include "model/kinds.h"
#include "optim/optim.h"

#define OFF(f) offsetof(struct pep_config, f)
#define SZ(f) sizeof(((struct pep_config *)0)->f)
/* d: the default, as a job file would write it (pep_config_defaults sets every key from it) */
#define KINT(n, f, lo, hi, d, h) { n, PEP_CONFIG_TYPE_INT, OFF(f), SZ(f), lo, hi, NULL, NULL, d, h }
#define KFLT(n, f, lo, hi, d, h) { n, PEP_CONFIG_TYPE_FLOAT, OFF(f), SZ(f), lo, hi, NULL, NULL, d, h }
#define KBOOL(n, f, d, h) { n, PEP_CONFIG_TYPE_BOOL, OFF(f), SZ(f), 0, 1, "true|false", NULL, d, h }
#define KSTR(n, f, d, h) { n, PEP_CONFIG_TYPE_STRING, OFF(f), SZ(f), 0, 0, NULL, NULL, d, h }
#define KENUM(n, f, c, d, h) { n, PEP_CONFIG_TYPE_ENUM, OFF(f), SZ(f), 0, 0, c, NULL, d, h }
/* an enum whose choices are the name table of its C enum */
#define KNAMES(n, f, t, d, h) { n, PEP_CONFIG_TYPE_ENUM, OFF(f), SZ(f), 0, 0, NULL, &t, d, h }

static const struct pep_config_key keys[] = {
    KINT("model.layers", model.layers, 1, 128, "4", "transformer layers (L)"),
    KINT("model.hidden", model.hidden, 8, 16384, "256", "hidden width (C)"),
    KINT("model.heads", model.heads, 1, 256, "4", "attention heads (NH); must divide hidden"),
    KINT("model.ff", model.ff, 8, 65536, "1024", "feed-forward width"),
    KINT("model.vocab", model.vocab, 0, 1 << 24, "0", "vocabulary size; 0 = from the tokenizer"),
    KINT("model.max_seq_len", model.max_seq_len, 4, 8192, "64", "subwords per sentence incl. <s> and </s> (T); longer sentences are truncated"),
    KINT("model.max_positions", model.max_positions, 0, 16384, "0", "rows of the position table; 0 = max_seq_len + 2 (XLM-R's padding offset)"),
    KINT("model.type_vocab", model.type_vocab, 1, 16, "1", "rows of the token-type table (XLM-R: 1)"),
    KFLT("model.layer_norm_eps", model.layer_norm_eps, 0, 1, "1e-5", "LayerNorm epsilon"),
    KFLT("model.dropout", model.dropout, 0, 0.95, "0.1", "hidden dropout probability"),
    KFLT("model.attention_dropout", model.attention_dropout, 0, 0.95, "0.1", "attention-probability dropout"),
    KFLT("model.init_std", model.init_std, 0, 1, "0.02", "std of the normal initialisation of fresh weights"),
    KSTR("model.tokenizer", model.tokenizer, "spm.model", "SentencePiece .model file: absolute, or found in run.out or beside the --init / --model checkpoint; pretrain trains it when missing"),
    KINT("model.tokenizer_vocab", model.tokenizer_vocab, 100, 1 << 20, "8000", "pieces of the tokenizer pretrain trains when model.tokenizer is missing"),

    KNAMES("pe.method", pe.method, pep_pe_method_names, "adapter", "parameter-efficient method"),
    KNAMES("pe.placement", pe.placement, pep_adapter_placement_names, "pfeiffer", "adapter placement: after the FFN only, or after attention and FFN"),
    KINT("pe.reduction", pe.reduction, 1, 4096, "16", "adapter reduction factor: bottleneck = hidden / reduction"),
    KNAMES("pe.activation", pe.activation, pep_activation_names, "relu", "adapter non-linearity"),
    KINT("pe.prefix_length", pe.prefix_length, 1, 4096, "30", "prefix vectors per layer (P)"),
    KBOOL("pe.prefix_reparam", pe.prefix_reparam, "false", "train prefixes through Li & Liang's tanh MLP"),
    KINT("pe.prefix_hidden", pe.prefix_hidden, 1, 65536, "512", "hidden width of the prefix MLP"),
    KINT("pe.lora_rank", pe.lora_rank, 1, 4096, "8", "LoRA rank r"),
    KFLT("pe.lora_alpha", pe.lora_alpha, 0, 1e6, "16", "LoRA alpha (scale = alpha / r)"),
    KSTR("pe.init", pe.init, "fresh", "PE initialisation for finetune: fresh | meta | task:<lang>"),

    KNAMES("maml.method", maml.method, pep_maml_method_names, "maml",
          "priming method: MAML; the multi-task baseline (support + query, PE + head persist); or multi-task matched "
          "to MAML (encoder gradient from the query batch only, PE + head reset every episode per maml.pe_init)"),
    KINT("maml.order", maml.order, 1, 2, "1", "1 = first-order, 2 = second-order meta-gradient"),
    KINT("maml.inner_steps", maml.inner_steps, 1, 100, "1", "inner SGD steps per task (k)"),
    KFLT("maml.inner_lr", maml.inner_lr, 0, 100, "0.1", "inner-loop learning rate (of maml.inner_optim)"),
    KNAMES("maml.inner_optim", maml.inner_optim, pep_maml_inner_optim_names, "sgd",
          "inner-loop update rule of every inner group: plain SGD; Adam (optim.beta1/beta2/eps, bias-corrected, "
          "no weight decay, constant rate, moments restarted per task; first order only); or finetune: replay "
          "PE fine-tuning's own optimizer (the [optim] of maml.replay_from: AdamW with its betas, eps, weight "
          "decay, global-norm clipping over PE + head, and the rates of its schedule's steps maml.replay_start "
          ".. + inner_steps - 1; first order only)"),
    KENUM("maml.inner_pe_optim", maml.inner_pe_optim, "same|sgd|adam|finetune", "same",
          "the PE modules' inner rule; same = maml.inner_optim"),
    KFLT("maml.inner_pe_lr", maml.inner_pe_lr, -1, 100, "-1",
         "the PE modules' inner rate (sgd, adam); -1 = maml.inner_lr; 0 with sgd freezes them in the inner loop"),
    KENUM("maml.inner_head_optim", maml.inner_head_optim, "same|sgd|adam|finetune", "same",
          "the tagging head's inner rule; same = maml.inner_optim"),
    KFLT("maml.inner_head_lr", maml.inner_head_lr, -1, 100, "-1",
         "the tagging head's inner rate (sgd, adam); -1 = maml.inner_lr; 0 with sgd freezes it in the inner loop"),
    KSTR("maml.replay_from", maml.replay_from, "",
         "the fine-tuning job file whose [optim] (optimizer, betas, eps, weight decay, clip, warm-up, schedule, "
         "steps) the finetune inner rule replays: absolute, relative to the working folder, or beside the "
         "--config file"),
    KINT("maml.replay_start", maml.replay_start, 0, 1 << 30, "0",
         "first fine-tuning step of the window the finetune rule replays (its rates are those of steps "
         "replay_start .. replay_start + inner_steps - 1)"),
    KENUM("maml.inner_set", maml.inner_set, "pe+head|all", "pe+head", "parameters adapted in the inner loop"),
    KENUM("maml.outer_set", maml.outer_set, "plm|plm+pe|all", "plm", "parameters updated by the outer loop"),
    KNAMES("maml.pe_init", maml.pe_init, pep_maml_pe_init_names, "fresh",
          "inner-loop start of PE + head: one fixed seeded init; meta-learned; or drawn fresh every episode by "
          "fine-tuning's initialiser, seeded by (run.seed, meta-step, task)"),
    KFLT("maml.fd_eps", maml.fd_eps, 1e-8, 1, "1e-3", "eps0 of the finite-difference Hessian-vector product"),
    KINT("maml.meta_batch", maml.meta_batch, 1, 1 << 20, "4", "tasks per meta-step"),
    KINT("maml.support_size", maml.support_size, 1, 1 << 16, "8", "support sentences per task"),
    KINT("maml.query_size", maml.query_size, 1, 1 << 16, "8", "query sentences per task"),
    KINT("maml.group_size", maml.group_size, 1, 1 << 20, "1",
         "ranks per task group (G): the P ranks form P / G groups, tasks go round-robin over the groups and "
         "a group splits each task's support and query sentences between its G ranks (G must divide P and be "
         "at most maml.support_size and maml.query_size; docs/scaling.md#task-groups)"),
    KENUM("maml.sampling", maml.sampling, "uniform|temperature", "uniform", "how tasks pick their language"),
    KFLT("maml.temperature", maml.temperature, 1e-3, 1e3, "5", "temperature for data-size-weighted sampling"),
    KBOOL("maml.exchange_overlap", maml.exchange_overlap, "true",
          "sum the meta-gradient over ranks bucket by bucket while the last local task's backward runs "
          "(false: start every bucket after it; the same bits either way)"),
    KBOOL("maml.exchange_sparse", maml.exchange_sparse, "true",
          "exchange only the word-embedding rows some rank's batches touched (false: the whole table; the same bits)"),
    KBOOL("maml.outer_shard", maml.outer_shard, "true",
          "ZeRO-1 outer step: the meta-gradient is reduce-scattered, each rank keeps the AdamW moments of and "
          "updates a 1/P slice of the outer set, an allgather shares the weights (false: every rank sums and "
          "updates everything; docs/scaling.md#the-sharded-outer-step)"),
    KFLT("maml.exchange_bucket_mb", maml.exchange_bucket_mb, 0.001, 2047, "25",
         "MiB of meta-gradient per bucket of the exchange (PyTorch DDP's default: 25)"),
    KENUM("maml.exchange_sum", maml.exchange_sum, "mpi|ordered", "mpi",
          "how buckets are summed: MPI_Iallreduce, or in rank order ((b0 + b1) + b2) + ... (bitwise reproducible "
          "whatever MPI's algorithms)"),

    KSTR("data.root", data.root, "", "data root; empty = $PEPRIME_DATA or ../shared/data"),
    KENUM("data.corpus", data.corpus, "wikiann|generated", "wikiann", "real WikiAnn or a generated corpus"),
    KSTR("data.languages", data.languages, "de,es,fr,ru,zh,ar", "priming / pretraining languages, comma separated"),
    KSTR("data.source", data.source, "en", "fine-tuning source language(s)"),
    KSTR("data.targets", data.targets, "hi,sw,ja,tr,fi", "evaluation languages"),
    KSTR("data.pretrain_languages", data.pretrain_languages, "", "masked-LM pretraining languages; empty = languages + source + targets"),
    KSTR("data.tags", data.tags, "O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC", "tag set, comma separated"),
    KINT("data.max_sentences", data.max_sentences, 0, 1 << 30, "0", "sentences read per language and split; 0 = all"),
    KBOOL("data.strict_iob2", data.strict_iob2, "false", "strict IOB2 chunking in evaluate (conlleval rules otherwise)"),
    KSTR("data.path", data.path, "", "data file template with {lang} and {split}, e.g. /data/ner/{lang}/{split}.txt (relative: under the data root); empty = <root>/ner/wikiann/{lang}/{split}.txt"),
    KENUM("data.separator", data.separator, "tab|whitespace", "tab", "column separator of the data files; the token is the first column, the tag the last, others are ignored"),
    KENUM("data.scheme", data.scheme, "iob2|iob1|iobes", "iob2", "tag scheme of the data files; read into the IOB2 tags of data.tags (conlleval's chunks)"),
    KENUM("data.unknown_types", data.unknown_types, "error|O", "error", "an entity type missing from data.tags: an error listing the types and lines, or read as O (counted per file)"),

    KNAMES("optim.name", optim.name, pep_optim_kind_names, "adamw", "optimizer (outer loop for prime)"),
    KFLT("optim.lr", optim.lr, 0, 100, "1e-4", "peak learning rate"),
    KFLT("optim.weight_decay", optim.weight_decay, 0, 10, "0.01", "decoupled weight decay (AdamW)"),
    KFLT("optim.beta1", optim.beta1, 0, 0.999999, "0.9", "Adam beta1"),
    KFLT("optim.beta2", optim.beta2, 0, 0.999999999, "0.999", "Adam beta2"),
    KFLT("optim.eps", optim.eps, 0, 1, "1e-8", "Adam epsilon"),
    KINT("optim.warmup", optim.warmup, 0, 1 << 30, "0", "linear warm-up steps"),
    KNAMES("optim.schedule", optim.schedule, pep_optim_schedule_names, "linear",
           "learning-rate schedule after warm-up: constant, linear decay to 0 or cosine decay to optim.min_lr_ratio "
           "x lr, both ending at optim.steps (docs/training.md)"),
    KFLT("optim.min_lr_ratio", optim.min_lr_ratio, 0, 1, "0",
         "the rate the cosine schedule decays to, as a fraction of optim.lr (optim.schedule = cosine only)"),
    KFLT("optim.clip", optim.clip, 0, 1e9, "1", "global gradient-norm clip; 0 = off"),
    KINT("optim.steps", optim.steps, 1, 1 << 30, "100", "optimizer steps (meta-steps for prime)"),
    KINT("optim.batch_size", optim.batch_size, 1, 1 << 20, "16",
         "sentences per optimizer step, summed over all ranks and micro-batches: the effective batch (pretrain, "
         "finetune)"),
    KINT("optim.accumulate", optim.accumulate, 1, 1 << 20, "1",
         "gradient accumulation: micro-batches each rank splits its share of optim.batch_size into, one forward + "
         "backward each, one optimizer step after the last; the same update as 1 to float rounding, with the "
         "activation memory of one micro-batch (pretrain, finetune; docs/training.md)"),
    KINT("optim.eval_every", optim.eval_every, 0, 1 << 30, "0", "steps between dev evaluations; 0 = end only"),
    KFLT("optim.mask_prob", optim.mask_prob, 0, 1, "0.15", "masked-LM masking rate (pretrain)"),

    KSTR("checkpoint.dir", checkpoint.dir, "checkpoints", "checkpoint folder (relative to run.out if not absolute)"),
    KINT("checkpoint.every", checkpoint.every, 0, 1 << 30, "0", "steps between checkpoints; 0 = only at the end"),
    KENUM("checkpoint.encoder", checkpoint.encoder, "reference|copy", "reference",
          "what finetune's adapted.h5 keeps of the frozen encoder: reference = PE + head only, naming the base "
          "checkpoint by absolute path and SHA-256 (evaluate and export-hf read the pair and refuse another base); "
          "copy = a self-contained file with the encoder"),
    KFLT("checkpoint.every_minutes", checkpoint.every_minutes, 0, 1e6, "30",
         "wall-clock minutes between checkpoints, besides checkpoint.every (a node crash loses at most this much); "
         "0 = off"),
    KINT("checkpoint.keep", checkpoint.keep, 1, 1000, "2", "periodic checkpoints kept"),
    KINT("checkpoint.striping_unit", checkpoint.striping_unit, 0, 1 << 30, "0",
         "MPI-IO hint striping_unit: bytes per file-system stripe of each new checkpoint file (Lustre: e.g. "
         "4194304; docs/cluster.md); 0 = the file system's default"),
    KINT("checkpoint.striping_factor", checkpoint.striping_factor, 0, 1 << 20, "0",
         "MPI-IO hint striping_factor: stripes (Lustre OSTs) of each new checkpoint file; 0 = the file system's default"),
    KINT("checkpoint.cb_nodes", checkpoint.cb_nodes, 0, 1 << 20, "0",
         "MPI-IO hint cb_nodes: collective-buffering aggregators for checkpoint metadata writes; 0 = the MPI "
         "library's choice"),
    KENUM("checkpoint.romio_cb_write", checkpoint.romio_cb_write, "automatic|enable|disable", "automatic",
          "MPI-IO hint romio_cb_write (collective buffering of writes); automatic = the MPI library's choice"),

    KINT("run.seed", run.seed, 0, 2147483647, "1", "seed for initialisation, tasks, batches and dropout"),
    KINT("run.threads", run.threads, 0, 1024, "0", "threads per rank: the model's sgemm calls split over them (OpenBLAS on one thread each) and the optimizer step's element-wise update (priming's outer step, fine-tuning, pretraining); 0 = cores of the rank"),
    KINT("run.log_every", run.log_every, 1, 1 << 30, "10", "steps between progress lines"),
    KSTR("run.out", run.out, "out", "output directory"),
    KFLT("run.watchdog_s", run.watchdog_s, -1, 1e7, "0",
         "progress watchdog: when a rank makes no progress (a step, a task, an evaluation batch, a checkpoint "
         "write) for this many seconds (a stopped rank, a hung file system, a deadlock), the job ends with a "
         "message naming the stalled rank, its step and phase, exit status 76; 0 = auto: 1800 s until the first "
         "step has ended, then max(600 s, 50 x the slowest step so far); -1 = off"),
};

void pep_config_defaults(struct pep_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (pep_config_set(cfg, keys[i].name, keys[i].def, "the defaults") != PEP_OK)
            pep_abort(PEP_ERR_INTERNAL, "the default of %s does not parse: %s", keys[i].name, pep_error_message());
}

const struct pep_config_key *pep_config_keys(size_t *count)
{
    *count = sizeof keys / sizeof keys[0];
    return keys;
}

/* Levenshtein distance, for did-you-mean. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

static const struct pep_config_key *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

static int unknown_key(const char *key, const char *where)
{
    const char *best = NULL;
    int best_d = 99;
    const char *dot = strchr(key, '.');
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int d = edit_distance(key, keys[i].name);
        /* also compare the part after the section, so "maml.inner_step" finds inner_steps */
        const char *kdot = strchr(keys[i].name, '.');
        if (dot && kdot) {
            int d2 = edit_distance(dot + 1, kdot + 1) + (strncmp(key, keys[i].name, (size_t)(kdot - keys[i].name)) != 0);
            if (d2 < d) d = d2;
        }
        if (d < best_d) {
            best_d = d;
            best = keys[i].name;
        }
    }
    char section[64] = "";
    if (dot && (size_t)(dot - key) < sizeof section) {
        memcpy(section, key, (size_t)(dot - key));
        section[dot - key] = '\0';
    }
    char valid[2048] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (section[0] && strncmp(keys[i].name, section, strlen(section)) != 0) continue;
        if (section[0] && keys[i].name[strlen(section)] != '.') continue;
        used += (size_t)snprintf(valid + used, used < sizeof valid ? sizeof valid - used : 0, "%s%s",
                                 used ? ", " : "", keys[i].name);
        if (used >= sizeof valid) break;
    }
    if (best && best_d <= 3)
        PEP_FAIL(PEP_ERR_USAGE, "%s: unknown key '%s' (did you mean '%s'?)", where, key, best);
    if (valid[0])
        PEP_FAIL(PEP_ERR_USAGE, "%s: unknown key '%s'; valid keys in [%s]: %s", where, key, section, valid);
    PEP_FAIL(PEP_ERR_USAGE, "%s: unknown key '%s'; keys are section.name, see `peprime config --doc`", where, key);
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

void pep_config_choices(const struct pep_config_key *k, char *buf, size_t len)
{
    if (k->names) pep_names_list(k->names, "|", "|", buf, len);
    else snprintf(buf, len, "%s", k->choices ? k->choices : "");
}

static int enum_has(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

/* Why a job file could not hold this string value as it is (NULL: it can). Every config is
 * stored as INI in its checkpoints, so a value set by --set must read back unchanged. */
static const char *unwritable(const char *v)
{
    size_t n = strlen(v);
    if (n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1])))
        return "it starts or ends with white space, which a job file trims";
    for (const char *c = v; *c; c++) {
        if (*c == '\n' || *c == '\r') return "it holds a line break";
        if (*c == '#' && (c == v || c[-1] == ' ' || c[-1] == '\t'))
            return "a '#' at its start or after a space or tab begins a comment in a job file";
    }
    return NULL;
}

int pep_config_set(struct pep_config *cfg, const char *key, const char *value, const char *where)
{
    const struct pep_config_key *k = find_key(key);
    if (!k) return unknown_key(key, where);
    char *field = (char *)cfg + k->offset;
    switch (k->type) {
    case PEP_CONFIG_TYPE_INT: {
        errno = 0;
        char *end;
        long v = strtol(value, &end, 10);
        PEP_CHECK(*value && !*end && errno == 0, PEP_ERR_USAGE,
                  "%s: '%s' needs a whole number, got '%s' (%s)", where, key, value, k->help);
        PEP_CHECK(v >= k->min && v <= k->max, PEP_ERR_USAGE,
                  "%s: '%s' = %ld is out of range [%.0f, %.0f] (%s)", where, key, v, k->min, k->max, k->help);
        *(int *)field = (int)v;
        break;
    }
    case PEP_CONFIG_TYPE_FLOAT: {
        errno = 0;
        char *end;
        double v = strtod(value, &end);
        PEP_CHECK(*value && !*end && errno == 0 && isfinite(v), PEP_ERR_USAGE,
                  "%s: '%s' needs a number, got '%s' (%s)", where, key, value, k->help);
        PEP_CHECK(v >= k->min && v <= k->max, PEP_ERR_USAGE,
                  "%s: '%s' = %g is out of range [%g, %g] (%s)", where, key, v, k->min, k->max, k->help);
        *(float *)field = (float)v;
        break;
    }
    case PEP_CONFIG_TYPE_BOOL: {
        int b;
        PEP_CHECK(parse_bool(value, &b) == 0, PEP_ERR_USAGE,
                  "%s: '%s' must be true or false, got '%s'", where, key, value);
        *(int *)field = b;
        break;
    }
    case PEP_CONFIG_TYPE_ENUM: {
        int v;
        if (k->names ? pep_names_parse(k->names, value, &v) != 0 : !enum_has(k->choices, value)) {
            char choices[256];
            pep_config_choices(k, choices, sizeof choices);
            PEP_FAIL(PEP_ERR_USAGE, "%s: '%s' must be one of %s, got '%s'", where, key, choices, value);
        }
    }
        /* fall through */
    case PEP_CONFIG_TYPE_STRING: {
        const char *why = unwritable(value);
        PEP_CHECK(!why, PEP_ERR_USAGE, "%s: '%s' = '%s' cannot be stored in a job file: %s", where, key, value, why);
        PEP_CHECK(strlen(value) < k->size, PEP_ERR_USAGE, "%s: '%s' is longer than %zu characters",
                  where, key, k->size - 1);
        strcpy(field, value);
        break;
    }
    }
    return PEP_OK;
}

int pep_config_set_arg(struct pep_config *cfg, const char *arg)
{
    const char *eq = strchr(arg, '=');
    PEP_CHECK(eq && eq != arg, PEP_ERR_USAGE,
              "--set '%s': expected section.key=value, e.g. --set maml.inner_steps=3", arg);
    char key[128];
    size_t n = (size_t)(eq - arg);
    PEP_CHECK(n < sizeof key, PEP_ERR_USAGE, "--set '%s': key too long", arg);
    memcpy(key, arg, n);
    key[n] = '\0';
    char where[160];
    snprintf(where, sizeof where, "--set %s", key);
    return pep_config_set(cfg, key, eq + 1, where);
}

int pep_config_get(const struct pep_config *cfg, const char *key, char *buf, size_t len)
{
    const struct pep_config_key *k = find_key(key);
    if (!k) return unknown_key(key, "pep_config_get");
    const char *field = (const char *)cfg + k->offset;
    switch (k->type) {
    case PEP_CONFIG_TYPE_INT: snprintf(buf, len, "%d", *(const int *)field); break;
    case PEP_CONFIG_TYPE_FLOAT: snprintf(buf, len, "%.9g", (double)*(const float *)field); break;
    case PEP_CONFIG_TYPE_BOOL: snprintf(buf, len, "%s", *(const int *)field ? "true" : "false"); break;
    default: snprintf(buf, len, "%s", field); break;
    }
    return PEP_OK;
}

int pep_config_validate(const struct pep_config *cfg)
{
    const char *w = "config";
    PEP_CHECK(cfg->model.hidden % cfg->model.heads == 0, PEP_ERR_USAGE,
              "%s: model.hidden = %d is not divisible by model.heads = %d", w, cfg->model.hidden, cfg->model.heads);
    int maxpos = cfg->model.max_positions ? cfg->model.max_positions : cfg->model.max_seq_len + 2;
    PEP_CHECK(maxpos >= cfg->model.max_seq_len + 2, PEP_ERR_USAGE,
              "%s: model.max_positions = %d must be at least model.max_seq_len + 2 = %d (XLM-R positions start "
              "after the padding index)", w, maxpos, cfg->model.max_seq_len + 2);
    enum pep_pe_method pe = PEP_PE_METHOD_NONE;
    PEP_CHECK(pep_pe_method_parse(cfg->pe.method, &pe) == 0, PEP_ERR_USAGE, "%s: unknown pe.method '%s'", w,
              cfg->pe.method);
    enum pep_maml_method method = PEP_MAML_METHOD_MAML;
    enum pep_maml_pe_init pe_init = PEP_MAML_PE_INIT_FRESH;
    enum pep_maml_inner_optim inner_optim = PEP_MAML_INNER_SGD;
    PEP_CHECK(pep_maml_method_parse(cfg->maml.method, &method) == 0, PEP_ERR_USAGE, "%s: unknown maml.method '%s'",
              w, cfg->maml.method);
    PEP_CHECK(pep_maml_pe_init_parse(cfg->maml.pe_init, &pe_init) == 0, PEP_ERR_USAGE,
              "%s: unknown maml.pe_init '%s'", w, cfg->maml.pe_init);
    PEP_CHECK(pep_maml_inner_optim_parse(cfg->maml.inner_optim, &inner_optim) == 0, PEP_ERR_USAGE,
              "%s: unknown maml.inner_optim '%s'", w, cfg->maml.inner_optim);
    if (pe == PEP_PE_METHOD_ADAPTER)
        PEP_CHECK(cfg->model.hidden / cfg->pe.reduction >= 1, PEP_ERR_USAGE,
                  "%s: pe.reduction = %d leaves no bottleneck for model.hidden = %d (bottleneck = hidden / "
                  "reduction must be at least 1; use pe.reduction <= %d)", w, cfg->pe.reduction,
                  cfg->model.hidden, cfg->model.hidden);
    if (pe == PEP_PE_METHOD_PREFIX)
        PEP_CHECK(cfg->pe.prefix_length + cfg->model.max_seq_len <= maxpos + 1024 &&
                      cfg->pe.prefix_length <= maxpos, PEP_ERR_USAGE,
                  "%s: pe.prefix_length = %d is longer than the position budget model.max_positions = %d; use a "
                  "shorter prefix", w, cfg->pe.prefix_length, maxpos);
    if (pe == PEP_PE_METHOD_LORA)
        PEP_CHECK(cfg->pe.lora_rank <= cfg->model.hidden, PEP_ERR_USAGE,
                  "%s: pe.lora_rank = %d exceeds model.hidden = %d", w, cfg->pe.lora_rank, cfg->model.hidden);
    if (pe == PEP_PE_METHOD_NONE) {
        PEP_CHECK(strcmp(cfg->maml.outer_set, "plm+pe") != 0, PEP_ERR_USAGE,
                  "%s: maml.outer_set = plm+pe needs PE parameters but pe.method = none", w);
        PEP_CHECK(pe_init != PEP_MAML_PE_INIT_META, PEP_ERR_USAGE,
                  "%s: maml.pe_init = meta needs PE parameters but pe.method = none", w);
    }
    /* the inner rule of each group (pep_maml_rule_of): second order differentiates SGD steps only */
    static const char *const group_keys[2][2] = {{"maml.inner_pe_optim", "pe"}, {"maml.inner_head_optim", "head"}};
    const char *group_optim[2] = {cfg->maml.inner_pe_optim, cfg->maml.inner_head_optim};
    int replays = inner_optim == PEP_MAML_INNER_FINETUNE;
    PEP_CHECK(inner_optim == PEP_MAML_INNER_SGD || cfg->maml.order == 1, PEP_ERR_USAGE,
              "%s: maml.inner_optim = %s is first order only (the second-order recursion differentiates plain SGD "
              "steps); use maml.order = 1 or maml.inner_optim = sgd", w, cfg->maml.inner_optim);
    for (int g = 0; g < 2; g++) {
        enum pep_maml_inner_optim go = inner_optim;
        if (strcmp(group_optim[g], "same") != 0)
            PEP_CHECK(pep_maml_inner_optim_parse(group_optim[g], &go) == 0, PEP_ERR_USAGE,
                      "%s: unknown %s '%s'", w, group_keys[g][0], group_optim[g]);
        replays |= go == PEP_MAML_INNER_FINETUNE;
        PEP_CHECK(go == PEP_MAML_INNER_SGD || cfg->maml.order == 1, PEP_ERR_USAGE,
                  "%s: %s = %s is first order only (the second-order recursion differentiates plain SGD steps); use "
                  "maml.order = 1 or sgd for the %s group", w, group_keys[g][0], group_optim[g], group_keys[g][1]);
    }
    PEP_CHECK(!replays || cfg->maml.replay_from[0], PEP_ERR_USAGE,
              "%s: an inner rule is finetune, which replays the optimizer of a fine-tuning job file: set "
              "maml.replay_from = that file (e.g. the finetune.ini of the run)", w);
    PEP_CHECK(method != PEP_MAML_METHOD_MULTITASK_MATCHED || pe_init != PEP_MAML_PE_INIT_META,
              PEP_ERR_USAGE,
              "%s: maml.method = multitask-matched resets PE + head every episode; maml.pe_init must be fresh or "
              "episode, not meta", w);
    enum pep_optim_schedule schedule = PEP_OPTIM_SCHEDULE_LINEAR;
    PEP_CHECK(pep_optim_schedule_parse(cfg->optim.schedule, &schedule) == 0, PEP_ERR_USAGE,
              "%s: unknown optim.schedule '%s'", w, cfg->optim.schedule);
    PEP_CHECK(cfg->optim.min_lr_ratio == 0.0f || schedule == PEP_OPTIM_SCHEDULE_COSINE, PEP_ERR_USAGE,
              "%s: optim.min_lr_ratio = %g is the floor of the cosine schedule, but optim.schedule = %s; set "
              "optim.schedule = cosine or optim.min_lr_ratio = 0", w, (double)cfg->optim.min_lr_ratio,
              cfg->optim.schedule);
    PEP_CHECK(cfg->optim.accumulate <= cfg->optim.batch_size, PEP_ERR_USAGE,
              "%s: optim.accumulate = %d splits optim.batch_size = %d sentences into more micro-batches than there "
              "are sentences; use optim.accumulate <= optim.batch_size", w, cfg->optim.accumulate,
              cfg->optim.batch_size);
    PEP_CHECK(pep_list_count(cfg->data.tags) >= 1 && pep_list_count(cfg->data.tags) <= PEP_TAGS_MAX, PEP_ERR_USAGE,
              "%s: data.tags must list between 1 and %d tags", w, PEP_TAGS_MAX);
    return PEP_OK;
}

int pep_config_to_ini(const struct pep_config *cfg, char **out)
{
    size_t cap = 16384, used = 0;
    char *buf;
    PEP_ALLOC(buf, cap);
    char section[64] = "";
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *dot = strchr(keys[i].name, '.');
        size_t slen = (size_t)(dot - keys[i].name);
        if (strlen(section) != slen || strncmp(section, keys[i].name, slen) != 0) {
            memcpy(section, keys[i].name, slen);
            section[slen] = '\0';
            used += (size_t)snprintf(buf + used, cap - used, "%s[%s]\n", used ? "\n" : "", section);
        }
        char val[PEP_CFG_STR + 32];
        pep_config_get(cfg, keys[i].name, val, sizeof val);
        used += (size_t)snprintf(buf + used, cap - used, "%s = %s\n", dot + 1, val);
        PEP_CHECK(used < cap - 1024, PEP_ERR_INTERNAL, "config rendering overflow");
    }
    *out = buf;
    return PEP_OK;
}

int pep_list_count(const char *list)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        n++;
        while (*p && *p != ',') p++;
    }
    return n;
}

int pep_list_item(const char *list, int i, char *buf, size_t len)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > s && e[-1] == ' ') e--;
        if (n == i) {
            size_t l = (size_t)(e - s);
            PEP_CHECK(l < len, PEP_ERR_USAGE, "list item '%.*s' is too long", (int)l, s);
            memcpy(buf, s, l);
            buf[l] = '\0';
            return PEP_OK;
        }
        n++;
    }
    PEP_FAIL(PEP_ERR_USAGE, "list '%s' has no item %d", list, i);
}
