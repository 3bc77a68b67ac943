/* libFuzzer harness for SentencePiece .model files (the ModelProto protobuf read by
 * io/spm_file.c + src/tokenizer/spm_model.c): the input is written to a file and read with
 * pep_spm_read_file, as `peprime tokenizer` and every stage read model.tokenizer. A rejection
 * must be PEP_ERR_FORMAT naming the file. An accepted model must then encode a few fixed
 * texts and the input's first bytes (through its own, possibly damaged, normaliser tables)
 * to ids inside the vocabulary, or fail with PEP_ERR_FORMAT. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/ner_align.h"
#include "fuzz_util.h"
#include "spm_file.h"
#include "tokenizer/spm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode_checked(const struct pep_spm *spm, const char *text, size_t len)
{
    int ids[256], n = 0;
    pep_error_clear();
    int rc = pep_spm_encode(spm, text, len, ids, 256, &n);
    if (rc == PEP_ERR_USAGE && n > 256) { /* more pieces than our buffer: that is fine */
        pep_error_clear();
        return;
    }
    if (rc != PEP_OK) {
        fuzz_rejected(rc, FUZZ_ERR(PEP_ERR_FORMAT), NULL);
        return;
    }
    int vocab = pep_spm_vocab_size(spm);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) fuzz_fail("id %d outside the vocabulary of %d", ids[i], vocab);

    const char *words[3] = {text, "x", text};
    size_t lens[3] = {len, 1, len / 2};
    int sent[16], first[3], n_ids = 0, cut = 0;
    rc = pep_ner_align(spm, words, lens, NULL, 3, 16, sent, NULL, first, &n_ids, &cut);
    if (rc != PEP_OK) {
        fuzz_rejected(rc, FUZZ_ERR(PEP_ERR_FORMAT), NULL);
        return;
    }
    if (n_ids < 2 || n_ids > 16) fuzz_fail("sentence of %d ids in a window of 16", n_ids);
    for (int i = 0; i < n_ids; i++)
        if (sent[i] < 0 || sent[i] >= pep_spm_fairseq_vocab(spm)) fuzz_fail("fairseq id %d out of range", sent[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const texts[] = {"The city of Berlin .", "  Ｆｕｌｌ　ｗｉｄｔｈ ﬁ ㍻  ", "bad \xff\xfe \xc3",
                                        "北京 <ent> x"};
    const char *path = fuzz_write("fuzz.model", data, size);
    struct pep_spm *spm = NULL;
    pep_error_clear();
    int rc = pep_spm_read_file(path, &spm);
    if (rc != PEP_OK) {
        if (spm) fuzz_fail("model returned with an error");
        fuzz_rejected(rc, FUZZ_ERR(PEP_ERR_FORMAT), path);
        return 0;
    }
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) encode_checked(spm, texts[i], strlen(texts[i]));
    encode_checked(spm, (const char *)data, size < 48 ? size : 48);
    pep_spm_destroy(&spm);
    return 0;
}
