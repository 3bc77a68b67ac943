/* Whole-file digest of a checkpoint in its HDF5 user block (checkpoint_digest.h): sealing by
 * the writer, the check the reader makes before HDF5 opens the file (streamed, or while the
 * file is read into memory), and the count of the bytes the reader reads. */
#define _GNU_SOURCE /* O_DIRECT */
#include "checkpoint_digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_private.h"
#include "core/error.h"
#include "core/partition.h"
#include "core/rng.h"

/* "PEPCKDG" + the digest scheme ('1': the version-1 lanes hash of the covered bytes, FNV-1a
 * header check; '2': XXH3-64 of the covered bytes; '3', written now: XXH3-64 of the pieces'
 * XXH3-64s, checkpoint_digest.h); '2' and '3' check the header with XXH3-64 */
#define DG_MAGIC "PEPCKDG"
#define DG_MAGIC_LEN 7
#define DG_SCHEME 3
#define DG_HEADER 40
#define DG_CHUNK ((size_t)8 << 20)

static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* pread of exactly n bytes at off (0), or -1 with errno (0 at an early end of file). */
static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            if (got == 0) errno = 0;
            return -1;
        }
        done += (size_t)got;
    }
    return 0;
}

/* Bytes the reader has read from checkpoint files in this process (pep_ckpt_bytes_read). */
static uint64_t bytes_read;

void ck_count_read(size_t n) { __atomic_fetch_add(&bytes_read, (uint64_t)n, __ATOMIC_RELAXED); }

uint64_t pep_ckpt_bytes_read(void) { return __atomic_load_n(&bytes_read, __ATOMIC_RELAXED); }

/* ---- the digest of a scheme, fed consecutive runs of the covered bytes ---- */

struct dg_hash {
    int scheme;
    uint64_t piece, in_piece;   /* scheme 3: bytes per piece, bytes of the current piece so far */
    struct ck_hash whole, part; /* schemes 1, 2: `whole` of the bytes; 3: `whole` of the pieces'
                                 * hashes (8 bytes each, little-endian), `part` of the current piece */
};

static void dg_init(struct dg_hash *d, int scheme, uint64_t piece)
{
    d->scheme = scheme;
    d->piece = piece;
    d->in_piece = 0;
    ck_init(&d->whole, scheme == 1 ? 1 : 2);
    if (scheme == 3) ck_init(&d->part, 2);
}

static void dg_fold(struct dg_hash *d)
{
    unsigned char le[8];
    put_u64(le, ck_final(&d->part));
    ck_update(&d->whole, le, sizeof le);
    ck_init(&d->part, 2);
    d->in_piece = 0;
}

static void dg_update(struct dg_hash *d, const unsigned char *p, size_t n)
{
    if (d->scheme < 3) {
        ck_update(&d->whole, p, n);
        return;
    }
    while (n > 0) {
        size_t m = d->piece - d->in_piece < n ? (size_t)(d->piece - d->in_piece) : n;
        ck_update(&d->part, p, m);
        d->in_piece += m, p += m, n -= m;
        if (d->in_piece == d->piece) dg_fold(d);
    }
}

static uint64_t dg_final(struct dg_hash *d)
{
    if (d->scheme == 3 && d->in_piece > 0) dg_fold(d);
    return ck_final(&d->whole);
}

/* Reads `len` bytes at `off` into dst in DG_CHUNK runs: the CK_DIRECT_ALIGN multiple of each
 * run through *dfd (O_DIRECT; dst and off aligned) while it works, the rest through fd; each run
 * fed to `h` unless it is NULL. */
static int load_range(int fd, int *dfd, const char *path, unsigned char *dst, uint64_t off, uint64_t len,
                      struct dg_hash *h)
{
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < DG_CHUNK ? (size_t)(len - done) : DG_CHUNK;
        size_t direct = *dfd >= 0 ? n / CK_DIRECT_ALIGN * CK_DIRECT_ALIGN : 0;
        int bad = direct > 0 && read_full(*dfd, dst + done, direct, off + done) != 0;
        if (bad && errno == EINVAL) { /* direct I/O refused after all: buffered from here on */
            close(*dfd);
            *dfd = -1;
            direct = 0;
            bad = 0;
        }
        if (!bad && n > direct) bad = read_full(fd, dst + done + direct, n - direct, off + done + direct) != 0;
        PEP_CHECK(!bad, PEP_ERR_IO, "%s: cannot read %zu bytes at %llu: %s", path, n,
                  (unsigned long long)(off + done), errno ? strerror(errno) : "end of file");
        ck_count_read(n);
        if (h) dg_update(h, dst + done, n);
        done += n;
    }
    return PEP_OK;
}

