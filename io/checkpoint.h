/* HDF5 checkpoints: the parallel writer (MPI-IO driver, tmp file + fsync + rename commit),
 * the serial reader with validation, keep-last-N rotation and `--resume auto` discovery.
 *
 * File layout (format_version 2; every float tensor is H5T_IEEE_F32LE on disk, row-major,
 * named exactly as in the parameter table, i.e. Hugging Face XLM-R names):
 *
 *   /                  attrs format_version (int32), stage, created (ISO 8601 UTC),
 *                      git_revision, config (full INI text) (strings), step (int64),
 *                      world_size (int32), rng_state (uint64[n], optional), and, when a
 *                      model spec is given, its shape: layers hidden heads ff vocab
 *                      max_positions type_vocab ntags (int32), head ("tagger"|"mlm"),
 *                      pe_method pe_placement pe_activation (strings), pe_bottleneck
 *                      pe_prefix_length pe_prefix_reparam pe_prefix_hidden pe_lora_rank
 *                      (int32), pe_lora_alpha layer_norm_eps (float64)
 *   /model/<name>      rows of group plm
 *   /pe/<name>         rows of group pe
 *   /head/<name>       rows of group head
 *   /optimizer         attrs t (int64 Adam step count), groups (e.g. "plm")
 *   /optimizer/m/<group>/<name>, /optimizer/v/<group>/<name>   Adam moments
 *   /tasks/<lang>      attrs episode, step (int64), support_loss, query_loss (float64);
 *                      one dataset per inner-set row (/tasks/<lang>/<name>)
 *   /best              finetune only: the model selection's best-so-far weights, so that a
 *                      resumed run keeps them; attrs dev_f1 (float64, the dev entity F1 as a
 *                      fraction, -1 before the first evaluation), step (int64, the step it
 *                      was measured after, 0 for the start weights), groups (e.g. "pe+head")
 *   /best/<group>/<name>   the best-so-far rows (/best/pe/..., /best/head/...)
 *   /log/<series>      1-D float64, chunked, unlimited max size (step, meta_loss, ...)
 *
 * The first 1 MiB is an HDF5 user block holding a digest of every byte after it, written at
 * commit and checked before HDF5 opens the file (checkpoint_digest.h); files written before
 * the digest have no user block and are read unchecked.
 *
 * Every float tensor carries an attribute `checksum` (uint64, pep_ckpt_checksum() of its
 * little-endian float32 bytes) so a flipped bit in raw data is detected on read; HDF5's own
 * metadata is checksummed too (superblock v2+ / object header v2, libver >= 1.8). The reader
 * rejects a float tensor without `checksum` (every format_version wrote them). The hash is
 * what format_version says: 2 (written now) XXH3-64 (libxxhash, seed 0), which
 * `xxhash.xxh3_64_intdigest(d[()].astype("<f4").tobytes())` reproduces from h5py; 1 (read
 * only) four multiply-xor lanes over the 32-bit words with a splitmix64 finish
 * (checkpoint_attr.c). Versions 1 and 2 differ in nothing else.
 *
 * The file never depends on how many ranks wrote it: replicated state is written as whole
 * tensors (each rank writes a slab of rows), per-task state by the rank that owns the task.
 *
 * Writer (collective over `comm`, every rank calls every function with the same metadata):
 *   pep_ckpt_create -> pep_ckpt_write_header -> write_params / write_moments / write_tasks /
 *   write_best / write_log (any order, each at most once per name) -> pep_ckpt_commit (or
 *   pep_ckpt_abort).
 * Each write function agrees on the status across ranks before returning, so all ranks take
 * the same branch (abort on error).
 *
 * Data path: HDF5 writes metadata and small tensors; tensors of >= 1 MiB (contiguous, 1 MiB
 * aligned) are written and read by each rank with O_DIRECT through an 8 MiB staging buffer at
 * the address HDF5 allocated (H5Dget_offset), unaligned tails buffered. Where O_DIRECT is
 * refused, or with PEP_CKPT_DIRECT=0 in the environment, HDF5 moves all data itself. The
 * file is the same either way.
 *
 * Reader (not collective, serial HDF5 driver; any number of processes may read one file at
 * once): pep_ckpt_open (or pep_ckpt_load) -> pep_ckpt_info / check_spec / read_* ->
 * pep_ckpt_close. pep_ckpt_open checks the digest in one pass over the file and lets HDF5 read
 * the file again (a second pass over everything read); pep_ckpt_load reads the file once into
 * memory, checking the digest on the way, and HDF5 reads that copy (the stages' inputs: one
 * read of each file per job, at the cost of the file's size in memory while it is open).
 *
 * Files: checkpoint_write.c (writer), checkpoint_read.c (reader), checkpoint_spec.c (model
 * shape attributes), checkpoint_attr.c (checksum, attribute helpers), checkpoint_direct.c
 * (O_DIRECT data), checkpoint_dir.c (folders: names, rotation, --resume auto);
 * checkpoint_private.h holds what they share. */
