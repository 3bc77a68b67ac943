/* WikiAnn distributions (Rahimi et al.'s splits, Hugging Face JSON lines) into corpora, and the
 * corpus writer of peprime's layout (see wikiann.h). */
#include "wikiann.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conll.h"
#include "core/error.h"
#include "file.h"
#include "json.h"

/* `s` (n bytes) for a message: at most 40 bytes, control bytes as \t, \n, \xNN. */
static const char *show(const char *s, size_t n, char *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == 40) {
            o += (size_t)snprintf(buf + o, len - o, "...");
            break;
        }
        if (ch == '\t') o += (size_t)snprintf(buf + o, len - o, "\\t");
        else if (ch == '\n') o += (size_t)snprintf(buf + o, len - o, "\\n");
        else if (ch < 0x20 || ch == 0x7f) o += (size_t)snprintf(buf + o, len - o, "\\x%02X", ch);
        else buf[o++] = (char)ch;
    }
    buf[o] = '\0';
    return buf;
}

int pep_wikiann_format_parse(const char *name, enum pep_wikiann_format *out)
{
    if (!strcmp(name, "rahimi")) *out = PEP_WIKIANN_FORMAT_RAHIMI;
    else if (!strcmp(name, "hf-jsonl")) *out = PEP_WIKIANN_FORMAT_HF_JSONL;
    else PEP_FAIL(PEP_ERR_USAGE, "--from '%s': the layouts are rahimi (lang:token<TAB>tag lines) and hf-jsonl "
                                 "(Hugging Face JSON lines)", name);
    return PEP_OK;
}

const char *pep_wikiann_format_name(enum pep_wikiann_format f)
{
    return f == PEP_WIKIANN_FORMAT_RAHIMI ? "rahimi" : "hf-jsonl";
}

/* Each tag's IOB2 prefix ('O', 'B', 'I'), entity type (index of its first B-/I- tag with that
 * type name, -1 for O) and the id of that type's B- tag. */
struct tag_info {
    int n;
    char prefix[PEP_TAGS_MAX];
    int type[PEP_TAGS_MAX], b_id[PEP_TAGS_MAX];
};

int pep_wikiann_check_tags(const char *const *tags, int ntags, const char *what)
{
    PEP_CHECK(ntags >= 1 && ntags <= PEP_TAGS_MAX, PEP_ERR_USAGE, "%s: %d tags; give 1 to %d", what, ntags,
              PEP_TAGS_MAX);
    int has_o = 0;
    for (int t = 0; t < ntags; t++) {
        const char *g = tags[t];
        PEP_CHECK(strlen(g) < PEP_TAG_NAME_MAX, PEP_ERR_USAGE, "%s: tag '%.40s...' is longer than %d bytes", what, g,
                  PEP_TAG_NAME_MAX - 1);
        for (int u = 0; u < t; u++)
            PEP_CHECK(strcmp(tags[u], g), PEP_ERR_USAGE, "%s: tag '%s' is listed twice", what, g);
        if (!strcmp(g, "O")) {
            has_o = 1;
            continue;
        }
        PEP_CHECK((g[0] == 'B' || g[0] == 'I') && g[1] == '-' && g[2], PEP_ERR_USAGE,
                  "%s: tag '%s' is not IOB2; use O, B-<type> and I-<type> (e.g. %s)", what, g, PEP_WIKIANN_TAGS);
        if (g[0] == 'I') {
            int has_b = 0;
            for (int u = 0; u < ntags; u++) has_b |= tags[u][0] == 'B' && !strcmp(tags[u] + 1, g + 1);
            PEP_CHECK(has_b, PEP_ERR_USAGE, "%s: tag '%s' has no B-%s beside it (the IOB2 repair writes it); add B-%s",
                      what, g, g + 2, g + 2);
        }
    }
    PEP_CHECK(has_o, PEP_ERR_USAGE, "%s: no 'O' tag; the tag set needs O (e.g. %s)", what, PEP_WIKIANN_TAGS);
    return PEP_OK;
}

static void tag_info_build(const char *const *tags, int ntags, struct tag_info *ti)
{
    memset(ti, 0, sizeof *ti);
    ti->n = ntags;
    for (int t = 0; t < ntags; t++) {
        ti->prefix[t] = tags[t][0] == 'B' || tags[t][0] == 'I' ? tags[t][0] : 'O';
        ti->type[t] = ti->b_id[t] = -1;
        if (ti->prefix[t] == 'O') continue;
        for (int u = 0; u < ntags; u++) {
            if (tags[u][0] != 'B' && tags[u][0] != 'I') continue;
            if (strcmp(tags[u] + 1, tags[t] + 1)) continue;
            if (ti->type[t] < 0) ti->type[t] = u;
            if (tags[u][0] == 'B') ti->b_id[t] = u;
        }
    }
}

