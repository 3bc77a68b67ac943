/* INI job files: `[section]` headers, `key = value` lines, `#` / `;` comments, and
 * `include = other.ini` (relative to the including file) to share a model definition
 * between stage files. Every key goes through pep_config_set(), so errors name the file,
 * the line and the key. Not collective: every rank reads the file itself. */
#ifndef PEP_INI_H
#define PEP_INI_H

#include "config/config.h"

int pep_ini_load(struct pep_config *cfg, const char *path);

#endif
