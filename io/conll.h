/* CoNLL NER files (`token<TAB>tag` per line, blank line between sentences, UTF-8) into a
 * struct pep_corpus, and where the data files are (<root>/ner/wikiann/<lang>/<split>.txt).
 * None of these functions is collective: each rank that needs a corpus reads it itself. */
#ifndef PEP_IO_CONLL_H
#define PEP_IO_CONLL_H

#include <stddef.h>

#include "core/config.h"
#include "data/corpus.h"

/* Reads `path`. Tolerated: CRLF line ends, a UTF-8 byte-order mark, trailing spaces/tabs,
 * lines of whitespace only (sentence breaks), `-DOCSTART-` lines (skipped, they end a
 * sentence), a missing final blank line or newline. Errors name path:line and what was found:
 * PEP_ERR_FORMAT for a line without exactly two TAB-separated columns, invalid UTF-8 (with the
 * byte offset in the file), a tag outside `tags` (the message lists the valid ones), an empty
 * token or a file without sentences; PEP_ERR_IO for a file that cannot be opened or read (the
 * message names the path and points at PEPRIME_DATA / data.root).
 * max_sentences > 0 keeps only the first max_sentences sentences. The corpus is named `path`'s
 * language folder if it looks like .../<lang>/<split>.txt, else the file name. */
int pep_conll_read(const char *path, const char *const *tags, int ntags, int max_sentences, struct pep_corpus **out);

/* Same, from a text buffer; `origin` names it in messages. */
int pep_conll_parse(const char *buf, size_t len, const char *origin, const char *const *tags, int ntags,
                    int max_sentences, struct pep_corpus **out);

/* The data root: config data.root if set, else $PEPRIME_DATA, else <repo_dir>/../shared/data,
 * where repo_dir NULL means the source tree this was built from (PEP_SOURCE_DIR, if defined).
 * *origin (may be NULL) tells which of the three it was, for messages. PEP_ERR_IO if the folder
 * does not exist; the message names it and the variable to set. */
int pep_data_root(const struct pep_config *cfg, const char *repo_dir, char *buf, size_t len, const char **origin);

/* <root>/ner/wikiann/<lang>/<split>.txt, checked to exist (PEP_ERR_IO naming the path and the
 * setting to change otherwise). */
int pep_data_path(const struct pep_config *cfg, const char *repo_dir, const char *lang, const char *split,
                  char *buf, size_t len);

/* pep_data_path + pep_conll_read with the tag set data.tags and data.max_sentences; the corpus
 * is named `lang`. */
int pep_conll_read_lang(const struct pep_config *cfg, const char *repo_dir, const char *lang, const char *split,
                        struct pep_corpus **out);

#endif