static int tag_lookup(const char *const *tags, int ntags, const char *s, size_t n)
{
    for (int t = 0; t < ntags; t++)
        if (strlen(tags[t]) == n && !memcmp(tags[t], s, n)) return t;
    return -1;
}

/* The tag set as "O, B-PER, ..." for messages. */
static const char *tag_list(const char *const *tags, int ntags, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int t = 0; t < ntags && o + 1 < len; t++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", t ? "," : "", tags[t]);
    return buf;
}

/* The IOB2 repair of one sentence's n tag ids: an I-X whose predecessor is neither B-X nor I-X
 * (or that opens the sentence) becomes B-X. */
static long iob2_repair(const struct tag_info *ti, int *ids, size_t n)
{
    long fixed = 0;
    int prev = -1;
    for (size_t j = 0; j < n; j++) {
        int t = ids[j];
        if (ti->prefix[t] == 'I' && !(prev >= 0 && ti->prefix[prev] != 'O' && ti->type[prev] == ti->type[t])) {
            ids[j] = ti->b_id[t];
            fixed++;
        }
        prev = ids[j];
    }
    return fixed;
}

static int close_sentence(struct pep_corpus *c, const struct tag_info *ti, struct pep_wikiann_stats *st)
{
    size_t w0 = c->sent_start[c->nsent];
    if (c->nwords == w0) return PEP_OK;
    st->repaired += iob2_repair(ti, c->tags + w0, c->nwords - w0);
    st->sentences++;
    st->tokens += (long)(c->nwords - w0);
    return pep_corpus_end_sentence(c);
}

/* A token peprime can write and read back as it is. `what` names it ("the token", "tokens[3]"). */
static int check_token(const char *tok, size_t n, const char *origin, long line, const char *what)
{
    char sh[200];
    PEP_CHECK(n > 0, PEP_ERR_FORMAT, "%s:%ld: %s is empty; remove the word from the source or give it its text",
              origin, line, what);
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)tok + i;
        PEP_CHECK(*u != '\t' && *u != '\n', PEP_ERR_FORMAT,
                  "%s:%ld: %s '%s' contains a %s, which would break the token<TAB>tag line it is written to; "
                  "replace it in the source (e.g. by a space)",
                  origin, line, what, show(tok, n, sh, sizeof sh), *u == '\t' ? "TAB" : "newline");
        size_t k = pep_utf8_seq(u, n - i);
        PEP_CHECK(k > 0, PEP_ERR_FORMAT,
                  "%s:%ld: %s '%s' has %s at byte %zu; the source must be UTF-8 (convert it, e.g. with iconv)", origin,
                  line, what, show(tok, n, sh, sizeof sh), *u ? "invalid UTF-8" : "a NUL byte", i);
        i += k;
    }
    /* U+FEFF first: written as a file's first word it would be read back as the file's byte-order mark */
    PEP_CHECK(!(n >= 3 && !memcmp(tok, "\xEF\xBB\xBF", 3)), PEP_ERR_FORMAT,
              "%s:%ld: %s '%s' starts with U+FEFF (a byte-order mark; a second one at the start of a file, or one "
              "after a language prefix), which a reader takes for the file's encoding mark; remove it in the source",
              origin, line, what, show(tok, n, sh, sizeof sh));
    /* the token starts its written line, so the reader's own marker test decides */
    PEP_CHECK(!pep_conll_is_marker(tok, tok + n), PEP_ERR_FORMAT,
              "%s:%ld: %s '%s' would be read by peprime as a sentence boundary (CoNLL's -DOCSTART- / -X- lines); "
              "drop or rename it in the source",
              origin, line, what, show(tok, n, sh, sizeof sh));
    return PEP_OK;
}

/* One line [*s, *e) of buf starting at *pos; advances *pos. Trailing blanks (CR, spaces, TABs)
 * are left out of the line. Returns 0 at the end of the buffer. */
