/* What the checkpoint files share and nothing outside them includes (checkpoint.h is the
 * interface): the writer and reader structs, block and direct-I/O sizes, the running
 * checksum, the attribute helpers, the model-shape attributes and the direct-I/O calls.
 *   checkpoint_attr.c    checksum of float words, attribute write / read helpers
 *   checkpoint_spec.c    the model shape as root attributes: write, read, compare
 *   checkpoint_direct.c  O_DIRECT tensor data for the writer and the reader
 *   checkpoint_write.c   the parallel writer (pep_ckpt_create ... commit / abort)
 *   checkpoint_read.c    the serial reader (pep_ckpt_open ... read_log / close)
 *   checkpoint_verify.c  whole-group walks: statistics and deep verification
 *   checkpoint_dir.c     checkpoint folders: names, keep-last-N rotation, newest valid file */
#ifndef PEP_CHECKPOINT_PRIVATE_H
#define PEP_CHECKPOINT_PRIVATE_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "checkpoint.h"

/* Elements per block when writing or streaming a dataset (verify, stats): 16 MiB of floats. */
#define CK_BLOCK_ELEMS ((size_t)4 << 20)
#define CK_LOG_CHUNK 4096
/* Direct I/O: tensors of at least CK_DIRECT_MIN bytes (HDF5 aligns them to 1 MiB, see
 * H5Pset_alignment in pep_ckpt_create) are written with O_DIRECT in CK_DIRECT_ALIGN-aligned
 * pieces through a CK_DIRECT_BUF staging buffer. */
#define CK_DIRECT_MIN ((size_t)1 << 20)
#define CK_DIRECT_ALIGN ((size_t)4096)
#define CK_DIRECT_BUF ((size_t)8 << 20)
/* Replicated tensors (every rank holds them) are written in pieces of CK_PIECE bytes (a
 * multiple of CK_DIRECT_ALIGN and of the 1 MiB file-system stripes HDF5 aligns tensors to),
 * dealt round-robin to the ranks over all tensors of the file: each write is one or more whole
 * stripes, however many ranks there are, and the ranks share the bytes evenly. */
#define CK_PIECE ((size_t)4 << 20)

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
    uint64_t next_piece; /* round-robin position of the next replicated piece (the same on every rank) */
    long pieces;         /* replicated pieces this rank wrote, and their bytes (a debug line at commit) */
    uint64_t piece_bytes;
    void *stage;     /* CK_DIRECT_BUF bytes, CK_DIRECT_ALIGN-aligned */
    char final_path[PEP_CKPT_PATH_MAX];
    char tmp_path[PEP_CKPT_PATH_MAX + 8];
};

