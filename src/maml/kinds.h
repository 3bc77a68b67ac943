/* The priming stage's choices that have a string form — method, inner-loop start of PE +
 * head, inner optimiser — each with its one enum <-> name table (core/names.h), defined in
 * kinds.c. The config keys maml.method, maml.pe_init and maml.inner_optim and every message
 * that names them go through these tables. */
#ifndef PEP_MAML_KINDS_H
#define PEP_MAML_KINDS_H

#include "core/names.h"

/* MAML; MULTITASK: plain training on support + query, PE + head persist and train with the
 * encoder; MULTITASK_MATCHED: the encoder gets the gradient of the query batch only (MAML's
 * outer sentences), through PE + head restarted every episode like MAML's inner loop (no
 * adaptation). */
enum pep_maml_method { PEP_MAML_METHOD_MAML, PEP_MAML_METHOD_MULTITASK, PEP_MAML_METHOD_MULTITASK_MATCHED };
/* Where the inner loop's PE + head start: one fixed seeded init (FRESH); the model's own,
 * meta-learned values (META); a fresh draw of fine-tuning's initialiser every episode,
 * seeded by (run.seed, meta-step, task) (EPISODE). */
enum pep_maml_pe_init { PEP_MAML_PE_INIT_FRESH, PEP_MAML_PE_INIT_META, PEP_MAML_PE_INIT_EPISODE };
/* Plain SGD; bias-corrected Adam with moments restarted per task (first order only); or
 * FINETUNE: PE fine-tuning's own optimizer replayed for the k inner steps (maml.replay_from,
 * first order only). */
enum pep_maml_inner_optim { PEP_MAML_INNER_SGD, PEP_MAML_INNER_ADAM, PEP_MAML_INNER_FINETUNE };

/* maml, multitask, multitask-matched */
extern const struct pep_names pep_maml_method_names;
/* fresh, meta, episode */
extern const struct pep_names pep_maml_pe_init_names;
/* sgd, adam, finetune */
extern const struct pep_names pep_maml_inner_optim_names;

/* pep_maml_method_name() / _parse(), pep_maml_pe_init_name() / _parse(),
 * pep_maml_inner_optim_name() / _parse(): as in core/names.h. */
PEP_NAMES_FUNCTIONS(pep_maml_method, enum pep_maml_method)
PEP_NAMES_FUNCTIONS(pep_maml_pe_init, enum pep_maml_pe_init)
PEP_NAMES_FUNCTIONS(pep_maml_inner_optim, enum pep_maml_inner_optim)

#endif