#ifndef PEP_CHECKPOINT_H
#define PEP_CHECKPOINT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "model/model.h"
#include "model/params.h"

#define PEP_CKPT_FORMAT_VERSION 2
#define PEP_CKPT_RNG_MAX 64
#define PEP_CKPT_LANG_MAX PEP_LANG_MAX /* a language code, as the config lists them */
#define PEP_CKPT_NAME_MAX 64
#define PEP_CKPT_PATH_MAX 4096

struct pep_ckpt_writer;
struct pep_ckpt_reader;

/* Root attributes given by the writer; `created`, `git_revision`, `world_size` and
 * `format_version` are filled in by pep_ckpt_write_header(). Must be identical on all ranks
 * (checked). */
struct pep_ckpt_header {
    const char *stage;                  /* "pretrain" | "prime" | "finetune" | ... */
    int64_t step;
    const char *config;                 /* the resolved config as INI text */
    const uint64_t *rng_state;          /* replicated RNG state words, or NULL */
    size_t rng_words;                   /* <= PEP_CKPT_RNG_MAX */
    const struct pep_model_spec *spec;  /* model shape attrs, or NULL */
    const char *base_path;              /* a file without the encoder (/model): the checkpoint that holds it */
    const char *base_sha256;            /* ... and that file's SHA-256 (64 hex digits); both NULL otherwise */
};

/* What the reader found in the root attributes. */
struct pep_ckpt_info {
    int format_version;
    char stage[PEP_CKPT_NAME_MAX];
    int64_t step;
    char created[PEP_CKPT_NAME_MAX];
    char git_revision[PEP_CKPT_NAME_MAX];
    int world_size;
    char *config;                       /* owned by the reader */
    uint64_t rng_state[PEP_CKPT_RNG_MAX];
    size_t rng_words;
    int has_spec;                       /* the shape attrs below are present */
    char base_path[PEP_CKPT_PATH_MAX];  /* "" unless the encoder lives in another checkpoint (base_path attr) */
    char base_sha256[72];               /* its SHA-256 (base_sha256 attr) */
    struct pep_model_spec spec;         /* shape fields only (no max_B / max_T / dropout) */
};

/* One task's PE + head state. Every rank passes the same list (lang, owner); only the owner's
 * `state` and scalars are used. `state` holds the floats of the flat-block range of the task
 * groups ([begin, end) from pep_param_table_range), row r at rows[r].offset - begin. */
struct pep_ckpt_task {
    char lang[PEP_CKPT_LANG_MAX];
    int owner;                          /* rank holding the state */
    int64_t episode, step;
    double support_loss, query_loss;
    const float *state;                 /* owner only; ignored elsewhere */
};

struct pep_ckpt_task_info {
    char lang[PEP_CKPT_LANG_MAX];
    int64_t episode, step;
    double support_loss, query_loss;
};

/* Element count, tensor count and L2 norm over the float datasets below one HDF5 group. */
struct pep_ckpt_stats {
    int tensors;
    size_t numel;
    double l2;
};

/* ---- writer (collective) ---- */

/* MPI-IO hints for a new checkpoint file (the checkpoint.* keys of the same names; 0 / NULL =
 * leave the hint to the MPI library and the file system). Striping applies when the file is
 * created (Lustre); unknown hints are ignored by MPI. */
struct pep_ckpt_hints {
    int striping_unit;     /* bytes per stripe */
    int striping_factor;   /* stripes (Lustre OSTs) */
    int cb_nodes;          /* collective-buffering aggregators */
    const char *cb_write;  /* romio_cb_write: "enable", "disable", or NULL / "automatic" */
};

/* Creates `final_path`.tmp with the MPI-IO driver over `comm` (MPI_COMM_SELF for one
 * process), with `hints` (NULL: none). Collective. An existing tmp file from a killed run is
 * replaced. */
int pep_ckpt_create(const char *final_path, MPI_Comm comm, const struct pep_ckpt_hints *hints,
                    struct pep_ckpt_writer **out);
