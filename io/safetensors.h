/* A strict reader (and a float32 writer, at the end) of the safetensors format (Hugging Face): an 8-byte little-endian header
 * length N, N bytes of JSON header
 *   {"<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the raw little-endian tensor data; offsets are relative to the first byte after the
 * header. Opening validates everything before any tensor is read: header length against the
 * file size, JSON syntax, known dtypes, shape product x dtype size == end - begin (with
 * overflow checks), offsets inside the data section, no two tensors overlapping, no duplicate
 * names. Every error names the file, the tensor and the problem.
 *
 * Files are mmap'ed read-only; tensors are converted to float32 on read (F32 as is, F16 and
 * BF16 exactly; other dtypes are recognised but not converted). Nothing here is collective. */
#ifndef PEP_SAFETENSORS_H
#define PEP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define PEP_ST_MAX_DIMS 8
/* Largest accepted JSON header (the reference implementation's limit is 100 MB). */
#define PEP_ST_MAX_HEADER ((uint64_t)100 << 20)

enum pep_st_dtype {
    PEP_ST_DTYPE_BOOL,
    PEP_ST_DTYPE_U8,
    PEP_ST_DTYPE_I8,
    PEP_ST_DTYPE_F8_E5M2,
    PEP_ST_DTYPE_F8_E4M3,
    PEP_ST_DTYPE_I16,
    PEP_ST_DTYPE_U16,
    PEP_ST_DTYPE_F16,
    PEP_ST_DTYPE_BF16,
    PEP_ST_DTYPE_I32,
    PEP_ST_DTYPE_U32,
    PEP_ST_DTYPE_F32,
    PEP_ST_DTYPE_F64,
    PEP_ST_DTYPE_I64,
    PEP_ST_DTYPE_U64,
    PEP_ST_DTYPE_COUNT
};

struct pep_st_tensor {
    char *name;
    enum pep_st_dtype dtype;
    int ndim;                      /* 0 = scalar */
    size_t shape[PEP_ST_MAX_DIMS];
    size_t numel;
    size_t begin, end;             /* byte range relative to the data section */
};

typedef struct pep_safetensors pep_safetensors_t;

/* Opens and validates a file (mmap). Not collective. */
int pep_safetensors_open(const char *path, pep_safetensors_t **out);
/* Same, on a caller-owned buffer that must outlive the handle; `label` names it in messages. */
int pep_safetensors_open_memory(const void *buf, size_t len, const char *label, pep_safetensors_t **out);
/* NULL-safe; sets *st = NULL. */
void pep_safetensors_close(pep_safetensors_t **st);

const char *pep_safetensors_path(const pep_safetensors_t *st);
/* Tensors in header order. */
int pep_safetensors_count(const pep_safetensors_t *st);
const struct pep_st_tensor *pep_safetensors_tensor(const pep_safetensors_t *st, int i);
/* Index by name, or -1. */
int pep_safetensors_find(const pep_safetensors_t *st, const char *name);
/* "__metadata__" value of `key` (a string), or NULL. */
const char *pep_safetensors_metadata(const pep_safetensors_t *st, const char *key);
/* Raw little-endian bytes of tensor i (end - begin of them). */
const void *pep_safetensors_data(const pep_safetensors_t *st, int i);
/* Converts tensor i to float32 into out[0 .. numel); `n` must equal its numel. F32, F16 and
 * BF16 only (PEP_ERR_FORMAT naming the tensor and dtype otherwise). */
int pep_safetensors_read_f32(const pep_safetensors_t *st, int i, float *out, size_t n);

const char *pep_st_dtype_name(enum pep_st_dtype d);
size_t pep_st_dtype_size(enum pep_st_dtype d);
/* Exact conversions (every F16 and BF16 value, incl. subnormals, inf and NaN, is a float). */
float pep_f16_to_f32(uint16_t h);
float pep_bf16_to_f32(uint16_t b);

/* ---- writer (io/safetensors_write.c) ---- */

/* One float32 tensor to write: `data` holds the product of `shape` floats, row-major. */
struct pep_st_out {
    const char *name;
    int ndim;
    size_t shape[PEP_ST_MAX_DIMS];
    const float *data;
};

/* Writes the n tensors as F32 in the given order, with "__metadata__" holding the nmeta
 * key/value pairs meta[2i], meta[2i + 1] (transformers wants {"format": "pt"}). Names and
 * metadata must be printable ASCII without '"' or '\\'. Written to path.tmp, then renamed.
 * Not collective. */
int pep_safetensors_write(const char *path, const struct pep_st_out *t, int n, const char *const *meta, int nmeta);

#endif
