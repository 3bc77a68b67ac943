/* The checkpoint reader (checkpoint.h): serial HDF5, any number of processes at once. Opens a
 * file (pep_ckpt_open: HDF5 reads the file; pep_ckpt_load: HDF5's core driver reads an
 * in-memory copy made while the digest was checked, so the file is read once) and validates
 * the root attributes, reads parameter rows, Adam moments, best-so-far weights,
 * task states and log series with their shapes and checksums checked. Walking whole groups
 * for statistics and deep verification: checkpoint_verify.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_digest.h"
#include "checkpoint_private.h"
#include "sha256.h"
#include "core/error.h"
#include "h5call.h"

static int read_info(struct pep_ckpt_reader *r)
{
    int rc = PEP_OK;
    hid_t root = H5I_INVALID_HID, attr = H5I_INVALID_HID, space = H5I_INVALID_HID;
    struct pep_ckpt_info *in = &r->info;
    const char *f = r->path;
    H5E_BEGIN_TRY { root = H5Gopen2(r->file, "/", H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, root >= 0, PEP_ERR_FORMAT, "%s: cannot open the root group (file damaged)", f);
    PEP_CHECK_GOTO(rc, ck_attr_exists(root, "format_version"), PEP_ERR_FORMAT,
                   "%s: an HDF5 file but not a peprime checkpoint (no format_version attribute)", f);
    int32_t ver = 0;
    PEP_CALL_GOTO(rc, ck_attr_read_num(root, f, "/", "format_version", H5T_NATIVE_INT32, &ver));
    PEP_CHECK_GOTO(rc, ver >= 1 && ver <= PEP_CKPT_FORMAT_VERSION, PEP_ERR_FORMAT,
                   "%s: checkpoint format version %d, this peprime reads versions 1 to %d (%s): use a newer peprime",
                   f, (int)ver, PEP_CKPT_FORMAT_VERSION, ver > PEP_CKPT_FORMAT_VERSION ? "too new" : "invalid");
    in->format_version = ver;
    PEP_CALL_GOTO(rc, ck_attr_read_str_buf(root, f, "/", "stage", in->stage, sizeof in->stage));
    PEP_CALL_GOTO(rc, ck_attr_read_num(root, f, "/", "step", H5T_NATIVE_INT64, &in->step));
    PEP_CALL_GOTO(rc, ck_attr_read_str_buf(root, f, "/", "created", in->created, sizeof in->created));
    PEP_CALL_GOTO(rc, ck_attr_read_str_buf(root, f, "/", "git_revision", in->git_revision, sizeof in->git_revision));
    int32_t ws = 0;
    PEP_CALL_GOTO(rc, ck_attr_read_num(root, f, "/", "world_size", H5T_NATIVE_INT32, &ws));
    in->world_size = ws;
    PEP_CALL_GOTO(rc, ck_attr_read_str(root, f, "/", "config", &in->config));
    if (ck_attr_exists(root, "rng_state")) {
        H5E_BEGIN_TRY
        {
            attr = H5Aopen(root, "rng_state", H5P_DEFAULT);
            if (attr >= 0) space = H5Aget_space(attr);
        }
        H5E_END_TRY;
        hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
        PEP_CHECK_GOTO(rc, n >= 0 && n <= PEP_CKPT_RNG_MAX, PEP_ERR_FORMAT,
                       "%s: attribute rng_state is unreadable or longer than %d words", f, PEP_CKPT_RNG_MAX);
        herr_t st;
        H5E_BEGIN_TRY { st = H5Aread(attr, H5T_NATIVE_UINT64, in->rng_state); }
        H5E_END_TRY;
        PEP_CHECK_GOTO(rc, st >= 0, PEP_ERR_FORMAT, "%s: cannot read attribute rng_state", f);
        in->rng_words = (size_t)n;
    }
    if (ck_attr_exists(root, "layers")) PEP_CALL_GOTO(rc, ck_read_spec(r, root));
    if (ck_attr_exists(root, "base_path")) {
        PEP_CALL_GOTO(rc, ck_attr_read_str_buf(root, f, "/", "base_path", in->base_path, sizeof in->base_path));
        PEP_CALL_GOTO(rc, ck_attr_read_str_buf(root, f, "/", "base_sha256", in->base_sha256, sizeof in->base_sha256));
    }
cleanup:
    PEP_H5_CLOSE(H5Sclose, space);
    PEP_H5_CLOSE(H5Aclose, attr);
    PEP_H5_CLOSE(H5Gclose, root);
    return rc;
}

/* The checks before any read: the path names a regular file. */
static int check_path(const char *path, struct stat *st)
{
    PEP_CHECK(path && stat(path, st) == 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path ? path : "(null)",
              strerror(errno));
    PEP_CHECK(S_ISREG(st->st_mode), PEP_ERR_IO, "checkpoint %s is not a regular file", path);
    return PEP_OK;
}