/* Root attributes. Collective; `h` must be identical on all ranks. */
int pep_ckpt_write_header(struct pep_ckpt_writer *w, const struct pep_ckpt_header *h);
/* Every row of `table` in `groups` from the replicated flat block `params` to /model, /pe,
 * /head. Collective: each rank writes a slab of rows of each tensor (no gather, no rank
 * does all the I/O); the replicas must be equal on all ranks (checked by checksum). */
int pep_ckpt_write_params(struct pep_ckpt_writer *w, const struct pep_param_table *table, const float *params,
                          unsigned groups);
/* Adam moments `m`, `v` (flat blocks like params; only the rows in `groups` are read) and
 * the step count `t`. Collective, replicated like params. Either of m and v may be NULL: that
 * set is written by a second call with the other NULL (a sharded optimizer gathers one set at
 * a time into one scratch block); the call that writes m writes /optimizer's attributes. */
int pep_ckpt_write_moments(struct pep_ckpt_writer *w, const struct pep_param_table *table, const float *m,
                           const float *v, unsigned groups, int64_t t);
/* Per-task states of the rows in `groups` (a contiguous group set, e.g. pe+head).
 * Collective: all ranks create every /tasks/<lang> group and dataset, the owner rank writes
 * each task's data (independent transfer; other ranks hold no copy). One task per language. */
int pep_ckpt_write_tasks(struct pep_ckpt_writer *w, const struct pep_param_table *table, unsigned groups,
                         const struct pep_ckpt_task *tasks, int ntasks);
/* /best: the best-so-far weights of a model selection, the rows of `groups` (a contiguous group
 * set, e.g. pe+head) from `state` (layout as struct pep_ckpt_task: row r at rows[r].offset -
 * begin), with the dev F1 they scored (-1: not evaluated yet) and the step after which they
 * did. Collective, replicated like params (checked by checksum); dev_f1 and step must be the
 * same on all ranks (checked). */
int pep_ckpt_write_best(struct pep_ckpt_writer *w, const struct pep_param_table *table, const float *state,
                        unsigned groups, double dev_f1, int64_t step);
/* /log/<name>: `n` float64 values (a whole series, replicated; rank 0's copy is written).
 * Chunked with unlimited size so tools can append. Collective. */
int pep_ckpt_write_log(struct pep_ckpt_writer *w, const char *name, const double *values, size_t n);
/* Closes the file, fsyncs it, renames tmp -> final and fsyncs the directory. Collective;
 * *w is freed and set to NULL whatever the outcome (the tmp file is removed on failure). */
int pep_ckpt_commit(struct pep_ckpt_writer **w);
/* Closes and removes the tmp file; the final name is untouched. Collective, NULL-safe. */
void pep_ckpt_abort(struct pep_ckpt_writer **w);

/* ---- reader (not collective) ---- */

/* Opens and validates a checkpoint: exists, is HDF5, is not truncated, has a supported
 * format_version and every required root attribute. */
int pep_ckpt_open(const char *path, struct pep_ckpt_reader **out);
/* The same checks and errors, but the file is read once, into memory (its size: free it soon with
 * pep_ckpt_close), and every read below is served from there. */
int pep_ckpt_load(const char *path, struct pep_ckpt_reader **out);
void pep_ckpt_close(struct pep_ckpt_reader **r);
const struct pep_ckpt_info *pep_ckpt_info(const struct pep_ckpt_reader *r);
const char *pep_ckpt_path(const struct pep_ckpt_reader *r);
/* Compares the stored model shape attrs with `spec`; the first difference is an error
 * naming the attribute and both values. PEP_ERR_FORMAT if the file has no shape attrs. */
int pep_ckpt_check_spec(const struct pep_ckpt_reader *r, const struct pep_model_spec *spec);
/* A model of the file's own shape (its shape attributes; forward buffers for one short
 * sentence: a model to read, convert or copy, not to train) holding every weight of the file;
 * *groups = the parameter groups the file holds (all, or all but the head for a base without
 * one, whose model gets a zero one-tag head). PEP_ERR_FORMAT if the file has no shape
 * attributes. */
int pep_ckpt_read_model(struct pep_ckpt_reader *r, const char *base, struct pep_model **out, unsigned *groups);
/* Reads every row in `groups` into the flat block `params`; each dataset must exist with the
 * row's shape, a float32 type and a matching checksum. */
