/* The config moved to src/config/config.h (above the folders it configures). This forwarding
 * header serves only src/maml/maml.h and src/optim/optim.h, which are being rewritten: they
 * include config/config.h (or, better, take their parameters without the config) in that
 * rewrite, and this file goes. Nothing else may include it (tests/lint/layers.py). */
#ifndef PEP_CORE_CONFIG_H
#define PEP_CORE_CONFIG_H
#include "config/config.h"
#endif
