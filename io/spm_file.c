/* Reading SentencePiece model files (whole, or only counting their pieces) and writing spm training text from the CoNLL files (read by
 * io/conll.c, the reader every stage uses). */
#include "spm_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conll.h"
#include "core/error.h"
#include "core/rng.h"
#include "file.h"

int pep_spm_read_file(const char *path, struct pep_spm **out)
{
    char *data = NULL;
    size_t len = 0;
    PEP_CHECK(path && out, PEP_ERR_USAGE, "pep_spm_read_file: NULL argument");
    *out = NULL;
    int rc = pep_file_read(path, "SentencePiece model", PEP_FILE_MAX_SPM, &data, &len);
    if (rc != PEP_OK) {
        pep_error_trace(rc, __FILE__, __LINE__, __func__);
        return rc;
    }
    if (len == 0) {
        pep_free(data);
        PEP_FAIL(PEP_ERR_FORMAT, "'%s' is empty, not a SentencePiece model (train one with "
                                 "`peprime tokenizer train`)", path);
    }
    rc = pep_spm_load(data, len, path, out);
    pep_free(data);
    if (rc != PEP_OK) pep_error_trace(rc, __FILE__, __LINE__, __func__);
    return rc;
}

int pep_spm_count_pieces(const char *path, int *pieces)
{
    char *data = NULL;
    size_t len = 0;
    PEP_CALL(pep_file_read(path, "SentencePiece model", PEP_FILE_MAX_SPM, &data, &len));
    int rc = pep_spm_piece_count(data, len, path, pieces);
    pep_free(data);
    if (rc != PEP_OK) pep_error_trace(rc, __FILE__, __LINE__, __func__);
    return rc;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int pep_spm_write_text(const struct pep_config *cfg, const char *const *langs, int n_langs, const char *split,
                       long per_lang, uint64_t seed, FILE *out, long *n_lines)
{
    int rc = PEP_OK;
    struct pep_corpus *c = NULL;
    long *pick = NULL, total = 0;
    PEP_CHECK(cfg && langs && split && out && n_langs > 0, PEP_ERR_USAGE, "pep_spm_write_text: bad arguments");
    /* every sentence is read (the sample below picks from all of them), by the stages' reader */
    struct pep_config all = *cfg;
    all.data.max_sentences = 0;
    for (int l = 0; l < n_langs; l++) {
        PEP_CALL_GOTO(rc, pep_conll_read_lang(&all, NULL, langs[l], split, &c, NULL));
        long ns = c->nsent;
        long keep = (per_lang > 0 && per_lang < ns) ? per_lang : ns;
        PEP_ALLOC_GOTO(rc, pick, ns > 0 ? (size_t)ns : 1);
        for (long i = 0; i < ns; i++) pick[i] = i;
        if (keep < ns) {
            struct pep_rng r;
            pep_rng_seed(&r, seed, (uint64_t)l, 0x53504d); /* "SPM" stream */
            for (long i = 0; i < keep; i++) {
                long k = i + (long)pep_rng_below(&r, (uint64_t)(ns - i));
                long t = pick[i];
                pick[i] = pick[k];
                pick[k] = t;
            }
            qsort(pick, (size_t)keep, sizeof(*pick), cmp_long);
        }
        for (long i = 0; i < keep; i++) {
            int s = (int)pick[i];
            for (int j = 0; j < pep_corpus_sentence_len(c, s); j++) {
                const char *w = pep_corpus_word(c, s, j);
                PEP_CHECK_GOTO(rc, (j == 0 || fputc(' ', out) != EOF) && fputs(w, out) != EOF, PEP_ERR_IO,
                               "short write of the training text: %s", strerror(errno));
            }
            PEP_CHECK_GOTO(rc, fputc('\n', out) != EOF, PEP_ERR_IO, "short write of the training text: %s",
                           strerror(errno));
        }
        total += keep;
        pep_corpus_destroy(&c);
        pep_free(pick);
        pick = NULL;
    }
    if (n_lines) *n_lines = total;
cleanup:
    pep_corpus_destroy(&c);
    pep_free(pick);
    return rc;
}
