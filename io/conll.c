/* CoNLL NER reader: columns, boundary lines, tag schemes into IOB2, unknown entity types; and the
 * data-path lookup (see conll.h). */
#include "conll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "file.h"
#include "metrics/conlleval.h"

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF (RFC 3629). */
size_t pep_utf8_seq(const unsigned char *s, size_t n)
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

int pep_conll_is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f'; }

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

void pep_conll_default_options(struct pep_conll_options *o)
{
    memset(o, 0, sizeof *o);
    o->separator = PEP_CONLL_SEPARATOR_TAB;
    o->scheme = PEP_CONLL_SCHEME_IOB2;
}

void pep_conll_options_from_config(const struct pep_config *cfg, struct pep_conll_options *o)
{
    pep_conll_default_options(o);
    if (!strcmp(cfg->data.separator, "whitespace")) o->separator = PEP_CONLL_SEPARATOR_WHITESPACE;
    if (!strcmp(cfg->data.scheme, "iob1")) o->scheme = PEP_CONLL_SCHEME_IOB1;
    else if (!strcmp(cfg->data.scheme, "iobes")) o->scheme = PEP_CONLL_SCHEME_IOBES;
    o->unknown_to_o = !strcmp(cfg->data.unknown_types, "O");
    o->max_sentences = cfg->data.max_sentences;
}

static const char *scheme_name(enum pep_conll_scheme s)
{
    return s == PEP_CONLL_SCHEME_IOB1 ? "IOB1" : s == PEP_CONLL_SCHEME_IOBES ? "IOBES" : "IOB2";
}

/* The tag set as entity types: type k has tag ids b[k] (B-) and i[k] (I-), -1 if absent. */
struct typeset {
    int n, o_id;
    char name[PEP_EVAL_MAX_TYPES][PEP_TAG_NAME_MAX];
    int b[PEP_EVAL_MAX_TYPES], i[PEP_EVAL_MAX_TYPES];
};

static int typeset_find(const struct typeset *ts, const char *name, size_t len)
{
    for (int k = 0; k < ts->n; k++)
        if (strlen(ts->name[k]) == len && memcmp(ts->name[k], name, len) == 0) return k;
    return -1;
}

static int typeset_build(const char *const *tags, int ntags, struct typeset *ts)
{
    memset(ts, 0, sizeof *ts);
    ts->o_id = -1;
    for (int t = 0; t < ntags; t++) {
        const char *g = tags[t];
        if (!strcmp(g, "O")) {
            ts->o_id = t;
            continue;
        }
        PEP_CHECK((g[0] == 'B' || g[0] == 'I') && g[1] == '-' && g[2], PEP_ERR_USAGE,
                  "tag '%s' in data.tags is not IOB2: use O, B-<type> and I-<type> (data.scheme only says how the "
                  "files are written)", g);
        int k = typeset_find(ts, g + 2, strlen(g + 2));
        if (k < 0) {
            PEP_CHECK(ts->n < PEP_EVAL_MAX_TYPES, PEP_ERR_USAGE, "data.tags has more than %d entity types",
                      PEP_EVAL_MAX_TYPES);
            k = ts->n++;
            snprintf(ts->name[k], sizeof ts->name[k], "%s", g + 2);
            ts->b[k] = ts->i[k] = -1;
        }
        if (g[0] == 'B') ts->b[k] = t;
        else ts->i[k] = t;
    }
    return PEP_OK;
}

/* One word's tag as read: prefix 'O', 'B', 'I', 'E' or 'S' and type index (-1 for O). */
struct rawtag {
    char prefix;
    int type;
};

/* conlleval.pl's startOfChunk, with the E-/S- rules of its IOBES ports: does a chunk start at
 * (p, t) after (pp, pt)? Only called for p != 'O'. */
static int chunk_starts(char pp, int pt, char p, int t)
{
    if (p == 'B' || p == 'S') return 1;
    if (pp == 'O' || pp == 'E' || pp == 'S') return 1;
    return pt != t;
}

