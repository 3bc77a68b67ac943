/* SentencePiece encoder: ids equal to spm_encode's on a tiny model trained in the set-up
 * by spm_train (unigram and BPE), unknown merging, fairseq mapping, the NER alignment (data/ner_align.h) with its labels and truncation,
 * malformed model bytes (truncations, byte flips, foreign files) and file errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/ner_align.h"
#include "model/model.h"
#include "spm_file.h"
#include "testutil.h"
#include "tokenizer/spm.h"

static char g_dir[1024];
static char g_model[PEP_TEST_PATH_MAX], g_bpe[PEP_TEST_PATH_MAX];
static unsigned char *g_bytes;
static size_t g_len;

static const char *k_train_text[] = {
    "The quick brown fox jumps over the lazy dog .",
    "New York City is the largest city in the United States .",
    "Barack Obama was born in Honolulu , Hawaii .",
    "Angela Merkel war Bundeskanzlerin der Bundesrepublik Deutschland .",
    "Die Stadt Berlin liegt an der Spree .",
    "Москва — столица Российской Федерации .",
    "Лев Толстой написал роман « Война и мир » .",
    "北京是中华人民共和国的首都 。",
    "东京是日本的首都 。",
    "Paris est la capitale de la France .",
    "The Amazon river flows through Brazil and Peru .",
    "Marie Curie won the Nobel Prize in Physics in 1903 .",
    "Der Rhein fließt durch Köln und Düsseldorf .",
    "Санкт-Петербург основан Петром Первым .",
    "<ent> London <ent> is on the Thames .",
};

/* Test sentences: whitespace runs, full-width forms, ligatures, unseen characters
 * (merged into one <unk>), malformed UTF-8, a user-defined symbol. */
static const char *k_test_text[] = {
    "The city of Berlin .",
    "  leading and   inner   spaces  ",
    "Ｆｕｌｌ　ｗｉｄｔｈ ﬁne ㍻",
    "unseen ☃☃☃ snowmen ☃ and ✈",
    "Москва и Берлин",
    "北京和东京",
    "bad \xff\xfe bytes \xc3",
    "<ent> Paris <ent>",
    "",
    " ",
    "x",
};

static void run_or_fail(const char *cmd)
{
    if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

static int setup(void **state)
{
    snprintf(g_dir, sizeof g_dir, "%s", pep_test_tmpdir("spm"));
    char path[PEP_TEST_PATH_MAX], cmd[PEP_TEST_CMD_MAX];
    snprintf(path, sizeof path, "%s/train.txt", g_dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int rep = 0; rep < 4; rep++)
        for (size_t i = 0; i < sizeof(k_train_text) / sizeof(*k_train_text); i++)
            fprintf(f, "%s\n", k_train_text[i]);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && spm_train --input=train.txt --model_prefix=tiny --vocab_size=180 "
             "--hard_vocab_limit=false --user_defined_symbols='<ent>' --character_coverage=0.98 "
             "--num_threads=1 --minloglevel=2 >spm_train.log 2>&1 && "
             "spm_train --input=train.txt --model_prefix=bpe --model_type=bpe --vocab_size=120 "
             "--hard_vocab_limit=false --num_threads=1 --minloglevel=2 >>spm_train.log 2>&1",
             g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "spm_train failed; see %s/spm_train.log (is sentencepiece installed?)\n", g_dir);
        return -1;
    }
    snprintf(g_model, sizeof g_model, "%s/tiny.model", g_dir);
    snprintf(g_bpe, sizeof g_bpe, "%s/bpe.model", g_dir);
    f = fopen(g_model, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    g_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g_bytes = malloc(g_len);
    if (!g_bytes || fread(g_bytes, 1, g_len, f) != g_len) return -1;
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    free(g_bytes);
    return 0;
}

