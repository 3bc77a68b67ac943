/* WikiAnn as it is distributed, into the files the stages read (`peprime data convert`).
 *
 * Two layouts are read into a struct pep_corpus:
 *   rahimi    the balanced splits of Rahimi, Li and Cohn 2019 (`<lang>/train`, `dev`, `test`), or
 *             XTREME's copies of them (`train-<lang>.tsv`): one `<lang>:token<TAB>tag` line per
 *             word, a blank line between sentences. The `<lang>:` prefix is stripped and must be
 *             the language asked for; XTREME's files carry no prefix and are read as written.
 *   hf-jsonl  the Hugging Face `wikiann` dataset exported with `to_json` (JSON lines): one object
 *             per line with `tokens` (strings) and `ner_tags` (integer ids into a label list, or
 *             tag strings); `langs`, when present, must name the language; other keys (`spans`)
 *             are ignored.
 * Both check every token (not empty, no TAB, newline or NUL byte, valid UTF-8, not a word that
 * peprime's reader takes for a sentence boundary: `-DOCSTART-`, `-X-`) and every tag (in the tag
 * set), and repair IOB2 as the staged data was: an `I-X` that follows neither `B-X` nor `I-X`
 * becomes `B-X`, counted. Errors are PEP_ERR_FORMAT naming `origin:line` and what to do.
 *
 * pep_wikiann_write writes a corpus as `token<TAB>tag` lines, a blank line after each sentence
 * (what io/conll.c reads with the default data.* settings), after reading the text back through
 * pep_conll_parse and checking it gives the same words and tags. Nothing here is collective. */
#ifndef PEP_IO_WIKIANN_H
#define PEP_IO_WIKIANN_H

#include <stddef.h>

#include "data/corpus.h"

enum pep_wikiann_format { PEP_WIKIANN_FORMAT_RAHIMI, PEP_WIKIANN_FORMAT_HF_JSONL };

/* WikiAnn's tag set, and the label order of the Hugging Face dataset's ner_tags (ids 0..6). */
#define PEP_WIKIANN_TAGS "O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC"

/* What a read found and changed, for the caller's table. */
struct pep_wikiann_stats {
    long sentences, tokens;
    long repaired;      /* I-X not after B-X / I-X, written as B-X */
    long prefixes;      /* rahimi: `<lang>:` prefixes stripped (0: a file without them) */
    long empty;         /* hf-jsonl: objects with no tokens, skipped */
};

/* "rahimi" | "hf-jsonl" -> format; PEP_ERR_USAGE naming both otherwise. */
int pep_wikiann_format_parse(const char *name, enum pep_wikiann_format *out);
const char *pep_wikiann_format_name(enum pep_wikiann_format f);

/* Checks a tag set for conversion: an `O`, every other tag `B-<type>` or `I-<type>`, and a
 * `B-<type>` for every `I-<type>` (the IOB2 repair writes it). PEP_ERR_USAGE naming `what`
 * ("--tags") otherwise. */
int pep_wikiann_check_tags(const char *const *tags, int ntags, const char *what);

/* Parses `len` bytes of one file in `format`; `origin` names it in messages, `lang` is the
 * language the file must hold. `tags` is the tag set (hf-jsonl: the label list, id = index).
 * The corpus is named `lang`, its tag set is `tags`. `stats` may be NULL. */
int pep_wikiann_parse(enum pep_wikiann_format format, const char *buf, size_t len, const char *origin,
                      const char *lang, const char *const *tags, int ntags, struct pep_corpus **out,
                      struct pep_wikiann_stats *stats);

/* Is `path` text at all? PEP_ERR_FORMAT for a Parquet file (its `PAR1` magic or a .parquet name),
 * an Arrow file (a datasets cache) or a gzip / tar archive, saying how to get text from it
 * (`lang` names the language in the hint); PEP_ERR_IO if it cannot be read. */
int pep_wikiann_sniff(const char *path, const char *lang);

/* pep_wikiann_parse of the file at `path`. Before parsing, a Parquet file (by its `PAR1` magic or
 * a .parquet name), an Arrow file or a gzip / tar archive is PEP_ERR_FORMAT saying how to turn it
 * into what is read here; a file that cannot be read is PEP_ERR_IO. */
int pep_wikiann_read(enum pep_wikiann_format format, const char *path, const char *lang, const char *const *tags,
                     int ntags, struct pep_corpus **out, struct pep_wikiann_stats *stats);

/* `c` as the text pep_wikiann_write writes (one pep_alloc'ed buffer, *len bytes; free it with
 * pep_free), read back with pep_conll_parse and compared with `c` (PEP_ERR_INTERNAL, naming
 * `origin`, on a difference). */
int pep_wikiann_render(const struct pep_corpus *c, const char *origin, char **text, size_t *len);

/* Writes `c` to `path` (`token<TAB>tag`, a blank line after each sentence, LF line ends):
 * parent folders are created, the text (pep_wikiann_render, checked) is written to `path`.tmp,
 * fsynced and renamed over `path`.
 * PEP_ERR_IO on a failed write (the .tmp is removed). Does not check whether `path` exists:
 * the caller decides about overwriting. */
int pep_wikiann_write(const char *path, const struct pep_corpus *c);

#endif
