/* Hugging Face XLM-R / BERT tensor names <-> peprime parameter-table names (docs/model.md),
 * and the names the PE modules get in peft and AdapterHub files (docs/export-hf.md).
 * Pure string work, not collective.
 *
 * Accepted: names with or without the "roberta." / "bert." prefix; old BERT LayerNorm names
 * (".gamma" / ".beta"); the token-classification head "classifier.*"; the masked-LM head
 * "lm_head.{dense,layer_norm,bias}" and BERT's "cls.predictions.*" spelling of it; the tied
 * decoder "lm_head.decoder.weight" (checked against the word embeddings by the importer).
 * Skipped with a note: "pooler.*", the "embeddings.position_ids" buffer, BERT's next-sentence
 * head "cls.seq_relationship.*". */
#ifndef PEP_HF_NAMES_H
#define PEP_HF_NAMES_H

#include <stddef.h>

enum pep_hf_name_kind {
    PEP_HF_NAME_KIND_PARAM,     /* maps to a peprime parameter (written to `out`) */
    PEP_HF_NAME_KIND_TIED,      /* decoder weight tied to embeddings.word_embeddings.weight */
    PEP_HF_NAME_KIND_TIED_BIAS, /* decoder bias tied to lm_head.bias */
    PEP_HF_NAME_KIND_IGNORED,   /* known, not imported (`note` says why) */
    PEP_HF_NAME_KIND_UNKNOWN,   /* not a tensor of these models */
};

/* Maps one Hugging Face name. `out` (len bytes) receives the peprime name for PARAM (and the
 * name the tensor is tied to for TIED / TIED_BIAS); `*note` (if non-NULL) gets a static
 * one-line reason for IGNORED / TIED / UNKNOWN. */
enum pep_hf_name_kind pep_hf_map_name(const char *hf, char *out, size_t len, const char **note);
/* For a peprime name "encoder.layer.N.<rest>": N (and *rest points at <rest>), else -1. */
int pep_hf_layer_index(const char *name, const char **rest);

/* The other way, for export-hf: the XLMRobertaForTokenClassification / ...ForMaskedLM name of a
 * peprime encoder or head row ("roberta." + embeddings.* / encoder.layer.*; classifier.* and
 * lm_head.* as they are). Checked against pep_hf_map_name, so both directions use one table.
 * Returns 0, or -1 for a row that is not part of those models (PE rows) or does not fit. */
int pep_hf_export_name(const char *name, char *out, size_t len);
/* peft's saved name of a LoRA row or of the classifier (modules_to_save):
 * "base_model.model.roberta.encoder.layer.N.attention.self.query.lora_A.weight",
 * "base_model.model.classifier.weight". -1 for other rows. */
int pep_hf_peft_name(const char *name, char *out, size_t len);
/* AdapterHub's name of a bottleneck-adapter row, for the adapter called `adapter`:
 * "roberta.encoder.layer.N.output.adapters.<adapter>.adapter_down.0.weight" (the down
 * projection is the first module of a Sequential), "...adapter_up.weight"; the attention
 * adapter (Houlsby) under "attention.output.adapters.<adapter>". -1 for other rows. */
int pep_hf_adapterhub_name(const char *name, const char *adapter, char *out, size_t len);

#endif