/* Opens r->file (HDF5 `name` through `fapl`) and reads the root attributes. */
static int open_file(struct pep_ckpt_reader *r, const char *name, hid_t fapl, long long size)
{
    H5E_BEGIN_TRY { r->file = H5Fopen(name, H5F_ACC_RDONLY, fapl); }
    H5E_END_TRY;
    PEP_CHECK(r->file >= 0, PEP_ERR_FORMAT,
              "%s: cannot open the HDF5 file: it is truncated or damaged (%lld bytes); use an older checkpoint",
              r->path, size);
    return read_info(r);
}

int pep_ckpt_open(const char *path, struct pep_ckpt_reader **out)
{
    int rc = PEP_OK;
    struct pep_ckpt_reader *r = NULL;
    *out = NULL;
    struct stat st;
    PEP_CALL(check_path(path, &st));
    int sealed;
    PEP_CALL(pep_ckpt_digest_check(path, &sealed)); /* before HDF5 parses a byte of it */
    htri_t is;
    H5E_BEGIN_TRY { is = H5Fis_hdf5(path); }
    H5E_END_TRY;
    PEP_CHECK(is > 0, PEP_ERR_FORMAT, "%s: not an HDF5 file (expected a peprime checkpoint .h5)", path);
    PEP_ALLOC(r, 1);
    r->dfd = -2;
    r->bfd = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    PEP_CALL_GOTO(rc, open_file(r, path, H5P_DEFAULT, (long long)st.st_size));
    *out = r;
    return PEP_OK;
cleanup:
    pep_ckpt_close(&r);
    return rc;
}

/* HDF5 file-image callbacks that lend a reader's image (udata: the reader) to the core driver
 * instead of copying it: every allocation of the image's size is the image itself, copies onto
 * itself are no-ops, and nothing is freed (pep_ckpt_close frees the image after H5Fclose).
 * Read-only: the image never grows. */
static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *ud)
{
    (void)op;
    struct pep_ckpt_reader *r = ud;
    return size == r->image_len ? r->image : NULL;
}

static void *image_memcpy(void *dst, const void *src, size_t size, H5FD_file_image_op_t op, void *ud)
{
    (void)op, (void)ud;
    return dst == src ? dst : memcpy(dst, src, size);
}

static void *image_realloc(void *p, size_t size, H5FD_file_image_op_t op, void *ud)
{
    (void)p, (void)size, (void)op, (void)ud;
    return NULL;
}

static herr_t image_free(void *p, H5FD_file_image_op_t op, void *ud)
{
    (void)p, (void)op, (void)ud;
    return 0;
}

static void *image_udata_copy(void *ud) { return ud; }
static herr_t image_udata_free(void *ud)
{
    (void)ud;
    return 0;
}

