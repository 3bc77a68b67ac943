/* Reading SentencePiece model files and writing spm training text from CoNLL files. */
#include "spm_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

/* Reads a whole file into a fresh buffer (NUL-terminated); caller frees with pep_free. */
static int read_all(const char *path, const char *what, char **data, size_t *len)
{
    int rc = PEP_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    PEP_CHECK(f, PEP_ERR_IO, "cannot open %s '%s': %s", what, path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    PEP_ALLOC_GOTO(rc, buf, cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
        if (n == cap) {
            char *bigger;
            PEP_ALLOC_GOTO(rc, bigger, 2 * cap + 1);
            memcpy(bigger, buf, n);
            pep_free(buf);
            buf = bigger;
            cap *= 2;
        }
    }
    PEP_CHECK_GOTO(rc, !ferror(f), PEP_ERR_IO, "error reading %s '%s': %s", what, path,
                   strerror(errno));
    buf[n] = 0;
    *data = buf;
    *len = n;
    buf = NULL;
cleanup:
    pep_free(buf);
    fclose(f);
    return rc;
}

int pep_spm_read_file(const char *path, struct pep_spm **out)
{
    char *data = NULL;
    size_t len = 0;
    PEP_CHECK(path && out, PEP_ERR_USAGE, "pep_spm_read_file: NULL argument");
    *out = NULL;
    int rc = read_all(path, "SentencePiece model", &data, &len);
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

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Joins the CoNLL file text[0..len) into sentences in place-independent storage:
 * out gets "tok tok tok\n" per sentence, starts[i] its offset. */
static int conll_sentences(const char *path, const char *text, size_t len, char **joined,
                           long **starts, long *n_sent)
{
    int rc = PEP_OK;
    char *j = NULL;
    long *st = NULL, cap_st = 1024, ns = 0;
    PEP_ALLOC(j, len + 2);
    PEP_ALLOC_GOTO(rc, st, cap_st);
    size_t o = 0;
    int in_sentence = 0;
    long line_no = 0;
    for (size_t p = 0; p < len;) {
        const char *line = text + p;
        const char *nl = memchr(line, '\n', len - p);
        size_t ll = nl ? (size_t)(nl - line) : len - p;
        p += ll + (nl ? 1 : 0);
        line_no++;
        if (ll > 0 && line[ll - 1] == '\r') ll--;
        if (ll == 0) {
            if (in_sentence) j[o++] = '\n';
            in_sentence = 0;
            continue;
        }
        PEP_CHECK_GOTO(rc, !memchr(line, '\0', ll), PEP_ERR_FORMAT,
                       "%s:%ld: a NUL byte in the line; the file must be UTF-8 text", path, line_no);
        const char *tab = memchr(line, '\t', ll);
        PEP_CHECK_GOTO(rc, tab, PEP_ERR_FORMAT,
                       "%s:%ld: expected 'token<TAB>tag', found no TAB", path, line_no);
        size_t tl = (size_t)(tab - line);
        if (!in_sentence) {
            if (ns == cap_st) {
                long *bigger;
                PEP_ALLOC_GOTO(rc, bigger, 2 * cap_st);
                memcpy(bigger, st, sizeof(*st) * (size_t)ns);
                pep_free(st);
                st = bigger;
                cap_st *= 2;
            }
            st[ns++] = (long)o;
            in_sentence = 1;
        } else {
            j[o++] = ' ';
        }
        memcpy(j + o, line, tl);
        o += tl;
    }
    if (in_sentence) j[o++] = '\n';
    *joined = j;
    *starts = st;
    *n_sent = ns;
    return PEP_OK;
cleanup:
    pep_free(j);
    pep_free(st);
    return rc;
}

int pep_spm_write_text(const char *root, const char *const *langs, int n_langs, const char *split,
                       long per_lang, uint64_t seed, FILE *out, long *n_lines)
{
    int rc = PEP_OK;
    char path[4096];
    char *text = NULL, *joined = NULL;
    long *starts = NULL, *pick = NULL, total = 0;
    size_t len;
    PEP_CHECK(root && langs && split && out && n_langs > 0, PEP_ERR_USAGE,
              "pep_spm_write_text: bad arguments");
    for (int l = 0; l < n_langs; l++) {
        long ns = 0;
        snprintf(path, sizeof(path), "%s/ner/wikiann/%s/%s.txt", root, langs[l], split);
        PEP_CALL_GOTO(rc, read_all(path, "CoNLL file", &text, &len));
        PEP_CALL_GOTO(rc, conll_sentences(path, text, len, &joined, &starts, &ns));
        long keep = (per_lang > 0 && per_lang < ns) ? per_lang : ns;
        PEP_ALLOC_GOTO(rc, pick, ns > 0 ? ns : 1);
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
            const char *s = joined + starts[pick[i]];
            size_t sl = (size_t)(strchr(s, '\n') - s) + 1;
            PEP_CHECK_GOTO(rc, fwrite(s, 1, sl, out) == sl, PEP_ERR_IO,
                           "short write of the training text: %s", strerror(errno));
        }
        total += keep;
        pep_free(text);
        pep_free(joined);
        pep_free(starts);
        pep_free(pick);
        text = joined = NULL;
        starts = pick = NULL;
    }
    if (n_lines) *n_lines = total;
cleanup:
    pep_free(text);
    pep_free(joined);
    pep_free(starts);
    pep_free(pick);
    return rc;
}