/* IOB2 tag ids of one sentence's n raw tags. IOB2 input keeps its prefixes; IOB1 / IOBES input
 * becomes B- at every chunk start and I- inside. */
static void to_iob2(const struct typeset *ts, enum pep_conll_scheme scheme, const struct rawtag *raw, int n, int *ids)
{
    char pp = 'O';
    int pt = -1;
    for (int j = 0; j < n; j++) {
        char p = raw[j].prefix;
        int t = raw[j].type;
        if (p == 'O') ids[j] = ts->o_id;
        else if (scheme == PEP_CONLL_SCHEME_IOB2) ids[j] = p == 'B' ? ts->b[t] : ts->i[t];
        else ids[j] = chunk_starts(pp, pt, p, t) ? ts->b[t] : ts->i[t];
        pp = p, pt = t;
    }
}

/* Unknown entity types met in one file: name, count, first line. */
struct unknowns {
    int n;
    long total;
    char name[16][PEP_TAG_NAME_MAX];
    long count[16], first_line[16];
};

static void unknown_note(struct unknowns *u, const char *type, size_t len, long line)
{
    u->total++;
    if (len >= PEP_TAG_NAME_MAX) len = PEP_TAG_NAME_MAX - 1; /* long names are kept (and told apart) by their start */
    for (int k = 0; k < u->n; k++)
        if (strlen(u->name[k]) == len && memcmp(u->name[k], type, len) == 0) {
            u->count[k]++;
            return;
        }
    if (u->n == 16) return;
    snprintf(u->name[u->n], sizeof u->name[u->n], "%.*s", (int)len, type);
    u->count[u->n] = 1;
    u->first_line[u->n] = line;
    u->n++;
}

/* Splits [s, e) into columns: *tok / *tag point at the first and last column. Returns the
 * number of columns. */
static int split_columns(const char *s, const char *e, enum pep_conll_separator sep, const char **tok, size_t *tok_len,
                         const char **tag, size_t *tag_len)
{
    int ncols = 0;
    const char *p = s;
    if (sep == PEP_CONLL_SEPARATOR_TAB) {
        for (;;) {
            const char *q = memchr(p, '\t', (size_t)(e - p));
            const char *end = q ? q : e;
            if (ncols == 0) *tok = p, *tok_len = (size_t)(end - p);
            *tag = p, *tag_len = (size_t)(end - p);
            ncols++;
            if (!q) break;
            p = q + 1;
        }
        while (*tag_len > 0 && (*tag)[0] == ' ') (*tag)++, (*tag_len)--;
        while (*tag_len > 0 && (*tag)[*tag_len - 1] == ' ') (*tag_len)--;
        return ncols;
    }
    while (p < e) {
        while (p < e && pep_conll_is_blank(*p)) p++;
        if (p == e) break;
        const char *w = p;
        while (p < e && !pep_conll_is_blank(*p)) p++;
        if (ncols == 0) *tok = w, *tok_len = (size_t)(p - w);
        *tag = w, *tag_len = (size_t)(p - w);
        ncols++;
    }
    return ncols;
}

int pep_conll_is_marker(const char *s, const char *e)
{
    while (s < e && pep_conll_is_blank(*s)) s++;
    size_t n = 0;
    while (s + n < e && !pep_conll_is_blank(s[n])) n++;
    return (n == 10 && memcmp(s, "-DOCSTART-", 10) == 0) || (n == 3 && memcmp(s, "-X-", 3) == 0);
}

/* Closes the open sentence of c: converts its raw tags to IOB2 ids. */
static int close_sentence(struct pep_corpus *c, const struct typeset *ts, enum pep_conll_scheme scheme,
                          const struct rawtag *raw)
{
    size_t w0 = c->sent_start[c->nsent];
    if (c->nwords > w0) /* an empty sentence has no tags (and c->tags may still be NULL) */
        to_iob2(ts, scheme, raw, (int)(c->nwords - w0), c->tags + w0);
    return pep_corpus_end_sentence(c);
}

