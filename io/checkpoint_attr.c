/* Checkpoint checksums and HDF5 attributes (checkpoint_private.h): the 64-bit checksum every
 * tensor carries and the whole-file digest use (XXH3-64 from format_version 2 on, the lanes
 * hash of version 1 for reading older files; pep_ckpt_checksum, and the running form for
 * streamed reads), and the helpers that write typed scalar / string attributes and read them back
 * with a clear error when one is missing or of the wrong kind. */
#include <stdio.h>
#include <string.h>

#include "checkpoint_private.h"
#include "core/error.h"
#include "core/rng.h"
#include "h5call.h"

/* header-only (inlined), so the streaming state can live in struct ck_hash without assuming the
 * layout of another build's XXH3_state_t */
#define XXH_INLINE_ALL
#include <xxhash.h>

/* ------------------------------------------------------------------ checksum */

_Static_assert(sizeof(XXH3_state_t) <= sizeof(((struct ck_hash *)0)->xxh3) && _Alignof(XXH3_state_t) <= 64,
               "struct ck_hash holds an XXH3_state_t");

void ck_init(struct ck_hash *h, int format_version)
{
    h->version = format_version;
    for (int i = 0; i < 4; i++) h->lane[i] = pep_splitmix64((uint64_t)i + 1);
    h->n = 0;
    if (format_version >= 2) XXH3_64bits_reset((XXH3_state_t *)(void *)h->xxh3);
}

/* Version 1: 32-bit words into four multiply chains, word i into lane i % 4. */
static void lanes_update(struct ck_hash *h, const uint32_t *w, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15ULL; /* odd: (lane ^ w) * k is a bijection of lane */
    size_t i = 0;
    /* align to lane 0, then four independent multiply chains (vectorisable) */
    for (; i < n && ((h->n + i) & 3); i++) {
        uint32_t wv;
        memcpy(&wv, &w[i], 4);
        uint64_t *l = &h->lane[(h->n + i) & 3];
        *l = (*l ^ wv) * k;
    }
    uint64_t l0 = h->lane[0], l1 = h->lane[1], l2 = h->lane[2], l3 = h->lane[3];
    for (; i + 4 <= n; i += 4) {
        uint32_t wv[4];
        memcpy(wv, &w[i], 16);
        l0 = (l0 ^ wv[0]) * k;
        l1 = (l1 ^ wv[1]) * k;
        l2 = (l2 ^ wv[2]) * k;
        l3 = (l3 ^ wv[3]) * k;
    }
    h->lane[0] = l0, h->lane[1] = l1, h->lane[2] = l2, h->lane[3] = l3;
    for (; i < n; i++) {
        uint32_t wv;
        memcpy(&wv, &w[i], 4);
        uint64_t *l = &h->lane[(h->n + i) & 3];
        *l = (*l ^ wv) * k;
    }
    h->n += n;
}

void ck_update(struct ck_hash *h, const void *p, size_t bytes)
{
    if (h->version >= 2) {
        XXH3_64bits_update((XXH3_state_t *)(void *)h->xxh3, p, bytes);
        return;
    }
    lanes_update(h, p, bytes / 4);
    if (bytes % 4) { /* the last run of a digest: its partial word zero-padded */
        uint32_t last = 0;
        memcpy(&last, (const unsigned char *)p + bytes / 4 * 4, bytes % 4);
        lanes_update(h, &last, 1);
    }
}

uint64_t ck_final(struct ck_hash *h)
{
    if (h->version >= 2) return XXH3_64bits_digest((XXH3_state_t *)(void *)h->xxh3);
    uint64_t r = 0;
    for (int i = 0; i < 4; i++) r ^= pep_splitmix64(h->lane[i] + (uint64_t)i);
    return pep_splitmix64(r ^ h->n);
}

uint64_t ck_checksum(int format_version, const float *x, size_t n)
{
    if (format_version >= 2) return XXH3_64bits(x, n * sizeof(float));
    struct ck_hash h;
    ck_init(&h, format_version);
    ck_update(&h, x, n * sizeof(float));
    return ck_final(&h);
}

