/* Whole-file digest of a checkpoint, checked before any HDF5 call parses the file (HDF5 1.10
 * loops or crashes on some damaged files: docs/fuzzing.md). The writer reserves an HDF5 user
 * block of PEP_CKPT_USERBLOCK bytes at the start of the file (H5Pset_userblock; h5dump, h5py
 * and HDF5 itself skip it) and, after the file is closed and before the atomic rename, fills
 * its first 40 bytes (little-endian):
 *
 *   0  magic "PEPCKDG3"            24  digest (uint64): XXH3-64 (seed 0) of the pieces'
 *   8  user-block size (uint32)         digests, each the XXH3-64 of a PEP_CKPT_DIGEST_PIECE-
 *  12  piece size (uint32)              byte piece of the covered bytes (the last one shorter)
 *  16  covered bytes (uint64):          as 8 little-endian bytes, in file order
 *      file size - user-block size 32  header check (uint64): XXH3-64 of bytes 0 .. 31
 *
 * Pieces let every rank of the writer hash its own block of them (pep_ckpt_digest_hash_share)
 * and rank 0 seal the file from all of them; the result does not depend on the rank count.
 * The magic's last character is the digest scheme; older files are still read: "PEPCKDG2"
 * (bytes 12..15 zero) is the XXH3-64 of all covered bytes at once; "PEPCKDG1" (format_version
 * 1) the version-1 tensor checksum's hash of the covered bytes taken as 32-bit words (a short
 * tail zero-padded to one word), with an FNV-1a 64 header check.
 *
 * The reader reads the first 8 bytes: the HDF5 signature there is a file written before the
 * digest (no user block: read as before, unchecked); the magic means the header must be
 * intact, the file as long as it says and every byte after the user block match the digest;
 * anything else is not a peprime checkpoint or has a damaged header. Every failure is
 * PEP_ERR_FORMAT naming the file, before HDF5 sees it. Not collective; no HDF5 calls. Every byte
 * these functions read from a checkpoint counts in pep_ckpt_bytes_read(); the writer's seal does
 * not count. */
#ifndef PEP_CHECKPOINT_DIGEST_H
#define PEP_CHECKPOINT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* 1 MiB: HDF5 wants a user block at least as large as the file's object alignment (1 MiB,
 * pep_ckpt_create), and tensor data then stays 1 MiB-aligned in the file (O_DIRECT). Only the
 * header's 40 bytes are written: the rest is a hole in the file (no disk space). */
#define PEP_CKPT_USERBLOCK (1 << 20)

/* 16 MiB: the pieces of the covered bytes that are hashed one by one (scheme 3). */
#define PEP_CKPT_DIGEST_PIECE ((uint64_t)16 << 20)

/* Pieces of a checkpoint of `size` bytes (its user block included). */
uint64_t pep_ckpt_digest_npieces(uint64_t size);
/* Sealing in parts, for the ranks of a writer: share `share` of `shares` hashes its contiguous
 * block of the npieces pieces of the closed, unsealed checkpoint at path into hashes[] (the
 * other entries are left alone), reading with O_DIRECT where it can; then one process writes
 * the header from all npieces hashes with pep_ckpt_digest_seal_pieces. Both fail with
 * PEP_ERR_IO if the file's size no longer gives npieces pieces. */
int pep_ckpt_digest_hash_share(const char *path, int share, int shares, uint64_t *hashes, uint64_t npieces);
int pep_ckpt_digest_seal_pieces(const char *path, const uint64_t *hashes, uint64_t npieces);
/* Both in one process: writes the header of a closed checkpoint whose first
 * PEP_CKPT_USERBLOCK bytes are the reserved user block (reads the whole file once). */
int pep_ckpt_digest_seal(const char *path);

/* Checks a checkpoint before it is opened: *sealed = 1 when it has a digest (and it matched),
 * 0 when it was written before the digest existed (HDF5 signature at offset 0). */
int pep_ckpt_digest_check(const char *path, int *sealed);

/* The same checks, reading the file once into memory on the way: *image (CK_DIRECT_ALIGN-aligned,
 * free() it) holds its *len bytes, the user block as zeros after the header (HDF5 never reads
 * it), so HDF5 can open the copy without reading the file again. The aligned part is read with
 * O_DIRECT where the file system allows it (not with PEP_CKPT_DIRECT=0). Fails as
 * pep_ckpt_digest_check does, with the same messages; nothing is returned on failure. */
int pep_ckpt_digest_load(const char *path, void **image, size_t *len, int *sealed);

#endif
