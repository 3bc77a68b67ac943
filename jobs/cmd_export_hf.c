/* `peprime export-hf`: a peprime checkpoint as Hugging Face files (io/hf_export.c): the encoder
 * and head as XLMRobertaForTokenClassification / ...ForMaskedLM, the tokenizer, and the PE
 * modules apart (peft LoRA, AdapterHub adapters, a prefix tensor file). Reads with the serial
 * HDF5 reader: one process, no MPI_Init. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config/config.h"
#include "core/error.h"
#include "data/corpus.h"
#include "hf_export.h"
#include "jobs.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: peprime export-hf --model FILE.h5 --out DIR [--spm sentencepiece.model]\n"
            "  --model F   a peprime checkpoint (import-hf, pretrain, prime, finetune)\n"
            "  --out DIR   written: model.safetensors, config.json, sentencepiece.bpe.model,\n"
            "              tokenizer_config.json, and peft/ (LoRA), adapterhub/ (adapters) or prefix/\n"
            "  --spm F     the SentencePiece model; default: model.tokenizer of the checkpoint's config\n"
            "              (relative names beside the checkpoint)\n"
            "  --base F    for an adapted.h5 that names its base instead of holding the encoder\n"
            "              (checkpoint.encoder = reference): the base, if not at the path it names\n"
            "  (docs/export-hf.md)\n");
}

/* Value of `key = ...` in the INI text of a checkpoint's config (the first one), or "". */
static void ini_value(const char *ini, const char *key, char *out, size_t len)
{
    out[0] = '\0';
    size_t k = strlen(key);
    for (const char *p = ini; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, k) != 0) continue;
        const char *v = p + k;
        while (*v == ' ' || *v == '\t') v++;
        if (*v != '=') continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        size_t n = strcspn(v, "\r\n");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
        snprintf(out, len, "%.*s", (int)n, v);
        return;
    }
}

int pep_cmd_export_hf(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *spm = NULL, *base = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return PEP_OK;
        }
        PEP_CHECK(i + 1 < argc, PEP_ERR_USAGE, "export-hf: option %s needs a value (see --help)", argv[i]);
        if (!strcmp(argv[i], "--model")) model = argv[++i];
        else if (!strcmp(argv[i], "--out")) out = argv[++i];
        else if (!strcmp(argv[i], "--spm")) spm = argv[++i];
        else if (!strcmp(argv[i], "--base")) base = argv[++i];
        else PEP_FAIL(PEP_ERR_USAGE, "export-hf: unknown option '%s' (--model, --out, --spm, --base)", argv[i]);
    }
    PEP_CHECK(model && out, PEP_ERR_USAGE, "export-hf needs --model FILE.h5 and --out DIR");
    struct pep_ckpt_reader *r = NULL;
    struct pep_model *m = NULL, *flat = NULL;
    const char **tags = NULL;
    int ntags = 0, rc = PEP_OK;
    PEP_CALL(pep_ckpt_open(model, &r));
    const struct pep_ckpt_info *info = pep_ckpt_info(r);
    PEP_CHECK_GOTO(rc, !info->has_spec || info->spec.head == PEP_HEAD_KIND_MLM || info->spec.ntags >= 1,
                   PEP_ERR_USAGE, "%s has no head (an import-hf --drop-heads base?): export-hf writes a "
                   "token-classification or masked-LM model", model);
    unsigned groups = 0;
    PEP_CALL_GOTO(rc, pep_ckpt_read_model(r, base, &m, &groups));
    struct pep_model_spec spec = m->spec;
    if (spec.pe == PEP_PE_METHOD_PREFIX && spec.prefix_reparam) {
        /* the prefixes the model uses, not the MLP that makes them */
        PEP_CALL_GOTO(rc, pep_model_eject_prefix(m, &flat));
        pep_info("export-hf: prefixes of %s evaluated through their MLP (pe.prefix_reparam)", model);
    }
    const struct pep_model *src = flat ? flat : m;
    /* labels (data.tags) and tokenizer (model.tokenizer) from the stored config */
    const char *ini = info->config ? info->config : "";
    char tag_list[PEP_CFG_STR], tok[PEP_CFG_STR], spm_path[PEP_CFG_STR + 1200];
    ini_value(ini, "tags", tag_list, sizeof tag_list);
    if (tag_list[0]) PEP_CALL_GOTO(rc, pep_taglist_parse(tag_list, &tags, &ntags));
    if (tags && ntags != spec.ntags) {
        pep_warn("export-hf: data.tags in %s lists %d tags but the classifier has %d; labels become LABEL_i", model,
                 ntags, spec.ntags);
        pep_free(tags);
        tags = NULL;
    }
    char v[64];
    ini_value(ini, "dropout", v, sizeof v); /* config.json's dropout: what further fine-tuning would use */
    if (v[0]) spec.dropout = strtof(v, NULL);
    ini_value(ini, "attention_dropout", v, sizeof v);
    if (v[0]) spec.attention_dropout = strtof(v, NULL);
    if (spm) snprintf(spm_path, sizeof spm_path, "%s", spm);
    else {
        ini_value(ini, "tokenizer", tok, sizeof tok);
        PEP_CHECK_GOTO(rc, tok[0], PEP_ERR_USAGE, "%s names no tokenizer in its config: give --spm FILE", model);
        const char *slash = strrchr(model, '/');
        if (tok[0] == '/' || !slash) snprintf(spm_path, sizeof spm_path, "%s", tok);
        else snprintf(spm_path, sizeof spm_path, "%.*s/%s", (int)(slash - model), model, tok);
    }
    struct pep_model_spec out_spec = src->spec;
    out_spec.dropout = spec.dropout, out_spec.attention_dropout = spec.attention_dropout;
    struct pep_hf_export e = {.spec = &out_spec, .table = &src->table, .params = src->params, .labels = tags,
                              .spm_path = spm_path, .source = model};
    char summary[1400];
    PEP_CALL_GOTO(rc, pep_hf_export(out, &e, summary, sizeof summary));
    pep_info("export-hf: wrote %s", summary);
cleanup:
    pep_free(tags);
    pep_model_destroy(&flat);
    pep_model_destroy(&m);
    pep_ckpt_close(&r);
    return rc;
}
