/* HDF5 checkpoint writer (parallel, MPI-IO driver) and reader (serial) — see checkpoint.h. */
#define _GNU_SOURCE /* O_DIRECT */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "h5call.h"
#include "mpi_call.h"

#ifndef PEP_GIT_REVISION
#define PEP_GIT_REVISION "unknown"
#endif

/* Elements per block when writing or streaming a dataset (verify, stats): 16 MiB of floats. */
#define CK_BLOCK_ELEMS ((size_t)4 << 20)
#define CK_LOG_CHUNK 4096
/* Direct I/O: tensors of at least CK_DIRECT_MIN bytes (HDF5 aligns them to 1 MiB, see
 * H5Pset_alignment below) are written with O_DIRECT in CK_DIRECT_ALIGN-aligned pieces through
 * a CK_DIRECT_BUF staging buffer. */
#define CK_DIRECT_MIN ((size_t)1 << 20)
#define CK_DIRECT_ALIGN ((size_t)4096)
#define CK_DIRECT_BUF ((size_t)8 << 20)

static const char *const group_dirs[PEP_GROUP_COUNT] = {"/model", "/pe", "/head"};

/* ------------------------------------------------------------------ checksum */

struct ck_hash {
    uint64_t lane[4];
    uint64_t n;
};

static void ck_init(struct ck_hash *h)
{
    for (int i = 0; i < 4; i++) h->lane[i] = pep_splitmix64((uint64_t)i + 1);
    h->n = 0;
}

static void ck_update(struct ck_hash *h, const float *x, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15ULL; /* odd: (lane ^ w) * k is a bijection of lane */
    size_t i = 0;
    /* align to lane 0, then four independent multiply chains (vectorisable) */
    for (; i < n && ((h->n + i) & 3); i++) {
        uint32_t wv;
        memcpy(&wv, &x[i], 4);
        uint64_t *l = &h->lane[(h->n + i) & 3];
        *l = (*l ^ wv) * k;
    }
    uint64_t l0 = h->lane[0], l1 = h->lane[1], l2 = h->lane[2], l3 = h->lane[3];
    for (; i + 4 <= n; i += 4) {
        uint32_t wv[4];
        memcpy(wv, &x[i], 16);
        l0 = (l0 ^ wv[0]) * k;
        l1 = (l1 ^ wv[1]) * k;
        l2 = (l2 ^ wv[2]) * k;
        l3 = (l3 ^ wv[3]) * k;
    }
    h->lane[0] = l0, h->lane[1] = l1, h->lane[2] = l2, h->lane[3] = l3;
    for (; i < n; i++) {
        uint32_t wv;
        memcpy(&wv, &x[i], 4);
        uint64_t *l = &h->lane[(h->n + i) & 3];
        *l = (*l ^ wv) * k;
    }
    h->n += n;
}

static uint64_t ck_final(const struct ck_hash *h)
{
    uint64_t r = 0;
    for (int i = 0; i < 4; i++) r ^= pep_splitmix64(h->lane[i] + (uint64_t)i);
    return pep_splitmix64(r ^ h->n);
}

uint64_t pep_ckpt_checksum(const float *x, size_t n)
{
    struct ck_hash h;
    ck_init(&h);
    ck_update(&h, x, n);
    return ck_final(&h);
}

static uint64_t bytes_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
    return pep_splitmix64(h ^ n);
}

/* ------------------------------------------------------------------ attribute helpers */

static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *buf, hsize_t n,
                      int scalar)
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

static int attr_i64(hid_t obj, const char *name, int64_t v)
{
    return attr_write(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 1, 1);
}
static int attr_i32(hid_t obj, const char *name, int v)
{
    int32_t x = v;
    return attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &x, 1, 1);
}
static int attr_f64(hid_t obj, const char *name, double v)
{
    return attr_write(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 1, 1);
}
static int attr_u64(hid_t obj, const char *name, uint64_t v)
{
    return attr_write(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v, 1, 1);
}

/* Variable-length UTF-8 string (h5py reads it as str). */
static int attr_str(hid_t obj, const char *name, const char *s)
{
    int rc = PEP_OK;
    hid_t type = H5I_INVALID_HID;
    PEP_H5_ID_GOTO(rc, type, H5Tcopy(H5T_C_S1), "cannot create a string type");
    PEP_CALL_H5_GOTO(rc, H5Tset_size(type, H5T_VARIABLE), "cannot size a string type");
    PEP_CALL_H5_GOTO(rc, H5Tset_cset(type, H5T_CSET_UTF8), "cannot set a string charset");
    const char *p = s ? s : "";
    PEP_CALL_GOTO(rc, attr_write(obj, name, type, type, &p, 1, 1));
cleanup:
    PEP_H5_CLOSE(H5Tclose, type);
    return rc;
}

static int attr_exists(hid_t obj, const char *name)
{
    htri_t e;
    H5E_BEGIN_TRY { e = H5Aexists(obj, name); }
    H5E_END_TRY;
    return e > 0;
}