int pep_conll_parse(const char *buf, size_t len, const char *origin, const char *const *tags, int ntags,
                    const struct pep_conll_options *opt, struct pep_corpus **out, struct pep_conll_stats *stats)
{
    *out = NULL;
    struct pep_conll_options defaults;
    if (!opt) {
        pep_conll_default_options(&defaults);
        opt = &defaults;
    }
    if (stats) memset(stats, 0, sizeof *stats);
    struct pep_corpus *c = NULL;
    struct rawtag *raw = NULL;
    struct typeset *ts = NULL;
    struct unknowns unk;
    memset(&unk, 0, sizeof unk);
    int rc = PEP_OK, raw_cap = 256;
    char name[64];
    name_from_path(origin, name, sizeof name);
    PEP_ALLOC(ts, 1);
    PEP_CALL_GOTO(rc, typeset_build(tags, ntags, ts));
    PEP_CHECK_GOTO(rc, ts->o_id >= 0, PEP_ERR_USAGE, "data.tags has no 'O' tag");
    PEP_CALL_GOTO(rc, pep_corpus_create(name, tags, ntags, &c));
    PEP_ALLOC_GOTO(rc, raw, (size_t)raw_cap);

    const char *sep_name = opt->separator == PEP_CONLL_SEPARATOR_TAB ? "TAB" : "whitespace";
    const char *prefixes = opt->scheme == PEP_CONLL_SCHEME_IOBES ? "BIES" : "BI";
    size_t pos = 0;
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
        pos = 3;
    long line = 0;
    while (pos < len && !(opt->max_sentences > 0 && c->nsent >= opt->max_sentences)) {
        line++;
        size_t start = pos;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        pos = nl ? end + 1 : len;
        /* Validate the raw line so the offset we report is the file's. */
        for (size_t i = start; i < end;) {
            size_t k = pep_utf8_seq((const unsigned char *)buf + i, end - i);
            PEP_CHECK_GOTO(rc, k > 0, PEP_ERR_FORMAT,
                           "%s:%ld: invalid UTF-8 at byte offset %zu (byte 0x%02X, column %zu); the file must be "
                           "UTF-8 encoded (convert it, e.g. with iconv)",
                           origin, line, i, (unsigned char)buf[i], i - start + 1);
            i += k;
        }
        while (end > start && pep_conll_is_blank(buf[end - 1])) end--;
        size_t s = start;
        while (s < end && pep_conll_is_blank(buf[s])) s++;
        if (s == end || pep_conll_is_marker(buf + s, buf + end)) { /* blank line or marker: sentence break */
            PEP_CALL_GOTO(rc, close_sentence(c, ts, opt->scheme, raw));
            continue;
        }
        if (opt->separator == PEP_CONLL_SEPARATOR_WHITESPACE) start = s;
        const char *tok = NULL, *tag = NULL;
        size_t tok_len = 0, tag_len = 0;
        int ncols = split_columns(buf + start, buf + end, opt->separator, &tok, &tok_len, &tag, &tag_len);
        PEP_CHECK_GOTO(rc, ncols >= 2, PEP_ERR_FORMAT,
                       "%s:%ld: expected at least 2 %s-separated columns (token first, tag last), found %d in "
                       "'%.*s'%s",
                       origin, line, sep_name, ncols, (int)(end - start > 80 ? 80 : end - start), buf + start,
                       opt->separator == PEP_CONLL_SEPARATOR_TAB && memchr(buf + start, ' ', end - start)
                           ? "; for space-separated files set data.separator = whitespace"
                           : "");
        PEP_CHECK_GOTO(rc, tok_len > 0, PEP_ERR_FORMAT, "%s:%ld: empty token in the first column", origin, line);
        PEP_CHECK_GOTO(rc, tag_len > 0, PEP_ERR_FORMAT, "%s:%ld: empty tag in the last column", origin, line);
        struct rawtag rt = {'O', -1};
        if (!(tag_len == 1 && tag[0] == 'O')) {
            PEP_CHECK_GOTO(rc, tag_len >= 3 && tag[1] == '-' && strchr(prefixes, tag[0]) && tag[0], PEP_ERR_FORMAT,
                           "%s:%ld: tag '%.*s' is not an %s tag (O, %s-<type>); fix the file or set data.scheme "
                           "(iob2 | iob1 | iobes)",
                           origin, line, (int)(tag_len > 64 ? 64 : tag_len), tag, scheme_name(opt->scheme),
                           opt->scheme == PEP_CONLL_SCHEME_IOBES ? "B-, I-, E-, S-" : "B-, I-");
            int k = typeset_find(ts, tag + 2, tag_len - 2);
            if (k < 0) {
                unknown_note(&unk, tag + 2, tag_len - 2, line);
            } else {
                /* IOB2 keeps its prefixes, so both B-X and I-X must be in the tag set; the others
                 * produce both from any chunk */
                int need_b = opt->scheme != PEP_CONLL_SCHEME_IOB2 || tag[0] == 'B';
                int need_i = opt->scheme != PEP_CONLL_SCHEME_IOB2 || tag[0] == 'I';
                PEP_CHECK_GOTO(rc, (!need_b || ts->b[k] >= 0) && (!need_i || ts->i[k] >= 0), PEP_ERR_FORMAT,
                               "%s:%ld: tag '%.*s' needs %s%s in data.tags, which lacks it; add it to data.tags", origin,
                               line, (int)(tag_len > 64 ? 64 : tag_len), tag, need_b && ts->b[k] < 0 ? "B-" : "I-",
                               ts->name[k]);
                rt.prefix = tag[0];
                rt.type = k;
            }
        }
        int nw = (int)(c->nwords - c->sent_start[c->nsent]);
        if (nw == raw_cap) {
            struct rawtag *bigger;
            PEP_ALLOC_GOTO(rc, bigger, (size_t)raw_cap * 2);
            memcpy(bigger, raw, sizeof *raw * (size_t)raw_cap);
            pep_free(raw);
            raw = bigger;
            raw_cap *= 2;
        }
        raw[nw] = rt;
        PEP_CALL_GOTO(rc, pep_corpus_add_word(c, tok, tok_len, ts->o_id));
    }
    PEP_CALL_GOTO(rc, close_sentence(c, ts, opt->scheme, raw));
    if (unk.n > 0) {
        char list[1024];
        size_t used = 0;
        list[0] = '\0';
        for (int k = 0; k < unk.n && used + 1 < sizeof list; k++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s (%ld tag%s, first at line %ld)",
                                     k ? ", " : "", unk.name[k], unk.count[k], unk.count[k] == 1 ? "" : "s",
                                     unk.first_line[k]);
        char known[1024];
        used = 0;
        known[0] = '\0';
        for (int k = 0; k < ts->n && used + 1 < sizeof known; k++)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "", ts->name[k]);
        PEP_CHECK_GOTO(rc, opt->unknown_to_o, PEP_ERR_FORMAT,
                       "%s: entity types not in data.tags (which has %s): %s%s; add B-/I- tags for them to "
                       "data.tags, or set data.unknown_types = O to read them as O",
                       origin, known, list, unk.n == 16 ? " and more" : "");
        if (stats) {
            stats->unknown_to_o = unk.total;
            used = 0;
            for (int k = 0; k < unk.n && used + 1 < sizeof stats->unknown; k++)
                used += (size_t)snprintf(stats->unknown + used, sizeof stats->unknown - used, "%s%s %ld",
                                         k ? ", " : "", unk.name[k], unk.count[k]);
        }
    }
    PEP_CHECK_GOTO(rc, c->nsent > 0, PEP_ERR_FORMAT, "%s: no sentences found (%ld lines)", origin, line);
    *out = c;
    c = NULL;