uint64_t ck_header_check(int format_version, const void *p, size_t bytes)
{
    return format_version >= 2 ? XXH3_64bits(p, bytes) : pep_fnv1a64(p, bytes);
}

uint64_t pep_ckpt_checksum(const float *x, size_t n) { return ck_checksum(PEP_CKPT_FORMAT_VERSION, x, n); }

/* ------------------------------------------------------------------ attribute helpers */

int ck_attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *buf, hsize_t n, int scalar)
{
    int rc = PEP_OK;
    hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
    if (scalar) PEP_H5_ID_GOTO(rc, space, H5Screate(H5S_SCALAR), "cannot create a dataspace");
    else PEP_H5_ID_GOTO(rc, space, H5Screate_simple(1, &n, NULL), "cannot create a dataspace");
    PEP_H5_ID_GOTO(rc, attr, H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT),
                   "cannot create attribute %s", name);
    PEP_CALL_H5_GOTO(rc, H5Awrite(attr, mtype, buf), "cannot write attribute %s", name);
cleanup:
    PEP_H5_CLOSE(H5Aclose, attr);
    PEP_H5_CLOSE(H5Sclose, space);
    return rc;
}

int ck_attr_i64(hid_t obj, const char *name, int64_t v)
{
    return ck_attr_write(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 1, 1);
}
int ck_attr_i32(hid_t obj, const char *name, int v)
{
    int32_t x = v;
    return ck_attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &x, 1, 1);
}
int ck_attr_f64(hid_t obj, const char *name, double v)
{
    return ck_attr_write(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 1, 1);
}
int ck_attr_u64(hid_t obj, const char *name, uint64_t v)
{
    return ck_attr_write(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v, 1, 1);
}

/* Variable-length UTF-8 string (h5py reads it as str). */
int ck_attr_str(hid_t obj, const char *name, const char *s)
{
    int rc = PEP_OK;
    hid_t type = H5I_INVALID_HID;
    PEP_H5_ID_GOTO(rc, type, H5Tcopy(H5T_C_S1), "cannot create a string type");
    PEP_CALL_H5_GOTO(rc, H5Tset_size(type, H5T_VARIABLE), "cannot size a string type");
    PEP_CALL_H5_GOTO(rc, H5Tset_cset(type, H5T_CSET_UTF8), "cannot set a string charset");
    const char *p = s ? s : "";
    PEP_CALL_GOTO(rc, ck_attr_write(obj, name, type, type, &p, 1, 1));
cleanup:
    PEP_H5_CLOSE(H5Tclose, type);
    return rc;
}

int ck_attr_exists(hid_t obj, const char *name)
{
    htri_t e;
    H5E_BEGIN_TRY { e = H5Aexists(obj, name); }
    H5E_END_TRY;
    return e > 0;
}

/* Reads a numeric scalar attribute converted to `mtype`. */
int ck_attr_read_num(hid_t obj, const char *file, const char *objname, const char *name, hid_t mtype, void *out)
{
    int rc = PEP_OK;
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    PEP_CHECK_GOTO(rc, ck_attr_exists(obj, name), PEP_ERR_FORMAT,
                   "%s: attribute '%s' of %s is missing (not a peprime checkpoint, or a damaged one)", file, name,
                   objname);
    H5E_BEGIN_TRY
    {
        attr = H5Aopen(obj, name, H5P_DEFAULT);
        if (attr >= 0) type = H5Aget_type(attr);
        if (attr >= 0) space = H5Aget_space(attr);
    }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, attr >= 0 && type >= 0 && space >= 0, PEP_ERR_FORMAT, "%s: cannot open attribute '%s' of %s",
                   file, name, objname);
    H5T_class_t cls = H5Tget_class(type);
    PEP_CHECK_GOTO(rc, (cls == H5T_INTEGER || cls == H5T_FLOAT) && H5Sget_simple_extent_npoints(space) == 1,
                   PEP_ERR_FORMAT, "%s: attribute '%s' of %s is not a number", file, name, objname);
    herr_t st;
    H5E_BEGIN_TRY { st = H5Aread(attr, mtype, out); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, st >= 0, PEP_ERR_FORMAT, "%s: cannot read attribute '%s' of %s (file damaged?)", file, name,
                   objname);
