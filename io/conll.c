/* CoNLL NER reader and data-path lookup (see conll.h). */
#include "conll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return c ? 1 : 0; /* a NUL byte is no text */
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < k) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return k;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f'; }

static int tag_list_text(const char *const *tags, int ntags, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < ntags && used + 1 < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", tags[i]);
    return PEP_OK;
}

/* Corpus name from the path: the folder above <split>.txt, else the file name. */
static void name_from_path(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (slash && slash > path) {
        const char *p = slash - 1;
        while (p > path && p[-1] != '/') p--;
        snprintf(buf, len, "%.*s", (int)(slash - p), p);
    } else
        snprintf(buf, len, "%s", slash ? slash + 1 : path);
}

int pep_conll_parse(const char *buf, size_t len, const char *origin, const char *const *tags, int ntags,
                    int max_sentences, struct pep_corpus **out)
{
    *out = NULL;
    struct pep_corpus *c = NULL;
    int rc = PEP_OK;
    char name[64];
    name_from_path(origin, name, sizeof name);
    PEP_CALL(pep_corpus_create(name, tags, ntags, &c));

    size_t pos = 0;
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
        pos = 3;
    long line = 0;
    while (pos < len && !(max_sentences > 0 && c->nsent >= max_sentences)) {
        line++;
        size_t start = pos;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        pos = nl ? end + 1 : len;
        /* Validate the raw line so the offset we report is the file's. */
        for (size_t i = start; i < end;) {
            size_t k = utf8_seq((const unsigned char *)buf + i, end - i);
            PEP_CHECK_GOTO(rc, k > 0, PEP_ERR_FORMAT,
                           "%s:%ld: invalid UTF-8 at byte offset %zu (byte 0x%02X, column %zu); the file must be "
                           "UTF-8 encoded (convert it, e.g. with iconv)",
                           origin, line, i, (unsigned char)buf[i], i - start + 1);
            i += k;
        }
        while (end > start && is_blank(buf[end - 1])) end--;
        size_t s = start;
        while (s < end && (buf[s] == ' ' || buf[s] == '\r')) s++;
        if (s == end) { /* blank line: sentence break */
            PEP_CALL_GOTO(rc, pep_corpus_end_sentence(c));
            continue;
        }
        const char *tab = memchr(buf + start, '\t', end - start);
        size_t tok_len = tab ? (size_t)(tab - (buf + start)) : end - start;
        if (tok_len >= 10 && memcmp(buf + start, "-DOCSTART-", 10) == 0 &&
            (tok_len == 10 || buf[start + 10] == ' ')) {
            PEP_CALL_GOTO(rc, pep_corpus_end_sentence(c));
            continue;
        }
        int ncols = 1;
        for (size_t i = start; i < end; i++) ncols += (buf[i] == '\t');
        PEP_CHECK_GOTO(rc, ncols == 2, PEP_ERR_FORMAT,
                       "%s:%ld: expected 2 TAB-separated columns (token<TAB>tag), found %d in '%.*s'", origin, line,
                       ncols, (int)(end - start > 80 ? 80 : end - start), buf + start);
        PEP_CHECK_GOTO(rc, tok_len > 0, PEP_ERR_FORMAT, "%s:%ld: empty token before the TAB", origin, line);
        const char *tag = tab + 1;
        size_t tag_len = (size_t)(buf + end - tag);
        while (tag_len > 0 && tag[0] == ' ') tag++, tag_len--;
        int id = pep_corpus_tag_id(c, tag, tag_len);
        if (id < 0) {
            char valid[1024];
            tag_list_text(tags, ntags, valid, sizeof valid);
            PEP_CHECK_GOTO(rc, 0, PEP_ERR_FORMAT,
                           "%s:%ld: tag '%.*s' is not in the tag set (valid tags: %s); fix the file or set data.tags",
                           origin, line, (int)(tag_len > 64 ? 64 : tag_len), tag, valid);
        }
        PEP_CALL_GOTO(rc, pep_corpus_add_word(c, buf + start, tok_len, id));
    }
    PEP_CALL_GOTO(rc, pep_corpus_end_sentence(c));
    PEP_CHECK_GOTO(rc, c->nsent > 0, PEP_ERR_FORMAT, "%s: no sentences found (%ld lines)", origin, line);
    *out = c;
    return PEP_OK;
cleanup:
    pep_corpus_destroy(&c);
    return rc;
}

