/* libFuzzer harness for the SentencePiece encoder (src/tokenizer/spm_*.c) on arbitrary bytes,
 * valid UTF-8 or not. The first input byte picks one of the three tiny models of
 * corpus/spm_model (unigram with a charsmap and a user-defined symbol, BPE, unigram with byte
 * fallback); the rest is the text. Checked: encoding never fails on any bytes; the piece count
 * does not depend on the buffer size (a too-small buffer is PEP_ERR_USAGE with the count
 * needed); every id is inside the vocabulary; a sentence split at spaces encodes into its
 * window with each word's first piece where pep_ner_align says. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/ner_align.h"
#include "fuzz_util.h"
#include "spm_file.h"
#include "tokenizer/spm.h"

#ifndef PEP_FUZZ_MODEL_DIR
#error "PEP_FUZZ_MODEL_DIR must name the folder of the seed models"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const k_models[] = {"unigram.model", "bpe.model", "bytefb.model"};
#define NMODELS 3
static struct pep_spm *g_spm[NMODELS];

static void free_models(void)
{
    for (int i = 0; i < NMODELS; i++) pep_spm_destroy(&g_spm[i]);
}

static void load_models(void)
{
    for (int i = 0; i < NMODELS; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", PEP_FUZZ_MODEL_DIR, k_models[i]);
        if (pep_spm_read_file(path, &g_spm[i]) != PEP_OK) fuzz_fail("cannot load %s: %s", path, pep_error_message());
    }
    atexit(free_models);
}

#define WORDS_MAX 64
#define WINDOW 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_spm[0]) load_models();
    if (size == 0) return 0;
    const struct pep_spm *spm = g_spm[data[0] % NMODELS];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int vocab = pep_spm_vocab_size(spm);

    int small[4], n_small = -1, n = -1;
    pep_error_clear();
    int rc = pep_spm_encode(spm, text, len, small, 4, &n_small);
    if (rc != PEP_OK && !(rc == PEP_ERR_USAGE && n_small > 4)) fuzz_fail("encode failed: %s", pep_error_message());
    pep_error_clear();
    int *ids = malloc(((size_t)n_small + 1) * sizeof *ids);
    if (!ids) return 0;
    if (pep_spm_encode(spm, text, len, ids, n_small, &n) != PEP_OK || n != n_small)
        fuzz_fail("encode gave %d pieces with room for %d, %d before", n, n_small, n_small);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) fuzz_fail("id %d outside the vocabulary of %d", ids[i], vocab);
        if (i < 4 && ids[i] != small[i]) fuzz_fail("piece %d differs with a smaller buffer", i);
    }
    free(ids);

    /* the text as a sentence of words split at spaces, as the NER data path encodes it */
    const char *words[WORDS_MAX];
    size_t lens[WORDS_MAX];
    int nw = 0;
    for (size_t i = 0; i < len && nw < WORDS_MAX;) {
        while (i < len && text[i] == ' ') i++;
        size_t s = i;
        while (i < len && text[i] != ' ') i++;
        if (i > s) words[nw] = text + s, lens[nw++] = i - s;
    }
    int sent[WINDOW], first[WORDS_MAX], n_ids = 0, cut = -1;
    if (pep_ner_align(spm, words, lens, NULL, nw, WINDOW, sent, NULL, first, &n_ids, &cut) != PEP_OK)
        fuzz_fail("ner_align failed: %s", pep_error_message());
    if (n_ids < 2 || n_ids > WINDOW || sent[0] != 0 || sent[n_ids - 1] != 2)
        fuzz_fail("sentence of %d ids is not <s> ... </s> in a window of %d", n_ids, WINDOW);
    int kept = 0;
    for (int w = 0; w < nw; w++) {
        if (first[w] < 0) continue;
        kept++;
        if (first[w] < 1 || first[w] >= n_ids - 1) fuzz_fail("word %d starts at %d of %d ids", w, first[w], n_ids);
        if (w > 0 && first[w - 1] >= first[w]) fuzz_fail("word starts not increasing at word %d", w);
    }
    if (kept + cut != nw) fuzz_fail("%d words kept + %d cut != %d words", kept, cut, nw);
    for (int i = 0; i < n_ids; i++)
        if (sent[i] < 0 || sent[i] >= pep_spm_fairseq_vocab(spm)) fuzz_fail("fairseq id %d out of range", sent[i]);
    return 0;
}
