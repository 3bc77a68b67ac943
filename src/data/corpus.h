/* The in-memory tagged corpus shared by the CoNLL reader (io/conll.c), the generated corpus
 * (data/generated.c), example building and evaluation: sentences as runs of words stored in
 * one text buffer (offsets, each word NUL-terminated) plus one tag id per word. Pure C. */
#ifndef PEP_DATA_CORPUS_H
#define PEP_DATA_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#define PEP_TAG_NAME_MAX 32 /* bytes of a tag name, NUL included */
#define PEP_TAGS_MAX 64     /* tags in a tag set (data.tags) */

struct pep_corpus {
    char name[64];        /* language code, or "generated:<lang>" for the synthetic corpus */
    int generated;        /* 1: made by pep_generated_corpus(), not real data */
    int ntags;
    char (*tag_names)[PEP_TAG_NAME_MAX]; /* (ntags) the tag set; tag id = index */
    char *text;           /* every word, NUL-terminated, back to back */
    size_t text_len, text_cap;
    size_t *word_off;     /* (nwords) offset of word i in text */
    int *word_len;        /* (nwords) bytes, without the NUL */
    int *tags;            /* (nwords) tag id of word i */
    size_t nwords, words_cap;
    size_t *sent_start;   /* (nsent + 1) first word of sentence s; sent_start[nsent] = nwords */
    int nsent, sent_cap;
};

/* An empty corpus with a copy of the tag set. Tags must be distinct, non-empty and shorter
 * than PEP_TAG_NAME_MAX. Not collective. */
int pep_corpus_create(const char *name, const char *const *tags, int ntags, struct pep_corpus **out);
/* NULL-safe; sets *c = NULL. */
void pep_corpus_destroy(struct pep_corpus **c);
/* Appends a word (len bytes, need not be NUL-terminated) with its tag id to the open sentence. */
int pep_corpus_add_word(struct pep_corpus *c, const char *word, size_t len, int tag);
/* Closes the open sentence; does nothing if it has no words. */
int pep_corpus_end_sentence(struct pep_corpus *c);
/* Tag id of `name` in the corpus tag set, or -1. */
int pep_corpus_tag_id(const struct pep_corpus *c, const char *name, size_t len);

static inline int pep_corpus_sentence_len(const struct pep_corpus *c, int s)
{
    return (int)(c->sent_start[s + 1] - c->sent_start[s]);
}
/* Word j of sentence s (NUL-terminated). */
static inline const char *pep_corpus_word(const struct pep_corpus *c, int s, int j)
{
    return c->text + c->word_off[c->sent_start[s] + (size_t)j];
}
/* Tag ids of sentence s, pep_corpus_sentence_len(c, s) of them. */
static inline const int *pep_corpus_sentence_tags(const struct pep_corpus *c, int s)
{
    return c->tags + c->sent_start[s];
}

/* Splits a comma-separated tag list (config data.tags) into an array of names. *tags is one
 * pep_alloc'ed block (pointers + strings): free it with pep_free(). */
int pep_taglist_parse(const char *list, const char ***tags, int *ntags);

#endif
