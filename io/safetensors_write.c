/* Writing float32 tensors as a safetensors file (the format described in safetensors.h), as
 * the reference writer lays it out: header JSON padded with spaces to a multiple of 8,
 * tensors back to back in the given order. Written to NAME.tmp, then renamed. */
#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

/* Names and metadata go into JSON strings unescaped: printable ASCII without '"' and '\'. */
static int plain_json_string(const char *s, const char *what)
{
    for (const char *p = s; *p; p++)
        PEP_CHECK(*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\', PEP_ERR_USAGE,
                  "safetensors %s '%s' has a character that needs escaping", what, s);
    PEP_CHECK(*s, PEP_ERR_USAGE, "empty safetensors %s", what);
    return PEP_OK;
}

static int put_f32le(FILE *f, const float *x, size_t n)
{
    unsigned char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        buf[k++] = (unsigned char)u, buf[k++] = (unsigned char)(u >> 8);
        buf[k++] = (unsigned char)(u >> 16), buf[k++] = (unsigned char)(u >> 24);
        if (k == sizeof buf || i + 1 == n) {
            if (fwrite(buf, 1, k, f) != k) return -1;
            k = 0;
        }
    }
    return 0;
}

int pep_safetensors_write(const char *path, const struct pep_st_out *t, int n, const char *const *meta, int nmeta)
{
    int rc = PEP_OK;
    char *hdr = NULL, tmp[4200];
    FILE *f = NULL;
    size_t cap = 256 + 64 * (size_t)nmeta, used = 0, offset = 0;
    for (int i = 0; i < 2 * nmeta; i++) PEP_CALL(plain_json_string(meta[i], "metadata"));
    for (int i = 0; i < n; i++) {
        PEP_CALL(plain_json_string(t[i].name, "tensor name"));
        PEP_CHECK(t[i].ndim >= 1 && t[i].ndim <= PEP_ST_MAX_DIMS, PEP_ERR_USAGE, "tensor '%s': %d dimensions",
                  t[i].name, t[i].ndim);
        cap += strlen(t[i].name) + 96 + 24 * (size_t)t[i].ndim;
    }
    for (int i = 0; i < nmeta; i++) cap += strlen(meta[2 * i]) + strlen(meta[2 * i + 1]) + 8;
    PEP_ALLOC(hdr, cap + 8);
    used += (size_t)snprintf(hdr + used, cap - used, "{\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++)
        used += (size_t)snprintf(hdr + used, cap - used, "%s\"%s\":\"%s\"", i ? "," : "", meta[2 * i], meta[2 * i + 1]);
    used += (size_t)snprintf(hdr + used, cap - used, "}");
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        used += (size_t)snprintf(hdr + used, cap - used, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", t[i].name);
        for (int d = 0; d < t[i].ndim; d++) {
            numel *= t[i].shape[d];
            used += (size_t)snprintf(hdr + used, cap - used, "%s%zu", d ? "," : "", t[i].shape[d]);
        }
        used += (size_t)snprintf(hdr + used, cap - used, "],\"data_offsets\":[%zu,%zu]}", offset, offset + 4 * numel);
        offset += 4 * numel;
    }
    used += (size_t)snprintf(hdr + used, cap - used, "}");
    PEP_CHECK_GOTO(rc, used < cap, PEP_ERR_INTERNAL, "safetensors header overflow");
    while (used % 8) hdr[used++] = ' ';
    int k = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    PEP_CHECK_GOTO(rc, k > 0 && (size_t)k < sizeof tmp, PEP_ERR_USAGE, "path '%s' is too long", path);
    f = fopen(tmp, "wb");
    PEP_CHECK_GOTO(rc, f, PEP_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    unsigned char len8[8];
    for (int b = 0; b < 8; b++) len8[b] = (unsigned char)((uint64_t)used >> (8 * b));
    int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(hdr, 1, used, f) != used;
    for (int i = 0; i < n && !bad; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        bad = put_f32le(f, t[i].data, numel) != 0;
    }
    bad |= fclose(f) != 0;
    f = NULL;
    PEP_CHECK_GOTO(rc, !bad, PEP_ERR_IO, "writing '%s' failed: %s", tmp, strerror(errno));
    PEP_CHECK_GOTO(rc, rename(tmp, path) == 0, PEP_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                   strerror(errno));
cleanup:
    if (f) fclose(f);
    if (rc != PEP_OK) remove(tmp);
    pep_free(hdr);
    return rc;
}
