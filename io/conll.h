/* CoNLL-style NER files into a struct pep_corpus, and where the data files are.
 *
 * A file holds one word per line, a blank line between sentences. The token is the first
 * column and the tag the last; columns in between (POS, chunk, ...) are ignored. Columns are
 * TAB-separated (data.separator = tab) or separated by runs of spaces / TABs (whitespace).
 * Lines whose first column is `-DOCSTART-` or `-X-` (CoNLL-2003 document markers, conlleval's
 * boundary token) end the sentence and are skipped. Tags are written in one scheme
 * (data.scheme): IOB2 (B- opens every entity), IOB1 (B- only between two adjacent entities of
 * one type) or IOBES (B-, I-, E- end, S- single). The reader turns them into the IOB2 tag ids
 * of data.tags that the model trains on: IOB2 tags are kept as written (so strict IOB2
 * evaluation still sees ill-formed ones); IOB1 and IOBES tags are re-tagged so that each
 * chunk conlleval's rules find in the file (IOBES: with the usual E-/S- extension of those
 * rules, docs/config.md) becomes B-X I-X ... An entity type that has no B-/I- tag in data.tags
 * is an error listing every such type with its count and first line (data.unknown_types =
 * error), or is read as O and counted (data.unknown_types = O).
 * None of these functions is collective: each rank that needs a corpus reads it itself. */
#ifndef PEP_IO_CONLL_H
#define PEP_IO_CONLL_H

#include <stddef.h>

#include "config/config.h"
#include "data/corpus.h"

enum pep_conll_separator { PEP_CONLL_SEPARATOR_TAB, PEP_CONLL_SEPARATOR_WHITESPACE };
enum pep_conll_scheme { PEP_CONLL_SCHEME_IOB2, PEP_CONLL_SCHEME_IOB1, PEP_CONLL_SCHEME_IOBES };

struct pep_conll_options {
    enum pep_conll_separator separator;
    enum pep_conll_scheme scheme;
    int unknown_to_o;  /* 1: entity types outside the tag set are read as O */
    int max_sentences; /* > 0: keep only the first max_sentences sentences */
};

/* What the reader changed, for the caller to report. */
struct pep_conll_stats {
    long unknown_to_o;  /* tags of unknown entity types read as O */
    char unknown[256];  /* "DATE 12, MISC 3" */
};

/* tab, iob2, unknown types are errors, all sentences. */
void pep_conll_default_options(struct pep_conll_options *o);
/* data.separator, data.scheme, data.unknown_types and data.max_sentences of cfg. */
void pep_conll_options_from_config(const struct pep_config *cfg, struct pep_conll_options *o);

/* Reads `path`. Tolerated: CRLF line ends, a UTF-8 byte-order mark, trailing spaces/tabs,
 * lines of whitespace only (sentence breaks), a missing final blank line or newline. Errors
 * name path:line and what was found: PEP_ERR_FORMAT for a line with fewer than two columns,
 * invalid UTF-8 (with the byte offset in the file), a tag that is not of the scheme, a tag of
 * the scheme whose IOB2 form is missing from `tags`, unknown entity types (all of them, with
 * counts and first lines), an empty token or a file without sentences; PEP_ERR_IO for a file
 * that cannot be opened or read. `tags` is the IOB2 tag set (O, B-<type>, I-<type>). `stats`
 * may be NULL. The corpus is named `path`'s folder if it looks like .../<lang>/<split>.txt,
 * else the file name. */
int pep_conll_read(const char *path, const char *const *tags, int ntags, const struct pep_conll_options *o,
                   struct pep_corpus **out, struct pep_conll_stats *stats);

/* The blanks the reader trims and splits columns on: space, TAB, CR, VT, FF. */
int pep_conll_is_blank(char ch);

/* Is the first word of the line [s, e), after any leading blanks, a -DOCSTART- or -X- marker
 * (which the reader takes for a sentence boundary)? */
int pep_conll_is_marker(const char *s, const char *e);

/* Same, from a text buffer; `origin` names it in messages. */
int pep_conll_parse(const char *buf, size_t len, const char *origin, const char *const *tags, int ntags,
                    const struct pep_conll_options *o, struct pep_corpus **out, struct pep_conll_stats *stats);

/* The data root: config data.root if set, else $PEPRIME_DATA, else <repo_dir>/../shared/data,
 * where repo_dir NULL means the source tree this was built from (PEP_SOURCE_DIR, if defined).
 * *origin (may be NULL) tells which of the three it was, for messages. PEP_ERR_IO if the folder
 * does not exist; the message names it and the variable to set. */
int pep_data_root(const struct pep_config *cfg, const char *repo_dir, char *buf, size_t len, const char **origin);

/* The file of one language and split, checked to exist (PEP_ERR_IO naming the path and the
 * setting to change otherwise): data.path with {lang} and {split} replaced (a relative result
 * is taken under the data root), or <root>/ner/wikiann/<lang>/<split>.txt when data.path is
 * empty. PEP_ERR_USAGE for a data.path with another {placeholder}. */
int pep_data_path(const struct pep_config *cfg, const char *repo_dir, const char *lang, const char *split,
                  char *buf, size_t len);

/* pep_data_path + pep_conll_read with the tag set data.tags and the options of cfg; the corpus
 * is named `lang`. `stats` may be NULL. */
int pep_conll_read_lang(const struct pep_config *cfg, const char *repo_dir, const char *lang, const char *split,
                        struct pep_corpus **out, struct pep_conll_stats *stats);

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available), or 0 if it is invalid or a
 * NUL byte: no overlong forms, surrogates or code points above U+10FFFF (RFC 3629). The one
 * UTF-8 rule of the readers of user text files (conll, wikiann). */
size_t pep_utf8_seq(const unsigned char *s, size_t n);

#endif