/* Reads a numeric scalar attribute converted to `mtype`. */
static int attr_read_num(hid_t obj, const char *file, const char *objname, const char *name, hid_t mtype, void *out)
{
    int rc = PEP_OK;
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    PEP_CHECK_GOTO(rc, attr_exists(obj, name), PEP_ERR_FORMAT,
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
static int attr_read_str(hid_t obj, const char *file, const char *objname, const char *name, char **out)
{
    int rc = PEP_OK;
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, mtype = H5I_INVALID_HID;
    char *vl = NULL, *buf = NULL;
    *out = NULL;
    PEP_CHECK_GOTO(rc, attr_exists(obj, name), PEP_ERR_FORMAT,
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

static int attr_read_str_buf(hid_t obj, const char *file, const char *objname, const char *name, char *buf,
                             size_t len)
{
    char *s = NULL;
    PEP_CALL(attr_read_str(obj, file, objname, name, &s));
    snprintf(buf, len, "%s", s);
    pep_free(s);
    return PEP_OK;
}

/* ------------------------------------------------------------------ writer */

struct pep_ckpt_writer {
    MPI_Comm comm;
    int rank, size;
    hid_t file;
    hid_t dxpl_coll; /* collective transfer */
    hid_t dxpl_ind;  /* independent transfer */
    int dfd;         /* this rank's O_DIRECT descriptor of the tmp file, -1: HDF5 writes all data */
    int bfd;         /* buffered descriptor for the unaligned tails of direct-written tensors */
    int wrote_tail;  /* bfd has unsynced data */
    int data_rc;     /* first failed tensor-data write of this rank (agreed on at commit) */
    int agreed_fail; /* an agreement of this writer found a failure: every rank knows it */
    void *stage;     /* CK_DIRECT_BUF bytes, CK_DIRECT_ALIGN-aligned */
    char final_path[PEP_CKPT_PATH_MAX];
    char tmp_path[PEP_CKPT_PATH_MAX + 8];
};

/* Every rank learns whether any rank failed (pep_mpi_agree: the failing rank keeps its own
 * message, the others adopt it as "rank R: ..."). */
static int agree(struct pep_ckpt_writer *w, int rc)
{
    int r = pep_mpi_agree(rc, w->comm);
    if (r != PEP_OK) w->agreed_fail = 1;
    return r;
}

/* The end of a collective write function. A failure that was agreed on (validation before
 * the collectives) is agreed again by every rank. Any other failure happened inside a
 * collective HDF5 step (creating a group, dataset or attribute: e.g. the disk filled up while
 * HDF5 extended the file) on this rank alone: the other ranks are in, or past, that step and
 * cannot be told without risking a hang, so the job is stopped with MPI_Abort through
 * pep_abort. Tensor data writes never get here: they are independent, recorded in data_rc
 * and agreed on at commit. */
static int settle(struct pep_ckpt_writer *w, int rc)
{
    if (rc != PEP_OK && !w->agreed_fail && w->size > 1)
        pep_abort(rc,
                  "%s: a collective step of the checkpoint write failed on rank %d: %s. The job stops (no rank "
                  "may wait for it); the checkpoints already written are intact: fix the cause (disk space?) and "
                  "resume with --resume auto",
                  w->tmp_path, w->rank, pep_error_message());
    return agree(w, rc);
}

/* Opens this rank's descriptors for direct-I/O tensor data (the file already exists: H5Fcreate
 * is collective). Large tensors bypass the page cache: on a fresh write every page-cache page
 * is new memory, and on the VMs measured here touching new memory costs more than the disk
 * (buffered 0.2-0.3 GB/s against O_DIRECT 1.0-1.2 GB/s, see tests/checkpoint/bench_checkpoint.c).
 * Where O_DIRECT is refused (tmpfs, some network file systems) or PEP_CKPT_DIRECT=0 is set,
 * HDF5 writes all data itself. */
static int direct_open(struct pep_ckpt_writer *w)
{
    const char *env = getenv("PEP_CKPT_DIRECT");
    if (env && !strcmp(env, "0")) return PEP_OK;
    w->dfd = open(w->tmp_path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (w->dfd < 0) return PEP_OK; /* EINVAL: no direct I/O here; HDF5 writes the data */
    w->bfd = open(w->tmp_path, O_WRONLY | O_CLOEXEC);
    PEP_CHECK(w->bfd >= 0, PEP_ERR_IO, "cannot open %s for writing: %s", w->tmp_path, strerror(errno));
    PEP_CHECK(posix_memalign(&w->stage, CK_DIRECT_ALIGN, CK_DIRECT_BUF) == 0, PEP_ERR_NOMEM,
              "out of memory: %zu bytes of checkpoint staging buffer", CK_DIRECT_BUF);
    return PEP_OK;
}

static void direct_close(struct pep_ckpt_writer *w)
{
    if (w->dfd >= 0) close(w->dfd);
    if (w->bfd >= 0) close(w->bfd);
    w->dfd = w->bfd = -1;
    free(w->stage);
    w->stage = NULL;
}

/* Writes `len` bytes of `src` at file offset `off`: O_DIRECT through the staging buffer when
 * `direct` (off and len multiples of CK_DIRECT_ALIGN), else one buffered pwrite. */
static int raw_write(struct pep_ckpt_writer *w, const char *name, const char *src, size_t len, uint64_t off,
                     int direct)
{
    while (len > 0) {
        size_t n = direct ? (len < CK_DIRECT_BUF ? len : CK_DIRECT_BUF) : len;
        const void *buf = src;
        if (direct) {
            memcpy(w->stage, src, n);
            buf = w->stage;
        }
        ssize_t got = pwrite(direct ? w->dfd : w->bfd, buf, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && direct && errno == EINVAL) { /* direct I/O refused after all: buffered from here on */
            close(w->dfd);
            w->dfd = -1;
            direct = 0;
            continue;
        }
        PEP_CHECK(got > 0, PEP_ERR_IO, "%s: cannot write dataset %s at byte %" PRIu64 ": %s (disk full?)", w->tmp_path,
                  name, off, got < 0 ? strerror(errno) : "no progress");
        if (direct) PEP_CHECK((size_t)got == n, PEP_ERR_IO, "%s: short direct write of dataset %s at byte %" PRIu64
                              " (disk full?)", w->tmp_path, name, off);
        src += got, len -= (size_t)got, off += (uint64_t)got;
    }
    if (!direct) w->wrote_tail = 1;
    return PEP_OK;
}

/* Direct-I/O write of tensor bytes [0, total) at file address `addr`: owner < 0 splits the
 * aligned part into one run of whole CK_DIRECT_ALIGN blocks per rank, the last rank also
 * writes the unaligned tail (buffered); owner >= 0: that rank writes everything. */
static int write_tensor_direct(struct pep_ckpt_writer *w, const struct pep_param *p, const float *data,
                               uint64_t addr, int owner)
{
    size_t total = p->numel * sizeof(float), aligned = total / CK_DIRECT_ALIGN * CK_DIRECT_ALIGN;
    size_t nblk = aligned / CK_DIRECT_ALIGN, b0 = 0, b1 = 0;
    int last;
    if (owner < 0) {
        b0 = nblk * (size_t)w->rank / (size_t)w->size;
        b1 = nblk * (size_t)(w->rank + 1) / (size_t)w->size;
        last = w->rank == w->size - 1;
    } else {
        if (owner != w->rank) return PEP_OK;
        b1 = nblk;
        last = 1;
    }
    const char *src = (const char *)data;
    if (b1 > b0)
        PEP_CALL(raw_write(w, p->name, src + b0 * CK_DIRECT_ALIGN, (b1 - b0) * CK_DIRECT_ALIGN,
                           addr + b0 * CK_DIRECT_ALIGN, 1));
    if (last && total > aligned) PEP_CALL(raw_write(w, p->name, src + aligned, total - aligned, addr + aligned, 0));
    return PEP_OK;
}

int pep_ckpt_create(const char *final_path, MPI_Comm comm, struct pep_ckpt_writer **out)
{
    int rc = PEP_OK;
    hid_t fapl = H5I_INVALID_HID;
    struct pep_ckpt_writer *w = NULL;
    *out = NULL;
    /* the path is the same on every rank and so is this check; an allocation failure on one
     * rank is agreed on before the collective H5Fcreate */
    PEP_CHECK(final_path && *final_path && strlen(final_path) < PEP_CKPT_PATH_MAX, PEP_ERR_USAGE,
              "checkpoint path is empty or too long");
    w = pep_alloc_(sizeof *w, "checkpoint writer", __FILE__, __LINE__, __func__);
    rc = pep_mpi_agree(w ? PEP_OK : PEP_ERR_NOMEM, comm);
    if (rc != PEP_OK) {
        pep_free(w);
        return rc;
    }
    w->comm = comm;
    w->file = w->dxpl_coll = w->dxpl_ind = H5I_INVALID_HID;
    w->dfd = w->bfd = -1;
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_rank(comm, &w->rank));
    PEP_CALL_MPI_GOTO(rc, MPI_Comm_size(comm, &w->size));
    snprintf(w->final_path, sizeof w->final_path, "%s", final_path);
    snprintf(w->tmp_path, sizeof w->tmp_path, "%s.tmp", final_path);

    PEP_H5_ID_GOTO(rc, fapl, H5Pcreate(H5P_FILE_ACCESS), "cannot create a file access list");
    PEP_CALL_H5_GOTO(rc, H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), "cannot select the MPI-IO driver");
    /* >= 1.8 formats: checksummed superblock and object headers; <= 1.10 so h5py/h5dump of
     * HDF5 1.10 read it */
    PEP_CALL_H5_GOTO(rc, H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V110), "cannot set format bounds");
    /* metadata written collectively by aggregators instead of by every rank */
    PEP_CALL_H5_GOTO(rc, H5Pset_coll_metadata_write(fapl, 1), "cannot set collective metadata writes");
    /* large tensors start on 1 MiB boundaries (file-system stripes) */
    PEP_CALL_H5_GOTO(rc, H5Pset_alignment(fapl, (hsize_t)1 << 20, (hsize_t)1 << 20), "cannot set alignment");
    H5E_BEGIN_TRY { w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, w->file >= 0, PEP_ERR_IO,
                   "cannot create checkpoint %s (does the folder exist and is it writable?)", w->tmp_path);
    PEP_H5_ID_GOTO(rc, w->dxpl_coll, H5Pcreate(H5P_DATASET_XFER), "cannot create a transfer list");
    PEP_CALL_H5_GOTO(rc, H5Pset_dxpl_mpio(w->dxpl_coll, H5FD_MPIO_COLLECTIVE), "cannot set collective transfer");
    PEP_H5_ID_GOTO(rc, w->dxpl_ind, H5Pcreate(H5P_DATASET_XFER), "cannot create a transfer list");
    PEP_CALL_H5_GOTO(rc, H5Pset_dxpl_mpio(w->dxpl_ind, H5FD_MPIO_INDEPENDENT), "cannot set independent transfer");
    PEP_CALL_GOTO(rc, direct_open(w));
cleanup:
    PEP_H5_CLOSE(H5Pclose, fapl);
    rc = agree(w, rc);
    if (rc != PEP_OK) {
        pep_ckpt_abort(&w);
        return rc;
    }
    *out = w;
    return PEP_OK;
}

static const char *head_name(enum pep_head_kind h) { return h == PEP_HEAD_KIND_MLM ? "mlm" : "tagger"; }
static const char *pe_name(enum pep_pe_method m)
{
    switch (m) {
    case PEP_PE_METHOD_ADAPTER: return "adapter";
    case PEP_PE_METHOD_PREFIX: return "prefix";
    case PEP_PE_METHOD_LORA: return "lora";
    default: return "none";
    }
}
static const char *placement_name(enum pep_adapter_placement p)
{
    return p == PEP_ADAPTER_PLACEMENT_HOULSBY ? "houlsby" : "pfeiffer";
}
static const char *act_name(enum pep_activation a)
{
    return a == PEP_ACTIVATION_GELU ? "gelu" : a == PEP_ACTIVATION_SWISH ? "swish" : "relu";
}

static int write_spec(hid_t root, const struct pep_model_spec *s)
{
    PEP_CALL(attr_i32(root, "layers", s->L));
    PEP_CALL(attr_i32(root, "hidden", s->C));
    PEP_CALL(attr_i32(root, "heads", s->NH));
    PEP_CALL(attr_i32(root, "ff", s->FF));
    PEP_CALL(attr_i32(root, "vocab", s->V));
    PEP_CALL(attr_i32(root, "max_positions", s->max_positions));
    PEP_CALL(attr_i32(root, "type_vocab", s->type_vocab));
    PEP_CALL(attr_i32(root, "ntags", s->ntags));
    PEP_CALL(attr_str(root, "head", head_name(s->head)));
    PEP_CALL(attr_str(root, "pe_method", pe_name(s->pe)));
    PEP_CALL(attr_str(root, "pe_placement", placement_name(s->placement)));
    PEP_CALL(attr_str(root, "pe_activation", act_name(s->adapter_act)));
    PEP_CALL(attr_i32(root, "pe_bottleneck", s->bottleneck));
    PEP_CALL(attr_i32(root, "pe_prefix_length", s->prefix_len));
    PEP_CALL(attr_i32(root, "pe_prefix_reparam", s->prefix_reparam));
    PEP_CALL(attr_i32(root, "pe_prefix_hidden", s->prefix_hidden));
    PEP_CALL(attr_i32(root, "pe_lora_rank", s->lora_rank));
    PEP_CALL(attr_f64(root, "pe_lora_alpha", s->lora_alpha));
    PEP_CALL(attr_f64(root, "layer_norm_eps", s->ln_eps));
    return PEP_OK;
}

/* Checks that a 64-bit value is the same on every rank. */
static int same_on_all_ranks(struct pep_ckpt_writer *w, uint64_t v, int *same)
{
    uint64_t lo = v, hi = v;
    PEP_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, w->comm));
    PEP_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, w->comm));
    *same = lo == hi;
    return PEP_OK;
}