static int next_line(const char *buf, size_t len, size_t *pos, size_t *s, size_t *e)
{
    if (*pos >= len) return 0;
    const char *nl = memchr(buf + *pos, '\n', len - *pos);
    *s = *pos;
    *e = nl ? (size_t)(nl - buf) : len;
    *pos = nl ? *e + 1 : len;
    while (*e > *s && pep_conll_is_blank(buf[*e - 1])) (*e)--;
    return 1;
}

static size_t bom_len(const char *buf, size_t len)
{
    return len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF
               ? 3
               : 0;
}

/* Length of a language-code prefix `xx:` / `bat-smg:` at the start of [s, e), 0 if none. */
static size_t code_prefix(const char *s, const char *e)
{
    size_t n = 0;
    for (; s + n < e && n < 16; n++) {
        int lower = s[n] >= 'a' && s[n] <= 'z', more = (s[n] >= '0' && s[n] <= '9') || s[n] == '-';
        if (!lower && !(n > 0 && more)) break;
    }
    return n >= 2 && s + n < e && s[n] == ':' ? n + 1 : 0;
}

static int has_lang_prefix(const char *s, const char *e, const char *lang)
{
    size_t n = strlen(lang);
    return (size_t)(e - s) > n && !memcmp(s, lang, n) && s[n] == ':';
}

static int parse_rahimi(const char *buf, size_t len, const char *origin, const char *lang, const char *const *tags,
                        int ntags, const struct tag_info *ti, struct pep_corpus *c, struct pep_wikiann_stats *st)
{
    char sh[200], set[512];
    size_t pos = bom_len(buf, len), s, e;
    /* Pass 1: does the file carry `<lang>:` prefixes? Yes if every word line starts with a
     * language code (then each must be `lang`), or if most start with `lang:` (then a line
     * without it is an error); no otherwise (XTREME's files), and tokens are kept as written. */
    long words = 0, with_lang = 0, with_code = 0;
    while (next_line(buf, len, &pos, &s, &e)) {
        size_t b = s;
        while (b < e && pep_conll_is_blank(buf[b])) b++;
        if (b == e) continue;
        words++;
        with_lang += has_lang_prefix(buf + s, buf + e, lang);
        with_code += code_prefix(buf + s, buf + e) > 0;
    }
    int prefixed = words > 0 && (with_code == words || 2 * with_lang > words);
    size_t plen = strlen(lang) + 1;

    pos = bom_len(buf, len);
    long line = 0;
    while (next_line(buf, len, &pos, &s, &e)) {
        line++;
        for (size_t i = s; i < e;) {
            size_t k = pep_utf8_seq((const unsigned char *)buf + i, e - i);
            PEP_CHECK(k > 0, PEP_ERR_FORMAT,
                      "%s:%ld: %s at byte offset %zu (column %zu); the file must be UTF-8 (convert it, e.g. with "
                      "iconv)",
                      origin, line, buf[i] ? "invalid UTF-8" : "a NUL byte", i, i - s + 1);
            i += k;
        }
        size_t b = s;
        while (b < e && pep_conll_is_blank(buf[b])) b++;
        if (b == e) {
            PEP_CALL(close_sentence(c, ti, st));
            continue;
        }
        const char *tab = memchr(buf + s, '\t', e - s);
        int ntab = 0;
        for (size_t i = s; i < e; i++) ntab += buf[i] == '\t';
        PEP_CHECK(ntab > 0, PEP_ERR_FORMAT, "%s:%ld: expected token<TAB>tag, found no TAB in '%s'; %s", origin, line,
                  show(buf + s, e - s, sh, sizeof sh),
                  memchr(buf + s, ' ', e - s)
                      ? "the columns must be TAB-separated"
                      : "a word without its tag (XTREME's preprocessed test files have their tags removed: use the "
                        "labelled test split)");
        PEP_CHECK(ntab == 1, PEP_ERR_FORMAT,
                  "%s:%ld: expected token<TAB>tag, found %d TABs in '%s'; a token cannot contain a TAB: fix the line "
                  "in the source",
                  origin, line, ntab, show(buf + s, e - s, sh, sizeof sh));
        const char *tok = buf + s, *tag = tab + 1, *tag_end = buf + e;
        size_t tok_len = (size_t)(tab - tok);
        while (tag < tag_end && *tag == ' ') tag++;
        if (prefixed) {
            if (has_lang_prefix(tok, tab, lang)) {
                tok += plen, tok_len -= plen;
                st->prefixes++;
            } else {
                size_t k = code_prefix(tok, tab);
                PEP_CHECK(k == 0, PEP_ERR_FORMAT,
                          "%s:%ld: language prefix '%.*s' does not match the language '%s' (--lang); this is another "
                          "language's word: convert each language's files with its own --lang",
                          origin, line, (int)k, tok, lang);
                PEP_FAIL(PEP_ERR_FORMAT,
                         "%s:%ld: token '%s' lacks the '%s:' prefix that %ld other lines of this file carry; fix the "
                         "line in the source",
                         origin, line, show(tok, tok_len, sh, sizeof sh), lang, with_lang);
            }
        }
        PEP_CALL(check_token(tok, tok_len, origin, line, "the token"));
        int id = tag_lookup(tags, ntags, tag, (size_t)(tag_end - tag));
        PEP_CHECK(id >= 0, PEP_ERR_FORMAT,
                  "%s:%ld: tag '%s' is not in the tag set (%s); if the dataset has other tags, name them all with "
                  "--tags",
                  origin, line, show(tag, (size_t)(tag_end - tag), sh, sizeof sh),
                  tag_list(tags, ntags, set, sizeof set));
        PEP_CALL(pep_corpus_add_word(c, tok, tok_len, id));
    }
    return close_sentence(c, ti, st);
}

