/* libFuzzer harness for the CoNLL reader: the input is written as
 * <tmp>/ner/wikiann/xx/train.txt, then read by io/conll.c (pep_conll_read, as every stage
 * reads its data; the input's size picks data.separator, data.scheme, data.unknown_types and
 * data.max_sentences) and through io/spm_file.c's text writer (pep_spm_write_text, as `peprime
 * tokenizer train` reads its training text). Each must either accept the file, giving a
 * corpus / text that holds what the reader promises, or reject it with PEP_ERR_FORMAT
 * naming the file. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conll.h"
#include "config/config.h"
#include "core/error.h"
#include "fuzz_util.h"
#include "spm_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const k_tags[] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"};
#define NTAGS 7

static void check_corpus(const struct pep_corpus *c, int max_sentences)
{
    if (c->nsent <= 0) fuzz_fail("accepted a corpus without sentences");
    if (max_sentences > 0 && c->nsent > max_sentences) fuzz_fail("%d sentences kept, max %d", c->nsent, max_sentences);
    if (c->sent_start[c->nsent] != c->nwords) fuzz_fail("sentence index does not end at the word count");
    for (int s = 0; s < c->nsent; s++) {
        int n = pep_corpus_sentence_len(c, s);
        if (n <= 0) fuzz_fail("sentence %d is empty", s);
        const int *tags = pep_corpus_sentence_tags(c, s);
        for (int j = 0; j < n; j++) {
            const char *w = pep_corpus_word(c, s, j);
            size_t len = strlen(w);
            if (len == 0 || len != (size_t)c->word_len[c->sent_start[s] + (size_t)j])
                fuzz_fail("word %d of sentence %d: length %zu", j, s, len);
            if (memchr(w, '\t', len) || memchr(w, '\n', len)) fuzz_fail("word holds a TAB or newline");
            if (tags[j] < 0 || tags[j] >= NTAGS) fuzz_fail("tag id %d out of range", tags[j]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("ner/wikiann/xx/train.txt", data, size);
    struct pep_conll_options o;
    pep_conll_default_options(&o);
    o.separator = size & 1 ? PEP_CONLL_SEPARATOR_WHITESPACE : PEP_CONLL_SEPARATOR_TAB;
    o.scheme = (size >> 1) % 3 == 1 ? PEP_CONLL_SCHEME_IOB1
               : (size >> 1) % 3 == 2 ? PEP_CONLL_SCHEME_IOBES
                                      : PEP_CONLL_SCHEME_IOB2;
    o.unknown_to_o = (int)((size >> 3) & 1);
    o.max_sentences = size % 16 == 7 ? 2 : 0;
    int max_sentences = o.max_sentences;

    struct pep_corpus *c = NULL;
    pep_error_clear();
    int rc = pep_conll_read(path, k_tags, NTAGS, &o, &c, NULL);
    if (rc == PEP_OK) {
        check_corpus(c, max_sentences);
        pep_corpus_destroy(&c);
    } else {
        if (c) fuzz_fail("corpus returned with an error");
        fuzz_rejected(rc, FUZZ_ERR(PEP_ERR_FORMAT), path);
    }

    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    if (!out) fuzz_fail("open_memstream failed");
    const char *langs[] = {"xx"};
    long lines = -1, per_lang = (long)(size % 3); /* 0 = all sentences, else a sample */
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    snprintf(cfg.data.root, sizeof cfg.data.root, "%s", fuzz_tmpdir());
    snprintf(cfg.data.tags, sizeof cfg.data.tags, "O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC");
    snprintf(cfg.data.separator, sizeof cfg.data.separator, "%s", size & 1 ? "whitespace" : "tab");
    rc = pep_spm_write_text(&cfg, langs, 1, "train", per_lang, 7, out, &lines);
    fclose(out);
    if (rc == PEP_OK) {
        long nl = 0;
        for (size_t i = 0; i < text_len; i++) nl += text[i] == '\n';
        if (nl != lines) fuzz_fail("text writer reported %ld lines, wrote %ld", lines, nl);
        if (per_lang > 0 && lines > per_lang) fuzz_fail("%ld lines sampled, asked for %ld", lines, per_lang);
    } else {
        fuzz_rejected(rc, FUZZ_ERR(PEP_ERR_FORMAT), path);
    }
    free(text);
    return 0;
}