int pep_ckpt_write_header(struct pep_ckpt_writer *w, const struct pep_ckpt_header *h)
{
    int rc = PEP_OK;
    hid_t root = H5I_INVALID_HID;
    int ok = h && h->stage && *h->stage && h->rng_words <= PEP_CKPT_RNG_MAX && (h->rng_words == 0 || h->rng_state);
    if (!ok)
        rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                           "%s: bad checkpoint header (stage missing or more than %d RNG words)", w->tmp_path,
                           PEP_CKPT_RNG_MAX);
    /* every collective below runs on all ranks or on none */
    PEP_CALL_GOTO(rc, agree(w, rc));
    uint64_t hh = bytes_hash(1, h->stage, strlen(h->stage));
    hh = bytes_hash(hh, &h->step, sizeof h->step);
    if (h->config) hh = bytes_hash(hh, h->config, strlen(h->config));
    if (h->rng_words) hh = bytes_hash(hh, h->rng_state, h->rng_words * sizeof(uint64_t));
    int same = 0;
    PEP_CALL_GOTO(rc, same_on_all_ranks(w, hh, &same));
    PEP_CHECK_GOTO(rc, same, PEP_ERR_INTERNAL,
                   "%s: the checkpoint header (stage, step, config, RNG state) differs between ranks", w->tmp_path);


    /* one clock for all ranks */
    char created[PEP_CKPT_NAME_MAX] = "";
    if (w->rank == 0) {
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    }
    PEP_CALL_MPI_GOTO(rc, MPI_Bcast(created, sizeof created, MPI_CHAR, 0, w->comm));

    PEP_H5_ID_GOTO(rc, root, H5Gopen2(w->file, "/", H5P_DEFAULT), "cannot open the root group");
    PEP_CALL_GOTO(rc, attr_i32(root, "format_version", PEP_CKPT_FORMAT_VERSION));
    PEP_CALL_GOTO(rc, attr_str(root, "stage", h->stage));
    PEP_CALL_GOTO(rc, attr_i64(root, "step", h->step));
    PEP_CALL_GOTO(rc, attr_str(root, "created", created));
    PEP_CALL_GOTO(rc, attr_str(root, "config", h->config ? h->config : ""));
    PEP_CALL_GOTO(rc, attr_str(root, "git_revision", PEP_GIT_REVISION));
    PEP_CALL_GOTO(rc, attr_i32(root, "world_size", w->size));
    if (h->rng_words)
        PEP_CALL_GOTO(rc, attr_write(root, "rng_state", H5T_STD_U64LE, H5T_NATIVE_UINT64, h->rng_state,
                                     (hsize_t)h->rng_words, 0));
    if (h->spec) PEP_CALL_GOTO(rc, write_spec(root, h->spec));
cleanup:
    PEP_H5_CLOSE(H5Gclose, root);
    return settle(w, rc);
}

/* Opens `path` as a group, creating it (and its parents) if missing. Collective. */
static int ensure_group(hid_t file, const char *path, hid_t *out)
{
    int rc = PEP_OK;
    hid_t lcpl = H5I_INVALID_HID;
    htri_t e;
    H5E_BEGIN_TRY { e = H5Lexists(file, path, H5P_DEFAULT); }
    H5E_END_TRY;
    if (e > 0) {
        PEP_H5_ID_GOTO(rc, *out, H5Gopen2(file, path, H5P_DEFAULT), "cannot open group %s", path);
    } else {
        PEP_H5_ID_GOTO(rc, lcpl, H5Pcreate(H5P_LINK_CREATE), "cannot create a link list");
        PEP_CALL_H5_GOTO(rc, H5Pset_create_intermediate_group(lcpl, 1), "cannot set intermediate groups");
        PEP_H5_ID_GOTO(rc, *out, H5Gcreate2(file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT), "cannot create group %s",
                       path);
    }
cleanup:
    PEP_H5_CLOSE(H5Pclose, lcpl);
    return rc;
}

/* This rank's share of tensor p's data into the created dataset: owner < 0 its slab of rows,
 * owner >= 0 everything if it is the owner. Independent (no other rank takes part). */
static int write_tensor_data(struct pep_ckpt_writer *w, hid_t dset, hid_t fspace, const struct pep_param *p,
                             const float *data, int owner)
{
    int rc = PEP_OK;
    hid_t mspace = H5I_INVALID_HID;
    size_t rowlen = p->ndim > 1 ? p->shape[1] : 1;
    if (w->dfd >= 0 && p->numel * sizeof(float) >= CK_DIRECT_MIN) {
        /* contiguous, allocated at creation: the same address on every rank */
        haddr_t addr = H5Dget_offset(dset);
        if (addr != HADDR_UNDEF && addr % CK_DIRECT_ALIGN == 0) return write_tensor_direct(w, p, data, (uint64_t)addr, owner);
    }
    size_t r0 = 0, r1 = 0;
    if (owner < 0) {
        r0 = p->shape[0] * (size_t)w->rank / (size_t)w->size;
        r1 = p->shape[0] * (size_t)(w->rank + 1) / (size_t)w->size;
    } else if (owner == w->rank) {
        r1 = p->shape[0];
    }
    /* independent transfer in blocks of <= 16 MiB: no rank waits for another, and Linux
     * copies many moderate writes into the page cache ~3x faster than one huge one
     * (measured here: 1 GiB in one pwrite 0.17 GB/s, in 16 MiB pwrites 0.57 GB/s) */
    size_t per = rowlen >= CK_BLOCK_ELEMS ? 1 : CK_BLOCK_ELEMS / rowlen;
    for (size_t b0 = r0; b0 < r1; b0 += per) {
        size_t nr = r1 - b0 < per ? r1 - b0 : per;
        hsize_t count = (hsize_t)(nr * rowlen);
        hsize_t start[2] = {b0, 0}, cnt[2] = {nr, p->ndim > 1 ? p->shape[1] : 1};
        PEP_CALL_H5_GOTO(rc, H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL), "cannot select");
        PEP_H5_ID_GOTO(rc, mspace, H5Screate_simple(1, &count, NULL), "cannot create a dataspace");
        PEP_CALL_H5_GOTO(rc, H5Dwrite(dset, H5T_NATIVE_FLOAT, mspace, fspace, w->dxpl_ind, data + b0 * rowlen),
                         "%s: cannot write dataset %s (disk full?)", w->tmp_path, p->name);
        PEP_H5_CLOSE(H5Sclose, mspace);
    }