int pep_ckpt_load(const char *path, struct pep_ckpt_reader **out)
{
    static unsigned long serial; /* a name per image: HDF5 treats two core files of one name as one */
    int rc = PEP_OK;
    struct pep_ckpt_reader *r = NULL;
    hid_t fapl = H5I_INVALID_HID;
    void *image = NULL;
    size_t len = 0;
    *out = NULL;
    struct stat st;
    PEP_CALL(check_path(path, &st));
    int sealed;
    PEP_CALL(pep_ckpt_digest_load(path, &image, &len, &sealed)); /* before HDF5 parses a byte of it */
    PEP_ALLOC_GOTO(rc, r, 1);
    r->image = image; /* the reader owns it now */
    r->image_len = len;
    image = NULL;
    r->dfd = r->bfd = -1; /* the data is in memory: no direct I/O */
    snprintf(r->path, sizeof r->path, "%s", path);
    /* a name no file can have (below a regular file): the core driver refuses to open an image
     * under the name of an existing file */
    char name[PEP_CKPT_PATH_MAX + 32];
    snprintf(name, sizeof name, "%s/in-memory-%lu", path, serial++);
    H5FD_file_image_callbacks_t cb = {image_malloc, image_memcpy, image_realloc, image_free,
                                      image_udata_copy, image_udata_free, NULL};
    cb.udata = r;
    herr_t set = -1;
    H5E_BEGIN_TRY
    {
        fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (fapl >= 0 && H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0 &&
            H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0 && H5Pset_file_image_callbacks(fapl, &cb) >= 0)
            set = H5Pset_file_image(fapl, r->image, r->image_len);
    }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, set >= 0, PEP_ERR_HDF5, "%s: cannot hand its %zu bytes to HDF5's in-memory driver", path,
                   r->image_len);
    PEP_CALL_GOTO(rc, open_file(r, name, fapl, (long long)st.st_size));
    PEP_H5_CLOSE(H5Pclose, fapl);
    *out = r;
    return PEP_OK;
cleanup:
    PEP_H5_CLOSE(H5Pclose, fapl);
    pep_ckpt_close(&r);
    free(image);
    return rc;
}

void pep_ckpt_close(struct pep_ckpt_reader **rp)
{
    struct pep_ckpt_reader *r = *rp;
    if (!r) return;
    *rp = NULL;
    if (r->file > 0) PEP_H5_CLOSE(H5Fclose, r->file);
    free(r->image); /* after the file that reads it */
    if (r->dfd >= 0) close(r->dfd);
    if (r->bfd >= 0) close(r->bfd);
    free(r->stage);
    pep_free(r->info.config);
    pep_free(r->tasks);
    pep_free(r->logs);
    pep_free(r);
}

const struct pep_ckpt_info *pep_ckpt_info(const struct pep_ckpt_reader *r) { return &r->info; }
const char *pep_ckpt_path(const struct pep_ckpt_reader *r) { return r->path; }

static void fmt_shape(char *buf, size_t len, int ndim, const hsize_t *d)
{
    if (ndim == 1) snprintf(buf, len, "(%llu)", (unsigned long long)d[0]);
    else if (ndim == 2) snprintf(buf, len, "(%llu, %llu)", (unsigned long long)d[0], (unsigned long long)d[1]);
    else snprintf(buf, len, "(%d dimensions)", ndim);
}

