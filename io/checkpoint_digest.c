/* Whole-file digest of a checkpoint in its HDF5 user block (checkpoint_digest.h): sealing by
 * the writer, the check the reader makes before HDF5 opens the file. */
#include "checkpoint_digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_private.h"
#include "core/error.h"
#include "core/rng.h"

#define DG_MAGIC "PEPCKDG1"
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

/* Digest of the `len` bytes of fd from `off` on. */
static int digest_range(int fd, const char *path, uint64_t off, uint64_t len, uint64_t *out)
{
    float *buf = NULL;
    PEP_ALLOC(buf, DG_CHUNK / sizeof(float));
    struct ck_hash h;
    ck_init(&h);
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
        size_t words = n / 4, tail = n % 4; /* only the last chunk can have a tail */
        if (tail) memset((char *)buf + n, 0, 4 - tail);
        ck_update(&h, buf, words + (tail != 0));
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
    PEP_CALL_GOTO(rc, digest_range(fd, path, PEP_CKPT_USERBLOCK, covered, &digest));
    memcpy(hd, DG_MAGIC, 8);
    for (int i = 0; i < 4; i++) hd[8 + i] = (unsigned char)((unsigned)PEP_CKPT_USERBLOCK >> (8 * i));
    put_u64(hd + 16, covered);
    put_u64(hd + 24, digest);
    put_u64(hd + 32, pep_fnv1a64(hd, 32));
    PEP_CHECK_GOTO(rc, pwrite(fd, hd, sizeof hd, 0) == (ssize_t)sizeof hd, PEP_ERR_IO,
                   "%s: cannot write its digest: %s (disk full?)", path, strerror(errno));
cleanup:
    close(fd);
    return rc;
}

int pep_ckpt_digest_check(const char *path, int *sealed)
{
    *sealed = 0;
    int fd = open(path, O_RDONLY);
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    int rc = PEP_OK;
    struct stat st;
    unsigned char hd[DG_HEADER];
    PEP_CHECK_GOTO(rc, fstat(fd, &st) == 0, PEP_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    PEP_CHECK_GOTO(rc, st.st_size >= 8 && read_full(fd, hd, 8, 0) == 0, PEP_ERR_FORMAT,
                   "%s: not a peprime checkpoint (%lld bytes, too short to be one)", path, (long long)st.st_size);
    if (!memcmp(hd, hdf5_signature, 8)) goto cleanup; /* written before the digest: unchecked */
    PEP_CHECK_GOTO(rc, !memcmp(hd, DG_MAGIC, 8), PEP_ERR_FORMAT,
                   "%s: not a peprime checkpoint, or its first bytes are damaged (neither the peprime digest "
                   "header nor the HDF5 signature at its start); use another checkpoint", path);
    PEP_CHECK_GOTO(rc, st.st_size >= PEP_CKPT_USERBLOCK, PEP_ERR_FORMAT,
                   "%s: truncated: %lld bytes, shorter than its %d-byte header block; use another checkpoint (an "
                   "older one of the run, or a complete copy)", path, (long long)st.st_size, PEP_CKPT_USERBLOCK);
    PEP_CHECK_GOTO(rc, read_full(fd, hd, sizeof hd, 0) == 0 && get_u64(hd + 32) == pep_fnv1a64(hd, 32),
                   PEP_ERR_FORMAT, "%s: damaged: its digest header (the first %d bytes) does not check out; use "
                   "another checkpoint (an older one of the run, or a copy)", path, DG_HEADER);
    uint32_t ub = (uint32_t)hd[8] | (uint32_t)hd[9] << 8 | (uint32_t)hd[10] << 16 | (uint32_t)hd[11] << 24;
    uint64_t covered = get_u64(hd + 16), digest = 0;
    PEP_CHECK_GOTO(rc, ub == PEP_CKPT_USERBLOCK, PEP_ERR_FORMAT,
                   "%s: its digest header names a %u-byte user block; this peprime writes and reads %d: use the "
                   "peprime that wrote it", path, (unsigned)ub, PEP_CKPT_USERBLOCK);
    PEP_CHECK_GOTO(rc, (uint64_t)st.st_size - ub == covered, PEP_ERR_FORMAT,
                   "%s: %s: %lld bytes, but %llu were written; use another checkpoint (an older one of the run, "
                   "or a complete copy)", path, (uint64_t)st.st_size - ub < covered ? "truncated" : "damaged (bytes appended)",
                   (long long)st.st_size, (unsigned long long)(covered + ub));
    PEP_CALL_GOTO(rc, digest_range(fd, path, ub, covered, &digest));
    PEP_CHECK_GOTO(rc, digest == get_u64(hd + 24), PEP_ERR_FORMAT,
                   "%s: damaged: its bytes no longer match the digest written when it was saved (nothing was read "
                   "from it); use another checkpoint (an older one of the run, or a copy)", path);
    *sealed = 1;
cleanup:
    close(fd);
    return rc;
}