cleanup:
    PEP_H5_CLOSE(H5Sclose, mspace);
    return rc;
}

/* Creates loc/name as an F32LE tensor of row p's shape with a checksum attribute, then writes
 * it. owner < 0: replicated data, every rank writes its own slab of rows; owner >= 0: only
 * that rank writes. Creation is collective (a failure returns, see settle()); data goes with
 * independent transfer (legal in parallel HDF5: the contiguous dataset's space is allocated
 * at creation), and a data failure is only recorded in w->data_rc, so this rank keeps taking
 * part in the collective creations until the commit agrees on it. */
static int write_tensor(struct pep_ckpt_writer *w, hid_t loc, const struct pep_param *p, const float *data,
                        uint64_t checksum, int owner)
{
    int rc = PEP_OK;
    hid_t fspace = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    hsize_t dims[2] = {p->shape[0], p->ndim > 1 ? p->shape[1] : 1};
    PEP_H5_ID_GOTO(rc, fspace, H5Screate_simple(p->ndim, dims, NULL), "cannot create a dataspace for %s", p->name);
    PEP_H5_ID_GOTO(rc, dcpl, H5Pcreate(H5P_DATASET_CREATE), "cannot create a dataset list");
    PEP_CALL_H5_GOTO(rc, H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "cannot set fill time");
    PEP_CALL_H5_GOTO(rc, H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), "cannot set allocation time");
    PEP_H5_ID_GOTO(rc, dset, H5Dcreate2(loc, p->name, H5T_IEEE_F32LE, fspace, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                   "%s: cannot create dataset %s (disk full?)", w->tmp_path, p->name);
    PEP_CALL_GOTO(rc, attr_u64(dset, "checksum", checksum));
    if (w->data_rc == PEP_OK) w->data_rc = write_tensor_data(w, dset, fspace, p, data, owner);
cleanup:
    PEP_H5_CLOSE(H5Dclose, dset);
    PEP_H5_CLOSE(H5Pclose, dcpl);
    PEP_H5_CLOSE(H5Sclose, fspace);
    return rc;
}

/* Writes the replicated rows of `groups` from `block` under prefix/<group>/ (prefix "" gives
 * /model, /pe, /head; "/optimizer/m" gives /optimizer/m/plm ...). */
static int write_replicated(struct pep_ckpt_writer *w, const struct pep_param_table *t, const float *block,
                            unsigned groups, const char *prefix, const char *what)
{
    int rc = PEP_OK;
    uint64_t *sums = NULL, *hi = NULL;
    hid_t g = H5I_INVALID_HID;
    if (!block || !t) rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__, "%s: no %s to write", w->tmp_path, what);
    if (rc == PEP_OK) sums = pep_alloc_((size_t)(t->count + 1) * sizeof *sums, "sums", __FILE__, __LINE__, __func__);
    if (rc == PEP_OK && sums) hi = pep_alloc_((size_t)(t->count + 1) * sizeof *hi, "hi", __FILE__, __LINE__, __func__);
    if (rc == PEP_OK && !hi) rc = PEP_ERR_NOMEM;
    /* a rank that cannot take part must not leave the others in the reductions below */
    PEP_CALL_GOTO(rc, agree(w, rc));
    for (int i = 0; i < t->count; i++)
        if (groups & PEP_GROUP_BIT(t->rows[i].group))
            sums[i] = pep_ckpt_checksum(block + t->rows[i].offset, t->rows[i].numel);
    memcpy(hi, sums, (size_t)t->count * sizeof *hi);
    /* replicas must agree: a difference means the ranks diverged */
    PEP_CALL_MPI_GOTO(rc, MPI_Allreduce(MPI_IN_PLACE, sums, t->count, MPI_UINT64_T, MPI_MIN, w->comm));
    PEP_CALL_MPI_GOTO(rc, MPI_Allreduce(MPI_IN_PLACE, hi, t->count, MPI_UINT64_T, MPI_MAX, w->comm));
    for (int i = 0; i < t->count; i++)
        PEP_CHECK_GOTO(rc, sums[i] == hi[i], PEP_ERR_INTERNAL,
                       "%s: %s %s differ between ranks (the replicas diverged; check the gradient allreduce)",
                       w->tmp_path, what, t->rows[i].name);
    for (int grp = 0; grp < PEP_GROUP_COUNT; grp++) {
        if (!(groups & PEP_GROUP_BIT(grp))) continue;
        char path[256];
        if (*prefix) snprintf(path, sizeof path, "%s/%s", prefix, pep_group_name((enum pep_group)grp));
        else snprintf(path, sizeof path, "%s", group_dirs[grp]);
        PEP_CALL_GOTO(rc, ensure_group(w->file, path, &g));
        for (int i = 0; i < t->count; i++)
            if ((int)t->rows[i].group == grp)
                PEP_CALL_GOTO(rc, write_tensor(w, g, &t->rows[i], block + t->rows[i].offset, sums[i], -1));
        PEP_H5_CLOSE(H5Gclose, g);
    }
cleanup:
    PEP_H5_CLOSE(H5Gclose, g);
    pep_free(sums);
    pep_free(hi);
    return rc;
}

int pep_ckpt_write_params(struct pep_ckpt_writer *w, const struct pep_param_table *table, const float *params,
                          unsigned groups)
{
    return settle(w, write_replicated(w, table, params, groups, "", "parameters"));
}

static void groups_string(unsigned groups, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int g = 0; g < PEP_GROUP_COUNT; g++)
        if (groups & PEP_GROUP_BIT(g)) {
            if (buf[0]) strncat(buf, "+", len - strlen(buf) - 1);
            strncat(buf, pep_group_name((enum pep_group)g), len - strlen(buf) - 1);
        }
}

int pep_ckpt_write_moments(struct pep_ckpt_writer *w, const struct pep_param_table *table, const float *m,
                           const float *v, unsigned groups, int64_t t)
{
    int rc = PEP_OK;
    hid_t g = H5I_INVALID_HID;
    char gs[64];
    groups_string(groups, gs, sizeof gs);
    PEP_CALL_GOTO(rc, ensure_group(w->file, "/optimizer", &g));
    PEP_CALL_GOTO(rc, attr_i64(g, "t", t));
    PEP_CALL_GOTO(rc, attr_str(g, "groups", gs));
    PEP_CALL_GOTO(rc, write_replicated(w, table, m, groups, "/optimizer/m", "first moments"));
    PEP_CALL_GOTO(rc, write_replicated(w, table, v, groups, "/optimizer/v", "second moments"));
cleanup:
    PEP_H5_CLOSE(H5Gclose, g);
    return settle(w, rc);
}

static int check_lang(const char *lang)
{
    size_t n = strnlen(lang, PEP_CKPT_LANG_MAX);
    return n > 0 && n < PEP_CKPT_LANG_MAX && !strchr(lang, '/') && strcmp(lang, ".") != 0;
}

/* Local checks of a task list, and its hash (languages, owners) to compare across ranks. */
static int check_tasks(const struct pep_ckpt_writer *w, const struct pep_ckpt_task *tasks, int ntasks, uint64_t *hash)
{
    PEP_CHECK(ntasks >= 0 && (ntasks == 0 || tasks), PEP_ERR_USAGE, "%s: bad task list", w->tmp_path);
    uint64_t lh = bytes_hash(7, &ntasks, sizeof ntasks);
    for (int i = 0; i < ntasks; i++) {
        PEP_CHECK(check_lang(tasks[i].lang), PEP_ERR_USAGE,
                  "%s: task %d has a bad language name '%.*s' (empty, too long or containing '/')", w->tmp_path, i,
                  PEP_CKPT_LANG_MAX, tasks[i].lang);
        PEP_CHECK(tasks[i].owner >= 0 && tasks[i].owner < w->size, PEP_ERR_USAGE,
                  "%s: task %s has owner rank %d, the communicator has %d ranks", w->tmp_path, tasks[i].lang,
                  tasks[i].owner, w->size);
        PEP_CHECK(tasks[i].owner != w->rank || tasks[i].state, PEP_ERR_USAGE,
                  "%s: task %s: the owner rank %d passed no state", w->tmp_path, tasks[i].lang, w->rank);
        for (int j = 0; j < i; j++)
            PEP_CHECK(strcmp(tasks[i].lang, tasks[j].lang) != 0, PEP_ERR_USAGE,
                      "%s: two tasks for language %s (one state per language)", w->tmp_path, tasks[i].lang);
        lh = bytes_hash(lh, tasks[i].lang, strlen(tasks[i].lang));
        lh = bytes_hash(lh, &tasks[i].owner, sizeof tasks[i].owner);
    }
    *hash = lh;
    return PEP_OK;
}