/* Opens dataset `path`; must be float32 with row p's shape. */
static int open_tensor(struct pep_ckpt_reader *r, const char *path, const struct pep_param *p, hid_t *out)
{
    int rc = PEP_OK;
    hid_t d = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    htri_t e = 0;
    /* H5Lexists needs every parent to exist: walk down the path */
    char partial[512];
    const char *s = path;
    while ((s = strchr(s + 1, '/'))) {
        snprintf(partial, sizeof partial, "%.*s", (int)(s - path), path);
        H5E_BEGIN_TRY { e = H5Lexists(r->file, partial, H5P_DEFAULT); }
        H5E_END_TRY;
        PEP_CHECK_GOTO(rc, e > 0, PEP_ERR_FORMAT,
                       "%s: group %s is missing (needed for %s): the checkpoint holds other parameter groups", r->path,
                       partial, path);
    }
    H5E_BEGIN_TRY { e = H5Lexists(r->file, path, H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, e > 0, PEP_ERR_FORMAT,
                   "%s: dataset %s is missing (the checkpoint was written for a different model or PE config?)",
                   r->path, path);
    H5E_BEGIN_TRY
    {
        d = H5Dopen2(r->file, path, H5P_DEFAULT);
        if (d >= 0) type = H5Dget_type(d);
        if (d >= 0) space = H5Dget_space(d);
    }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, d >= 0 && type >= 0 && space >= 0, PEP_ERR_FORMAT, "%s: cannot open dataset %s (file damaged)",
                   r->path, path);
    PEP_CHECK_GOTO(rc, H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == 4, PEP_ERR_FORMAT,
                   "%s: %s has a %s type of %zu bytes, expected float32", r->path, path,
                   H5Tget_class(type) == H5T_FLOAT ? "float" : "non-float", H5Tget_size(type));
    hsize_t dims[8] = {0}, want[2] = {p->shape[0], p->shape[1]};
    int nd = H5Sget_simple_extent_ndims(space);
    PEP_CHECK_GOTO(rc, nd >= 0 && nd <= 8, PEP_ERR_FORMAT, "%s: %s has a bad dataspace", r->path, path);
    H5Sget_simple_extent_dims(space, dims, NULL);
    if (nd != p->ndim || dims[0] != want[0] || (nd == 2 && dims[1] != want[1])) {
        char have_s[64], want_s[64];
        fmt_shape(have_s, sizeof have_s, nd, dims);
        fmt_shape(want_s, sizeof want_s, p->ndim, want);
        rc = pep_error_set(PEP_ERR_FORMAT, __FILE__, __LINE__, __func__,
                           "%s: %s has shape %s, the config expects %s (model or PE settings differ from the "
                           "checkpoint's)",
                           r->path, path, have_s, want_s);
        goto cleanup;
    }
    *out = d;
    d = H5I_INVALID_HID;
cleanup:
    PEP_H5_CLOSE(H5Sclose, space);
    PEP_H5_CLOSE(H5Tclose, type);
    PEP_H5_CLOSE(H5Dclose, d);
    return rc;
}

/* A dataset must not claim more elements than the file stores: peprime writes every element
 * and no filter, so `numel` elements need numel x type size bytes of storage (compressed data
 * written by another tool may shrink up to 1024x). Without this check a damaged extent over
 * unallocated chunks would make the reader allocate or stream terabytes of fill values. */
int ck_check_stored(struct pep_ckpt_reader *r, hid_t d, const char *path, size_t numel)
{
    hid_t type = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    size_t elem = 0;
    int nfilters = -1;
    hsize_t stored = 0;
    H5E_BEGIN_TRY
    {
        type = H5Dget_type(d);
        dcpl = H5Dget_create_plist(d);
        if (type >= 0) elem = H5Tget_size(type);
        if (dcpl >= 0) nfilters = H5Pget_nfilters(dcpl);
        stored = H5Dget_storage_size(d);
        if (type >= 0) H5Tclose(type);
        if (dcpl >= 0) H5Pclose(dcpl);
    }
    H5E_END_TRY;
    PEP_CHECK(elem > 0 && nfilters >= 0, PEP_ERR_FORMAT, "%s: cannot read the type or layout of %s (file damaged)",
              r->path, path);
    uint64_t limit = nfilters == 0 ? (uint64_t)stored : (uint64_t)stored * 1024;
    PEP_CHECK(numel <= limit / elem, PEP_ERR_FORMAT,
              "%s: %s claims %zu elements but the file stores only %llu bytes of it (damaged, or not a peprime "
              "checkpoint)",
              r->path, path, numel, (unsigned long long)stored);
    return PEP_OK;
}

