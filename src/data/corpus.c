/* The in-memory tagged corpus: creation, appending words and sentences (see corpus.h). */
#include "data/corpus.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

/* Grows a pep_alloc'ed array to hold at least `need` elements of `elem` bytes. */
static int grow(void **p, size_t *cap, size_t need, size_t elem, const char *what)
{
    if (need <= *cap) return PEP_OK;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) ncap *= 2;
    void *q = pep_alloc_(ncap * elem, what, __FILE__, __LINE__, __func__);
    if (!q) return PEP_ERR_NOMEM;
    if (*p) memcpy(q, *p, *cap * elem);
    pep_free(*p);
    *p = q;
    *cap = ncap;
    return PEP_OK;
}

int pep_corpus_create(const char *name, const char *const *tags, int ntags, struct pep_corpus **out)
{
    *out = NULL;
    PEP_CHECK(ntags >= 1, PEP_ERR_USAGE, "corpus '%s': the tag set is empty (set data.tags)", name);
    for (int i = 0; i < ntags; i++) {
        size_t l = strlen(tags[i]);
        PEP_CHECK(l > 0 && l < PEP_TAG_NAME_MAX, PEP_ERR_USAGE,
                  "tag '%s' must have 1 to %d characters (data.tags)", tags[i], PEP_TAG_NAME_MAX - 1);
        for (int j = 0; j < i; j++)
            PEP_CHECK(strcmp(tags[i], tags[j]) != 0, PEP_ERR_USAGE, "tag '%s' is listed twice in data.tags", tags[i]);
    }
    struct pep_corpus *c;
    PEP_ALLOC(c, 1);
    snprintf(c->name, sizeof c->name, "%s", name ? name : "");
    c->ntags = ntags;
    c->tag_names = pep_alloc_((size_t)ntags * PEP_TAG_NAME_MAX, "tag_names", __FILE__, __LINE__, __func__);
    if (!c->tag_names) {
        pep_free(c);
        return PEP_ERR_NOMEM;
    }
    for (int i = 0; i < ntags; i++) snprintf(c->tag_names[i], PEP_TAG_NAME_MAX, "%s", tags[i]);
    size_t one = 0;
    int rc = grow((void **)&c->sent_start, &one, 1, sizeof(size_t), "sent_start");
    if (rc != PEP_OK) {
        pep_corpus_destroy(&c);
        return rc;
    }
    c->sent_cap = (int)one;
    c->sent_start[0] = 0;
    *out = c;
    return PEP_OK;
}

void pep_corpus_destroy(struct pep_corpus **c)
{
    if (!c || !*c) return;
    pep_free((*c)->tag_names);
    pep_free((*c)->text);
    pep_free((*c)->word_off);
    pep_free((*c)->word_len);
    pep_free((*c)->tags);
    pep_free((*c)->sent_start);
    pep_free(*c);
    *c = NULL;
}

int pep_corpus_add_word(struct pep_corpus *c, const char *word, size_t len, int tag)
{
    PEP_CHECK(tag >= 0 && tag < c->ntags, PEP_ERR_INTERNAL, "tag id %d outside [0, %d)", tag, c->ntags);
    PEP_CHECK(len <= (1u << 30), PEP_ERR_FORMAT, "a word of %zu bytes is too long", len);
    PEP_CALL(grow((void **)&c->text, &c->text_cap, c->text_len + len + 1, 1, "corpus text"));
    size_t cap = c->words_cap;
    PEP_CALL(grow((void **)&c->word_off, &cap, c->nwords + 1, sizeof(size_t), "word_off"));
    cap = c->words_cap;
    PEP_CALL(grow((void **)&c->word_len, &cap, c->nwords + 1, sizeof(int), "word_len"));
    cap = c->words_cap;
    PEP_CALL(grow((void **)&c->tags, &cap, c->nwords + 1, sizeof(int), "tags"));
    c->words_cap = cap;
    memcpy(c->text + c->text_len, word, len);
    c->text[c->text_len + len] = '\0';
    c->word_off[c->nwords] = c->text_len;
    c->word_len[c->nwords] = (int)len;
    c->tags[c->nwords] = tag;
    c->text_len += len + 1;
    c->nwords++;
    return PEP_OK;
}

int pep_corpus_end_sentence(struct pep_corpus *c)
{
    if (c->nwords == c->sent_start[c->nsent]) return PEP_OK;
    PEP_CHECK(c->nsent < (1 << 30), PEP_ERR_FORMAT, "corpus '%s' has too many sentences", c->name);
    size_t cap = (size_t)c->sent_cap;
    PEP_CALL(grow((void **)&c->sent_start, &cap, (size_t)c->nsent + 2, sizeof(size_t), "sent_start"));
    c->sent_cap = (int)cap;
    c->nsent++;
    c->sent_start[c->nsent] = c->nwords;
    return PEP_OK;
}

int pep_corpus_tag_id(const struct pep_corpus *c, const char *name, size_t len)
{
    for (int i = 0; i < c->ntags; i++)
        if (strlen(c->tag_names[i]) == len && memcmp(c->tag_names[i], name, len) == 0) return i;
    return -1;
}

int pep_taglist_parse(const char *list, const char ***tags, int *ntags)
{
    *tags = NULL;
    *ntags = 0;
    int n = 0;
    for (const char *p = list; *p; p++) n += (*p == ',');
    n += 1;
    size_t bytes = (size_t)n * sizeof(char *) + strlen(list) + 1;
    char *block = pep_alloc_(bytes, "tag list", __FILE__, __LINE__, __func__);
    if (!block) return PEP_ERR_NOMEM;
    const char **ptr = (const char **)block;
    char *text = block + (size_t)n * sizeof(char *);
    int k = 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        memcpy(text, s, (size_t)(e - s));
        text[e - s] = '\0';
        ptr[k++] = text;
        text += (e - s) + 1;
    }
    if (k == 0) {
        pep_free(block);
        PEP_FAIL(PEP_ERR_USAGE, "the tag list '%s' is empty (set data.tags, e.g. O,B-PER,I-PER)", list);
    }
    *tags = ptr;
    *ntags = k;
    return PEP_OK;
}