int pep_ckpt_write_tasks(struct pep_ckpt_writer *w, const struct pep_param_table *table, unsigned groups,
                         const struct pep_ckpt_task *tasks, int ntasks)
{
    int rc = PEP_OK;
    int64_t *ints = NULL;
    double *reals = NULL;
    uint64_t *sums = NULL;
    hid_t tg = H5I_INVALID_HID, g = H5I_INVALID_HID;
    size_t begin = 0, end = 0;
    int nrows = table->count;
    uint64_t lh = 0;
    rc = pep_param_table_range(table, groups, &begin, &end);
    if (rc == PEP_OK) rc = check_tasks(w, tasks, ntasks, &lh);
    /* a rank whose list is bad must not leave the others in the reductions below */
    PEP_CALL_GOTO(rc, agree(w, rc));
    int same = 0;
    PEP_CALL_GOTO(rc, same_on_all_ranks(w, lh, &same));
    PEP_CHECK_GOTO(rc, same, PEP_ERR_INTERNAL, "%s: the task list (languages, owners) differs between ranks",
                   w->tmp_path);

    /* the owners' scalars and checksums reach every rank: attributes are collective metadata */
    ints = pep_alloc_((2 * (size_t)ntasks + 1) * sizeof *ints, "ints", __FILE__, __LINE__, __func__);
    reals = pep_alloc_((2 * (size_t)ntasks + 1) * sizeof *reals, "reals", __FILE__, __LINE__, __func__);
    sums = pep_alloc_(((size_t)ntasks * (size_t)nrows + 1) * sizeof *sums, "sums", __FILE__, __LINE__, __func__);
    PEP_CALL_GOTO(rc, agree(w, ints && reals && sums ? PEP_OK : PEP_ERR_NOMEM));
    for (int i = 0; i < ntasks; i++) {
        if (tasks[i].owner != w->rank) continue;
        ints[2 * i] = tasks[i].episode;
        ints[2 * i + 1] = tasks[i].step;
        reals[2 * i] = tasks[i].support_loss;
        reals[2 * i + 1] = tasks[i].query_loss;
        for (int r = 0; r < nrows; r++)
            if (groups & PEP_GROUP_BIT(table->rows[r].group))
                sums[(size_t)i * nrows + r] =
                    pep_ckpt_checksum(tasks[i].state + (table->rows[r].offset - begin), table->rows[r].numel);
    }
    PEP_CALL_MPI_GOTO(rc, MPI_Allreduce(MPI_IN_PLACE, ints, 2 * ntasks, MPI_INT64_T, MPI_SUM, w->comm));
    PEP_CALL_MPI_GOTO(rc, MPI_Allreduce(MPI_IN_PLACE, reals, 2 * ntasks, MPI_DOUBLE, MPI_SUM, w->comm));
    PEP_CALL_MPI_GOTO(rc, MPI_Allreduce(MPI_IN_PLACE, sums, ntasks * nrows, MPI_UINT64_T, MPI_BXOR, w->comm));

    PEP_CALL_GOTO(rc, ensure_group(w->file, "/tasks", &tg));
    for (int i = 0; i < ntasks; i++) {
        PEP_H5_ID_GOTO(rc, g, H5Gcreate2(tg, tasks[i].lang, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                       "%s: cannot create group /tasks/%s", w->tmp_path, tasks[i].lang);
        PEP_CALL_GOTO(rc, attr_i64(g, "episode", ints[2 * i]));
        PEP_CALL_GOTO(rc, attr_i64(g, "step", ints[2 * i + 1]));
        PEP_CALL_GOTO(rc, attr_f64(g, "support_loss", reals[2 * i]));
        PEP_CALL_GOTO(rc, attr_f64(g, "query_loss", reals[2 * i + 1]));
        const float *state = tasks[i].owner == w->rank ? tasks[i].state : NULL;
        for (int r = 0; r < nrows; r++)
            if (groups & PEP_GROUP_BIT(table->rows[r].group))
                PEP_CALL_GOTO(rc, write_tensor(w, g, &table->rows[r],
                                               state ? state + (table->rows[r].offset - begin) : NULL,
                                               sums[(size_t)i * nrows + r], tasks[i].owner));
        PEP_H5_CLOSE(H5Gclose, g);
    }
cleanup:
    PEP_H5_CLOSE(H5Gclose, g);
    PEP_H5_CLOSE(H5Gclose, tg);
    pep_free(ints);
    pep_free(reals);
    pep_free(sums);
    return settle(w, rc);
}

int pep_ckpt_write_log(struct pep_ckpt_writer *w, const char *name, const double *values, size_t n)
{
    int rc = PEP_OK;
    hid_t lg = H5I_INVALID_HID, fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID, dcpl = H5I_INVALID_HID,
          dset = H5I_INVALID_HID;
    PEP_CHECK_GOTO(rc, name && *name && !strchr(name, '/') && (n == 0 || values), PEP_ERR_USAGE,
                   "%s: bad log series '%s' (empty name, '/' in it, or no values)", w->tmp_path, name ? name : "");
    PEP_CALL_GOTO(rc, ensure_group(w->file, "/log", &lg));
    hsize_t dims = n, maxdims = H5S_UNLIMITED, chunk = CK_LOG_CHUNK;
    PEP_H5_ID_GOTO(rc, fspace, H5Screate_simple(1, &dims, &maxdims), "cannot create a dataspace");
    PEP_H5_ID_GOTO(rc, dcpl, H5Pcreate(H5P_DATASET_CREATE), "cannot create a dataset list");
    PEP_CALL_H5_GOTO(rc, H5Pset_chunk(dcpl, 1, &chunk), "cannot set chunking");
    PEP_H5_ID_GOTO(rc, dset, H5Dcreate2(lg, name, H5T_IEEE_F64LE, fspace, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                   "%s: cannot create /log/%s", w->tmp_path, name);
    if (n > 0) {
        hsize_t cnt = w->rank == 0 ? n : 1;
        PEP_H5_ID_GOTO(rc, mspace, H5Screate_simple(1, &cnt, NULL), "cannot create a dataspace");
        if (w->rank != 0) { /* rank 0 writes the replicated series */
            PEP_CALL_H5_GOTO(rc, H5Sselect_none(fspace), "cannot select");
            PEP_CALL_H5_GOTO(rc, H5Sselect_none(mspace), "cannot select");
        }
        PEP_CALL_H5_GOTO(rc, H5Dwrite(dset, H5T_NATIVE_DOUBLE, mspace, fspace, w->dxpl_coll, values),
                         "%s: cannot write /log/%s", w->tmp_path, name);
    }
cleanup:
    PEP_H5_CLOSE(H5Dclose, dset);
    PEP_H5_CLOSE(H5Pclose, dcpl);
    PEP_H5_CLOSE(H5Sclose, mspace);
    PEP_H5_CLOSE(H5Sclose, fspace);
    PEP_H5_CLOSE(H5Gclose, lg);
    return settle(w, rc);
}

/* fsync a file or folder by path. */
static int fsync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open %s to sync it: %s", path, strerror(errno));
    int st = fsync(fd);
    int e = errno;
    close(fd);
    PEP_CHECK(st == 0, PEP_ERR_IO, "fsync of %s failed: %s (disk full or failing?)", path, strerror(e));
    return PEP_OK;
}

static int finish_rank0(struct pep_ckpt_writer *w)
{
    PEP_CALL(fsync_path(w->tmp_path, 0));
    PEP_CHECK(rename(w->tmp_path, w->final_path) == 0, PEP_ERR_IO, "cannot rename %s to %s: %s", w->tmp_path,
              w->final_path, strerror(errno));
    char dir[PEP_CKPT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", w->final_path);
    PEP_CALL(fsync_path(dirname(dir), 1));
    return PEP_OK;
}

static void writer_free(struct pep_ckpt_writer *w)
{
    direct_close(w);
    PEP_H5_CLOSE(H5Pclose, w->dxpl_coll);
    PEP_H5_CLOSE(H5Pclose, w->dxpl_ind);
    pep_free(w);
}

int pep_ckpt_commit(struct pep_ckpt_writer **wp)
{
    struct pep_ckpt_writer *w = *wp;
    int rc = PEP_OK;
    *wp = NULL;
    PEP_CHECK(w, PEP_ERR_USAGE, "pep_ckpt_commit: no open checkpoint");
    /* buffered tails written by other ranks may sit in another node's cache: each rank syncs
     * its own before rank 0's fsync + rename (O_DIRECT data is on the device already) */
    if (w->wrote_tail && fdatasync(w->bfd) != 0)
        rc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "%s: fdatasync failed: %s (disk full?)",
                           w->tmp_path, strerror(errno));
    direct_close(w);
    herr_t st;
    H5E_BEGIN_TRY
    {
        st = H5Fflush(w->file, H5F_SCOPE_GLOBAL);
        if (H5Fclose(w->file) < 0) st = -1;
    }
    H5E_END_TRY;
    w->file = H5I_INVALID_HID;
    if (st < 0 && rc == PEP_OK)
        rc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "%s: closing the checkpoint failed (disk full?)",
                           w->tmp_path);
    if (w->data_rc != PEP_OK) rc = w->data_rc; /* its message is still this rank's error */
    rc = agree(w, rc);
    /* rank 0 publishes the file; everyone learns the outcome (with rank 0's message) */
    if (rc == PEP_OK) rc = agree(w, w->rank == 0 ? finish_rank0(w) : PEP_OK);
    if (rc != PEP_OK && w->rank == 0) unlink(w->tmp_path);
    writer_free(w);
    return rc;
}