cleanup:
    PEP_H5_CLOSE(H5Sclose, space);
    PEP_H5_CLOSE(H5Tclose, type);
    PEP_H5_CLOSE(H5Aclose, attr);
    return rc;
}

/* Reads a string attribute (variable or fixed length) into a pep_alloc'ed buffer. */
int ck_attr_read_str(hid_t obj, const char *file, const char *objname, const char *name, char **out)
{
    int rc = PEP_OK;
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, mtype = H5I_INVALID_HID;
    char *vl = NULL, *buf = NULL;
    *out = NULL;
    PEP_CHECK_GOTO(rc, ck_attr_exists(obj, name), PEP_ERR_FORMAT,
                   "%s: attribute '%s' of %s is missing (not a peprime checkpoint, or a damaged one)", file, name,
                   objname);
    H5E_BEGIN_TRY
    {
        attr = H5Aopen(obj, name, H5P_DEFAULT);
        if (attr >= 0) type = H5Aget_type(attr);
    }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, attr >= 0 && type >= 0 && H5Tget_class(type) == H5T_STRING, PEP_ERR_FORMAT,
                   "%s: attribute '%s' of %s is not a string", file, name, objname);
    herr_t st;
    if (H5Tis_variable_str(type) > 0) {
        H5T_cset_t cset = H5Tget_cset(type);
        PEP_CHECK_GOTO(rc, cset == H5T_CSET_ASCII || cset == H5T_CSET_UTF8, PEP_ERR_FORMAT,
                       "%s: attribute '%s' of %s has an unknown character set (file damaged)", file, name, objname);
        PEP_H5_ID_GOTO(rc, mtype, H5Tcopy(H5T_C_S1), "cannot create a string type");
        PEP_CALL_H5_GOTO(rc, H5Tset_size(mtype, H5T_VARIABLE), "cannot size a string type");
        PEP_CALL_H5_GOTO(rc, H5Tset_cset(mtype, cset), "cannot set a string charset");
        H5E_BEGIN_TRY { st = H5Aread(attr, mtype, &vl); }
        H5E_END_TRY;
        PEP_CHECK_GOTO(rc, st >= 0 && vl, PEP_ERR_FORMAT, "%s: cannot read attribute '%s' of %s", file, name,
                       objname);
        PEP_ALLOC_GOTO(rc, buf, strlen(vl) + 1);
        memcpy(buf, vl, strlen(vl) + 1);
    } else {
        size_t n = H5Tget_size(type);
        PEP_ALLOC_GOTO(rc, buf, n + 1);
        H5E_BEGIN_TRY { st = H5Aread(attr, type, buf); }
        H5E_END_TRY;
        PEP_CHECK_GOTO(rc, st >= 0, PEP_ERR_FORMAT, "%s: cannot read attribute '%s' of %s", file, name, objname);
        buf[n] = '\0';
    }
    *out = buf;
    buf = NULL;
cleanup:
    if (vl) H5free_memory(vl);
    pep_free(buf);
    PEP_H5_CLOSE(H5Tclose, mtype);
    PEP_H5_CLOSE(H5Tclose, type);
    PEP_H5_CLOSE(H5Aclose, attr);
    return rc;
}

int ck_attr_read_str_buf(hid_t obj, const char *file, const char *objname, const char *name, char *buf,
                         size_t len)
{
    char *s = NULL;
    PEP_CALL(ck_attr_read_str(obj, file, objname, name, &s));
    snprintf(buf, len, "%s", s);
    pep_free(s);
    return PEP_OK;
}
