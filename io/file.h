/* Reading a whole file into memory: the one reader behind every file peprime parses whole
 * (SentencePiece models, JSON, CoNLL and WikiAnn text). Not collective. */
#ifndef PEP_IO_FILE_H
#define PEP_IO_FILE_H

#include <stddef.h>

/* Size limits of the files read whole: a SentencePiece model, a JSON file (config.json, a
 * results file), a data file (no limit but memory). */
#define PEP_FILE_MAX_SPM ((size_t)256 << 20)
#define PEP_FILE_MAX_JSON ((size_t)64 << 20)
#define PEP_FILE_MAX_DATA ((size_t)-2)

/* Reads the whole file at `path`, at most max_bytes of it, into a fresh buffer with a NUL
 * after the last byte (*data, freed with pep_free; *len excludes the NUL). `what` names the
 * file's kind in messages ("SentencePiece model", "JSON file"). Pipes are read to their end.
 * PEP_ERR_IO if it cannot be opened or read or is a folder, PEP_ERR_FORMAT if it is longer
 * than max_bytes, PEP_ERR_NOMEM. On failure *data is NULL. Not collective. */
int pep_file_read(const char *path, const char *what, size_t max_bytes, char **data, size_t *len);

#endif
