/* Oracle fixtures in safetensors, read through io/safetensors (fixture.h). */
#include "fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Tensor i (F32, I32 or F64) into `out` as host floats / ints / doubles: F32 through the
 * reader, the others from their little-endian bytes the same way. */
static int decode(const pep_safetensors_t *st, int i, const struct pep_st_tensor *s, void *out)
{
    if (s->dtype == PEP_ST_DTYPE_F32) return pep_safetensors_read_f32(st, i, out, s->numel);
    const unsigned char *p = pep_safetensors_data(st, i);
    size_t w = pep_st_dtype_size(s->dtype);
    for (size_t k = 0; k < s->numel; k++) {
        uint64_t bits = 0;
        for (size_t j = 0; j < w; j++) bits |= (uint64_t)p[w * k + j] << (8 * j);
        if (s->dtype == PEP_ST_DTYPE_I32) {
            uint32_t b32 = (uint32_t)bits;
            memcpy((int32_t *)out + k, &b32, sizeof b32);
        } else {
            memcpy((double *)out + k, &bits, sizeof bits);
        }
    }
    return PEP_OK;
}

int pep_fixture_load(struct pep_fixture *fx, const char *path)
{
    memset(fx, 0, sizeof *fx);
    pep_safetensors_t *st = NULL;
    if (pep_safetensors_open(path, &st) != PEP_OK) {
        snprintf(fx->err, sizeof fx->err, "%s", pep_error_message());
        pep_error_clear();
        return -1;
    }
    int n = pep_safetensors_count(st), rc = -1;
    fx->t = calloc(n ? (size_t)n : 1, sizeof *fx->t);
    if (!fx->t) {
        snprintf(fx->err, sizeof fx->err, "%s: out of memory", path);
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        const struct pep_st_tensor *s = pep_safetensors_tensor(st, i);
        if (s->dtype != PEP_ST_DTYPE_F32 && s->dtype != PEP_ST_DTYPE_I32 && s->dtype != PEP_ST_DTYPE_F64) {
            snprintf(fx->err, sizeof fx->err, "%s: tensor '%s' is %s; fixtures hold F32, I32 and F64 only", path,
                     s->name, pep_st_dtype_name(s->dtype));
            goto cleanup;
        }
        struct pep_fixture_tensor *t = &fx->t[fx->count];
        size_t bytes = s->end - s->begin;
        t->name = strdup(s->name);
        t->data = malloc(bytes + 1);
        fx->count++;
        if (!t->name || !t->data) {
            snprintf(fx->err, sizeof fx->err, "%s: out of memory for tensor '%s'", path, s->name);
            goto cleanup;
        }
        if (decode(st, i, s, t->data) != 0) {
            snprintf(fx->err, sizeof fx->err, "%s", pep_error_message());
            pep_error_clear();
            goto cleanup;
        }
        t->dtype = s->dtype;
        t->ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) t->dims[d] = s->shape[d];
        t->numel = s->numel;
    }
    rc = 0;
cleanup:
    pep_safetensors_close(&st);
    if (rc != 0) {
        char err[sizeof fx->err];
        memcpy(err, fx->err, sizeof err);
        pep_fixture_fini(fx);
        memcpy(fx->err, err, sizeof err);
    }
    return rc;
}

void pep_fixture_fini(struct pep_fixture *fx)
{
    for (int i = 0; i < fx->count; i++) {
        free(fx->t[i].name);
        free(fx->t[i].data);
    }
    free(fx->t);
    memset(fx, 0, sizeof *fx);
}

const struct pep_fixture_tensor *pep_fixture_find(const struct pep_fixture *fx, const char *name)
{
    for (int i = 0; i < fx->count; i++)
        if (strcmp(fx->t[i].name, name) == 0) return &fx->t[i];
    return NULL;
}

int pep_fixture_scalar(struct pep_fixture *fx, const char *name, double *out)
{
    const struct pep_fixture_tensor *t = pep_fixture_find(fx, name);
    if (!t) {
        snprintf(fx->err, sizeof fx->err, "no tensor '%s'", name);
        return -1;
    }
    if (t->numel != 1) {
        snprintf(fx->err, sizeof fx->err, "tensor '%s' has %zu elements, expected a scalar", name, t->numel);
        return -1;
    }
    if (t->dtype == PEP_ST_DTYPE_F32) *out = *(const float *)t->data;
    else if (t->dtype == PEP_ST_DTYPE_I32) *out = *(const int32_t *)t->data;
    else *out = *(const double *)t->data;
    return 0;
}
