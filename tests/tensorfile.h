/* PEPTENS1 tensor archives for the tests (libc only): load every tensor of a file into
 * memory with lookup by name, build an archive and write it. tests/ref/tensorfile.py is the
 * Python side of the same format:
 *   "PEPTENS1", u32 count, then per tensor: u32 name_len, name, u32 dtype (0 f32, 1 i32,
 *   2 f64), u32 ndim, u64 dims[ndim], row-major little-endian data. */
#ifndef PEP_TENSORFILE_H
#define PEP_TENSORFILE_H

#include <stddef.h>
#include <stdint.h>

enum pep_tensor_dtype { PEP_TENSOR_F32 = 0, PEP_TENSOR_I32 = 1, PEP_TENSOR_F64 = 2 };

#define PEP_TENSOR_MAX_DIMS 8

struct pep_tensor {
    char *name;
    enum pep_tensor_dtype dtype;
    int ndim;
    uint64_t dims[PEP_TENSOR_MAX_DIMS];
    size_t numel; /* product of dims (1 for a scalar, ndim = 0) */
    void *data;   /* numel elements of dtype */
};

struct pep_tensorfile {
    struct pep_tensor *t;
    int count, cap;
    char err[512]; /* message of the last failure */
};

void pep_tensorfile_init(struct pep_tensorfile *tf);
void pep_tensorfile_fini(struct pep_tensorfile *tf);
/* Reads every tensor of `path` (tf must be initialised and is appended to). 0 on success,
 * -1 with tf->err set on a missing, truncated or malformed file. */
int pep_tensorfile_load(struct pep_tensorfile *tf, const char *path);
/* Appends a copy of `data` as tensor `name`. 0 or -1 (out of memory, bad arguments). */
int pep_tensorfile_add(struct pep_tensorfile *tf, const char *name, enum pep_tensor_dtype dtype, int ndim,
                       const uint64_t *dims, const void *data);
/* Writes all tensors to `path`. 0 or -1. */
int pep_tensorfile_write(struct pep_tensorfile *tf, const char *path);
/* The tensor named `name`, or NULL. */
const struct pep_tensor *pep_tensorfile_find(const struct pep_tensorfile *tf, const char *name);
/* Scalar value of a one-element tensor of any dtype; -1 with tf->err set if absent or not
 * one element. */
int pep_tensorfile_scalar(struct pep_tensorfile *tf, const char *name, double *out);
size_t pep_tensor_dtype_size(enum pep_tensor_dtype dtype);

#endif
