/* What the SentencePiece files share and nothing outside them includes (spm.h is the
 * interface): the model struct, its byte tries, and the normaliser and segmenter calls.
 *   spm_model.c      ModelProto parsing, the tries, piece and id accessors
 *   spm_normalize.c  the model's normalisation (charsmap, whitespace, dummy prefix)
 *   spm_unigram.c    unigram Viterbi segmentation
 *   spm_bpe.c        BPE merges
 *   spm_encode.c     text -> ids (unknown merging, byte fallback), one word -> fairseq ids */
#ifndef PEP_SPM_PRIVATE_H
#define PEP_SPM_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/spm.h"

/* A byte trie with a direct table for the root and a hash table for deeper edges. */

struct spm_trie {
    int32_t root[256];
    int32_t *value; /* per node: id or -1 */
    int n_nodes, cap_nodes;
    uint64_t *keys; /* (parent << 8 | byte) + 1; 0 = empty slot */
    int32_t *child;
    int bits;
};

static inline uint64_t trie_hash(uint64_t key, int bits)
{
    return (key * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
}

static inline int32_t trie_child(const struct spm_trie *t, int32_t node, unsigned char c)
{
    if (node == 0) return t->root[c];
    uint64_t key = (((uint64_t)node << 8) | c) + 1;
    uint64_t mask = ((uint64_t)1 << t->bits) - 1;
    for (uint64_t h = trie_hash(key, t->bits);; h = (h + 1) & mask) {
        if (t->keys[h] == key) return t->child[h];
        if (t->keys[h] == 0) return -1;
    }
}

/* The id stored under key s[0..len), -1 if none. */
static inline int trie_lookup(const struct spm_trie *t, const char *s, size_t len)
{
    if (!t->value) return -1;
    int32_t node = 0;
    for (size_t i = 0; i < len && node >= 0; i++) node = trie_child(t, node, (unsigned char)s[i]);
    return node < 0 ? -1 : t->value[node];
}

struct pep_spm {
    int model_type;    /* 1 unigram, 2 BPE */
    int n_pieces;
    char *blob;        /* all pieces, each NUL-terminated */
    uint32_t *off;     /* (n_pieces) offset of piece i in blob */
    uint32_t *plen;    /* (n_pieces) byte length of piece i */
    float *scores;     /* (n_pieces) */
    unsigned char *types;
    int unk_id;        /* the UNKNOWN piece */
    int bos_id, eos_id, pad_id; /* trainer_spec ids */
    int byte_fallback, treat_ws_as_suffix;
    float min_score, max_score;
    int byte_ids[256];
    /* normaliser */
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    uint32_t *darts;   /* (n_darts) double-array units, NULL for identity */
    size_t n_darts;
    char *norm;        /* normalised strings, NUL-terminated, plus one extra NUL */
    size_t norm_len;
    /* tries */
    struct spm_trie vocab; /* NORMAL, USER_DEFINED, UNUSED pieces (the Viterbi lattice) */
    struct spm_trie all;   /* every piece, for piece -> id */
    struct spm_trie user;  /* USER_DEFINED pieces (kept out of normalisation) */
    int n_user;
};

/* ---- spm_normalize.c ---- */

/* A growing byte buffer that starts in `local`. */
struct spm_buf {
    char *p;
    size_t n, cap;
    char local[1024];
};

/* The model's normalisation of text[0..len) into out (out->p = out->local, out->cap =
 * sizeof out->local on entry; a larger buffer is pep_alloc'ed). PEP_ERR_FORMAT on a corrupt
 * charsmap. */
int spm_normalize(const struct pep_spm *m, const char *text, size_t len, struct spm_buf *out);

/* ---- spm_unigram.c ---- */

struct spm_node {
    float score;   /* best path score ending here */
    int start;     /* byte where the last piece starts, -1 = not reached */
    int id;
};

/* Unigram Viterbi over the normalised norm[0..size): best[0..size] gets the lattice, rev the
 * end bytes of the pieces of the best path from the last to the first (*n_rev of them). */
int spm_viterbi(const struct pep_spm *m, const char *norm, int size, struct spm_node *best, int *rev, int *n_rev);

/* ---- spm_bpe.c ---- */

/* BPE over norm[0..size): triples (id, start, len) into out (room for 3 * size + 3);
 * *n_out = 3 * pieces. */
int spm_bpe_encode(const struct pep_spm *m, const char *norm, int size, int *out, int *n_out);

#endif
