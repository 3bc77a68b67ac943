/* The parallel checkpoint writer (checkpoint.h): MPI-IO driver over a communicator, every
 * write function collective and agreed on across ranks, replicated tensors written in pieces
 * dealt round-robin to the ranks, per-task state by its owner, and the commit (tmp file,
 * fsync, rename, fsync of the folder). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint_digest.h"
#include "checkpoint_private.h"
#include "core/error.h"
#include "core/rng.h"
#include "h5call.h"
#include "mpi_call.h"

#ifndef PEP_GIT_REVISION
#define PEP_GIT_REVISION "unknown"
#endif

/* Hash of bytes, to check that metadata every rank passes is the same on all of them. */
static uint64_t bytes_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
    return pep_splitmix64(h ^ n);
}

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

/* The MPI_Info of `h` (MPI_INFO_NULL when it sets nothing). */
static int hints_info(const struct pep_ckpt_hints *h, MPI_Info *info)
{
    *info = MPI_INFO_NULL;
    if (!h || (!h->striping_unit && !h->striping_factor && !h->cb_nodes &&
               (!h->cb_write || !strcmp(h->cb_write, "automatic"))))
        return PEP_OK;
    PEP_CALL_MPI(MPI_Info_create(info));
    char v[32];
    const struct {
        const char *key;
        int value;
    } ints[] = {{"striping_unit", h->striping_unit}, {"striping_factor", h->striping_factor}, {"cb_nodes", h->cb_nodes}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (!ints[i].value) continue;
        snprintf(v, sizeof v, "%d", ints[i].value);
        PEP_CALL_MPI(MPI_Info_set(*info, ints[i].key, v));
    }
    if (h->cb_write && strcmp(h->cb_write, "automatic")) PEP_CALL_MPI(MPI_Info_set(*info, "romio_cb_write", h->cb_write));
    return PEP_OK;
}

int pep_ckpt_create(const char *final_path, MPI_Comm comm, const struct pep_ckpt_hints *hints,
                    struct pep_ckpt_writer **out)
{
    int rc = PEP_OK;
    hid_t fapl = H5I_INVALID_HID, fcpl = H5I_INVALID_HID;
    MPI_Info info = MPI_INFO_NULL;
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
    PEP_CALL_GOTO(rc, hints_info(hints, &info));
    PEP_CALL_H5_GOTO(rc, H5Pset_fapl_mpio(fapl, comm, info), "cannot select the MPI-IO driver");
    /* >= 1.8 formats: checksummed superblock and object headers; <= 1.10 so h5py/h5dump of
     * HDF5 1.10 read it */
    PEP_CALL_H5_GOTO(rc, H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V110), "cannot set format bounds");
    /* metadata written collectively by aggregators instead of by every rank */
    PEP_CALL_H5_GOTO(rc, H5Pset_coll_metadata_write(fapl, 1), "cannot set collective metadata writes");
    /* large tensors start on 1 MiB boundaries (file-system stripes) */
    PEP_CALL_H5_GOTO(rc, H5Pset_alignment(fapl, (hsize_t)1 << 20, (hsize_t)1 << 20), "cannot set alignment");
    /* the user block that pep_ckpt_digest_seal fills at commit (checkpoint_digest.h) */
    PEP_H5_ID_GOTO(rc, fcpl, H5Pcreate(H5P_FILE_CREATE), "cannot create a file creation list");
    PEP_CALL_H5_GOTO(rc, H5Pset_userblock(fcpl, PEP_CKPT_USERBLOCK), "cannot reserve the digest's user block");
    H5E_BEGIN_TRY { w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, fcpl, fapl); }
    H5E_END_TRY;
    PEP_CHECK_GOTO(rc, w->file >= 0, PEP_ERR_IO,
                   "cannot create checkpoint %s (does the folder exist and is it writable?)", w->tmp_path);
    PEP_H5_ID_GOTO(rc, w->dxpl_coll, H5Pcreate(H5P_DATASET_XFER), "cannot create a transfer list");
    PEP_CALL_H5_GOTO(rc, H5Pset_dxpl_mpio(w->dxpl_coll, H5FD_MPIO_COLLECTIVE), "cannot set collective transfer");
    PEP_H5_ID_GOTO(rc, w->dxpl_ind, H5Pcreate(H5P_DATASET_XFER), "cannot create a transfer list");
    PEP_CALL_H5_GOTO(rc, H5Pset_dxpl_mpio(w->dxpl_ind, H5FD_MPIO_INDEPENDENT), "cannot set independent transfer");
    PEP_CALL_GOTO(rc, ck_direct_open(w));