/* pep_json_parse of one line, its message reworded for a line of a file: the JSON text is one
 * line, so the parser's "line 1, column C" is just the column. */
static int parse_json_line(const char *text, size_t n, const char *label, struct pep_json **out)
{
    int rc = pep_json_parse(text, n, label, 0, out);
    if (rc == PEP_OK) return PEP_OK;
    char msg[PEP_ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", pep_error_message());
    char *at = strstr(msg, "(line 1, column ");
    if (at) memmove(at + 1, at + 9, strlen(at + 9) + 1);
    pep_error_clear();
    PEP_FAIL(rc, "%s; each line of a JSON-lines file is one object (what datasets' to_json writes)", msg);
}

/* "tokens, ner_tags, langs" */
static const char *key_list(const struct pep_json *obj, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < obj->count && o + 1 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%.40s", i ? ", " : "", obj->keys[i]);
    return obj->count ? buf : "none";
}

/* One object of a JSON-lines file into the open sentence of c. */
static int hf_object(const struct pep_json *j, const char *origin, long line, const char *lang,
                     const char *const *tags, int ntags, struct pep_corpus *c)
{
    char keys[512], sh[200], what[48], set[512];
    PEP_CHECK(j->type == PEP_JSON_TYPE_OBJECT, PEP_ERR_FORMAT,
              "%s:%ld: the line holds a JSON %s, not an object with tokens and ner_tags", origin, line,
              pep_json_type_name(j->type));
    const struct pep_json *tok = pep_json_get(j, "tokens"), *ner = pep_json_get(j, "ner_tags");
    const struct pep_json *langs = pep_json_get(j, "langs");
    PEP_CHECK(tok && tok->type == PEP_JSON_TYPE_ARRAY && ner && ner->type == PEP_JSON_TYPE_ARRAY, PEP_ERR_FORMAT,
              "%s:%ld: expected arrays 'tokens' and 'ner_tags' (the wikiann dataset's columns); the object has %s",
              origin, line, key_list(j, keys, sizeof keys));
    PEP_CHECK(tok->count == ner->count, PEP_ERR_FORMAT,
              "%s:%ld: %zu tokens but %zu ner_tags; every token needs exactly one tag", origin, line, tok->count,
              ner->count);
    if (langs && langs->type == PEP_JSON_TYPE_ARRAY)
        for (size_t i = 0; i < langs->count; i++) {
            const struct pep_json *l = &langs->items[i];
            PEP_CHECK(l->type == PEP_JSON_TYPE_STRING && !strcmp(l->string, lang), PEP_ERR_FORMAT,
                      "%s:%ld: langs[%zu] is %s%s%s, not the language '%s' (--lang); convert each language's files "
                      "with its own --lang",
                      origin, line, i, l->type == PEP_JSON_TYPE_STRING ? "'" : "a ",
                      l->type == PEP_JSON_TYPE_STRING ? show(l->string, l->len, sh, sizeof sh)
                                                      : pep_json_type_name(l->type),
                      l->type == PEP_JSON_TYPE_STRING ? "'" : "", lang);
        }
    for (size_t i = 0; i < tok->count; i++) {
        const struct pep_json *t = &tok->items[i], *g = &ner->items[i];
        snprintf(what, sizeof what, "tokens[%zu]", i);
        PEP_CHECK(t->type == PEP_JSON_TYPE_STRING, PEP_ERR_FORMAT, "%s:%ld: %s is a %s, not a string", origin, line,
                  what, pep_json_type_name(t->type));
        PEP_CALL(check_token(t->string, t->len, origin, line, what));
        int id = -1;
        if (g->type == PEP_JSON_TYPE_STRING) {
            id = tag_lookup(tags, ntags, g->string, g->len);
            PEP_CHECK(id >= 0, PEP_ERR_FORMAT,
                      "%s:%ld: ner_tags[%zu] '%s' is not in the tag set (%s); if the dataset has other tags, name "
                      "them all with --tags",
                      origin, line, i, show(g->string, g->len, sh, sizeof sh), tag_list(tags, ntags, set, sizeof set));
        } else {
            uint64_t v;
            char was[64];
            if (g->type == PEP_JSON_TYPE_NUMBER) snprintf(was, sizeof was, "the number %g", g->number);
            else snprintf(was, sizeof was, "a %s", pep_json_type_name(g->type));
            PEP_CHECK(pep_json_as_u64(g, &v) == 0, PEP_ERR_FORMAT,
                      "%s:%ld: ner_tags[%zu] is %s; a tag is a label id (a non-negative integer) or a tag string",
                      origin, line, i, was);
            PEP_CHECK(v < (uint64_t)ntags, PEP_ERR_FORMAT,
                      "%s:%ld: ner_tags[%zu] = %llu is outside the label list (ids 0..%d: %s); if the dataset has "
                      "other labels, give them in id order with --tags",
                      origin, line, i, (unsigned long long)v, ntags - 1, tag_list(tags, ntags, set, sizeof set));
            id = (int)v;
        }
        PEP_CALL(pep_corpus_add_word(c, t->string, t->len, id));
    }
    return PEP_OK;
}

static int parse_hf_jsonl(const char *buf, size_t len, const char *origin, const char *lang, const char *const *tags,
                          int ntags, const struct tag_info *ti, struct pep_corpus *c, struct pep_wikiann_stats *st)
{
    size_t pos = bom_len(buf, len), s, e;
    size_t first = pos;
    while (first < len && (pep_conll_is_blank(buf[first]) || buf[first] == '\n')) first++;
    PEP_CHECK(first == len || buf[first] != '[', PEP_ERR_FORMAT,
              "%s: a JSON array, not JSON lines (one object per line); export with to_json's default "
              "(lines=True): datasets.load_dataset(\"wikiann\", \"%s\")[\"train\"].to_json(\"train.jsonl\")",
              origin, lang);
    long line = 0;
    char label[PEP_ERROR_LABEL_MAX];
    while (next_line(buf, len, &pos, &s, &e)) {
        line++;
        size_t b = s;
        while (b < e && pep_conll_is_blank(buf[b])) b++;
        if (b == e) continue; /* blank lines between objects are tolerated */
        snprintf(label, sizeof label, "%s:%ld", origin, line);
        struct pep_json *j = NULL;
        PEP_CALL(parse_json_line(buf + s, e - s, label, &j));
        int rc = hf_object(j, origin, line, lang, tags, ntags, c);
        pep_json_free(&j);
        PEP_CALL(rc);
        if (c->nwords == c->sent_start[c->nsent]) st->empty++;
        PEP_CALL(close_sentence(c, ti, st));
    }
    return PEP_OK;
}

int pep_wikiann_parse(enum pep_wikiann_format format, const char *buf, size_t len, const char *origin,
                      const char *lang, const char *const *tags, int ntags, struct pep_corpus **out,
                      struct pep_wikiann_stats *stats)
{
    *out = NULL;
    struct pep_wikiann_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    PEP_CALL(pep_wikiann_check_tags(tags, ntags, "the tag set"));
    struct tag_info ti;
    tag_info_build(tags, ntags, &ti);
    struct pep_corpus *c = NULL;
    int rc = PEP_OK;
    PEP_CALL(pep_corpus_create(lang, tags, ntags, &c));
    if (format == PEP_WIKIANN_FORMAT_RAHIMI)
        PEP_CALL_GOTO(rc, parse_rahimi(buf, len, origin, lang, tags, ntags, &ti, c, stats));
    else
        PEP_CALL_GOTO(rc, parse_hf_jsonl(buf, len, origin, lang, tags, ntags, &ti, c, stats));
    PEP_CHECK_GOTO(rc, c->nsent > 0, PEP_ERR_FORMAT, "%s: no sentences found; is it a %s file of language '%s'?",
                   origin, pep_wikiann_format_name(format), lang);
    *out = c;
    c = NULL;
cleanup:
    pep_corpus_destroy(&c);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Files that are not text: what they are and how to get text from them. */
static int sniff(const char *path, const unsigned char *b, size_t n, const char *lang)
{
    PEP_CHECK(!(n >= 4 && !memcmp(b, "PAR1", 4)) && !ends_with(path, ".parquet"), PEP_ERR_FORMAT,
              "%s is a Parquet file, which peprime cannot read (Debian ships no Parquet library for C); export it "
              "as JSON lines with your own Python: python3 -c 'import datasets; datasets.load_dataset(\"parquet\", "
              "data_files=\"%s\")[\"train\"].to_json(\"OUT.jsonl\")' (or straight from the Hub: "
              "datasets.load_dataset(\"wikiann\", \"%s\")[\"train\"].to_json(\"train.jsonl\"), and \"validation\", "
              "\"test\"), then run this command with --from hf-jsonl",
              path, path, lang);
    PEP_CHECK(!(n >= 6 && !memcmp(b, "ARROW1", 6)) && !(n >= 4 && !memcmp(b, "\xff\xff\xff\xff", 4)) &&
                  !ends_with(path, ".arrow"),
              PEP_ERR_FORMAT,
              "%s is an Arrow file (a datasets cache), which peprime cannot read; export the split as JSON lines "
              "with your own Python: datasets.load_dataset(\"wikiann\", \"%s\")[\"train\"].to_json(\"train.jsonl\"), "
              "then run this command with --from hf-jsonl",
              path, lang);
    PEP_CHECK(!(n >= 2 && b[0] == 0x1f && b[1] == 0x8b), PEP_ERR_FORMAT,
              "%s is gzip-compressed; Rahimi et al.'s splits come as <lang>.tar.gz: extract it (tar xzf %s.tar.gz "
              "gives train, dev, test) or gunzip the file, then convert the text files",
              path, lang);
    PEP_CHECK(!(n >= 262 && !memcmp(b + 257, "ustar", 5)), PEP_ERR_FORMAT,
              "%s is a tar archive; extract it (tar xf %s) and convert the files inside", path, path);
    return PEP_OK;
}

int pep_wikiann_sniff(const char *path, const char *lang)
{
    unsigned char head[512];
    FILE *f = fopen(path, "rb");
    PEP_CHECK(f, PEP_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t n = fread(head, 1, sizeof head, f);
    int bad = ferror(f);
    fclose(f);
    PEP_CHECK(!bad, PEP_ERR_IO, "cannot read '%s'", path);
    return sniff(path, head, n, lang);
}

int pep_wikiann_read(enum pep_wikiann_format format, const char *path, const char *lang, const char *const *tags,
                     int ntags, struct pep_corpus **out, struct pep_wikiann_stats *stats)
{
    *out = NULL;
    int rc = PEP_OK;
    char *buf = NULL;
    size_t size = 0;
    PEP_CALL(pep_file_read(path, "WikiAnn file", PEP_FILE_MAX_DATA, &buf, &size));
    PEP_CALL_GOTO(rc, sniff(path, (const unsigned char *)buf, size, lang));
    PEP_CALL_GOTO(rc, pep_wikiann_parse(format, buf, size, path, lang, tags, ntags, out, stats));
cleanup:
    pep_free(buf);
    return rc;
}

/* mkdir -p of the folder that holds `path`. */
static int make_parents(const char *path)
{
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s", path);
    PEP_CHECK(n > 0 && (size_t)n < sizeof dir, PEP_ERR_USAGE, "path '%s' is too long", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return PEP_OK;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p) continue;
        char keep = *p;
        *p = '\0';
        PEP_CHECK(mkdir(dir, 0777) == 0 || errno == EEXIST, PEP_ERR_IO, "cannot create folder '%s': %s", dir,
                  strerror(errno));
        *p = keep;
        if (!keep) break;
    }
    struct stat st;
    PEP_CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), PEP_ERR_IO, "'%s' is not a folder", dir);
    return PEP_OK;
}

