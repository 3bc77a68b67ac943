/* Strict safetensors reader (safetensors.h): header validation, mmap, F32/F16/BF16 -> float. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "json.h"

struct pep_safetensors {
    char *label;                 /* file path or caller's label, for messages */
    const unsigned char *base;   /* whole file */
    size_t size;
    void *map;                   /* mmap'ed region (NULL for open_memory) */
    size_t map_len;
    const unsigned char *data;   /* first byte after the header */
    size_t data_len;
    struct pep_st_tensor *tensors;
    int count;
    struct pep_json *header;
    const struct pep_json *metadata;
};

static const struct {
    const char *name;
    size_t size;
} dtypes[PEP_ST_DTYPE_COUNT] = {
    [PEP_ST_DTYPE_BOOL] = {"BOOL", 1},       [PEP_ST_DTYPE_U8] = {"U8", 1},
    [PEP_ST_DTYPE_I8] = {"I8", 1},           [PEP_ST_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
    [PEP_ST_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [PEP_ST_DTYPE_I16] = {"I16", 2},
    [PEP_ST_DTYPE_U16] = {"U16", 2},         [PEP_ST_DTYPE_F16] = {"F16", 2},
    [PEP_ST_DTYPE_BF16] = {"BF16", 2},       [PEP_ST_DTYPE_I32] = {"I32", 4},
    [PEP_ST_DTYPE_U32] = {"U32", 4},         [PEP_ST_DTYPE_F32] = {"F32", 4},
    [PEP_ST_DTYPE_F64] = {"F64", 8},         [PEP_ST_DTYPE_I64] = {"I64", 8},
    [PEP_ST_DTYPE_U64] = {"U64", 8},
};

const char *pep_st_dtype_name(enum pep_st_dtype d)
{
    return (unsigned)d < PEP_ST_DTYPE_COUNT ? dtypes[d].name : "?";
}

size_t pep_st_dtype_size(enum pep_st_dtype d) { return (unsigned)d < PEP_ST_DTYPE_COUNT ? dtypes[d].size : 0; }

float pep_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float (a normal float for mant > 0) */
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    if (exp == 31) bits = sign | 0x7f800000u | (mant << 13); /* inf / NaN, payload kept */
    else bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float pep_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16; /* bfloat16 is the top half of a float32 */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static int fail_tensor(const struct pep_safetensors *st, const char *name, const char *fmt, const char *detail)
{
    return pep_error_set(PEP_ERR_FORMAT, __FILE__, __LINE__, __func__, "%s: tensor '%s': %s%s", st->label, name, fmt,
                         detail ? detail : "");
}

/* Parses one header entry `name: {dtype, shape, data_offsets}` into t. */
static int parse_entry(struct pep_safetensors *st, const char *name, const struct pep_json *v, struct pep_st_tensor *t)
{
    char msg[256];
    if (v->type != PEP_JSON_TYPE_OBJECT) {
        snprintf(msg, sizeof msg, "entry is a JSON %s, expected an object {dtype, shape, data_offsets}",
                 pep_json_type_name(v->type));
        return fail_tensor(st, name, msg, NULL);
    }
    for (size_t k = 0; k < v->count; k++)
        if (strcmp(v->keys[k], "dtype") && strcmp(v->keys[k], "shape") && strcmp(v->keys[k], "data_offsets"))
            return fail_tensor(st, name, "unexpected key (only dtype, shape, data_offsets allowed): ", v->keys[k]);
    const struct pep_json *dt = pep_json_get(v, "dtype");
    const struct pep_json *shape = pep_json_get(v, "shape");
    const struct pep_json *off = pep_json_get(v, "data_offsets");
    if (!dt || !shape || !off) return fail_tensor(st, name, "missing key: ", !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (dt->type != PEP_JSON_TYPE_STRING) return fail_tensor(st, name, "dtype is not a string", NULL);
    int d = -1;
    for (int i = 0; i < PEP_ST_DTYPE_COUNT; i++)
        if (strcmp(dt->string, dtypes[i].name) == 0) d = i;
    if (d < 0) {
        snprintf(msg, sizeof msg, "unknown dtype '%.40s' (known: BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64)",
                 dt->string);
        return fail_tensor(st, name, msg, NULL);
    }
    t->dtype = (enum pep_st_dtype)d;
    if (shape->type != PEP_JSON_TYPE_ARRAY) return fail_tensor(st, name, "shape is not an array", NULL);
    if (shape->count > PEP_ST_MAX_DIMS) return fail_tensor(st, name, "shape has more than 8 dimensions", NULL);
    t->ndim = (int)shape->count;
    size_t numel = 1;
    int has_zero = 0;
    for (size_t k = 0; k < shape->count; k++) {
        uint64_t dim;
        if (pep_json_as_u64(&shape->items[k], &dim) != 0 || dim > SIZE_MAX)
            return fail_tensor(st, name, "shape entries must be non-negative integers", NULL);
        t->shape[k] = (size_t)dim;
        if (dim == 0) has_zero = 1;
    }
    for (int k = 0; k < t->ndim && !has_zero; k++) {
        if (numel > SIZE_MAX / t->shape[k]) return fail_tensor(st, name, "shape product overflows", NULL);
        numel *= t->shape[k];
    }
    if (has_zero) numel = 0;
    t->numel = numel;
    if (numel > SIZE_MAX / dtypes[d].size) return fail_tensor(st, name, "byte size overflows", NULL);
    size_t nbytes = numel * dtypes[d].size;
    uint64_t b, e;
    if (off->type != PEP_JSON_TYPE_ARRAY || off->count != 2 || pep_json_as_u64(&off->items[0], &b) != 0 ||
        pep_json_as_u64(&off->items[1], &e) != 0)
        return fail_tensor(st, name, "data_offsets must be [begin, end] with non-negative integers", NULL);
    if (b > e) {
        snprintf(msg, sizeof msg, "data_offsets [%llu, %llu]: begin after end", (unsigned long long)b,
                 (unsigned long long)e);
        return fail_tensor(st, name, msg, NULL);
    }
    if (e > st->data_len) {
        snprintf(msg, sizeof msg, "data_offsets [%llu, %llu] beyond the %zu data bytes after the header (truncated file?)",
                 (unsigned long long)b, (unsigned long long)e, st->data_len);
        return fail_tensor(st, name, msg, NULL);
    }
    if (e - b != nbytes) {
        char shp[128] = "";
        size_t used = 0;
        for (int k = 0; k < t->ndim && used < sizeof shp; k++)
            used += (size_t)snprintf(shp + used, sizeof shp - used, "%s%zu", k ? ", " : "", t->shape[k]);
        snprintf(msg, sizeof msg, "shape [%s] x %s (%zu bytes each) = %zu bytes, but data_offsets [%llu, %llu] hold %llu",
                 shp, dtypes[d].name, dtypes[d].size, nbytes, (unsigned long long)b, (unsigned long long)e,
                 (unsigned long long)(e - b));
        return fail_tensor(st, name, msg, NULL);
    }
    t->begin = (size_t)b;
    t->end = (size_t)e;
    return PEP_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const struct pep_st_tensor *x = *(const struct pep_st_tensor *const *)a, *y = *(const struct pep_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int parse_header(struct pep_safetensors *st)
{
    char msg[160];
    if (st->size < 8)
        PEP_FAIL(PEP_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors file (needs an 8-byte header length)",
                 st->label, st->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | st->base[i];
    PEP_CHECK(n <= st->size - 8, PEP_ERR_FORMAT,
              "%s: header length %llu is beyond the file size %zu (truncated file, or not a safetensors file)",
              st->label, (unsigned long long)n, st->size);
    PEP_CHECK(n <= PEP_ST_MAX_HEADER, PEP_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit", st->label,
              (unsigned long long)n);
    PEP_CHECK(n >= 2 && st->base[8] == '{', PEP_ERR_FORMAT,
              "%s: header does not start with '{' (not a safetensors file?)", st->label);
    st->data = st->base + 8 + n;
    st->data_len = st->size - 8 - (size_t)n;
    char label[PEP_ERROR_LABEL_MAX];
    snprintf(label, sizeof label, "%s header", st->label);
    PEP_CALL(pep_json_parse((const char *)st->base + 8, (size_t)n, label, 8, &st->header));
    const struct pep_json *h = st->header;
    PEP_CHECK(h->type == PEP_JSON_TYPE_OBJECT, PEP_ERR_FORMAT, "%s: header is not a JSON object", st->label);
    st->tensors = calloc(h->count ? h->count : 1, sizeof *st->tensors);
    PEP_CHECK(st->tensors, PEP_ERR_NOMEM, "%s: out of memory", st->label);
    for (size_t i = 0; i < h->count; i++) {
        const char *name = h->keys[i];
        if (strcmp(name, "__metadata__") == 0) {
            const struct pep_json *m = &h->items[i];
            PEP_CHECK(m->type == PEP_JSON_TYPE_OBJECT, PEP_ERR_FORMAT, "%s: __metadata__ is not an object", st->label);
            for (size_t k = 0; k < m->count; k++)
                PEP_CHECK(m->items[k].type == PEP_JSON_TYPE_STRING, PEP_ERR_FORMAT,
                          "%s: __metadata__ value of '%s' is not a string", st->label, m->keys[k]);
            st->metadata = m;
            continue;
        }
        PEP_CHECK(name[0] != '\0', PEP_ERR_FORMAT, "%s: a tensor has an empty name", st->label);
        struct pep_st_tensor *t = &st->tensors[st->count];
        /* duplicate names are already rejected by the JSON reader (duplicate object keys) */
        t->name = strdup(name);
        PEP_CHECK(t->name, PEP_ERR_NOMEM, "%s: out of memory", st->label);
        st->count++;
        PEP_CALL(parse_entry(st, name, &h->items[i], t));
    }
    /* no two non-empty tensors may share a byte */
    if (st->count > 1) {
        const struct pep_st_tensor **order = malloc((size_t)st->count * sizeof *order);
        PEP_CHECK(order, PEP_ERR_NOMEM, "%s: out of memory", st->label);
        int k = 0;
        for (int i = 0; i < st->count; i++)
            if (st->tensors[i].end > st->tensors[i].begin) order[k++] = &st->tensors[i];
        qsort(order, (size_t)k, sizeof *order, cmp_begin);
        for (int i = 1; i < k; i++)
            if (order[i]->begin < order[i - 1]->end) {
                snprintf(msg, sizeof msg, "data_offsets [%zu, %zu] overlap tensor '%.60s' [%zu, %zu]", order[i]->begin,
                         order[i]->end, order[i - 1]->name, order[i - 1]->begin, order[i - 1]->end);
                int rc = fail_tensor(st, order[i]->name, msg, NULL);
                free(order);
                return rc;
            }
        free(order);
    }
    return PEP_OK;
}

static int create(const char *label, struct pep_safetensors **out)
{
    struct pep_safetensors *st = calloc(1, sizeof *st);
    PEP_CHECK(st, PEP_ERR_NOMEM, "out of memory opening %s", label);
    st->label = strdup(label);
    if (!st->label) {
        free(st);
        PEP_FAIL(PEP_ERR_NOMEM, "out of memory opening %s", label);
    }
    *out = st;
    return PEP_OK;
}

int pep_safetensors_open_memory(const void *buf, size_t len, const char *label, pep_safetensors_t **out)
{
    *out = NULL;
    struct pep_safetensors *st;
    PEP_CALL(create(label ? label : "(memory)", &st));
    st->base = buf;
    st->size = len;
    int rc = parse_header(st);
    if (rc != PEP_OK) {
        pep_safetensors_close(&st);
        return pep_error_trace(rc, __FILE__, __LINE__, __func__);
    }
    *out = st;
    return PEP_OK;
}

int pep_safetensors_open(const char *path, pep_safetensors_t **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        PEP_FAIL(PEP_ERR_IO, "%s: not a regular file", path);
    }
    struct pep_safetensors *st;
    int rc = create(path, &st);
    if (rc != PEP_OK) {
        close(fd);
        return pep_error_trace(rc, __FILE__, __LINE__, __func__);
    }
    st->size = (size_t)sb.st_size;
    if (st->size > 0) {
        void *map = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            rc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "cannot mmap %s (%zu bytes): %s", path,
                               st->size, strerror(errno));
            close(fd);
            pep_safetensors_close(&st);
            return rc;
        }
        st->map = map;
        st->map_len = st->size;
        st->base = map;
    } else {
        st->base = (const unsigned char *)"";
    }
    close(fd);
    rc = parse_header(st);
    if (rc != PEP_OK) {
        pep_safetensors_close(&st);
        return pep_error_trace(rc, __FILE__, __LINE__, __func__);
    }
    *out = st;
    return PEP_OK;
}

void pep_safetensors_close(pep_safetensors_t **pst)
{
    if (!pst || !*pst) return;
    struct pep_safetensors *st = *pst;
    if (st->map) munmap(st->map, st->map_len);
    for (int i = 0; i < st->count; i++) free(st->tensors[i].name);
    free(st->tensors);
    pep_json_free(&st->header);
    free(st->label);
    free(st);
    *pst = NULL;
}

const char *pep_safetensors_path(const pep_safetensors_t *st) { return st->label; }
int pep_safetensors_count(const pep_safetensors_t *st) { return st->count; }

const struct pep_st_tensor *pep_safetensors_tensor(const pep_safetensors_t *st, int i)
{
    return (i >= 0 && i < st->count) ? &st->tensors[i] : NULL;
}

int pep_safetensors_find(const pep_safetensors_t *st, const char *name)
{
    for (int i = 0; i < st->count; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return i;
    return -1;
}

const char *pep_safetensors_metadata(const pep_safetensors_t *st, const char *key)
{
    const struct pep_json *v = pep_json_get(st->metadata, key);
    return v ? v->string : NULL;
}

const void *pep_safetensors_data(const pep_safetensors_t *st, int i)
{
    return (i >= 0 && i < st->count) ? st->data + st->tensors[i].begin : NULL;
}

int pep_safetensors_read_f32(const pep_safetensors_t *st, int i, float *out, size_t n)
{
    PEP_CHECK(i >= 0 && i < st->count, PEP_ERR_USAGE, "%s: no tensor #%d", st->label, i);
    const struct pep_st_tensor *t = &st->tensors[i];
    PEP_CHECK(n == t->numel, PEP_ERR_USAGE, "%s: tensor '%s' has %zu elements, caller expected %zu", st->label,
              t->name, t->numel, n);
    const unsigned char *p = st->data + t->begin;
    switch (t->dtype) {
    case PEP_ST_DTYPE_F32:
        for (size_t k = 0; k < n; k++) {
            uint32_t bits = (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 | (uint32_t)p[4 * k + 2] << 16 |
                            (uint32_t)p[4 * k + 3] << 24;
            memcpy(&out[k], &bits, sizeof bits);
        }
        return PEP_OK;
    case PEP_ST_DTYPE_F16:
        for (size_t k = 0; k < n; k++) out[k] = pep_f16_to_f32((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
        return PEP_OK;
    case PEP_ST_DTYPE_BF16:
        for (size_t k = 0; k < n; k++) out[k] = pep_bf16_to_f32((uint16_t)(p[2 * k] | p[2 * k + 1] << 8));
        return PEP_OK;
    default:
        PEP_FAIL(PEP_ERR_FORMAT, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 can be read as float32",
                 st->label, t->name, dtypes[t->dtype].name);
    }
}