/* Feeds the `len` bytes of fd at `off` to h, read buffered in DG_CHUNK runs through buf (the
 * kernel's read-ahead overlaps the reading with the hashing, which O_DIRECT's synchronous reads
 * would not); counted in pep_ckpt_bytes_read() when `count`. */
static int hash_range(int fd, const char *path, unsigned char *buf, uint64_t off, uint64_t len, struct dg_hash *h,
                      int count)
{
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_SEQUENTIAL);
#endif
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < DG_CHUNK ? (size_t)(len - done) : DG_CHUNK;
        PEP_CHECK(read_full(fd, buf, n, off + done) == 0, PEP_ERR_IO, "%s: cannot read %zu bytes at %llu: %s", path,
                  n, (unsigned long long)(off + done), errno ? strerror(errno) : "end of file");
        if (count) ck_count_read(n);
        dg_update(h, buf, n);
        done += n;
    }
    return PEP_OK;
}

/* O_DIRECT descriptor of path for reading, or -1 (refused, or PEP_CKPT_DIRECT=0). */
static int open_direct(const char *path)
{
    const char *env = getenv("PEP_CKPT_DIRECT");
    return env && !strcmp(env, "0") ? -1 : open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
}

/* ---- sealing ---- */

uint64_t pep_ckpt_digest_npieces(uint64_t size)
{
    uint64_t covered = size > PEP_CKPT_USERBLOCK ? size - PEP_CKPT_USERBLOCK : 0;
    return (covered + PEP_CKPT_DIGEST_PIECE - 1) / PEP_CKPT_DIGEST_PIECE;
}

int pep_ckpt_digest_hash_share(const char *path, int share, int shares, uint64_t *hashes, uint64_t npieces)
{
    PEP_CHECK(shares >= 1 && share >= 0 && share < shares, PEP_ERR_USAGE,
              "pep_ckpt_digest_hash_share: share %d of %d", share, shares);
    int fd = open(path, O_RDONLY);
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open %s to compute its digest: %s", path, strerror(errno));
    int rc = PEP_OK;
    unsigned char *buf = NULL;
    struct stat st;
    PEP_CHECK_GOTO(rc, fstat(fd, &st) == 0 && pep_ckpt_digest_npieces((uint64_t)st.st_size) == npieces, PEP_ERR_IO,
                   "%s: cannot compute its digest: the file changed size while it was being sealed", path);
    uint64_t covered = (uint64_t)st.st_size - PEP_CKPT_USERBLOCK;
    size_t first, last; /* this share's contiguous block of pieces */
    pep_partition_slice(share, shares, (size_t)npieces, 1, &first, &last);
    if (first == last) goto cleanup;
    PEP_ALLOC_GOTO(rc, buf, DG_CHUNK);
    for (uint64_t i = first; i < last; i++) {
        uint64_t off = i * PEP_CKPT_DIGEST_PIECE, len = covered - off;
        struct dg_hash h;
        dg_init(&h, 2, 0);
        PEP_CALL_GOTO(rc, hash_range(fd, path, buf, PEP_CKPT_USERBLOCK + off,
                                     len < PEP_CKPT_DIGEST_PIECE ? len : PEP_CKPT_DIGEST_PIECE, &h, 0));
        hashes[i] = dg_final(&h);
    }
cleanup:
    pep_free(buf);
    close(fd);
    return rc;
}

int pep_ckpt_digest_seal_pieces(const char *path, const uint64_t *hashes, uint64_t npieces)
{
    int fd = open(path, O_RDWR);
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open %s to write its digest: %s", path, strerror(errno));
    struct stat st;
    int rc = PEP_OK;
    unsigned char hd[DG_HEADER] = {0}, le[8];
    PEP_CHECK_GOTO(rc, fstat(fd, &st) == 0 && st.st_size >= PEP_CKPT_USERBLOCK, PEP_ERR_IO,
                   "%s: cannot write its digest: the file is shorter than its %d-byte user block", path,
                   PEP_CKPT_USERBLOCK);
    PEP_CHECK_GOTO(rc, pep_ckpt_digest_npieces((uint64_t)st.st_size) == npieces, PEP_ERR_IO,
                   "%s: cannot write its digest: the file changed size while it was being sealed", path);
    struct ck_hash whole;
    ck_init(&whole, 2);
    for (uint64_t i = 0; i < npieces; i++) {
        put_u64(le, hashes[i]);
        ck_update(&whole, le, sizeof le);
    }
    memcpy(hd, DG_MAGIC, DG_MAGIC_LEN);
    hd[DG_MAGIC_LEN] = (unsigned char)('0' + DG_SCHEME);
    for (int i = 0; i < 4; i++) hd[8 + i] = (unsigned char)((unsigned)PEP_CKPT_USERBLOCK >> (8 * i));
    for (int i = 0; i < 4; i++) hd[12 + i] = (unsigned char)((uint32_t)PEP_CKPT_DIGEST_PIECE >> (8 * i));
    put_u64(hd + 16, (uint64_t)st.st_size - PEP_CKPT_USERBLOCK);
    put_u64(hd + 24, ck_final(&whole));
    put_u64(hd + 32, ck_header_check(2, hd, 32));
    PEP_CHECK_GOTO(rc, pwrite(fd, hd, sizeof hd, 0) == (ssize_t)sizeof hd, PEP_ERR_IO,
                   "%s: cannot write its digest: %s (disk full?)", path, strerror(errno));
cleanup:
    close(fd);
    return rc;
}

