/* Whole-group walks of a checkpoint (checkpoint.h): pep_ckpt_group_stats streams every float
 * dataset below a group for its tensor count, element count and L2 norm; pep_ckpt_verify
 * streams the whole file and checks every float32 tensor's checksum. Serial HDF5, through a
 * reader opened by checkpoint_read.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint_private.h"
#include "core/error.h"
#include "h5call.h"

/* Streams one float dataset in row blocks: checksum (if `verify`) and stats. */
struct visit_ctx {
    struct pep_ckpt_reader *r;
    const char *base;
    int verify;
    struct pep_ckpt_stats st;
    float *buf;
    int rc;
};

static int stream_dataset(struct visit_ctx *c, hid_t d, const char *path)
{
    int rc = PEP_OK;
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    PEP_H5_ID_GOTO(rc, type, H5Dget_type(d), "cannot get the type of %s", path);
    if (H5Tget_class(type) != H5T_FLOAT) goto cleanup;
    int is_f32 = H5Tget_size(type) == 4;
    PEP_H5_ID_GOTO(rc, space, H5Dget_space(d), "cannot get the dataspace of %s", path);
    int nd = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8] = {0};
    PEP_CHECK_GOTO(rc, nd >= 0 && nd <= 8, PEP_ERR_FORMAT, "%s: %s has a bad dataspace", c->r->path, path);
    H5Sget_simple_extent_dims(space, dims, NULL);
    size_t rows = nd ? dims[0] : 1, rowlen = 1, numel;
    int overflow = 0;
    for (int i = 1; i < nd; i++) overflow |= __builtin_mul_overflow(rowlen, (size_t)dims[i], &rowlen);
    overflow |= __builtin_mul_overflow(rows, rowlen, &numel);
    PEP_CHECK_GOTO(rc, !overflow, PEP_ERR_FORMAT, "%s: %s has an impossible shape (file damaged)", c->r->path, path);
    PEP_CALL_GOTO(rc, ck_check_stored(c->r, d, path, numel));
    /* rows of a zero-width tensor hold nothing to read */
    size_t per = rowlen == 0 ? rows : rowlen >= CK_BLOCK_ELEMS ? 1 : CK_BLOCK_ELEMS / rowlen;
    if (!c->buf) PEP_ALLOC_GOTO(rc, c->buf, CK_BLOCK_ELEMS > rowlen ? CK_BLOCK_ELEMS : rowlen);
    struct ck_hash h;
    ck_init(&h, c->r->info.format_version);
    double ss = 0;
    for (size_t r0 = 0; numel > 0 && r0 < rows; r0 += per) {
        size_t nr = rows - r0 < per ? rows - r0 : per;
        hsize_t cnt = (hsize_t)(nr * rowlen);
        herr_t st;
        if (nd == 0) {
            H5E_BEGIN_TRY { st = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->buf); }
            H5E_END_TRY;
        } else {
            hsize_t start[8] = {r0}, count[8];
            count[0] = nr;
            for (int i = 1; i < nd; i++) count[i] = dims[i];
            PEP_CALL_H5_GOTO(rc, H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL), "select");
            PEP_H5_ID_GOTO(rc, mspace, H5Screate_simple(1, &cnt, NULL), "cannot create a dataspace");
            H5E_BEGIN_TRY { st = H5Dread(d, H5T_NATIVE_FLOAT, mspace, space, H5P_DEFAULT, c->buf); }
            H5E_END_TRY;
            PEP_H5_CLOSE(H5Sclose, mspace);
        }
        PEP_CHECK_GOTO(rc, st >= 0, PEP_ERR_FORMAT, "%s: cannot read %s: the file is truncated or damaged", c->r->path,
                       path);
        for (size_t i = 0; i < cnt; i++) ss += (double)c->buf[i] * c->buf[i];
        if (is_f32) ck_update(&h, c->buf, cnt * sizeof(float));
    }
    if (c->verify && is_f32) PEP_CALL_GOTO(rc, ck_check_sum(c->r, d, path, ck_final(&h)));
    c->st.tensors++;
    c->st.numel += numel;
    c->st.l2 += ss; /* squared until the end */
cleanup:
    PEP_H5_CLOSE(H5Sclose, mspace);
    PEP_H5_CLOSE(H5Sclose, space);
    PEP_H5_CLOSE(H5Tclose, type);
    return rc;
}

static herr_t visit_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud)
{
    struct visit_ctx *c = ud;
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t o;
    H5E_BEGIN_TRY { o = H5Oopen(g, name, H5P_DEFAULT); }
    H5E_END_TRY;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", strcmp(c->base, "/") ? c->base : "", name);
    if (o < 0) {
        c->rc = pep_error_set(PEP_ERR_FORMAT, __FILE__, __LINE__, __func__, "%s: cannot open %s (file damaged)",
                              c->r->path, path);
        return -1;
    }
    if (H5Iget_type(o) == H5I_DATASET) c->rc = stream_dataset(c, o, path);
    H5Oclose(o);
    return c->rc == PEP_OK ? 0 : -1;
}

static int visit_group(struct pep_ckpt_reader *r, const char *group, int verify, struct pep_ckpt_stats *st)
{
    int rc = PEP_OK;
    struct visit_ctx c = {r, group, verify, {0, 0, 0}, NULL, PEP_OK};
    hid_t g = H5I_INVALID_HID;
    htri_t e = 1;
    if (strcmp(group, "/")) {
        /* walk down so a missing parent is not an HDF5 error */
        char partial[512];
        const char *s = group;
        while (e > 0 && (s = strchr(s + 1, '/'))) {
            snprintf(partial, sizeof partial, "%.*s", (int)(s - group), group);
            H5E_BEGIN_TRY { e = H5Lexists(r->file, partial, H5P_DEFAULT); }
            H5E_END_TRY;
        }
        if (e > 0) {
            H5E_BEGIN_TRY { e = H5Lexists(r->file, group, H5P_DEFAULT); }
            H5E_END_TRY;
        }
    }
    if (e <= 0) {
        if (st) memset(st, 0, sizeof *st);
        return PEP_OK;
    }
    H5E_BEGIN_TRY { g = H5Gopen2(r->file, group, H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, g >= 0, PEP_ERR_FORMAT, "%s: cannot open group %s (file damaged?)", r->path, group);
    herr_t s2;
    H5E_BEGIN_TRY { s2 = H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &c); }
    H5E_END_TRY;
    if (c.rc != PEP_OK) {
        rc = pep_error_trace(c.rc, __FILE__, __LINE__, __func__);
        goto cleanup;
    }
    PEP_CHECK_GOTO(rc, s2 >= 0, PEP_ERR_FORMAT, "%s: cannot walk group %s (file damaged)", r->path, group);
    c.st.l2 = sqrt(c.st.l2);
    if (st) *st = c.st;
cleanup:
    pep_free(c.buf);
    PEP_H5_CLOSE(H5Gclose, g);
    return rc;
}

int pep_ckpt_group_stats(struct pep_ckpt_reader *r, const char *group, struct pep_ckpt_stats *st)
{
    return visit_group(r, group, 0, st);
}

int pep_ckpt_verify(struct pep_ckpt_reader *r) { return visit_group(r, "/", 1, NULL); }