static void check_against_spm_encode(const char *model)
{
    char in[PEP_TEST_PATH_MAX], out[PEP_TEST_PATH_MAX], cmd[PEP_TEST_CMD_MAX], line[8192];
    snprintf(in, sizeof in, "%s/test.txt", g_dir);
    snprintf(out, sizeof out, "%s/test.ids", g_dir);
    size_t n_test = sizeof(k_test_text) / sizeof(*k_test_text);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n_test; i++) fprintf(f, "%s\n", k_test_text[i]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "spm_encode --model='%s' --output_format=id < '%s' > '%s'", model,
             in, out);
    run_or_fail(cmd);

    struct pep_spm *spm = NULL;
    assert_int_equal(pep_spm_read_file(model, &spm), PEP_OK);
    f = fopen(out, "r");
    assert_non_null(f);
    int ids[512], n, saw_unk = 0;
    for (size_t i = 0; i < n_test; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        assert_int_equal(pep_spm_encode(spm, k_test_text[i], strlen(k_test_text[i]), ids, 512, &n), PEP_OK);
        char mine[8192];
        size_t o = 0;
        mine[0] = 0;
        for (int k = 0; k < n; k++) {
            o += (size_t)snprintf(mine + o, sizeof mine - o, k ? " %d" : "%d", ids[k]);
            if (ids[k] == pep_spm_unk_id(spm)) {
                saw_unk = 1;
                /* consecutive unknowns are merged into one <unk> */
                if (k > 0) assert_int_not_equal(ids[k - 1], pep_spm_unk_id(spm));
            }
        }
        line[strcspn(line, "\n")] = 0;
        if (strcmp(mine, line) != 0)
            fail_msg("sentence %zu '%s': spm_encode '%s', peprime '%s'", i, k_test_text[i], line, mine);
    }
    assert_true(saw_unk);
    fclose(f);
    pep_spm_destroy(&spm);
    assert_null(spm);
    pep_spm_destroy(&spm); /* NULL-safe */
}

static void test_spm_matches_spm_encode(void **state) { check_against_spm_encode(g_model); }

static void test_spm_bpe_matches_spm_encode(void **state) { check_against_spm_encode(g_bpe); }

