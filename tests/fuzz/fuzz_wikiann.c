/* libFuzzer harness for `peprime data convert`'s readers and writer (io/wikiann.c): the input is
 * written to <tmp>/in/train and read with pep_wikiann_read as Hugging Face JSON lines when it
 * starts with '{', else as Rahimi et al.'s `lang:token<TAB>tag` file (language "de"). A rejection
 * must be PEP_ERR_FORMAT naming the file. An accepted corpus must hold non-empty sentences of
 * non-empty words without TAB or newline, tags in the set and valid IOB2 (the repair ran); its
 * text (pep_wikiann_render, what pep_wikiann_write writes) must read back through io/conll.c as
 * the same words and tags. The file itself is not written here: its fsyncs would make the harness
 * a disk benchmark (the unit test and tests/pipeline/data_convert.sh write files). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fuzz_util.h"
#include "wikiann.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const k_tags[] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"};
#define NTAGS 7

static void check_corpus(const struct pep_corpus *c, const struct pep_wikiann_stats *st)
{
    if (c->nsent <= 0) fuzz_fail("accepted a corpus without sentences");
    if (st->sentences != c->nsent || st->tokens != (long)c->nwords)
        fuzz_fail("stats say %ld sentences / %ld tokens, the corpus has %d / %zu", st->sentences, st->tokens, c->nsent,
                  c->nwords);
    for (int s = 0; s < c->nsent; s++) {
        int n = pep_corpus_sentence_len(c, s);
        if (n <= 0) fuzz_fail("sentence %d is empty", s);
        const int *tags = pep_corpus_sentence_tags(c, s);
        for (int j = 0; j < n; j++) {
            const char *w = pep_corpus_word(c, s, j);
            size_t len = (size_t)c->word_len[c->sent_start[s] + (size_t)j];
            if (len == 0 || memchr(w, '\t', len) || memchr(w, '\n', len)) fuzz_fail("word %d of sentence %d", j, s);
            if (tags[j] < 0 || tags[j] >= NTAGS) fuzz_fail("tag id %d out of range", tags[j]);
            const char *g = k_tags[tags[j]];
            if (g[0] != 'I') continue;
            const char *p = j ? k_tags[tags[j - 1]] : "O";
            if (p[0] == 'O' || strcmp(p + 1, g + 1)) fuzz_fail("%s after %s survived the IOB2 repair", g, p);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *written = fuzz_write("in/train", data, size);
    char path[4096];
    snprintf(path, sizeof path, "%s", written);
    enum pep_wikiann_format f = size > 0 && data[0] == '{' ? PEP_WIKIANN_FORMAT_HF_JSONL : PEP_WIKIANN_FORMAT_RAHIMI;
    struct pep_corpus *c = NULL;
    struct pep_wikiann_stats st;
    pep_error_clear();
    int rc = pep_wikiann_read(f, path, "de", k_tags, NTAGS, &c, &st);
    if (rc != PEP_OK) {
        if (c) fuzz_fail("corpus returned with an error");
        fuzz_rejected(rc, FUZZ_ERR(PEP_ERR_FORMAT), path);
        return 0;
    }
    check_corpus(c, &st);
    char *text = NULL;
    size_t len = 0;
    rc = pep_wikiann_render(c, path, &text, &len);
    if (rc != PEP_OK) fuzz_fail("the writer's text of an accepted corpus: %s", pep_error_message());
    pep_free(text);
    pep_corpus_destroy(&c);
    return 0;
}
