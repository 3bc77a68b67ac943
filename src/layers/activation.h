/* The element-wise activations (kernels in activation.c) and the name table of those an adapter
 * may use (core/names.h): relu, gelu, swish, as config files (pe.activation) and checkpoints
 * name them. The numeric values of relu, gelu and swish are stored in the PyTorch oracles'
 * fixtures (tests/ref), so they never change. tanh is the prefix MLP's (Li & Liang) and no
 * adapter choice, so it has no name. */
#ifndef PEP_ACTIVATION_H
#define PEP_ACTIVATION_H

#include "core/names.h"

enum pep_activation { PEP_ACTIVATION_RELU, PEP_ACTIVATION_GELU, PEP_ACTIVATION_SWISH, PEP_ACTIVATION_TANH };

/* relu, gelu, swish */
extern const struct pep_names pep_activation_names;

/* pep_activation_name() ("?" for tanh) and pep_activation_parse() (0, or -1 for an unknown name). */
PEP_NAMES_FUNCTIONS(pep_activation, enum pep_activation)

#endif
