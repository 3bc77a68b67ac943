/* A peprime model (parameter table + flat block + spec) as Hugging Face files (export-hf, the
 * inverse of hf_import.h; layout in docs/export-hf.md):
 *   DIR/model.safetensors, config.json   XLMRobertaForTokenClassification (tagger) or
 *                                         XLMRobertaForMaskedLM (MLM head) names and shapes
 *   DIR/sentencepiece.bpe.model, tokenizer_config.json   the SentencePiece model
 *   DIR/peft/adapter_model.safetensors, adapter_config.json      LoRA, as peft saves it
 *   DIR/adapterhub/adapter.safetensors, adapter_config.json      bottleneck adapters, AdapterHub
 *   DIR/prefix/prefix.safetensors, prefix_config.json            flat prefixes
 * The encoder in model.safetensors never contains the PE modules (LoRA is not merged).
 * Not collective: call on one process. */
#ifndef PEP_HF_EXPORT_H
#define PEP_HF_EXPORT_H

#include "model/model.h"
#include "model/params.h"

/* The adapter name in AdapterHub files. */
#define PEP_HF_ADAPTER_NAME "peprime"

struct pep_hf_export {
    const struct pep_model_spec *spec;
    const struct pep_param_table *table; /* prefixes flat (pep_model_eject_prefix first) */
    const float *params;
    const char *const *labels; /* tag names for id2label (ntags of them), or NULL: LABEL_i */
    const char *spm_path;      /* SentencePiece model to copy */
    const char *source;        /* checkpoint path, recorded in the config files */
};

/* Writes the files into `dir` (created if missing). *written (may be NULL) gets a one-line
 * summary. PEP_ERR_USAGE for a spec export cannot express (a reparameterised prefix, no head);
 * PEP_ERR_IO for files that cannot be read or written. */
int pep_hf_export(const char *dir, const struct pep_hf_export *e, char *written, size_t len);

#endif
