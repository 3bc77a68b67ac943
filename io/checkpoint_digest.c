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
#include "core/rng.h"

/* "PEPCKDG" + the format_version whose hash the digest and the header check use ('1': the
 * lanes hash and FNV-1a; '2': XXH3-64), written as PEPCKDG2 */
#define DG_MAGIC "PEPCKDG"
#define DG_MAGIC_LEN 7
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

/* Digest of the `len` bytes of fd from `off` on; `count`: add them to the reader's count. */
static int digest_range(int fd, const char *path, int version, uint64_t off, uint64_t len, int count, uint64_t *out)
{
    float *buf = NULL;
    PEP_ALLOC(buf, DG_CHUNK / sizeof(float));
    struct ck_hash h;
    ck_init(&h, version);
    int rc = PEP_OK;
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_SEQUENTIAL);
#endif
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < DG_CHUNK ? (size_t)(len - done) : DG_CHUNK;
        if (read_full(fd, buf, n, off + done) != 0) {
            rc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "%s: cannot read %zu bytes at %llu: %s",
                               path, n, (unsigned long long)(off + done), errno ? strerror(errno) : "end of file");
            break;
        }
        if (count) ck_count_read(n);
        ck_update(&h, buf, n);
        done += n;
    }
    pep_free(buf);
    *out = ck_final(&h);
    return rc;
}

int pep_ckpt_digest_seal(const char *path)
{
    int fd = open(path, O_RDWR);
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open %s to write its digest: %s", path, strerror(errno));
    struct stat st;
    int rc = PEP_OK;
    uint64_t digest = 0;
    unsigned char hd[DG_HEADER] = {0};
    PEP_CHECK_GOTO(rc, fstat(fd, &st) == 0 && st.st_size >= PEP_CKPT_USERBLOCK, PEP_ERR_IO,
                   "%s: cannot write its digest: the file is shorter than its %d-byte user block", path,
                   PEP_CKPT_USERBLOCK);
    uint64_t covered = (uint64_t)st.st_size - PEP_CKPT_USERBLOCK;
    PEP_CALL_GOTO(rc, digest_range(fd, path, PEP_CKPT_FORMAT_VERSION, PEP_CKPT_USERBLOCK, covered, 0, &digest));
    memcpy(hd, DG_MAGIC, DG_MAGIC_LEN);
    hd[DG_MAGIC_LEN] = (unsigned char)('0' + PEP_CKPT_FORMAT_VERSION);
    for (int i = 0; i < 4; i++) hd[8 + i] = (unsigned char)((unsigned)PEP_CKPT_USERBLOCK >> (8 * i));
    put_u64(hd + 16, covered);
    put_u64(hd + 24, digest);
    put_u64(hd + 32, ck_header_check(PEP_CKPT_FORMAT_VERSION, hd, 32));
    PEP_CHECK_GOTO(rc, pwrite(fd, hd, sizeof hd, 0) == (ssize_t)sizeof hd, PEP_ERR_IO,
                   "%s: cannot write its digest: %s (disk full?)", path, strerror(errno));
cleanup:
    close(fd);
    return rc;
}

/* The checks before the digest: *sealed = 0 for a file written before the digest (the HDF5
 * signature at offset 0); else the header (its DG_HEADER bytes into hd) must be intact and the
 * file as long as it says: *covered bytes after the user block, whose digest by the hash of
 * *version must be *digest. */