struct pep_ckpt_reader {
    hid_t file;
    void *image;   /* pep_ckpt_load: the whole file in memory (HDF5's core driver reads it), else NULL */
    size_t image_len;
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

/* The HDF5 group holding the rows of parameter group g. */
static inline const char *ck_group_dir(enum pep_group g)
{
    static const char *const dirs[PEP_GROUP_COUNT] = {"/model", "/pe", "/head"};
    return dirs[g];
}

/* A language name usable as /tasks/<lang>: non-empty, short, no '/', not ".". */
static inline int ck_check_lang(const char *lang)
{
    size_t n = strnlen(lang, PEP_CKPT_LANG_MAX);
    return n > 0 && n < PEP_CKPT_LANG_MAX && !strchr(lang, '/') && strcmp(lang, ".") != 0;
}

/* ---- checkpoint_attr.c ---- */

/* The checksum of a format_version fed in pieces: init, update with consecutive runs of bytes,
 * final. Version 1: four multiply-xor lanes over 32-bit words (a short last run is zero-padded
 * to a word); version 2 and up: XXH3-64 (libxxhash, seed 0) of the bytes. */
struct ck_hash {
    int version;
    uint64_t lane[4], n;                  /* version 1 */
    _Alignas(64) unsigned char xxh3[640]; /* version 2: an XXH3_state_t (checkpoint_attr.c) */
};
void ck_init(struct ck_hash *h, int format_version);
void ck_update(struct ck_hash *h, const void *p, size_t bytes);
uint64_t ck_final(struct ck_hash *h);
/* The checksum a file of `format_version` stores for the float32 words x[0..n). */
uint64_t ck_checksum(int format_version, const float *x, size_t n);
/* The 64-bit check of a digest header's first 32 bytes (checkpoint_digest.c): FNV-1a 64 in
 * version 1 headers, XXH3-64 from version 2 on. */
uint64_t ck_header_check(int format_version, const void *p, size_t bytes);

/* Adds n to the bytes the reader has read from checkpoint files (pep_ckpt_bytes_read). */
void ck_count_read(size_t n);

/* Attribute `name` on `obj`: n values (scalar != 0: one scalar) of file type `ftype` from
 * memory type `mtype`; the typed shorthands write one little-endian scalar; ck_attr_str a
 * variable-length UTF-8 string (h5py reads it as str). */
int ck_attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *buf, hsize_t n, int scalar);
int ck_attr_i64(hid_t obj, const char *name, int64_t v);
int ck_attr_i32(hid_t obj, const char *name, int v);
int ck_attr_f64(hid_t obj, const char *name, double v);
int ck_attr_u64(hid_t obj, const char *name, uint64_t v);
int ck_attr_str(hid_t obj, const char *name, const char *s);
/* 1 if `obj` has attribute `name` (no HDF5 error printed either way). */
int ck_attr_exists(hid_t obj, const char *name);
/* Reads a numeric scalar attribute converted to `mtype`; a missing or non-numeric attribute
 * is PEP_ERR_FORMAT naming `file` and `objname`. */
int ck_attr_read_num(hid_t obj, const char *file, const char *objname, const char *name, hid_t mtype, void *out);
/* Reads a string attribute (variable or fixed length) into a pep_alloc'ed buffer, or into
 * buf[len] (cut to fit). */
int ck_attr_read_str(hid_t obj, const char *file, const char *objname, const char *name, char **out);
int ck_attr_read_str_buf(hid_t obj, const char *file, const char *objname, const char *name, char *buf, size_t len);

/* ---- checkpoint_spec.c ---- */

/* The model shape as root attributes (layers hidden heads ... layer_norm_eps, checkpoint.h). */
int ck_write_spec(hid_t root, const struct pep_model_spec *s);
/* Reads them into r->info.spec and sets r->info.has_spec. */
int ck_read_spec(struct pep_ckpt_reader *r, hid_t root);

/* ---- checkpoint_direct.c ---- */

/* Writer: opens / closes this rank's O_DIRECT and buffered descriptors of the tmp file (no
 * descriptors where O_DIRECT is refused or PEP_CKPT_DIRECT=0: HDF5 writes all data). */
int ck_direct_open(struct pep_ckpt_writer *w);
void ck_direct_close(struct pep_ckpt_writer *w);
/* Writer: tensor p's bytes at file address `addr`; owner < 0 each rank writes its share of the
 * aligned blocks (the last rank also the tail), owner >= 0 that rank writes everything. */
int ck_write_tensor_direct(struct pep_ckpt_writer *w, const struct pep_param *p, const float *data, uint64_t addr,
                           int owner);
/* Reader: the file address of dataset d if its `bytes` can be read with direct I/O, else
 * HADDR_UNDEF (HDF5 reads it). */
haddr_t ck_direct_addr(struct pep_ckpt_reader *r, hid_t d, size_t bytes);
/* Reader: `bytes` at `addr` into dst. 0 on success, -1 if direct I/O was refused (read with
 * HDF5 instead), 1 on a short read or another error. */
int ck_direct_read(struct pep_ckpt_reader *r, char *dst, size_t bytes, uint64_t addr);

/* ---- checkpoint_read.c ---- */

/* Reader: dataset d (`path`) stores at least the bytes of `numel` elements (a damaged extent
 * must not make the reader allocate or stream fill values). */
int ck_check_stored(struct pep_ckpt_reader *r, hid_t d, const char *path, size_t numel);
/* Reader: dataset d (`path`) has a checksum attribute equal to `computed`. */
int ck_check_sum(struct pep_ckpt_reader *r, hid_t d, const char *path, uint64_t computed);

#endif
