/* PEPTENS1 tensor archive reader/writer for the tests (libc only); format in tensorfile.h. */
#include "tensorfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char pep_tensorfile_magic[8] = {'P', 'E', 'P', 'T', 'E', 'N', 'S', '1'};

static int tf_fail(struct pep_tensorfile *tf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tf_fail(struct pep_tensorfile *tf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tf->err, sizeof tf->err, fmt, ap);
    va_end(ap);
    return -1;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

size_t pep_tensor_dtype_size(enum pep_tensor_dtype dtype)
{
    switch (dtype) {
    case PEP_TENSOR_F32: return 4;
    case PEP_TENSOR_I32: return 4;
    case PEP_TENSOR_F64: return 8;
    }
    return 0;
}

void pep_tensorfile_init(struct pep_tensorfile *tf)
{
    memset(tf, 0, sizeof *tf);
}

void pep_tensorfile_fini(struct pep_tensorfile *tf)
{
    for (int i = 0; i < tf->count; i++) {
        free(tf->t[i].name);
        free(tf->t[i].data);
    }
    free(tf->t);
    memset(tf, 0, sizeof *tf);
}

/* Appends a tensor taking ownership of `name` and `data`. */
static int tf_push(struct pep_tensorfile *tf, char *name, enum pep_tensor_dtype dtype, int ndim, const uint64_t *dims,
                   size_t numel, void *data)
{
    if (tf->count == tf->cap) {
        int cap = tf->cap ? 2 * tf->cap : 64;
        struct pep_tensor *t = realloc(tf->t, (size_t)cap * sizeof *t);
        if (!t) return tf_fail(tf, "out of memory growing the tensor list to %d", cap);
        tf->t = t;
        tf->cap = cap;
    }
    struct pep_tensor *t = &tf->t[tf->count++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->dims[d] = dims[d];
    t->numel = numel;
    t->data = data;
    return 0;
}

int pep_tensorfile_add(struct pep_tensorfile *tf, const char *name, enum pep_tensor_dtype dtype, int ndim,
                       const uint64_t *dims, const void *data)
{
    size_t esize = pep_tensor_dtype_size(dtype);
    if (!name || esize == 0 || ndim < 0 || ndim > PEP_TENSOR_MAX_DIMS)
        return tf_fail(tf, "pep_tensorfile_add: bad arguments for '%s'", name ? name : "(null)");
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)dims[d];
    char *n = strdup(name);
    void *copy = malloc(numel * esize + 1);
    if (!n || !copy) {
        free(n);
        free(copy);
        return tf_fail(tf, "out of memory copying tensor '%s' (%zu elements)", name, numel);
    }
    if (numel) memcpy(copy, data, numel * esize);
    if (tf_push(tf, n, dtype, ndim, dims, numel, copy) != 0) {
        free(n);
        free(copy);
        return -1;
    }
    return 0;
}

static int rd(FILE *f, void *buf, size_t n)
{
    return fread(buf, 1, n, f) == n ? 0 : -1;
}

int pep_tensorfile_load(struct pep_tensorfile *tf, const char *path)
{
    if (!host_is_little_endian()) return tf_fail(tf, "%s: PEPTENS1 files are little-endian; this host is not", path);
    FILE *f = fopen(path, "rb");
    if (!f) return tf_fail(tf, "%s: cannot open (generate it with tests/ref/encoder_ref.py make-fixture)", path);
    char magic[8];
    uint32_t count = 0;
    int rc = -1;
    if (rd(f, magic, 8) || memcmp(magic, pep_tensorfile_magic, 8) != 0) {
        tf_fail(tf, "%s: not a PEPTENS1 file (bad magic)", path);
        goto cleanup;
    }
    if (rd(f, &count, 4)) {
        tf_fail(tf, "%s: truncated header", path);
        goto cleanup;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t nlen, dtype, ndim;
        uint64_t dims[PEP_TENSOR_MAX_DIMS];
        if (rd(f, &nlen, 4) || nlen == 0 || nlen > 4096) {
            tf_fail(tf, "%s: tensor %u: truncated or bad name length", path, i);
            goto cleanup;
        }
        char *name = malloc(nlen + 1);
        if (!name) {
            tf_fail(tf, "%s: out of memory", path);
            goto cleanup;
        }
        if (rd(f, name, nlen) || rd(f, &dtype, 4) || rd(f, &ndim, 4)) {
            free(name);
            tf_fail(tf, "%s: tensor %u: truncated header", path, i);
            goto cleanup;
        }
        name[nlen] = '\0';
        size_t esize = pep_tensor_dtype_size((enum pep_tensor_dtype)dtype);
        if (esize == 0 || ndim > PEP_TENSOR_MAX_DIMS || rd(f, dims, 8 * (size_t)ndim)) {
            tf_fail(tf, "%s: tensor '%s': bad dtype %u / ndim %u or truncated dims", path, name, dtype, ndim);
            free(name);
            goto cleanup;
        }
        size_t numel = 1;
        for (uint32_t d = 0; d < ndim; d++) numel *= (size_t)dims[d];
        void *data = malloc(numel * esize + 1);
        if (!data || rd(f, data, numel * esize)) {
            tf_fail(tf, "%s: tensor '%s': %s", path, name, data ? "data runs past the end of the file" : "out of memory");
            free(name);
            free(data);
            goto cleanup;
        }
        if (tf_push(tf, name, (enum pep_tensor_dtype)dtype, (int)ndim, dims, numel, data) != 0) {
            free(name);
            free(data);
            goto cleanup;
        }
    }
    if (fgetc(f) != EOF) {
        tf_fail(tf, "%s: trailing bytes after %u tensors", path, count);
        goto cleanup;
    }
    rc = 0;
cleanup:
    fclose(f);
    return rc;
}

int pep_tensorfile_write(struct pep_tensorfile *tf, const char *path)
{
    if (!host_is_little_endian()) return tf_fail(tf, "%s: PEPTENS1 files are little-endian; this host is not", path);
    FILE *f = fopen(path, "wb");
    if (!f) return tf_fail(tf, "%s: cannot create", path);
    uint32_t count = (uint32_t)tf->count;
    int ok = fwrite(pep_tensorfile_magic, 1, 8, f) == 8 && fwrite(&count, 4, 1, f) == 1;
    for (int i = 0; ok && i < tf->count; i++) {
        const struct pep_tensor *t = &tf->t[i];
        uint32_t nlen = (uint32_t)strlen(t->name), dtype = (uint32_t)t->dtype, ndim = (uint32_t)t->ndim;
        size_t bytes = t->numel * pep_tensor_dtype_size(t->dtype);
        ok = fwrite(&nlen, 4, 1, f) == 1 && fwrite(t->name, 1, nlen, f) == nlen && fwrite(&dtype, 4, 1, f) == 1 &&
             fwrite(&ndim, 4, 1, f) == 1 && (ndim == 0 || fwrite(t->dims, 8, ndim, f) == ndim) &&
             (bytes == 0 || fwrite(t->data, 1, bytes, f) == bytes);
    }
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : tf_fail(tf, "%s: short write", path);
}

const struct pep_tensor *pep_tensorfile_find(const struct pep_tensorfile *tf, const char *name)
{
    for (int i = 0; i < tf->count; i++)
        if (strcmp(tf->t[i].name, name) == 0) return &tf->t[i];
    return NULL;
}

int pep_tensorfile_scalar(struct pep_tensorfile *tf, const char *name, double *out)
{
    const struct pep_tensor *t = pep_tensorfile_find(tf, name);
    if (!t) return tf_fail(tf, "no tensor '%s'", name);
    if (t->numel != 1) return tf_fail(tf, "tensor '%s' has %zu elements, expected a scalar", name, t->numel);
    switch (t->dtype) {
    case PEP_TENSOR_F32: *out = *(const float *)t->data; break;
    case PEP_TENSOR_I32: *out = *(const int32_t *)t->data; break;
    case PEP_TENSOR_F64: *out = *(const double *)t->data; break;
    }
    return 0;
}
