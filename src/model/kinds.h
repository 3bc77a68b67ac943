/* The model's choices that have a string form — PE method, adapter placement, head kind —
 * each with its one enum <-> name table (core/names.h), defined in kinds.c. Config files,
 * checkpoints, `peprime inspect`, `peprime bench` and the Hugging Face export all name them
 * through these tables. Checkpoints store the names, so a name never changes; the numeric
 * values are stored in the PyTorch oracles' fixtures (tests/ref), so they never change
 * either. The activation has its table beside its enum in layers/activation.h. */
#ifndef PEP_MODEL_KINDS_H
#define PEP_MODEL_KINDS_H

#include "core/names.h"

enum pep_pe_method { PEP_PE_METHOD_NONE, PEP_PE_METHOD_ADAPTER, PEP_PE_METHOD_PREFIX, PEP_PE_METHOD_LORA };
enum pep_adapter_placement { PEP_ADAPTER_PLACEMENT_PFEIFFER, PEP_ADAPTER_PLACEMENT_HOULSBY };
enum pep_head_kind { PEP_HEAD_KIND_TAGGER, PEP_HEAD_KIND_MLM };

/* adapter, prefix, lora, none */
extern const struct pep_names pep_pe_method_names;
/* pfeiffer, houlsby */
extern const struct pep_names pep_adapter_placement_names;
/* tagger, mlm */
extern const struct pep_names pep_head_kind_names;

/* pep_pe_method_name() / _parse(), pep_adapter_placement_name() / _parse(),
 * pep_head_kind_name() / _parse(): name of a value ("?" if it has none); parse: 0, or -1 for
 * an unknown name (nothing recorded: the caller names the source and lists the choices with
 * pep_names_list). */
PEP_NAMES_FUNCTIONS(pep_pe_method, enum pep_pe_method)
PEP_NAMES_FUNCTIONS(pep_adapter_placement, enum pep_adapter_placement)
PEP_NAMES_FUNCTIONS(pep_head_kind, enum pep_head_kind)

#endif