cleanup:
    if (info != MPI_INFO_NULL) MPI_Info_free(&info);
    PEP_H5_CLOSE(H5Pclose, fcpl);
    PEP_H5_CLOSE(H5Pclose, fapl);
    rc = agree(w, rc);
    if (rc != PEP_OK) {
        pep_ckpt_abort(&w);
        return rc;
    }
    *out = w;
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
    PEP_CALL_GOTO(rc, ck_attr_i32(root, "format_version", PEP_CKPT_FORMAT_VERSION));
    PEP_CALL_GOTO(rc, ck_attr_str(root, "stage", h->stage));
    PEP_CALL_GOTO(rc, ck_attr_i64(root, "step", h->step));
    PEP_CALL_GOTO(rc, ck_attr_str(root, "created", created));
    PEP_CALL_GOTO(rc, ck_attr_str(root, "config", h->config ? h->config : ""));
    PEP_CALL_GOTO(rc, ck_attr_str(root, "git_revision", PEP_GIT_REVISION));
    PEP_CALL_GOTO(rc, ck_attr_i32(root, "world_size", w->size));
    if (h->rng_words)
        PEP_CALL_GOTO(rc, ck_attr_write(root, "rng_state", H5T_STD_U64LE, H5T_NATIVE_UINT64, h->rng_state,
                                        (hsize_t)h->rng_words, 0));
    if (h->spec) PEP_CALL_GOTO(rc, ck_write_spec(root, h->spec));
    if (h->base_path) {
        PEP_CALL_GOTO(rc, ck_attr_str(root, "base_path", h->base_path));
        PEP_CALL_GOTO(rc, ck_attr_str(root, "base_sha256", h->base_sha256 ? h->base_sha256 : ""));
    }
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

/* This rank's share of tensor p's data into the created dataset: owner < 0 (replicated) the
 * pieces of about CK_PIECE bytes of whole rows dealt to it round-robin (w->next_piece), owner
 * >= 0 everything if it is the owner. Independent (no other rank takes part). */
static int write_tensor_data(struct pep_ckpt_writer *w, hid_t dset, hid_t fspace, const struct pep_param *p,
                             const float *data, int owner)
{
    int rc = PEP_OK;
    hid_t mspace = H5I_INVALID_HID;
    size_t rowlen = p->ndim > 1 ? p->shape[1] : 1, rows = p->shape[0];
    if (w->dfd >= 0 && p->numel * sizeof(float) >= CK_DIRECT_MIN) {
        /* contiguous, allocated at creation: the same address on every rank */
        haddr_t addr = H5Dget_offset(dset);
        if (addr != HADDR_UNDEF && addr % CK_DIRECT_ALIGN == 0) return ck_write_tensor_direct(w, p, data, (uint64_t)addr, owner);
    }
    /* rows per write: a piece of about CK_PIECE bytes when replicated; <= 16 MiB blocks for an
     * owner (Linux copies many moderate writes into the page cache ~3x faster than one huge one,
     * measured here: 1 GiB in one pwrite 0.17 GB/s, in 16 MiB pwrites 0.57 GB/s) */
    size_t elems = owner < 0 ? CK_PIECE / sizeof(float) : CK_BLOCK_ELEMS;
    size_t per = rowlen >= elems ? 1 : elems / rowlen, npieces = rows ? (rows + per - 1) / per : 1;
    size_t first = (size_t)(w->next_piece % (uint64_t)w->size);
    for (size_t c = 0, b0 = 0; b0 < rows; c++, b0 += per) {
        if (owner < 0 ? (first + c) % (size_t)w->size != (size_t)w->rank : owner != w->rank) continue;
        size_t nr = rows - b0 < per ? rows - b0 : per;
        hsize_t count = (hsize_t)(nr * rowlen);
        hsize_t start[2] = {b0, 0}, cnt[2] = {nr, p->ndim > 1 ? p->shape[1] : 1};
        PEP_CALL_H5_GOTO(rc, H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL), "cannot select");
        PEP_H5_ID_GOTO(rc, mspace, H5Screate_simple(1, &count, NULL), "cannot create a dataspace");
        PEP_CALL_H5_GOTO(rc, H5Dwrite(dset, H5T_NATIVE_FLOAT, mspace, fspace, w->dxpl_ind, data + b0 * rowlen),
                         "%s: cannot write dataset %s (disk full?)", w->tmp_path, p->name);
        PEP_H5_CLOSE(H5Sclose, mspace);
        if (owner < 0) w->pieces++, w->piece_bytes += (uint64_t)count * sizeof(float);
    }
    if (owner < 0) w->next_piece += npieces;
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
    PEP_CALL_GOTO(rc, ck_attr_u64(dset, "checksum", checksum));
    if (w->data_rc == PEP_OK) w->data_rc = write_tensor_data(w, dset, fspace, p, data, owner);