int pep_ckpt_digest_seal(const char *path)
{
    struct stat st;
    PEP_CHECK(stat(path, &st) == 0, PEP_ERR_IO, "cannot open %s to write its digest: %s", path, strerror(errno));
    uint64_t n = pep_ckpt_digest_npieces((uint64_t)st.st_size);
    uint64_t *hashes = NULL;
    PEP_ALLOC(hashes, n ? n : 1);
    int rc = pep_ckpt_digest_hash_share(path, 0, 1, hashes, n);
    if (rc == PEP_OK) rc = pep_ckpt_digest_seal_pieces(path, hashes, n);
    pep_free(hashes);
    return rc;
}

/* ---- checking ---- */

/* The checks before the digest: *sealed = 0 for a file written before the digest (the HDF5
 * signature at offset 0); else the header (its DG_HEADER bytes into hd) must be intact and the
 * file as long as it says: *covered bytes after the user block, whose digest by `dg` (set up
 * for the header's scheme) must be *digest. */
static int check_header(int fd, const char *path, uint64_t size, unsigned char *hd, int *sealed, struct dg_hash *dg,
                        uint64_t *covered, uint64_t *digest)
{
    *sealed = 0;
    PEP_CHECK(size >= 8 && read_full(fd, hd, 8, 0) == 0, PEP_ERR_FORMAT,
              "%s: not a peprime checkpoint (%lld bytes, too short to be one)", path, (long long)size);
    ck_count_read(8);
    if (!memcmp(hd, hdf5_signature, 8)) return PEP_OK; /* written before the digest: unchecked */
    PEP_CHECK(!memcmp(hd, DG_MAGIC, DG_MAGIC_LEN) && hd[DG_MAGIC_LEN] >= '1' && hd[DG_MAGIC_LEN] <= '0' + DG_SCHEME,
              PEP_ERR_FORMAT,
              "%s: not a peprime checkpoint, or its first bytes are damaged (neither the peprime digest "
              "header nor the HDF5 signature at its start); use another checkpoint", path);
    PEP_CHECK(size >= PEP_CKPT_USERBLOCK, PEP_ERR_FORMAT,
              "%s: truncated: %lld bytes, shorter than its %d-byte header block; use another checkpoint (an "
              "older one of the run, or a complete copy)", path, (long long)size, PEP_CKPT_USERBLOCK);
    int scheme = hd[DG_MAGIC_LEN] - '0';
    PEP_CHECK(read_full(fd, hd, DG_HEADER, 0) == 0 && get_u64(hd + 32) == ck_header_check(scheme == 1 ? 1 : 2, hd, 32),
              PEP_ERR_FORMAT,
              "%s: damaged: its digest header (the first %d bytes) does not check out; use "
              "another checkpoint (an older one of the run, or a copy)", path, DG_HEADER);
    ck_count_read(DG_HEADER);
    uint32_t ub = (uint32_t)hd[8] | (uint32_t)hd[9] << 8 | (uint32_t)hd[10] << 16 | (uint32_t)hd[11] << 24;
    uint32_t piece = (uint32_t)hd[12] | (uint32_t)hd[13] << 8 | (uint32_t)hd[14] << 16 | (uint32_t)hd[15] << 24;
    *covered = get_u64(hd + 16);
    *digest = get_u64(hd + 24);
    PEP_CHECK(ub == PEP_CKPT_USERBLOCK, PEP_ERR_FORMAT,
              "%s: its digest header names a %u-byte user block; this peprime writes and reads %d: use the "
              "peprime that wrote it", path, (unsigned)ub, PEP_CKPT_USERBLOCK);
    PEP_CHECK(scheme < 3 || piece > 0, PEP_ERR_FORMAT,
              "%s: damaged: its digest header names pieces of 0 bytes; use another checkpoint", path);
    PEP_CHECK(size - ub == *covered, PEP_ERR_FORMAT,
              "%s: %s: %lld bytes, but %llu were written; use another checkpoint (an older one of the run, "
              "or a complete copy)", path, size - ub < *covered ? "truncated" : "damaged (bytes appended)",
              (long long)size, (unsigned long long)(*covered + ub));
    dg_init(dg, scheme, piece);
    *sealed = 1;
    return PEP_OK;
}