int ck_check_sum(struct pep_ckpt_reader *r, hid_t d, const char *path, uint64_t computed)
{
    /* every float tensor of every format_version (1 and up) carries one: data without it cannot
     * be verified, so it is not accepted */
    PEP_CHECK(ck_attr_exists(d, "checksum"), PEP_ERR_FORMAT,
              "%s: %s has no checksum attribute, which every peprime checkpoint (every format_version) "
              "writes: the file was made or edited by another tool; write it with peprime (import-hf for "
              "foreign weights) or use an older checkpoint",
              r->path, path);
    uint64_t stored = 0;
    PEP_CALL(ck_attr_read_num(d, r->path, path, "checksum", H5T_NATIVE_UINT64, &stored));
    PEP_CHECK(stored == computed, PEP_ERR_FORMAT,
              "%s: %s is corrupted (checksum %016" PRIx64 " stored, %016" PRIx64
              " computed from the data): use an older checkpoint",
              r->path, path, stored, computed);
    return PEP_OK;
}

static int read_tensor(struct pep_ckpt_reader *r, const char *path, const struct pep_param *p, float *dst)
{
    int rc = PEP_OK;
    hid_t d = H5I_INVALID_HID;
    PEP_CALL_GOTO(rc, open_tensor(r, path, p, &d));
    herr_t st = -1;
    /* large tensors bypass the page cache, as in the writer (see ck_direct_open) */
    haddr_t addr = ck_direct_addr(r, d, p->numel * sizeof(float));
    int dr = addr == HADDR_UNDEF ? -1 : ck_direct_read(r, (char *)dst, p->numel * sizeof(float), (uint64_t)addr);
    if (dr == 0) st = 0;
    else if (dr < 0) {
        H5E_BEGIN_TRY { st = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst); }
        H5E_END_TRY;
    }
    PEP_CHECK_GOTO(rc, st >= 0, PEP_ERR_FORMAT, "%s: cannot read %s: the file is truncated or damaged", r->path, path);
    PEP_CALL_GOTO(rc, ck_check_sum(r, d, path, ck_checksum(r->info.format_version, dst, p->numel)));
cleanup:
    PEP_H5_CLOSE(H5Dclose, d);
    return rc;
}

static int read_rows(struct pep_ckpt_reader *r, const struct pep_param_table *t, float *block, size_t base,
                     unsigned groups, const char *prefix)
{
    for (int i = 0; i < t->count; i++) {
        const struct pep_param *p = &t->rows[i];
        if (!(groups & PEP_GROUP_BIT(p->group))) continue;
        char path[512];
        if (*prefix) snprintf(path, sizeof path, "%s/%s/%s", prefix, pep_group_name(p->group), p->name);
        else snprintf(path, sizeof path, "%s/%s", ck_group_dir(p->group), p->name);
        PEP_CALL(read_tensor(r, path, p, block + (p->offset - base)));
    }
    return PEP_OK;
}

int pep_ckpt_read_params(struct pep_ckpt_reader *r, const struct pep_param_table *table, float *params,
                         unsigned groups)
{
    return read_rows(r, table, params, 0, groups, "");
}

int pep_ckpt_read_params_based(struct pep_ckpt_reader *r, const char *base, const struct pep_param_table *table,
                               float *params, unsigned groups)
{
    const struct pep_ckpt_info *in = pep_ckpt_info(r);
    unsigned plm = PEP_GROUP_BIT(PEP_GROUP_PLM);
    if (!in->base_path[0] || !(groups & plm)) return pep_ckpt_read_params(r, table, params, groups);
    PEP_CALL(pep_ckpt_read_params(r, table, params, groups & ~plm));
    const char *path = base && base[0] ? base : in->base_path;
    char hex[65];
    int rc = pep_sha256_file(path, hex);
    if (rc != PEP_OK) {
        pep_error_clear();
        PEP_FAIL(PEP_ERR_USAGE, "%s holds PE + head only; its encoder is in %s (SHA-256 %.16s...), which cannot be read: "
                 "give the base checkpoint it was fine-tuned from (evaluate --init PATH, export-hf --base PATH)",
                 r->path, path, in->base_sha256);
    }
    PEP_CHECK(!strcmp(hex, in->base_sha256), PEP_ERR_USAGE,
              "%s was fine-tuned on a base with SHA-256 %s, but %s has SHA-256 %s: the encoder is not the one its PE "
              "modules were trained with; give the right base (evaluate --init PATH, export-hf --base PATH)", r->path,
              in->base_sha256, path, hex);
    struct pep_ckpt_reader *b = NULL;
    PEP_CALL(pep_ckpt_open(path, &b));
    const struct pep_model_spec *x = &pep_ckpt_info(b)->spec, *y = &in->spec;
    if (!pep_ckpt_info(b)->has_spec || x->L != y->L || x->C != y->C || x->NH != y->NH || x->FF != y->FF ||
        x->V != y->V || x->max_positions != y->max_positions || x->type_vocab != y->type_vocab)
        rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                           "%s: its encoder's shape differs from the one %s was fine-tuned on", path, r->path);
    if (rc == PEP_OK) rc = pep_ckpt_read_params(b, table, params, plm);
    pep_ckpt_close(&b);
    return rc;
}

