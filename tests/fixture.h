/* The PyTorch oracles' fixtures for the C tests: safetensors files (written by
 * tests/ref/safetensors_io.py write_fixture) read with the project's own reader
 * (io/safetensors.h). Every tensor is copied into its own aligned, writable array — F32 as
 * float, I32 as int32_t, F64 as double (the only dtypes a fixture holds) — and found by
 * name. Tests write files with pep_safetensors_write (io/safetensors.h). */
#ifndef PEP_FIXTURE_H
#define PEP_FIXTURE_H

#include <stddef.h>

#include "safetensors.h"

struct pep_fixture_tensor {
    char *name;
    enum pep_st_dtype dtype; /* PEP_ST_DTYPE_F32, _I32 or _F64 */
    int ndim;
    size_t dims[PEP_ST_MAX_DIMS];
    size_t numel;            /* product of dims (1 for a scalar, ndim = 0) */
    void *data;              /* numel elements of dtype */
};

struct pep_fixture {
    struct pep_fixture_tensor *t; /* in the file's header order */
    int count;
    char err[1024];               /* message of the last failure */
};

/* Reads every tensor of `path` into fx (which it initialises). 0 on success, -1 with fx->err
 * set on a missing or malformed file or a dtype other than F32, I32, F64. */
int pep_fixture_load(struct pep_fixture *fx, const char *path);
void pep_fixture_fini(struct pep_fixture *fx);
/* The tensor named `name`, or NULL. */
const struct pep_fixture_tensor *pep_fixture_find(const struct pep_fixture *fx, const char *name);
/* Value of a one-element tensor of any of the three dtypes; -1 with fx->err set if absent or
 * not one element. */
int pep_fixture_scalar(struct pep_fixture *fx, const char *name, double *out);

#endif