static void test_spm_pieces_reassemble(void **state)
{
    struct pep_spm *spm = NULL;
    assert_int_equal(pep_spm_load(g_bytes, g_len, "tiny.model", &spm), PEP_OK);
    const char *text = "Berlin is the city of the Spree";
    int ids[256], n;
    assert_int_equal(pep_spm_encode(spm, text, strlen(text), ids, 256, &n), PEP_OK);
    assert_true(n > 1);
    char joined[1024] = "";
    for (int k = 0; k < n; k++) strcat(joined, pep_spm_piece(spm, ids[k]));
    /* "▁Berlin▁is..." : the dummy prefix and every space become U+2581 */
    char expect[1024];
    size_t o = 0;
    memcpy(expect, "\xe2\x96\x81", 3);
    o = 3;
    for (const char *p = text; *p; p++) {
        if (*p == ' ') {
            memcpy(expect + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            expect[o++] = *p;
        }
    }
    expect[o] = 0;
    assert_string_equal(joined, expect);
    assert_int_equal(pep_spm_piece_id(spm, pep_spm_piece(spm, ids[0])), ids[0]);
    assert_int_equal(pep_spm_piece_id(spm, "no-such-piece"), -1);
    assert_null(pep_spm_piece(spm, pep_spm_vocab_size(spm)));

    /* a buffer too small reports how many ids are needed */
    int n2;
    pep_error_clear();
    assert_int_equal(pep_spm_encode(spm, text, strlen(text), ids, 1, &n2), PEP_ERR_USAGE);
    assert_int_equal(n2, n);
    pep_error_clear();
    pep_spm_destroy(&spm);
}

static void test_spm_fairseq_mapping(void **state)
{
    struct pep_spm *spm = NULL;
    assert_int_equal(pep_spm_load(g_bytes, g_len, NULL, &spm), PEP_OK);
    int V = pep_spm_vocab_size(spm);
    assert_int_equal(pep_spm_piece_id(spm, "<unk>"), 0);
    assert_int_equal(pep_spm_piece_id(spm, "<s>"), 1);
    assert_int_equal(pep_spm_piece_id(spm, "</s>"), 2);
    assert_int_equal(pep_spm_fairseq_id(spm, 0), 3);
    assert_int_equal(pep_spm_fairseq_id(spm, 1), 0);
    assert_int_equal(pep_spm_fairseq_id(spm, 2), 2);
    assert_int_equal(pep_spm_fairseq_id(spm, 3), 4);
    assert_int_equal(pep_spm_fairseq_id(spm, V - 1), V);
    assert_int_equal(pep_spm_fairseq_vocab(spm), V + 2);
    assert_int_equal(pep_spm_mask_id(spm), V + 1);
    pep_spm_destroy(&spm);
}

/* fairseq / XLM-R rules written out independently of src/tokenizer: spm <unk>=0 -> 3,
 * <s>=1 -> 0, </s>=2 -> 2, piece i >= 3 -> i + 1; <pad> = 1 and <mask> = pieces + 1 are never
 * a piece. */
static int fairseq_rule(int spm_id) { return spm_id == 0 ? 3 : spm_id == 1 ? 0 : spm_id == 2 ? 2 : spm_id + 1; }

/* pep_ner_align against spm_encode (the sentencepiece tool) + the rules above: each
 * word encoded on its own (XLM-R's is_split_into_words), <s> words </s>; and the mapping is a
 * bijection of the pieces onto [0, V + 2) minus <pad> and <mask>. Unigram and BPE models. */
static void check_sentence_vs_spm_encode(const char *model)
{
    static const char *words[] = {"Angela", "Merkel", "besuchte", "\xe2\x98\x83", "Москва", "<ent>", "Spree", ".", "zzqx"};
    int nw = (int)(sizeof words / sizeof *words);
    char in[PEP_TEST_PATH_MAX], out[PEP_TEST_PATH_MAX], cmd[PEP_TEST_CMD_MAX], line[4096];
    snprintf(in, sizeof in, "%s/words.txt", g_dir);
    snprintf(out, sizeof out, "%s/words.ids", g_dir);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    for (int w = 0; w < nw; w++) fprintf(f, "%s\n", words[w]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "spm_encode --model='%s' --output_format=id < '%s' > '%s'", model, in, out);
    run_or_fail(cmd);
    int expect[256], ne = 0;
    expect[ne++] = 0;
    f = fopen(out, "r");
    assert_non_null(f);
    for (int w = 0; w < nw; w++) {
        assert_non_null(fgets(line, sizeof line, f));
        char *p = line, *end;
        for (long v = strtol(p, &end, 10); end != p; v = strtol(p, &end, 10)) {
            assert_true(ne < 250);
            expect[ne++] = fairseq_rule((int)v);
            p = end;
        }
    }
    fclose(f);
    expect[ne++] = 2;

    struct pep_spm *spm = NULL;
    assert_int_equal(pep_spm_read_file(model, &spm), PEP_OK);
    int ids[256], first[16], n_ids = 0, n_trunc = 0;
    assert_int_equal(pep_ner_align(spm, words, NULL, NULL, nw, 256, ids, NULL, first, &n_ids, &n_trunc), PEP_OK);
    assert_int_equal(n_trunc, 0);
    assert_int_equal(n_ids, ne);
    for (int k = 0; k < ne; k++)
        if (ids[k] != expect[k]) fail_msg("%s: id %d: peprime %d, spm_encode + fairseq rules %d", model, k, ids[k], expect[k]);
    int saw_unk = 0, saw_user = 0, user = pep_spm_piece_id(spm, "<ent>");
    for (int k = 0; k < ne; k++) saw_unk |= ids[k] == 3, saw_user |= user >= 0 && ids[k] == user + 1;
    assert_true(saw_unk);
    if (user >= 0) assert_true(saw_user); /* the user-defined symbol is one piece, shifted by one */

    int V = pep_spm_vocab_size(spm), F = pep_spm_fairseq_vocab(spm);
    assert_int_equal(F, V + 2);
    assert_int_equal(pep_spm_mask_id(spm), V + 1);
    char *seen = calloc((size_t)F, 1);
    assert_non_null(seen);
    for (int i = 0; i < V; i++) {
        int id = pep_spm_fairseq_id(spm, i);
        assert_int_equal(id, fairseq_rule(i));
        assert_true(id >= 0 && id < F && id != 1 && id != V + 1 && !seen[id]);
        seen[id] = 1;
    }
    for (int id = 0; id < F; id++) assert_int_equal(seen[id], id != 1 && id != V + 1);
    free(seen);
    pep_spm_destroy(&spm);
}

static void test_spm_sentence_vs_spm_encode(void **state) { check_sentence_vs_spm_encode(g_model); }

static void test_spm_bpe_sentence_vs_spm_encode(void **state) { check_sentence_vs_spm_encode(g_bpe); }

static void test_spm_encode_sentence_alignment(void **state)
{
    struct pep_spm *spm = NULL;
    assert_int_equal(pep_spm_load(g_bytes, g_len, NULL, &spm), PEP_OK);
    const char *words[] = {"Angela", "Merkel", "besuchte", "☃", "Москва", "."};
    const int tags[] = {1, 2, 0, 0, 3, 0};
    int nw = 6, ids[128], labels[128], first[6], n_ids, n_trunc, wid[64], wn;
    assert_int_equal(pep_ner_align(spm, words, NULL, tags, nw, 128, ids, labels, first, &n_ids, &n_trunc), PEP_OK);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[n_ids - 1], 2);
    assert_int_equal(n_trunc, 0);
    assert_int_equal(first[0], 1);
    int pos = 1;
    for (int w = 0; w < nw; w++) {
        assert_int_equal(pep_spm_encode_word(spm, words[w], strlen(words[w]), wid, 64, &wn), PEP_OK);
        assert_true(wn >= 1);
        assert_int_equal(first[w], pos);
        for (int k = 0; k < wn; k++) assert_int_equal(ids[pos + k], wid[k]);
        pos += wn;
    }
    assert_int_equal(pos + 1, n_ids);
    /* each word's tag on its first piece, no loss anywhere else */
    for (int t = 0, w = 0; t < n_ids; t++) {
        if (w < nw && t == first[w]) assert_int_equal(labels[t], tags[w++]);
        else assert_int_equal(labels[t], PEP_IGNORE_INDEX);
    }
    /* the unseen word ends in one fairseq <unk> (after the "▁" piece, as spm gives) */
    assert_int_equal(ids[first[4] - 1], 3);
    assert_int_not_equal(ids[first[4] - 2], 3);

    /* truncation: T = 5 leaves 3 piece slots; later words lose their first piece */
    int ids5[5], labels5[5], first5[6];
    assert_int_equal(pep_ner_align(spm, words, NULL, tags, nw, 5, ids5, labels5, first5, &n_ids, &n_trunc), PEP_OK);
    assert_true(n_ids <= 5);
    assert_int_equal(ids5[n_ids - 1], 2);
    int dropped = 0;
    for (int w = 0; w < nw; w++) {
        if (first5[w] < 0) dropped++;
        else {
            assert_int_equal(first5[w], first[w]);
            assert_int_equal(labels5[first5[w]], tags[w]);
        }
    }
    assert_int_equal(dropped, n_trunc);
    assert_true(n_trunc >= 3);
    pep_spm_destroy(&spm);
}

