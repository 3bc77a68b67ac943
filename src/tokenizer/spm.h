/* SentencePiece tokenizer in plain C: reads a serialized ModelProto (the bytes of an
 * spm.model file) and encodes text to the same ids as SentencePiece 0.1.97's
 * `spm_encode --output_format=id`: the model's own normalisation (precompiled charsmap,
 * a Darts-clone double-array trie over a blob of normalised strings), whitespace handling,
 * dummy prefix, unigram Viterbi with SentencePiece's tie-breaking and float/double
 * arithmetic, merged unknowns, user-defined pieces, byte fallback.
 * Also the fairseq / XLM-R id mapping and one word's encoding; src/data/ner_align.h aligns the
 * words of a tagged sentence. Implemented in spm_model.c, spm_normalize.c, spm_unigram.c,
 * spm_bpe.c and spm_encode.c (spm_private.h holds what they share).
 * BPE models are encoded too (bpe_model.cc's merge order); word/char models are rejected
 * with PEP_ERR_FORMAT. No file I/O here: io/spm_file.h reads a model file. */
#ifndef PEP_SPM_H
#define PEP_SPM_H

#include <stddef.h>

struct pep_spm;

enum pep_spm_piece_type {
    PEP_SPM_PIECE_TYPE_NORMAL = 1,
    PEP_SPM_PIECE_TYPE_UNKNOWN = 2,
    PEP_SPM_PIECE_TYPE_CONTROL = 3,
    PEP_SPM_PIECE_TYPE_USER_DEFINED = 4,
    PEP_SPM_PIECE_TYPE_UNUSED = 5,
    PEP_SPM_PIECE_TYPE_BYTE = 6,
};

/* Parses the serialized ModelProto in buf[0..len) (copied; buf may be freed after).
 * Returns PEP_ERR_FORMAT with a message saying what is wrong on malformed bytes, a
 * word/char model, a missing <unk> piece or duplicate pieces. `origin` names the
 * source in messages (a file name) and may be NULL. */
int pep_spm_load(const void *buf, size_t len, const char *origin, struct pep_spm **out);
/* The number of pieces (top-level field 1 messages) of a serialised ModelProto, without
 * loading it. PEP_ERR_FORMAT if the bytes are not protobuf or hold fewer than four pieces;
 * `origin` names the source in messages and may be NULL. */
int pep_spm_piece_count(const void *buf, size_t len, const char *origin, int *pieces);
/* NULL-safe; sets *spm = NULL. */
void pep_spm_destroy(struct pep_spm **spm);

/* Encodes text[0..len) (UTF-8; malformed bytes become U+FFFD as SentencePiece does).
 * Writes at most `cap` SentencePiece ids to `ids` and the number of pieces of the full
 * encoding to *n. Returns PEP_ERR_USAGE (with *n = the count needed) if cap < *n.
 * Thread-safe: the model is read only. */
int pep_spm_encode(const struct pep_spm *spm, const char *text, size_t len, int *ids, int cap,
                   int *n);

int pep_spm_vocab_size(const struct pep_spm *spm);
/* The piece string of SentencePiece id `id` (NUL-terminated), NULL if out of range. */
const char *pep_spm_piece(const struct pep_spm *spm, int id);
int pep_spm_piece_type(const struct pep_spm *spm, int id);
/* The SentencePiece id of an exact piece string, -1 if none. */
int pep_spm_piece_id(const struct pep_spm *spm, const char *piece);
int pep_spm_unk_id(const struct pep_spm *spm);

/* fairseq / XLM-R ids: <s>=0 <pad>=1 </s>=2 <unk>=3, SentencePiece piece i -> i + 1, with
 * the model's own unk/bos/eos(/pad) mapped to 3/0/2(/1); <mask> is the last id. */
int pep_spm_fairseq_id(const struct pep_spm *spm, int spm_id);
/* Number of fairseq ids: pieces + 2 (the <pad> slot and the final <mask>). */
int pep_spm_fairseq_vocab(const struct pep_spm *spm);
int pep_spm_mask_id(const struct pep_spm *spm);

/* Encodes one word on its own (its own dummy prefix), as XTREME / Hugging Face do per
 * word for tagging, into fairseq ids. A non-empty word whose encoding is empty becomes one
 * <unk> (XTREME's rule). Same buffer contract as pep_spm_encode. */
int pep_spm_encode_word(const struct pep_spm *spm, const char *word, size_t len, int *ids,
                        int cap, int *n);

#endif