/* As pep_ckpt_read_params, also for a file that names its encoder's checkpoint instead of holding
 * it (base_path / base_sha256, checkpoint.encoder = reference): the plm group then comes from
 * `base` (NULL: the named path), after checking its SHA-256 and shape; a missing or different
 * base is PEP_ERR_USAGE saying which file is wanted. Not collective. */
int pep_ckpt_read_params_based(struct pep_ckpt_reader *r, const char *base, const struct pep_param_table *table,
                               float *params, unsigned groups);
int pep_ckpt_read_params(struct pep_ckpt_reader *r, const struct pep_param_table *table, float *params,
                         unsigned groups);
/* Reads the Adam moments of the rows in `groups` and the step count; m or v NULL: not read. */
int pep_ckpt_read_moments(struct pep_ckpt_reader *r, const struct pep_param_table *table, float *m, float *v,
                          unsigned groups, int64_t *t);
/* The best-so-far weights of /best into `state` (layout as in pep_ckpt_write_best), their dev
 * F1 and step; state NULL: only dev_f1 and step (table and groups unused). *found = 0 and
 * PEP_OK when the file has no /best (another stage, or a finetune checkpoint written before
 * /best existed); a /best with a missing or damaged row or attribute is PEP_ERR_FORMAT. */
int pep_ckpt_read_best(struct pep_ckpt_reader *r, const struct pep_param_table *table, unsigned groups,
                       float *state, double *dev_f1, int64_t *step, int *found);
/* Number of task states and the i-th (by language name). */
int pep_ckpt_task_count(struct pep_ckpt_reader *r, int *n);
int pep_ckpt_task_info(struct pep_ckpt_reader *r, int i, struct pep_ckpt_task_info *info);
/* One language's state into `state` (layout as struct pep_ckpt_task); `info` may be NULL. */
int pep_ckpt_read_task(struct pep_ckpt_reader *r, const char *lang, const struct pep_param_table *table,
                       unsigned groups, float *state, struct pep_ckpt_task_info *info);
/* Log series: count, i-th name (by name), and a series' values (pep_alloc'ed, pep_free). */
int pep_ckpt_log_count(struct pep_ckpt_reader *r, int *n);
int pep_ckpt_log_name(struct pep_ckpt_reader *r, int i, char *name, size_t len);
int pep_ckpt_read_log(struct pep_ckpt_reader *r, const char *name, double **values, size_t *n);
/* Stats over every float dataset below `group` ("/model", "/optimizer/m", "/tasks/en", ...);
 * a missing group gives zero counts. */
int pep_ckpt_group_stats(struct pep_ckpt_reader *r, const char *group, struct pep_ckpt_stats *st);
/* Reads every float dataset in the file and checks its checksum (deep validation). */
int pep_ckpt_verify(struct pep_ckpt_reader *r);

/* ---- files in a checkpoint folder (not collective: call on one rank) ---- */

/* "<dir>/<stage>-step<8-digit step>.h5" */
int pep_ckpt_name(const char *dir, const char *stage, int64_t step, char *buf, size_t len);
/* Deletes all but the `keep` highest-step "<stage>-step*.h5" files in `dir`, and stale
 * "<stage>-step*.h5.tmp" files left by killed writers. keep >= 1. */
int pep_ckpt_rotate(const char *dir, const char *stage, int keep);
/* The newest "<stage>-step*.h5" in `dir` that loads (pep_ckpt_load) and (deep != 0) verifies,
 * left open in *out (its name in path). Damaged newer files are reported with pep_warn and
 * skipped. *found = 0, *out = NULL and PEP_OK if there is none. Each candidate is read once. */
int pep_ckpt_load_latest(const char *dir, const char *stage, int deep, char *path, size_t len,
                         struct pep_ckpt_reader **out, int *found);
/* The same, closing the file: only its name. */
int pep_ckpt_find_latest(const char *dir, const char *stage, int deep, char *path, size_t len, int *found);

/* Bytes this process's checkpoint reader has read from files so far: every byte of the digest
 * checks, of pep_ckpt_load's whole-file reads and of pep_ckpt_open's direct-I/O tensor reads
 * (HDF5's own reads of a file opened with pep_ckpt_open, metadata and tensors under 1 MiB, are
 * not seen). The writer's digest pass at commit does not count. Local. */
uint64_t pep_ckpt_bytes_read(void);

/* The `checksum` this peprime writes for float32 words x[0..n): XXH3-64 of their bytes
 * (format_version 2). */
uint64_t pep_ckpt_checksum(const float *x, size_t n);

#endif