int pep_ckpt_read_moments(struct pep_ckpt_reader *r, const struct pep_param_table *table, float *m, float *v,
                          unsigned groups, int64_t *t)
{
    int rc = PEP_OK;
    hid_t g = H5I_INVALID_HID;
    htri_t e;
    H5E_BEGIN_TRY { e = H5Lexists(r->file, "/optimizer", H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK(e > 0, PEP_ERR_FORMAT, "%s: no /optimizer group (the checkpoint holds no optimizer state)", r->path);
    H5E_BEGIN_TRY { g = H5Gopen2(r->file, "/optimizer", H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, g >= 0, PEP_ERR_FORMAT, "%s: cannot open /optimizer", r->path);
    PEP_CALL_GOTO(rc, ck_attr_read_num(g, r->path, "/optimizer", "t", H5T_NATIVE_INT64, t));
    if (m) PEP_CALL_GOTO(rc, read_rows(r, table, m, 0, groups, "/optimizer/m"));
    if (v) PEP_CALL_GOTO(rc, read_rows(r, table, v, 0, groups, "/optimizer/v"));
cleanup:
    PEP_H5_CLOSE(H5Gclose, g);
    return rc;
}

int pep_ckpt_read_best(struct pep_ckpt_reader *r, const struct pep_param_table *table, unsigned groups,
                       float *state, double *dev_f1, int64_t *step, int *found)
{
    int rc = PEP_OK;
    hid_t g = H5I_INVALID_HID;
    size_t begin, end;
    htri_t e;
    *found = 0;
    if (state) PEP_CALL(pep_param_table_range(table, groups, &begin, &end));
    H5E_BEGIN_TRY { e = H5Lexists(r->file, "/best", H5P_DEFAULT); }
    H5E_END_TRY;
    if (e <= 0) return PEP_OK;
    H5E_BEGIN_TRY { g = H5Gopen2(r->file, "/best", H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, g >= 0, PEP_ERR_FORMAT, "%s: cannot open /best (file damaged?)", r->path);
    PEP_CALL_GOTO(rc, ck_attr_read_num(g, r->path, "/best", "dev_f1", H5T_NATIVE_DOUBLE, dev_f1));
    PEP_CALL_GOTO(rc, ck_attr_read_num(g, r->path, "/best", "step", H5T_NATIVE_INT64, step));
    if (state) PEP_CALL_GOTO(rc, read_rows(r, table, state, begin, groups, "/best"));
    *found = 1;
cleanup:
    PEP_H5_CLOSE(H5Gclose, g);
    return rc;
}

/* Names of the links directly in `group` (by name), into a growing array. */
struct name_list {
    char *names;
    size_t width;
    int n, cap, err;
};

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud)
{
    struct name_list *l = ud;
    if (strlen(name) >= l->width) return 0; /* not ours: longer than any name we write */
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char *p = realloc(l->names, (size_t)cap * l->width);
        if (!p) {
            l->err = 1;
            return -1;
        }
        l->names = p;
        l->cap = cap;
    }
    snprintf(l->names + (size_t)l->n * l->width, l->width, "%s", name);
    l->n++;
    return 0;
}

static int list_group(struct pep_ckpt_reader *r, const char *group, size_t width, char **names, int *n)
{
    int rc = PEP_OK;
    struct name_list l = {NULL, width, 0, 0, 0};
    hid_t g = H5I_INVALID_HID;
    htri_t e;
    *names = NULL;
    *n = 0;
    H5E_BEGIN_TRY { e = H5Lexists(r->file, group, H5P_DEFAULT); }
    H5E_END_TRY;
    if (e <= 0) return PEP_OK;
    H5E_BEGIN_TRY { g = H5Gopen2(r->file, group, H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, g >= 0, PEP_ERR_FORMAT, "%s: cannot open group %s", r->path, group);
    herr_t st;
    H5E_BEGIN_TRY { st = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, &l); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, !l.err, PEP_ERR_NOMEM, "out of memory listing %s", group);
    PEP_CHECK_GOTO(rc, st >= 0, PEP_ERR_FORMAT, "%s: cannot list group %s (file damaged)", r->path, group);
    *names = l.names;
    *n = l.n;
    l.names = NULL;
cleanup:
    free(l.names);
    PEP_H5_CLOSE(H5Gclose, g);
    return rc;
}

static int list_tasks(struct pep_ckpt_reader *r)
{
    if (r->tasks_listed) return PEP_OK;
    char *names = NULL;
    PEP_CALL(list_group(r, "/tasks", PEP_CKPT_LANG_MAX, &names, &r->ntasks));
    r->tasks = (char(*)[PEP_CKPT_LANG_MAX])names;
    r->tasks_listed = 1;
    return PEP_OK;
}

int pep_ckpt_task_count(struct pep_ckpt_reader *r, int *n)
{
    PEP_CALL(list_tasks(r));
    *n = r->ntasks;
    return PEP_OK;
}

static int read_task_attrs(struct pep_ckpt_reader *r, const char *lang, struct pep_ckpt_task_info *info)
{
    int rc = PEP_OK;
    hid_t g = H5I_INVALID_HID;
    char path[128];
    snprintf(path, sizeof path, "/tasks/%s", lang);
    htri_t e = 0;
    H5E_BEGIN_TRY
    {
        if (H5Lexists(r->file, "/tasks", H5P_DEFAULT) > 0) e = H5Lexists(r->file, path, H5P_DEFAULT);
    }
    H5E_END_TRY;
    PEP_CHECK(e > 0, PEP_ERR_FORMAT, "%s: no task state for language '%s' (%s is missing)", r->path, lang, path);
    H5E_BEGIN_TRY { g = H5Gopen2(r->file, path, H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, g >= 0, PEP_ERR_FORMAT, "%s: cannot open %s", r->path, path);
    memset(info, 0, sizeof *info);
    snprintf(info->lang, sizeof info->lang, "%s", lang);
    PEP_CALL_GOTO(rc, ck_attr_read_num(g, r->path, path, "episode", H5T_NATIVE_INT64, &info->episode));
    PEP_CALL_GOTO(rc, ck_attr_read_num(g, r->path, path, "step", H5T_NATIVE_INT64, &info->step));
    PEP_CALL_GOTO(rc, ck_attr_read_num(g, r->path, path, "support_loss", H5T_NATIVE_DOUBLE, &info->support_loss));
    PEP_CALL_GOTO(rc, ck_attr_read_num(g, r->path, path, "query_loss", H5T_NATIVE_DOUBLE, &info->query_loss));
cleanup:
    PEP_H5_CLOSE(H5Gclose, g);
    return rc;
}

int pep_ckpt_task_info(struct pep_ckpt_reader *r, int i, struct pep_ckpt_task_info *info)
{
    PEP_CALL(list_tasks(r));
    PEP_CHECK(i >= 0 && i < r->ntasks, PEP_ERR_USAGE, "task index %d out of range (%d tasks)", i, r->ntasks);
    return read_task_attrs(r, r->tasks[i], info);
}

int pep_ckpt_read_task(struct pep_ckpt_reader *r, const char *lang, const struct pep_param_table *table,
                       unsigned groups, float *state, struct pep_ckpt_task_info *info)
{
    struct pep_ckpt_task_info tmp;
    size_t begin, end;
    PEP_CHECK(ck_check_lang(lang), PEP_ERR_USAGE, "bad language name '%s'", lang);
    PEP_CALL(pep_param_table_range(table, groups, &begin, &end));
    PEP_CALL(read_task_attrs(r, lang, info ? info : &tmp));
    for (int i = 0; i < table->count; i++) {
        const struct pep_param *p = &table->rows[i];
        if (!(groups & PEP_GROUP_BIT(p->group))) continue;
        char path[512];
        snprintf(path, sizeof path, "/tasks/%s/%s", lang, p->name);
        PEP_CALL(read_tensor(r, path, p, state + (p->offset - begin)));
    }
    return PEP_OK;
}

static int list_logs(struct pep_ckpt_reader *r)
{
    if (r->logs_listed) return PEP_OK;
    char *names = NULL;
    PEP_CALL(list_group(r, "/log", PEP_CKPT_NAME_MAX, &names, &r->nlogs));
    r->logs = (char(*)[PEP_CKPT_NAME_MAX])names;
    r->logs_listed = 1;
    return PEP_OK;
}

int pep_ckpt_log_count(struct pep_ckpt_reader *r, int *n)
{
    PEP_CALL(list_logs(r));
    *n = r->nlogs;
    return PEP_OK;
}

int pep_ckpt_log_name(struct pep_ckpt_reader *r, int i, char *name, size_t len)
{
    PEP_CALL(list_logs(r));
    PEP_CHECK(i >= 0 && i < r->nlogs, PEP_ERR_USAGE, "log index %d out of range (%d series)", i, r->nlogs);
    snprintf(name, len, "%s", r->logs[i]);
    return PEP_OK;
}

int pep_ckpt_read_log(struct pep_ckpt_reader *r, const char *name, double **values, size_t *n)
{
    int rc = PEP_OK;
    hid_t d = H5I_INVALID_HID, space = H5I_INVALID_HID;
    double *buf = NULL;
    char path[256];
    *values = NULL;
    *n = 0;
    snprintf(path, sizeof path, "/log/%s", name);
    htri_t e = 0;
    H5E_BEGIN_TRY
    {
        if (H5Lexists(r->file, "/log", H5P_DEFAULT) > 0) e = H5Lexists(r->file, path, H5P_DEFAULT);
    }
    H5E_END_TRY;
    PEP_CHECK(e > 0, PEP_ERR_FORMAT, "%s: no log series %s", r->path, path);
    H5E_BEGIN_TRY
    {
        d = H5Dopen2(r->file, path, H5P_DEFAULT);
        if (d >= 0) space = H5Dget_space(d);
    }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, d >= 0 && space >= 0 && H5Sget_simple_extent_ndims(space) == 1, PEP_ERR_FORMAT,
                   "%s: %s is not a 1-D series", r->path, path);
    hssize_t cnt = H5Sget_simple_extent_npoints(space);
    PEP_CHECK_GOTO(rc, cnt >= 0, PEP_ERR_FORMAT, "%s: %s has a bad dataspace", r->path, path);
    PEP_CALL_GOTO(rc, ck_check_stored(r, d, path, (size_t)cnt));
    PEP_ALLOC_GOTO(rc, buf, cnt > 0 ? (size_t)cnt : 1);
    if (cnt > 0) {
        herr_t st;
        H5E_BEGIN_TRY { st = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); }
        H5E_END_TRY;
        PEP_CHECK_GOTO(rc, st >= 0, PEP_ERR_FORMAT, "%s: cannot read %s (file damaged)", r->path, path);
    }
    *values = buf;
    *n = (size_t)cnt;
    buf = NULL;
cleanup:
    pep_free(buf);
    PEP_H5_CLOSE(H5Sclose, space);
    PEP_H5_CLOSE(H5Dclose, d);
    return rc;
}