int pep_conll_read(const char *path, const char *const *tags, int ntags, int max_sentences, struct pep_corpus **out)
{
    *out = NULL;
    int rc = PEP_OK;
    char *buf = NULL;
    struct stat st;
    PEP_CHECK(stat(path, &st) == 0, PEP_ERR_IO,
              "cannot open CoNLL file '%s': %s (set PEPRIME_DATA or data.root to the folder that holds "
              "ner/wikiann/<lang>/<split>.txt)",
              path, strerror(errno));
    PEP_CHECK(S_ISREG(st.st_mode), PEP_ERR_IO, "CoNLL path '%s' is not a regular file", path);
    FILE *f = fopen(path, "rb");
    PEP_CHECK(f, PEP_ERR_IO,
              "cannot open CoNLL file '%s': %s (set PEPRIME_DATA or data.root to the folder that holds "
              "ner/wikiann/<lang>/<split>.txt)",
              path, strerror(errno));
    PEP_CHECK_GOTO(rc, fseek(f, 0, SEEK_END) == 0, PEP_ERR_IO, "cannot seek in '%s': %s", path, strerror(errno));
    long size = ftell(f);
    PEP_CHECK_GOTO(rc, size >= 0 && fseek(f, 0, SEEK_SET) == 0, PEP_ERR_IO, "cannot read '%s': %s (is it a folder?)",
                   path, strerror(errno));
    PEP_ALLOC_GOTO(rc, buf, (size_t)size + 1);
    PEP_CHECK_GOTO(rc, fread(buf, 1, (size_t)size, f) == (size_t)size, PEP_ERR_IO, "short read from '%s': %s", path,
                   strerror(errno));
    PEP_CALL_GOTO(rc, pep_conll_parse(buf, (size_t)size, path, tags, ntags, max_sentences, out));
cleanup:
    pep_free(buf);
    fclose(f);
    return rc;
}

static int dir_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int pep_data_root(const struct pep_config *cfg, const char *repo_dir, char *buf, size_t len, const char **origin)
{
    const char *src = NULL;
    const char *env = getenv("PEPRIME_DATA");
    int n;
    if (cfg && cfg->data.root[0]) {
        src = "data.root";
        n = snprintf(buf, len, "%s", cfg->data.root);
    } else if (env && *env) {
        src = "PEPRIME_DATA";
        n = snprintf(buf, len, "%s", env);
    } else {
#ifdef PEP_SOURCE_DIR
        if (!repo_dir) repo_dir = PEP_SOURCE_DIR;
#endif
        PEP_CHECK(repo_dir, PEP_ERR_IO,
                  "no data root: set PEPRIME_DATA or data.root to the folder that holds ner/wikiann/<lang>/");
        src = "the default <repo>/../shared/data";
        n = snprintf(buf, len, "%s/../shared/data", repo_dir);
    }
    if (origin) *origin = src;
    PEP_CHECK(n >= 0 && (size_t)n < len, PEP_ERR_USAGE, "data root path from %s is too long", src);
    PEP_CHECK(dir_exists(buf), PEP_ERR_IO,
              "data root '%s' (from %s) does not exist; set PEPRIME_DATA or data.root to the folder that holds "
              "ner/wikiann/<lang>/<split>.txt",
              buf, src);
    return PEP_OK;
}

int pep_data_path(const struct pep_config *cfg, const char *repo_dir, const char *lang, const char *split,
                  char *buf, size_t len)
{
    char root[PEP_CFG_STR + 64];
    const char *origin = NULL;
    PEP_CALL(pep_data_root(cfg, repo_dir, root, sizeof root, &origin));
    int n = snprintf(buf, len, "%s/ner/wikiann/%s/%s.txt", root, lang, split);
    PEP_CHECK(n >= 0 && (size_t)n < len, PEP_ERR_USAGE, "data path for %s/%s is too long", lang, split);
    struct stat st;
    PEP_CHECK(stat(buf, &st) == 0 && S_ISREG(st.st_mode), PEP_ERR_IO,
              "no %s split for language '%s': '%s' does not exist (data root from %s); check data.languages / "
              "data.source / data.targets, or set PEPRIME_DATA or data.root",
              split, lang, buf, origin);
    return PEP_OK;
}

int pep_conll_read_lang(const struct pep_config *cfg, const char *repo_dir, const char *lang, const char *split,
                        struct pep_corpus **out)
{
    *out = NULL;
    char path[PEP_CFG_STR + 256];
    const char **tags = NULL;
    int ntags = 0;
    PEP_CALL(pep_data_path(cfg, repo_dir, lang, split, path, sizeof path));
    PEP_CALL(pep_taglist_parse(cfg->data.tags, &tags, &ntags));
    int rc = pep_conll_read(path, tags, ntags, cfg->data.max_sentences, out);
    pep_free((void *)tags);
    PEP_CALL(rc);
    snprintf((*out)->name, sizeof (*out)->name, "%s", lang);
    return PEP_OK;
}