void pep_ckpt_abort(struct pep_ckpt_writer **wp)
{
    struct pep_ckpt_writer *w = *wp;
    if (!w) return;
    *wp = NULL;
    PEP_H5_CLOSE(H5Fclose, w->file);
    /* every rank has closed the file before rank 0 removes it; a failed barrier (MPI broken)
     * must not stop the removal */
    if (MPI_Barrier(w->comm) != MPI_SUCCESS) pep_warn("%s: MPI_Barrier failed while aborting the write", w->tmp_path);
    if (w->rank == 0) unlink(w->tmp_path);
    writer_free(w);
}

/* ------------------------------------------------------------------ reader */

struct pep_ckpt_reader {
    hid_t file;
    int dfd;       /* O_DIRECT descriptor for large tensors: -2 not tried yet, -1 unavailable */
    int bfd;       /* buffered descriptor for their unaligned tails */
    void *stage;   /* CK_DIRECT_BUF bytes, CK_DIRECT_ALIGN-aligned */
    char path[PEP_CKPT_PATH_MAX];
    struct pep_ckpt_info info;
    char (*tasks)[PEP_CKPT_LANG_MAX];
    int ntasks, tasks_listed;
    char (*logs)[PEP_CKPT_NAME_MAX];
    int nlogs, logs_listed;
};