static int check_header(int fd, const char *path, uint64_t size, unsigned char *hd, int *sealed, int *version,
                        uint64_t *covered, uint64_t *digest)
{
    *sealed = 0;
    *version = 1;
    PEP_CHECK(size >= 8 && read_full(fd, hd, 8, 0) == 0, PEP_ERR_FORMAT,
              "%s: not a peprime checkpoint (%lld bytes, too short to be one)", path, (long long)size);
    ck_count_read(8);
    if (!memcmp(hd, hdf5_signature, 8)) return PEP_OK; /* written before the digest: unchecked */
    PEP_CHECK(!memcmp(hd, DG_MAGIC, DG_MAGIC_LEN) && hd[DG_MAGIC_LEN] >= '1' &&
                  hd[DG_MAGIC_LEN] <= '0' + PEP_CKPT_FORMAT_VERSION,
              PEP_ERR_FORMAT,
              "%s: not a peprime checkpoint, or its first bytes are damaged (neither the peprime digest "
              "header nor the HDF5 signature at its start); use another checkpoint", path);
    PEP_CHECK(size >= PEP_CKPT_USERBLOCK, PEP_ERR_FORMAT,
              "%s: truncated: %lld bytes, shorter than its %d-byte header block; use another checkpoint (an "
              "older one of the run, or a complete copy)", path, (long long)size, PEP_CKPT_USERBLOCK);
    *version = hd[DG_MAGIC_LEN] - '0';
    PEP_CHECK(read_full(fd, hd, DG_HEADER, 0) == 0 && get_u64(hd + 32) == ck_header_check(*version, hd, 32),
              PEP_ERR_FORMAT,
              "%s: damaged: its digest header (the first %d bytes) does not check out; use "
              "another checkpoint (an older one of the run, or a copy)", path, DG_HEADER);
    ck_count_read(DG_HEADER);
    uint32_t ub = (uint32_t)hd[8] | (uint32_t)hd[9] << 8 | (uint32_t)hd[10] << 16 | (uint32_t)hd[11] << 24;
    *covered = get_u64(hd + 16);
    *digest = get_u64(hd + 24);
    PEP_CHECK(ub == PEP_CKPT_USERBLOCK, PEP_ERR_FORMAT,
              "%s: its digest header names a %u-byte user block; this peprime writes and reads %d: use the "
              "peprime that wrote it", path, (unsigned)ub, PEP_CKPT_USERBLOCK);
    PEP_CHECK(size - ub == *covered, PEP_ERR_FORMAT,
              "%s: %s: %lld bytes, but %llu were written; use another checkpoint (an older one of the run, "
              "or a complete copy)", path, size - ub < *covered ? "truncated" : "damaged (bytes appended)",
              (long long)size, (unsigned long long)(*covered + ub));
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
    int rc = PEP_OK, was_sealed = 0, version = 1;
    struct stat st;
    uint64_t covered = 0, want = 0, digest = 0;
    unsigned char hd[DG_HEADER];
    PEP_CHECK_GOTO(rc, fstat(fd, &st) == 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    PEP_CALL_GOTO(rc, check_header(fd, path, (uint64_t)st.st_size, hd, &was_sealed, &version, &covered, &want));
    if (!was_sealed) goto cleanup;
    PEP_CALL_GOTO(rc, digest_range(fd, path, version, PEP_CKPT_USERBLOCK, covered, 1, &digest));
    if (digest != want) {
        rc = digest_mismatch(path);
        goto cleanup;
    }
    *sealed = 1;
cleanup:
    close(fd);
    return rc;
}

/* Reads `len` bytes at `off` into dst in DG_CHUNK pieces: the CK_DIRECT_ALIGN multiple of each
 * piece through *dfd (O_DIRECT; dst and off aligned) while it works, the rest through fd; each
 * piece fed to `h` unless it is NULL. */
static int load_range(int fd, int *dfd, const char *path, unsigned char *dst, uint64_t off, uint64_t len,
                      struct ck_hash *h)
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
        if (h) ck_update(h, dst + done, n);
        done += n;
    }
    return PEP_OK;
}

int pep_ckpt_digest_load(const char *path, void **image, size_t *len, int *sealed)
{
    *image = NULL;
    *len = 0;
    *sealed = 0;
    int fd = open(path, O_RDONLY), dfd = -1;
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    int rc = PEP_OK, was_sealed = 0, version = 1;
    struct stat st;
    uint64_t covered = 0, want = 0;
    unsigned char *buf = NULL, hd[DG_HEADER];
    PEP_CHECK_GOTO(rc, fstat(fd, &st) == 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    PEP_CALL_GOTO(rc, check_header(fd, path, size, hd, &was_sealed, &version, &covered, &want));
    PEP_CHECK_GOTO(rc, size <= (uint64_t)SIZE_MAX - 2 * CK_DIRECT_ALIGN, PEP_ERR_NOMEM,
                   "%s: %llu bytes do not fit in memory", path, (unsigned long long)size);
    /* aligned for O_DIRECT, and room for the zero padding of a last partial word */
    size_t cap = ((size_t)size + CK_DIRECT_ALIGN) / CK_DIRECT_ALIGN * CK_DIRECT_ALIGN;
    PEP_CHECK_GOTO(rc, posix_memalign((void **)&buf, CK_DIRECT_ALIGN, cap) == 0, PEP_ERR_NOMEM,
                   "out of memory: %llu bytes to hold checkpoint %s", (unsigned long long)size, path);
    memset(buf + size, 0, cap - size);
    const char *env = getenv("PEP_CKPT_DIRECT");
    if (!env || strcmp(env, "0")) dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, (off_t)size, POSIX_FADV_SEQUENTIAL);
#endif
    if (was_sealed) {
        /* the user block is the header and a hole: HDF5 skips it, so only the header is kept */
        memset(buf, 0, PEP_CKPT_USERBLOCK);
        memcpy(buf, hd, DG_HEADER);
        struct ck_hash h;
        ck_init(&h, version);
        PEP_CALL_GOTO(rc, load_range(fd, &dfd, path, buf + PEP_CKPT_USERBLOCK, PEP_CKPT_USERBLOCK, covered, &h));
        if (ck_final(&h) != want) {
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