cleanup:
    PEP_H5_CLOSE(H5Dclose, dset);
    PEP_H5_CLOSE(H5Pclose, dcpl);
    PEP_H5_CLOSE(H5Sclose, fspace);
    return rc;
}

/* Writes the replicated rows of `groups` from `block` (row r at rows[r].offset - base) under
 * prefix/<group>/ (prefix "" gives /model, /pe, /head; "/optimizer/m" gives /optimizer/m/plm ...). */
static int write_replicated(struct pep_ckpt_writer *w, const struct pep_param_table *t, const float *block,
                            size_t base, unsigned groups, const char *prefix, const char *what)
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
        /* rows outside `groups` take part in the comparison too: 0 on every rank */
        sums[i] = groups & PEP_GROUP_BIT(t->rows[i].group)
                      ? pep_ckpt_checksum(block + (t->rows[i].offset - base), t->rows[i].numel)
                      : 0;
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
        else snprintf(path, sizeof path, "%s", ck_group_dir((enum pep_group)grp));
        PEP_CALL_GOTO(rc, ensure_group(w->file, path, &g));
        for (int i = 0; i < t->count; i++)
            if ((int)t->rows[i].group == grp)
                PEP_CALL_GOTO(rc, write_tensor(w, g, &t->rows[i], block + (t->rows[i].offset - base), sums[i], -1));
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
    return settle(w, write_replicated(w, table, params, 0, groups, "", "parameters"));
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
    if (m) {
        PEP_CALL_GOTO(rc, ck_attr_i64(g, "t", t));
        PEP_CALL_GOTO(rc, ck_attr_str(g, "groups", gs));
        PEP_CALL_GOTO(rc, write_replicated(w, table, m, 0, groups, "/optimizer/m", "first moments"));
    }
    if (v) PEP_CALL_GOTO(rc, write_replicated(w, table, v, 0, groups, "/optimizer/v", "second moments"));
cleanup:
    PEP_H5_CLOSE(H5Gclose, g);
    return settle(w, rc);
}

int pep_ckpt_write_best(struct pep_ckpt_writer *w, const struct pep_param_table *table, const float *state,
                        unsigned groups, double dev_f1, int64_t step)
{
    int rc = PEP_OK;
    hid_t g = H5I_INVALID_HID;
    size_t begin = 0, end = 0;
    char gs[64];
    groups_string(groups, gs, sizeof gs);
    rc = pep_param_table_range(table, groups, &begin, &end);
    /* a rank whose group set is bad must not leave the others in the reductions below */
    PEP_CALL_GOTO(rc, agree(w, rc));
    /* the attributes are collective metadata: every rank must pass the same score and step */
    uint64_t hh = bytes_hash(3, &dev_f1, sizeof dev_f1);
    hh = bytes_hash(hh, &step, sizeof step);
    int same = 0;
    PEP_CALL_GOTO(rc, same_on_all_ranks(w, hh, &same));
    PEP_CHECK_GOTO(rc, same, PEP_ERR_INTERNAL, "%s: the best dev F1 or its step differs between ranks", w->tmp_path);
    PEP_CALL_GOTO(rc, ensure_group(w->file, "/best", &g));
    PEP_CALL_GOTO(rc, ck_attr_f64(g, "dev_f1", dev_f1));
    PEP_CALL_GOTO(rc, ck_attr_i64(g, "step", step));
    PEP_CALL_GOTO(rc, ck_attr_str(g, "groups", gs));
    PEP_CALL_GOTO(rc, write_replicated(w, table, state, begin, groups, "/best", "best weights"));
cleanup:
    PEP_H5_CLOSE(H5Gclose, g);
    return settle(w, rc);
}