static int spec_enum(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

static int read_spec(struct pep_ckpt_reader *r, hid_t root)
{
    struct pep_model_spec *s = &r->info.spec;
    const char *f = r->path;
    int32_t v[13];
    static const char *const keys[13] = {"layers", "hidden", "heads", "ff", "vocab", "max_positions", "type_vocab",
                                         "ntags", "pe_bottleneck", "pe_prefix_length", "pe_prefix_reparam",
                                         "pe_prefix_hidden", "pe_lora_rank"};
    for (int i = 0; i < 13; i++) PEP_CALL(attr_read_num(root, f, "/", keys[i], H5T_NATIVE_INT32, &v[i]));
    s->L = v[0], s->C = v[1], s->NH = v[2], s->FF = v[3], s->V = v[4], s->max_positions = v[5];
    s->type_vocab = v[6], s->ntags = v[7], s->bottleneck = v[8], s->prefix_len = v[9];
    s->prefix_reparam = v[10], s->prefix_hidden = v[11], s->lora_rank = v[12];
    double a, eps;
    PEP_CALL(attr_read_num(root, f, "/", "pe_lora_alpha", H5T_NATIVE_DOUBLE, &a));
    PEP_CALL(attr_read_num(root, f, "/", "layer_norm_eps", H5T_NATIVE_DOUBLE, &eps));
    s->lora_alpha = (float)a;
    s->ln_eps = (float)eps;
    char buf[64];
    static const char *const heads[] = {"tagger", "mlm"}, *const pes[] = {"none", "adapter", "prefix", "lora"},
                             *const pls[] = {"pfeiffer", "houlsby"}, *const acts[] = {"relu", "gelu", "swish"};
    int e;
    PEP_CALL(attr_read_str_buf(root, f, "/", "head", buf, sizeof buf));
    PEP_CHECK((e = spec_enum(buf, heads, 2)) >= 0, PEP_ERR_FORMAT, "%s: unknown head '%s'", f, buf);
    s->head = e == 1 ? PEP_HEAD_KIND_MLM : PEP_HEAD_KIND_TAGGER;
    PEP_CALL(attr_read_str_buf(root, f, "/", "pe_method", buf, sizeof buf));
    PEP_CHECK((e = spec_enum(buf, pes, 4)) >= 0, PEP_ERR_FORMAT, "%s: unknown pe_method '%s'", f, buf);
    s->pe = e == 1 ? PEP_PE_METHOD_ADAPTER : e == 2 ? PEP_PE_METHOD_PREFIX : e == 3 ? PEP_PE_METHOD_LORA : PEP_PE_METHOD_NONE;
    PEP_CALL(attr_read_str_buf(root, f, "/", "pe_placement", buf, sizeof buf));
    PEP_CHECK((e = spec_enum(buf, pls, 2)) >= 0, PEP_ERR_FORMAT, "%s: unknown pe_placement '%s'", f, buf);
    s->placement = e == 1 ? PEP_ADAPTER_PLACEMENT_HOULSBY : PEP_ADAPTER_PLACEMENT_PFEIFFER;
    PEP_CALL(attr_read_str_buf(root, f, "/", "pe_activation", buf, sizeof buf));
    PEP_CHECK((e = spec_enum(buf, acts, 3)) >= 0, PEP_ERR_FORMAT, "%s: unknown pe_activation '%s'", f, buf);
    s->adapter_act = e == 1 ? PEP_ACTIVATION_GELU : e == 2 ? PEP_ACTIVATION_SWISH : PEP_ACTIVATION_RELU;
    r->info.has_spec = 1;
    return PEP_OK;
}

static int read_info(struct pep_ckpt_reader *r)
{
    int rc = PEP_OK;
    hid_t root = H5I_INVALID_HID, attr = H5I_INVALID_HID, space = H5I_INVALID_HID;
    struct pep_ckpt_info *in = &r->info;
    const char *f = r->path;
    H5E_BEGIN_TRY { root = H5Gopen2(r->file, "/", H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, root >= 0, PEP_ERR_FORMAT, "%s: cannot open the root group (file damaged)", f);
    PEP_CHECK_GOTO(rc, attr_exists(root, "format_version"), PEP_ERR_FORMAT,
                   "%s: an HDF5 file but not a peprime checkpoint (no format_version attribute)", f);
    int32_t ver = 0;
    PEP_CALL_GOTO(rc, attr_read_num(root, f, "/", "format_version", H5T_NATIVE_INT32, &ver));
    PEP_CHECK_GOTO(rc, ver >= 1 && ver <= PEP_CKPT_FORMAT_VERSION, PEP_ERR_FORMAT,
                   "%s: checkpoint format version %d, this peprime reads versions 1 to %d (%s): use a newer peprime",
                   f, (int)ver, PEP_CKPT_FORMAT_VERSION, ver > PEP_CKPT_FORMAT_VERSION ? "too new" : "invalid");
    in->format_version = ver;
    PEP_CALL_GOTO(rc, attr_read_str_buf(root, f, "/", "stage", in->stage, sizeof in->stage));
    PEP_CALL_GOTO(rc, attr_read_num(root, f, "/", "step", H5T_NATIVE_INT64, &in->step));
    PEP_CALL_GOTO(rc, attr_read_str_buf(root, f, "/", "created", in->created, sizeof in->created));
    PEP_CALL_GOTO(rc, attr_read_str_buf(root, f, "/", "git_revision", in->git_revision, sizeof in->git_revision));
    int32_t ws = 0;
    PEP_CALL_GOTO(rc, attr_read_num(root, f, "/", "world_size", H5T_NATIVE_INT32, &ws));
    in->world_size = ws;
    PEP_CALL_GOTO(rc, attr_read_str(root, f, "/", "config", &in->config));
    if (attr_exists(root, "rng_state")) {
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
    if (attr_exists(root, "layers")) PEP_CALL_GOTO(rc, read_spec(r, root));
cleanup:
    PEP_H5_CLOSE(H5Sclose, space);
    PEP_H5_CLOSE(H5Aclose, attr);
    PEP_H5_CLOSE(H5Gclose, root);
    return rc;
}

int pep_ckpt_open(const char *path, struct pep_ckpt_reader **out)
{
    int rc = PEP_OK;
    struct pep_ckpt_reader *r = NULL;
    *out = NULL;
    struct stat st;
    PEP_CHECK(path && stat(path, &st) == 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path ? path : "(null)",
              strerror(errno));
    PEP_CHECK(S_ISREG(st.st_mode), PEP_ERR_IO, "checkpoint %s is not a regular file", path);
    htri_t is;
    H5E_BEGIN_TRY { is = H5Fis_hdf5(path); }
    H5E_END_TRY;
    PEP_CHECK(is > 0, PEP_ERR_FORMAT, "%s: not an HDF5 file (expected a peprime checkpoint .h5)", path);
    PEP_ALLOC(r, 1);
    r->dfd = -2;
    r->bfd = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    H5E_BEGIN_TRY { r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, r->file >= 0, PEP_ERR_FORMAT,
                   "%s: cannot open the HDF5 file: it is truncated or damaged (%lld bytes); use an older checkpoint",
                   path, (long long)st.st_size);
    PEP_CALL_GOTO(rc, read_info(r));
    *out = r;
    return PEP_OK;
cleanup:
    pep_ckpt_close(&r);
    return rc;
}

void pep_ckpt_close(struct pep_ckpt_reader **rp)
{
    struct pep_ckpt_reader *r = *rp;
    if (!r) return;
    *rp = NULL;
    if (r->file > 0) PEP_H5_CLOSE(H5Fclose, r->file);
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

int pep_ckpt_check_spec(const struct pep_ckpt_reader *r, const struct pep_model_spec *s)
{
    const struct pep_model_spec *f = &r->info.spec;
    PEP_CHECK(r->info.has_spec, PEP_ERR_FORMAT, "%s: the checkpoint stores no model shape attributes", r->path);
#define SPEC_INT(field, name, key)                                                                               \
    PEP_CHECK(f->field == s->field, PEP_ERR_FORMAT,                                                              \
              "%s: the checkpoint has %s = %d, the config expects %d (%s): use a matching config or checkpoint", \
              r->path, name, f->field, s->field, key)
    SPEC_INT(L, "layers", "model.layers");
    SPEC_INT(C, "hidden", "model.hidden");
    SPEC_INT(NH, "heads", "model.heads");
    SPEC_INT(FF, "ff", "model.ff");
    SPEC_INT(V, "vocab", "model.vocab / the tokenizer");
    SPEC_INT(max_positions, "max_positions", "model.max_positions");
    SPEC_INT(type_vocab, "type_vocab", "model.type_vocab");
    PEP_CHECK(f->head == s->head, PEP_ERR_FORMAT, "%s: the checkpoint has a %s head, the stage expects a %s head",
              r->path, head_name(f->head), head_name(s->head));
    if (s->head == PEP_HEAD_KIND_TAGGER) SPEC_INT(ntags, "ntags", "data.tags");
    PEP_CHECK(f->pe == s->pe, PEP_ERR_FORMAT, "%s: the checkpoint has pe_method = %s, the config expects %s (pe.method)",
              r->path, pe_name(f->pe), pe_name(s->pe));
    if (s->pe == PEP_PE_METHOD_ADAPTER) {
        PEP_CHECK(f->placement == s->placement, PEP_ERR_FORMAT,
                  "%s: the checkpoint has pe_placement = %s, the config expects %s (pe.placement)", r->path,
                  placement_name(f->placement), placement_name(s->placement));
        SPEC_INT(bottleneck, "pe_bottleneck", "pe.reduction");
    } else if (s->pe == PEP_PE_METHOD_PREFIX) {
        SPEC_INT(prefix_len, "pe_prefix_length", "pe.prefix_length");
        SPEC_INT(prefix_reparam, "pe_prefix_reparam", "pe.prefix_reparam");
        if (s->prefix_reparam) SPEC_INT(prefix_hidden, "pe_prefix_hidden", "pe.prefix_hidden");
    } else if (s->pe == PEP_PE_METHOD_LORA) {
        SPEC_INT(lora_rank, "pe_lora_rank", "pe.lora_rank");
    }
#undef SPEC_INT
    return PEP_OK;
}

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
static int check_stored(struct pep_ckpt_reader *r, hid_t d, const char *path, size_t numel)
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

static int check_sum(struct pep_ckpt_reader *r, hid_t d, const char *path, uint64_t computed)
{
    /* every float tensor of every format_version (1 and up) carries one: data without it cannot
     * be verified, so it is not accepted */
    PEP_CHECK(attr_exists(d, "checksum"), PEP_ERR_FORMAT,
              "%s: %s has no checksum attribute, which every peprime checkpoint (format_version 1 and later) "
              "writes: the file was made or edited by another tool; write it with peprime (import-hf for "
              "foreign weights) or use an older checkpoint",
              r->path, path);
    uint64_t stored = 0;
    PEP_CALL(attr_read_num(d, r->path, path, "checksum", H5T_NATIVE_UINT64, &stored));
    PEP_CHECK(stored == computed, PEP_ERR_FORMAT,
              "%s: %s is corrupted (checksum %016" PRIx64 " stored, %016" PRIx64
              " computed from the data): use an older checkpoint",
              r->path, path, stored, computed);
    return PEP_OK;
}

/* File address of `d` if it can be read as raw little-endian float32 bytes with direct I/O:
 * at least CK_DIRECT_MIN bytes, contiguous, allocated, aligned, no external storage, F32LE on
 * a little-endian host; else HADDR_UNDEF (HDF5 reads it). */
static haddr_t direct_addr(struct pep_ckpt_reader *r, hid_t d, size_t bytes)
{
    const uint32_t one = 1;
    unsigned char little;
    memcpy(&little, &one, 1);
    if (!little || bytes < CK_DIRECT_MIN) return HADDR_UNDEF;
    if (r->dfd == -2) { /* first large tensor: open the descriptors once */
        const char *env = getenv("PEP_CKPT_DIRECT");
        r->dfd = -1;
        if ((!env || strcmp(env, "0")) && posix_memalign(&r->stage, CK_DIRECT_ALIGN, CK_DIRECT_BUF) == 0) {
            r->bfd = open(r->path, O_RDONLY | O_CLOEXEC);
            if (r->bfd >= 0) r->dfd = open(r->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
        }
    }
    if (r->dfd < 0) return HADDR_UNDEF;
    haddr_t addr = HADDR_UNDEF;
    hid_t type = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    H5E_BEGIN_TRY
    {
        type = H5Dget_type(d);
        dcpl = H5Dget_create_plist(d);
        if (type >= 0 && dcpl >= 0 && H5Tequal(type, H5T_IEEE_F32LE) > 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS &&
            H5Pget_external_count(dcpl) == 0 && H5Pget_nfilters(dcpl) == 0 && H5Dget_storage_size(d) == bytes)
            addr = H5Dget_offset(d);
        if (type >= 0) H5Tclose(type);
        if (dcpl >= 0) H5Pclose(dcpl);
    }
    H5E_END_TRY;
    return addr != HADDR_UNDEF && addr % CK_DIRECT_ALIGN == 0 ? addr : HADDR_UNDEF;
}

/* Reads `bytes` at file offset `addr` into `dst`: aligned part with O_DIRECT through the
 * staging buffer, the tail buffered. Returns 0 on success, -1 on EINVAL (direct I/O refused:
 * the caller falls back to HDF5), 1 on a short read or another error (errno set). */
static int direct_read(struct pep_ckpt_reader *r, char *dst, size_t bytes, uint64_t addr)
{
    size_t aligned = bytes / CK_DIRECT_ALIGN * CK_DIRECT_ALIGN, done = 0;
    while (done < aligned) {
        size_t n = aligned - done < CK_DIRECT_BUF ? aligned - done : CK_DIRECT_BUF;
        ssize_t got = pread(r->dfd, r->stage, n, (off_t)(addr + done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EINVAL && done == 0) {
            close(r->dfd);
            r->dfd = -1;
            return -1;
        }
        if (got != (ssize_t)n) return 1;
        memcpy(dst + done, r->stage, n);
        done += n;
    }
    while (done < bytes) {
        ssize_t got = pread(r->bfd, dst + done, bytes - done, (off_t)(addr + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 1;
        done += (size_t)got;
    }
    return 0;
}

static int read_tensor(struct pep_ckpt_reader *r, const char *path, const struct pep_param *p, float *dst)
{
    int rc = PEP_OK;
    hid_t d = H5I_INVALID_HID;
    PEP_CALL_GOTO(rc, open_tensor(r, path, p, &d));
    herr_t st = -1;
    /* large tensors bypass the page cache, as in the writer (see direct_open) */
    haddr_t addr = direct_addr(r, d, p->numel * sizeof(float));
    int dr = addr == HADDR_UNDEF ? -1 : direct_read(r, (char *)dst, p->numel * sizeof(float), (uint64_t)addr);
    if (dr == 0) st = 0;
    else if (dr < 0) {
        H5E_BEGIN_TRY { st = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst); }
        H5E_END_TRY;
    }
    PEP_CHECK_GOTO(rc, st >= 0, PEP_ERR_FORMAT, "%s: cannot read %s: the file is truncated or damaged", r->path, path);
    PEP_CALL_GOTO(rc, check_sum(r, d, path, pep_ckpt_checksum(dst, p->numel)));
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
        else snprintf(path, sizeof path, "%s/%s", group_dirs[p->group], p->name);
        PEP_CALL(read_tensor(r, path, p, block + (p->offset - base)));
    }
    return PEP_OK;
}

int pep_ckpt_read_params(struct pep_ckpt_reader *r, const struct pep_param_table *table, float *params,
                         unsigned groups)
{
    return read_rows(r, table, params, 0, groups, "");
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
    PEP_CALL_GOTO(rc, attr_read_num(g, r->path, "/optimizer", "t", H5T_NATIVE_INT64, t));
    PEP_CALL_GOTO(rc, read_rows(r, table, m, 0, groups, "/optimizer/m"));
    PEP_CALL_GOTO(rc, read_rows(r, table, v, 0, groups, "/optimizer/v"));
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
    PEP_CALL_GOTO(rc, attr_read_num(g, r->path, path, "episode", H5T_NATIVE_INT64, &info->episode));
    PEP_CALL_GOTO(rc, attr_read_num(g, r->path, path, "step", H5T_NATIVE_INT64, &info->step));
    PEP_CALL_GOTO(rc, attr_read_num(g, r->path, path, "support_loss", H5T_NATIVE_DOUBLE, &info->support_loss));
    PEP_CALL_GOTO(rc, attr_read_num(g, r->path, path, "query_loss", H5T_NATIVE_DOUBLE, &info->query_loss));
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
    PEP_CHECK(check_lang(lang), PEP_ERR_USAGE, "bad language name '%s'", lang);
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
    PEP_CALL_GOTO(rc, check_stored(r, d, path, (size_t)cnt));
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
    PEP_CALL_GOTO(rc, check_stored(c->r, d, path, numel));
    /* rows of a zero-width tensor hold nothing to read */
    size_t per = rowlen == 0 ? rows : rowlen >= CK_BLOCK_ELEMS ? 1 : CK_BLOCK_ELEMS / rowlen;
    if (!c->buf) PEP_ALLOC_GOTO(rc, c->buf, CK_BLOCK_ELEMS > rowlen ? CK_BLOCK_ELEMS : rowlen);
    struct ck_hash h;
    ck_init(&h);
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
        if (is_f32) ck_update(&h, c->buf, cnt);
    }
    if (c->verify && is_f32) PEP_CALL_GOTO(rc, check_sum(c->r, d, path, ck_final(&h)));
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

/* ------------------------------------------------------------------ checkpoint folders */

int pep_ckpt_name(const char *dir, const char *stage, int64_t step, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s-step%08" PRId64 ".h5", dir, stage, step);
    PEP_CHECK(n > 0 && (size_t)n < len, PEP_ERR_USAGE, "checkpoint path too long for folder %s", dir);
    return PEP_OK;
}

/* Parses "<stage>-step<digits>.h5" (tmp = 0) or "...h5.tmp" (tmp = 1). */
static int parse_name(const char *name, const char *stage, int tmp, int64_t *step)
{
    size_t sl = strlen(stage);
    if (strncmp(name, stage, sl) || strncmp(name + sl, "-step", 5)) return 0;
    const char *p = name + sl + 5;
    if (*p < '0' || *p > '9') return 0;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (strcmp(end, tmp ? ".h5.tmp" : ".h5")) return 0;
    *step = v;
    return 1;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Steps of "<stage>-step*.h5" (tmp = 0) or ".h5.tmp" files in `dir`, newest first. */
static int scan_dir(const char *dir, const char *stage, int tmp, int64_t **steps, int *n)
{
    int cap = 0;
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d && errno == ENOENT) return PEP_OK;
    PEP_CHECK(d, PEP_ERR_IO, "cannot list checkpoint folder %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s;
        if (!parse_name(e->d_name, stage, tmp, &s)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *p = realloc(*steps, (size_t)cap * sizeof *p);
            if (!p) {
                closedir(d);
                free(*steps);
                *steps = NULL;
                PEP_FAIL(PEP_ERR_NOMEM, "out of memory listing %s", dir);
            }
            *steps = p;
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    if (*n) qsort(*steps, (size_t)*n, sizeof **steps, cmp_desc);
    return PEP_OK;
}

int pep_ckpt_rotate(const char *dir, const char *stage, int keep)
{
    int64_t *steps = NULL;
    int n = 0;
    char path[PEP_CKPT_PATH_MAX + 8];
    PEP_CHECK(keep >= 1, PEP_ERR_USAGE, "checkpoint.keep must be at least 1 (got %d)", keep);
    PEP_CALL(scan_dir(dir, stage, 0, &steps, &n));
    for (int i = keep; i < n; i++) {
        if (pep_ckpt_name(dir, stage, steps[i], path, sizeof path) != PEP_OK) continue;
        if (unlink(path) != 0) pep_warn("cannot remove old checkpoint %s: %s", path, strerror(errno));
    }
    free(steps);
    PEP_CALL(scan_dir(dir, stage, 1, &steps, &n));
    for (int i = 0; i < n; i++) {
        if (pep_ckpt_name(dir, stage, steps[i], path, sizeof path) != PEP_OK) continue;
        strcat(path, ".tmp");
        if (unlink(path) != 0) pep_warn("cannot remove stale %s: %s", path, strerror(errno));
    }
    free(steps);
    return PEP_OK;
}

int pep_ckpt_find_latest(const char *dir, const char *stage, int deep, char *path, size_t len, int *found)
{
    int64_t *steps = NULL;
    int n = 0;
    *found = 0;
    PEP_CALL(scan_dir(dir, stage, 0, &steps, &n));
    for (int i = 0; i < n && !*found; i++) {
        struct pep_ckpt_reader *r = NULL;
        if (pep_ckpt_name(dir, stage, steps[i], path, len) != PEP_OK) continue;
        int rc = pep_ckpt_open(path, &r);
        if (rc == PEP_OK && deep) rc = pep_ckpt_verify(r);
        if (rc == PEP_OK && strcmp(r->info.stage, stage)) {
            pep_warn("%s: stage attribute is '%s', expected '%s'; skipped", path, r->info.stage, stage);
            rc = PEP_ERR_FORMAT;
        } else if (rc != PEP_OK) {
            pep_warn("skipping damaged checkpoint %s: %s", path, pep_error_message());
            pep_error_clear();
        }
        pep_ckpt_close(&r);
        if (rc == PEP_OK) *found = 1;
    }
    free(steps);
    if (!*found && len) path[0] = '\0';
    return PEP_OK;
}