cleanup:
    pep_corpus_destroy(&c);
    pep_free(raw);
    pep_free(ts);
    return rc;
}

int pep_conll_read(const char *path, const char *const *tags, int ntags, const struct pep_conll_options *o,
                   struct pep_corpus **out, struct pep_conll_stats *stats)
{
    *out = NULL;
    int rc = PEP_OK;
    char *buf = NULL;
    struct stat st;
    PEP_CHECK(stat(path, &st) == 0, PEP_ERR_IO,
              "cannot open CoNLL file '%s': %s (set PEPRIME_DATA or data.root to the folder that holds "
              "ner/wikiann/<lang>/<split>.txt, or data.path to where the files are)",
              path, strerror(errno));
    size_t size = 0;
    PEP_CALL(pep_file_read(path, "CoNLL file", PEP_FILE_MAX_DATA, &buf, &size));
    PEP_CALL_GOTO(rc, pep_conll_parse(buf, size, path, tags, ntags, o, out, stats));
cleanup:
    pep_free(buf);
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

/* data.path with {lang} and {split} replaced. */
static int expand_template(const char *tpl, const char *lang, const char *split, char *buf, size_t len)
{
    size_t used = 0;
    for (const char *p = tpl; *p;) {
        const char *val = NULL;
        size_t skip = 1;
        if (!strncmp(p, "{lang}", 6)) val = lang, skip = 6;
        else if (!strncmp(p, "{split}", 7)) val = split, skip = 7;
        else if (*p == '{') {
            const char *close = strchr(p, '}');
            PEP_FAIL(PEP_ERR_USAGE, "data.path '%s': unknown placeholder '%.*s' (only {lang} and {split})", tpl,
                     close ? (int)(close - p + 1) : (int)strlen(p), p);
        }
        size_t n = val ? strlen(val) : 1;
        PEP_CHECK(used + n < len, PEP_ERR_USAGE, "data.path '%s' gives a path that is too long", tpl);
        memcpy(buf + used, val ? val : p, n);
        used += n;
        p += skip;
    }
    buf[used] = '\0';
    return PEP_OK;
}

int pep_data_path(const struct pep_config *cfg, const char *repo_dir, const char *lang, const char *split,
                  char *buf, size_t len)
{
    char root[PEP_CFG_STR + 64], rel[PEP_CFG_STR + 256];
    const char *origin = NULL, *tpl = cfg->data.path;
    int n;
    if (tpl[0]) {
        PEP_CALL(expand_template(tpl, lang, split, rel, sizeof rel));
        if (rel[0] == '/') {
            n = snprintf(buf, len, "%s", rel);
            origin = "data.path";
        } else {
            PEP_CALL(pep_data_root(cfg, repo_dir, root, sizeof root, &origin));
            n = snprintf(buf, len, "%s/%s", root, rel);
        }
    } else {
        PEP_CALL(pep_data_root(cfg, repo_dir, root, sizeof root, &origin));
        n = snprintf(buf, len, "%s/ner/wikiann/%s/%s.txt", root, lang, split);
    }
    PEP_CHECK(n >= 0 && (size_t)n < len, PEP_ERR_USAGE, "data path for %s/%s is too long", lang, split);
    struct stat st;
    PEP_CHECK(stat(buf, &st) == 0 && S_ISREG(st.st_mode), PEP_ERR_IO,
              "no %s split for language '%s': '%s' does not exist (%s%s%s); check data.languages / data.source / "
              "data.targets, data.path, or set PEPRIME_DATA or data.root",
              split, lang, buf, tpl[0] ? "from data.path = " : "data root from ", tpl[0] ? tpl : origin,
              tpl[0] && rel[0] != '/' ? " under the data root" : "");
    return PEP_OK;
}

int pep_conll_read_lang(const struct pep_config *cfg, const char *repo_dir, const char *lang, const char *split,
                        struct pep_corpus **out, struct pep_conll_stats *stats)
{
    *out = NULL;
    char path[PEP_CFG_STR + 256];
    const char **tags = NULL;
    int ntags = 0;
    struct pep_conll_options o;
    pep_conll_options_from_config(cfg, &o);
    PEP_CALL(pep_data_path(cfg, repo_dir, lang, split, path, sizeof path));
    PEP_CALL(pep_taglist_parse(cfg->data.tags, &tags, &ntags));
    int rc = pep_conll_read(path, tags, ntags, &o, out, stats);
    pep_free((void *)tags);
    PEP_CALL(rc);
    snprintf((*out)->name, sizeof (*out)->name, "%s", lang);
    return PEP_OK;
}