/* Local checks of a task list, and its hash (languages, owners) to compare across ranks. */
static int check_tasks(const struct pep_ckpt_writer *w, const struct pep_ckpt_task *tasks, int ntasks, uint64_t *hash)
{
    PEP_CHECK(ntasks >= 0 && (ntasks == 0 || tasks), PEP_ERR_USAGE, "%s: bad task list", w->tmp_path);
    uint64_t lh = bytes_hash(7, &ntasks, sizeof ntasks);
    for (int i = 0; i < ntasks; i++) {
        PEP_CHECK(ck_check_lang(tasks[i].lang), PEP_ERR_USAGE,
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
        PEP_CALL_GOTO(rc, ck_attr_i64(g, "episode", ints[2 * i]));
        PEP_CALL_GOTO(rc, ck_attr_i64(g, "step", ints[2 * i + 1]));
        PEP_CALL_GOTO(rc, ck_attr_f64(g, "support_loss", reals[2 * i]));
        PEP_CALL_GOTO(rc, ck_attr_f64(g, "query_loss", reals[2 * i + 1]));
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

/* The whole-file digest (checkpoint_digest.h), computed by all ranks: each hashes its block of
 * the closed file's pieces, rank 0 sums the hashes (each entry comes from one rank, zeros from
 * the others) and writes the header. A rank that cannot read its block fails every rank. */
static int seal(struct pep_ckpt_writer *w)
{
    uint64_t size = 0;
    int rc = PEP_OK;
    if (w->rank == 0) {
        struct stat st;
        if (stat(w->tmp_path, &st) == 0)
            size = (uint64_t)st.st_size;
        else
            rc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "cannot open %s to write its digest: %s",
                               w->tmp_path, strerror(errno));
    }
    PEP_CALL(agree(w, rc));
    PEP_CALL_MPI(MPI_Bcast(&size, 1, MPI_UINT64_T, 0, w->comm));
    uint64_t n = pep_ckpt_digest_npieces(size);
    uint64_t *hashes = NULL;
    PEP_CHECK(n <= INT_MAX, PEP_ERR_USAGE, "%s: %" PRIu64 " digest pieces, more than one MPI call can send", w->tmp_path,
              n);
    hashes = pep_alloc_((n ? n : 1) * sizeof *hashes, "digest piece hashes", __FILE__, __LINE__, __func__); /* zeroed */
    rc = hashes ? PEP_OK : PEP_ERR_NOMEM;
    if (rc == PEP_OK) rc = pep_ckpt_digest_hash_share(w->tmp_path, w->rank, w->size, hashes, n);
    rc = agree(w, rc);
    if (rc == PEP_OK && n > 0) {
        int mrc = MPI_Reduce(w->rank == 0 ? MPI_IN_PLACE : hashes, hashes, (int)n, MPI_UINT64_T, MPI_SUM, 0, w->comm);
        rc = mrc == MPI_SUCCESS ? PEP_OK
             : pep_error_set(PEP_ERR_MPI, __FILE__, __LINE__, __func__, "%s: MPI_Reduce of the digest pieces failed",
                             w->tmp_path);
    }
    if (rc == PEP_OK) rc = agree(w, w->rank == 0 ? pep_ckpt_digest_seal_pieces(w->tmp_path, hashes, n) : PEP_OK);
    pep_free(hashes);
    return rc;
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
    ck_direct_close(w);
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
    ck_direct_close(w);
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
    if (w->pieces)
        pep_debug("checkpoint %s: rank %d wrote %ld replicated piece(s), %.1f MB, %.2f MB each", w->final_path,
                  w->rank, w->pieces, (double)w->piece_bytes / 1e6, (double)w->piece_bytes / 1e6 / (double)w->pieces);
    rc = agree(w, rc);
    if (rc == PEP_OK) rc = seal(w);
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