static void expect_format_error(const void *buf, size_t len, const char *needle)
{
    struct pep_spm *spm = NULL;
    pep_error_clear();
    assert_int_equal(pep_spm_load(buf, len, "bad.model", &spm), PEP_ERR_FORMAT);
    assert_null(spm);
    if (needle && !strstr(pep_error_message(), needle))
        fail_msg("message '%s' lacks '%s'", pep_error_message(), needle);
    pep_error_clear();
}

static void test_spm_malformed_models(void **state)
{
    expect_format_error("", 0, "bad.model");
    expect_format_error("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, "not a SentencePiece model");
    expect_format_error("hello world, this is text", 25, "bad.model");
    /* a model with only a NORMAL piece has no <unk> */
    const unsigned char no_unk[] = {0x0a, 0x05, 0x0a, 0x01, 'a', 0x18, 0x01};
    expect_format_error(no_unk, sizeof no_unk, "UNKNOWN");
    /* <unk> only, trainer_spec.model_type = 3 (word): unsupported */
    const unsigned char word_model[] = {0x0a, 0x09, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x18, 0x02,
                                        0x12, 0x02, 0x18, 0x03};
    expect_format_error(word_model, sizeof word_model, "word");
    /* without the trainer spec it is a unigram model of <unk> alone: too small for fairseq ids,
     * whose <unk> is id 3 (the fuzzer found encodings outside the vocabulary) */
    expect_format_error(word_model, sizeof word_model - 4, "at least <unk>, <s> and </s>");

    /* every truncation of the real model fails cleanly or (rarely) loads a valid prefix */
    unsigned char *copy = malloc(g_len);
    assert_non_null(copy);
    int ids[1024], n, loaded = 0;
    const char *probe = "Die Stadt Москва ＡＢＣ ☃ 北京";
    for (size_t cut = 0; cut < g_len; cut += (cut < 3000 ? 1 : 37)) {
        struct pep_spm *spm = NULL;
        pep_error_clear();
        int rc = pep_spm_load(g_bytes, cut, "cut.model", &spm);
        assert_true(rc == PEP_OK || rc == PEP_ERR_FORMAT);
        if (rc == PEP_OK) {
            loaded++;
            rc = pep_spm_encode(spm, probe, strlen(probe), ids, 1024, &n);
            assert_true(rc == PEP_OK || rc == PEP_ERR_FORMAT);
            pep_spm_destroy(&spm);
        }
    }
    /* random byte flips: load and encode never crash */
    struct pep_rng r;
    pep_rng_seed(&r, 7, 0, 0);
    for (int trial = 0; trial < 400; trial++) {
        memcpy(copy, g_bytes, g_len);
        for (int k = 0; k < 4; k++) copy[pep_rng_below(&r, g_len)] = (unsigned char)pep_rng_next(&r);
        struct pep_spm *spm = NULL;
        pep_error_clear();
        int rc = pep_spm_load(copy, g_len, "flip.model", &spm);
        assert_true(rc == PEP_OK || rc == PEP_ERR_FORMAT);
        if (rc == PEP_OK) {
            rc = pep_spm_encode(spm, probe, strlen(probe), ids, 1024, &n);
            assert_true(rc == PEP_OK || rc == PEP_ERR_FORMAT || rc == PEP_ERR_INTERNAL);
            pep_spm_destroy(&spm);
        }
    }
    pep_error_clear();
    free(copy);
}

static void test_spm_file_errors(void **state)
{
    struct pep_spm *spm = NULL;
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/missing.model", g_dir);
    pep_error_clear();
    assert_int_equal(pep_spm_read_file(path, &spm), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "missing.model"));
    pep_error_clear();
    const char *txt = pep_test_write_file(g_dir, "notes.txt", "just some text\n");
    assert_int_equal(pep_spm_read_file(txt, &spm), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "notes.txt"));
    pep_error_clear();
    assert_int_equal(pep_spm_read_file(g_model, &spm), PEP_OK);
    assert_true(pep_spm_vocab_size(spm) > 50);
    pep_spm_destroy(&spm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_matches_spm_encode),
        cmocka_unit_test(test_spm_bpe_matches_spm_encode),
        cmocka_unit_test(test_spm_pieces_reassemble),
        cmocka_unit_test(test_spm_fairseq_mapping),
        cmocka_unit_test(test_spm_encode_sentence_alignment),
        cmocka_unit_test(test_spm_sentence_vs_spm_encode),
        cmocka_unit_test(test_spm_bpe_sentence_vs_spm_encode),
        cmocka_unit_test(test_spm_malformed_models),
        cmocka_unit_test(test_spm_file_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