static int digest_mismatch(const char *path)
{
    PEP_FAIL(PEP_ERR_FORMAT,
             "%s: damaged: its bytes no longer match the digest written when it was saved (nothing was read "
             "from it); use another checkpoint (an older one of the run, or a copy)", path);
}

int pep_ckpt_digest_check(const char *path, int *sealed)
{
    *sealed = 0;
    int fd = open(path, O_RDONLY);
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    int rc = PEP_OK, was_sealed = 0;
    struct stat st;
    struct dg_hash dg;
    uint64_t covered = 0, want = 0;
    unsigned char hd[DG_HEADER], *buf = NULL;
    PEP_CHECK_GOTO(rc, fstat(fd, &st) == 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    PEP_CALL_GOTO(rc, check_header(fd, path, (uint64_t)st.st_size, hd, &was_sealed, &dg, &covered, &want));
    if (!was_sealed) goto cleanup;
    PEP_ALLOC_GOTO(rc, buf, DG_CHUNK);
    PEP_CALL_GOTO(rc, hash_range(fd, path, buf, PEP_CKPT_USERBLOCK, covered, &dg, 1));
    if (dg_final(&dg) != want) {
        rc = digest_mismatch(path);
        goto cleanup;
    }
    *sealed = 1;
cleanup:
    pep_free(buf);
    close(fd);
    return rc;
}

int pep_ckpt_digest_load(const char *path, void **image, size_t *len, int *sealed)
{
    *image = NULL;
    *len = 0;
    *sealed = 0;
    int fd = open(path, O_RDONLY), dfd = -1;
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    int rc = PEP_OK, was_sealed = 0;
    struct stat st;
    struct dg_hash dg;
    uint64_t covered = 0, want = 0;
    unsigned char *buf = NULL, hd[DG_HEADER];
    PEP_CHECK_GOTO(rc, fstat(fd, &st) == 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    PEP_CALL_GOTO(rc, check_header(fd, path, size, hd, &was_sealed, &dg, &covered, &want));
    PEP_CHECK_GOTO(rc, size <= (uint64_t)SIZE_MAX - 2 * CK_DIRECT_ALIGN, PEP_ERR_NOMEM,
                   "%s: %llu bytes do not fit in memory", path, (unsigned long long)size);
    /* aligned for O_DIRECT, and room for the zero padding of a last partial word */
    size_t cap = ((size_t)size + CK_DIRECT_ALIGN) / CK_DIRECT_ALIGN * CK_DIRECT_ALIGN;
    PEP_CHECK_GOTO(rc, posix_memalign((void **)&buf, CK_DIRECT_ALIGN, cap) == 0, PEP_ERR_NOMEM,
                   "out of memory: %llu bytes to hold checkpoint %s", (unsigned long long)size, path);
    memset(buf + size, 0, cap - size);
    dfd = open_direct(path);
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, (off_t)size, POSIX_FADV_SEQUENTIAL);
#endif
    if (was_sealed) {
        /* the user block is the header and a hole: HDF5 skips it, so only the header is kept */
        memset(buf, 0, PEP_CKPT_USERBLOCK);
        memcpy(buf, hd, DG_HEADER);
        PEP_CALL_GOTO(rc, load_range(fd, &dfd, path, buf + PEP_CKPT_USERBLOCK, PEP_CKPT_USERBLOCK, covered, &dg));
        if (dg_final(&dg) != want) {
            rc = digest_mismatch(path);
            goto cleanup;
        }
    } else {
        PEP_CALL_GOTO(rc, load_range(fd, &dfd, path, buf, 0, size, NULL));
    }
    *image = buf;
    *len = (size_t)size;
    *sealed = was_sealed;
    buf = NULL;
cleanup:
    free(buf);
    if (dfd >= 0) close(dfd);
    close(fd);
    return rc;
}