/* The corpus as `token<TAB>tag` text in one pep_alloc'ed buffer. */
static int render(const struct pep_corpus *c, char **out, size_t *out_len)
{
    size_t n = (size_t)c->nsent;
    for (size_t w = 0; w < c->nwords; w++) n += (size_t)c->word_len[w] + strlen(c->tag_names[c->tags[w]]) + 2;
    char *buf;
    PEP_ALLOC(buf, n + 1);
    size_t o = 0;
    for (int s = 0; s < c->nsent; s++) {
        for (size_t w = c->sent_start[s]; w < c->sent_start[s + 1]; w++) {
            const char *tag = c->tag_names[c->tags[w]];
            memcpy(buf + o, c->text + c->word_off[w], (size_t)c->word_len[w]);
            o += (size_t)c->word_len[w];
            buf[o++] = '\t';
            memcpy(buf + o, tag, strlen(tag));
            o += strlen(tag);
            buf[o++] = '\n';
        }
        buf[o++] = '\n';
    }
    *out = buf;
    *out_len = o;
    return PEP_OK;
}

/* Does `back` (the written text as io/conll.c reads it) hold c's words and tags? */
static int same_corpus(const struct pep_corpus *c, const struct pep_corpus *back)
{
    if (back->nsent != c->nsent || back->nwords != c->nwords) return 0;
    for (int s = 0; s <= c->nsent; s++)
        if (back->sent_start[s] != c->sent_start[s]) return 0;
    for (size_t w = 0; w < c->nwords; w++)
        if (back->word_len[w] != c->word_len[w] || back->tags[w] != c->tags[w] ||
            memcmp(back->text + back->word_off[w], c->text + c->word_off[w], (size_t)c->word_len[w]))
            return 0;
    return 1;
}

