/* Direct I/O of large checkpoint tensors (checkpoint_private.h): the writer and the reader
 * move tensors of >= 1 MiB with O_DIRECT at the address HDF5 allocated (H5Dget_offset),
 * through an 8 MiB staging buffer, unaligned tails buffered. Where O_DIRECT is refused, or
 * with PEP_CKPT_DIRECT=0, HDF5 moves the data itself; the file is the same either way. */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_private.h"
#include "core/error.h"

/* Opens this rank's descriptors for direct-I/O tensor data (the file already exists: H5Fcreate
 * is collective). Large tensors bypass the page cache: on a fresh write every page-cache page
 * is new memory, and on the VMs measured here touching new memory costs more than the disk
 * (buffered 0.2-0.3 GB/s against O_DIRECT 1.0-1.2 GB/s, see tests/checkpoint/bench_checkpoint.c).
 * Where O_DIRECT is refused (tmpfs, some network file systems) or PEP_CKPT_DIRECT=0 is set,
 * HDF5 writes all data itself. */
int ck_direct_open(struct pep_ckpt_writer *w)
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

void ck_direct_close(struct pep_ckpt_writer *w)
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

/* Direct-I/O write of tensor bytes [0, total) at file address `addr`: owner < 0 (replicated)
 * deals the aligned part out in CK_PIECE pieces round-robin from w->next_piece (the rank of the
 * last piece also writes the unaligned tail, buffered); owner >= 0: that rank writes everything. */
int ck_write_tensor_direct(struct pep_ckpt_writer *w, const struct pep_param *p, const float *data, uint64_t addr,
                           int owner)
{
    size_t total = p->numel * sizeof(float), aligned = total / CK_DIRECT_ALIGN * CK_DIRECT_ALIGN;
    const char *src = (const char *)data;
    if (owner >= 0) {
        if (owner != w->rank) return PEP_OK;
        if (aligned) PEP_CALL(raw_write(w, p->name, src, aligned, addr, 1));
        if (total > aligned) PEP_CALL(raw_write(w, p->name, src + aligned, total - aligned, addr + aligned, 0));
        return PEP_OK;
    }
    size_t npieces = (aligned + CK_PIECE - 1) / CK_PIECE, first = (size_t)(w->next_piece % (uint64_t)w->size);
    for (size_t c = 0; c < npieces; c++) {
        if ((first + c) % (size_t)w->size != (size_t)w->rank) continue;
        size_t off = c * CK_PIECE, n = aligned - off < CK_PIECE ? aligned - off : CK_PIECE;
        PEP_CALL(raw_write(w, p->name, src + off, n, addr + off, 1));
        w->pieces++, w->piece_bytes += n;
    }
    size_t tail_rank = (first + (npieces ? npieces - 1 : 0)) % (size_t)w->size;
    if (total > aligned && tail_rank == (size_t)w->rank)
        PEP_CALL(raw_write(w, p->name, src + aligned, total - aligned, addr + aligned, 0));
    w->next_piece += npieces ? npieces : 1;
    return PEP_OK;
}

/* File address of `d` if it can be read as raw little-endian float32 bytes with direct I/O:
 * at least CK_DIRECT_MIN bytes, contiguous, allocated, aligned, no external storage, F32LE on
 * a little-endian host; else HADDR_UNDEF (HDF5 reads it). */
haddr_t ck_direct_addr(struct pep_ckpt_reader *r, hid_t d, size_t bytes)
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
int ck_direct_read(struct pep_ckpt_reader *r, char *dst, size_t bytes, uint64_t addr)
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
        ck_count_read(n);
        memcpy(dst + done, r->stage, n);
        done += n;
    }
    while (done < bytes) {
        ssize_t got = pread(r->bfd, dst + done, bytes - done, (off_t)(addr + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 1;
        ck_count_read((size_t)got);
        done += (size_t)got;
    }
    return 0;
}