int pep_wikiann_render(const struct pep_corpus *c, const char *origin, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    char *buf = NULL;
    size_t n = 0;
    int rc = PEP_OK;
    struct pep_corpus *back = NULL;
    const char **tags = NULL;
    PEP_CALL(render(c, &buf, &n));
    /* the stages' reader must find exactly these words and tags */
    PEP_ALLOC_GOTO(rc, tags, c->ntags);
    for (int t = 0; t < c->ntags; t++) tags[t] = c->tag_names[t];
    PEP_CALL_GOTO(rc, pep_conll_parse(buf, n, origin, tags, c->ntags, NULL, &back, NULL));
    PEP_CHECK_GOTO(rc, same_corpus(c, back), PEP_ERR_INTERNAL,
                   "%s: the text written reads back as other words or tags (a bug: please report it)", origin);
    *text = buf;
    *len = n;
    buf = NULL;
cleanup:
    pep_corpus_destroy(&back);
    pep_free(tags);
    pep_free(buf);
    return rc;
}

int pep_wikiann_write(const char *path, const struct pep_corpus *c)
{
    char *buf = NULL, tmp[4096], dir[4096];
    size_t len = 0;
    int rc = PEP_OK, fd = -1, created = 0;
    PEP_CHECK(snprintf(tmp, sizeof tmp, "%s.tmp", path) < (int)sizeof tmp, PEP_ERR_USAGE, "path '%s' is too long",
              path);
    PEP_CALL(pep_wikiann_render(c, path, &buf, &len));
    PEP_CALL_GOTO(rc, make_parents(path));
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    PEP_CHECK_GOTO(rc, fd >= 0, PEP_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    created = 1;
    for (size_t o = 0; o < len;) {
        ssize_t k = write(fd, buf + o, len - o);
        if (k < 0 && errno == EINTR) continue;
        PEP_CHECK_GOTO(rc, k > 0, PEP_ERR_IO, "cannot write '%s': %s", tmp, k < 0 ? strerror(errno) : "no progress");
        o += (size_t)k;
    }
    PEP_CHECK_GOTO(rc, fsync(fd) == 0, PEP_ERR_IO, "cannot sync '%s': %s", tmp, strerror(errno));
    int cl = close(fd);
    fd = -1;
    PEP_CHECK_GOTO(rc, cl == 0, PEP_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    PEP_CHECK_GOTO(rc, rename(tmp, path) == 0, PEP_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                   strerror(errno));
    created = 0;
    /* the rename itself survives a crash once the folder is synced */
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int dfd = open(slash ? (slash == dir ? "/" : dir) : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
cleanup:
    if (fd >= 0) close(fd);
    if (created) unlink(tmp);
    pep_free(buf);
    return rc;
}
