/* CoNLL reader: well-formed files (CRLF + BOM, DOCSTART, trailing blanks, no final newline),
 * hand-made bad files (columns, UTF-8, unknown tag, missing file) and the data-path lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conll.h"
#include "core/error.h"
#include "testutil.h"

static const char *const TAGS[] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"};
#define NTAGS 7

static void expect_error(const char *text, int code, const char *const *needles)
{
    const char *dir = pep_test_tmpdir("conll_bad");
    const char *path = pep_test_write_file(dir, "bad.txt", text);
    struct pep_corpus *c = (struct pep_corpus *)0x1;
    pep_error_clear();
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, 0, &c), code);
    assert_null(c);
    for (int i = 0; needles[i]; i++) {
        if (!strstr(pep_error_message(), needles[i]))
            fail_msg("message '%s' lacks '%s'", pep_error_message(), needles[i]);
    }
    pep_error_clear();
}

static void test_conll_crlf_bom_parses(void **state)
{
    const char *dir = pep_test_tmpdir("conll_ok");
    const char *path = pep_test_write_file(dir, "x.txt",
                                           "\xEF\xBB\xBF" "Sioux\tB-ORG\r\nFalls\tI-ORG \r\n(\tO\r\n\r\n"
                                           "Z\xC3\xBCrich\tB-LOC\t\r\n  \r\n\r\nJr\tB-PER");
    struct pep_corpus *c = NULL;
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, 0, &c), PEP_OK);
    assert_int_equal(c->nsent, 3);
    assert_int_equal(c->nwords, 5);
    assert_int_equal(pep_corpus_sentence_len(c, 0), 3);
    assert_string_equal(pep_corpus_word(c, 0, 0), "Sioux");
    assert_string_equal(pep_corpus_word(c, 0, 1), "Falls");
    assert_int_equal(pep_corpus_sentence_tags(c, 0)[0], 3);
    assert_int_equal(pep_corpus_sentence_tags(c, 0)[1], 4);
    assert_int_equal(pep_corpus_sentence_tags(c, 0)[2], 0);
    assert_string_equal(pep_corpus_word(c, 1, 0), "Z\xC3\xBCrich");
    assert_int_equal(c->word_len[3], 7);
    assert_int_equal(pep_corpus_sentence_tags(c, 1)[0], 5);
    assert_string_equal(pep_corpus_word(c, 2, 0), "Jr");
    assert_int_equal(pep_corpus_sentence_tags(c, 2)[0], 1);
    assert_int_equal(c->generated, 0);
    pep_corpus_destroy(&c);
    assert_null(c);
    pep_corpus_destroy(&c); /* NULL-safe */
}

static void test_conll_docstart_and_max_sentences(void **state)
{
    const char *dir = pep_test_tmpdir("conll_doc");
    const char *path = pep_test_write_file(dir, "d.txt",
                                           "-DOCSTART-\tO\n\nA\tB-PER\nB\tO\n\n-DOCSTART- -X- -X- O\nC\tO\n\nD\tB-LOC\n"
                                           "E\tI-LOC\n\n\n");
    struct pep_corpus *c = NULL;
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, 0, &c), PEP_OK);
    assert_int_equal(c->nsent, 3);
    assert_int_equal(pep_corpus_sentence_len(c, 0), 2);
    assert_string_equal(pep_corpus_word(c, 1, 0), "C");
    assert_int_equal(pep_corpus_sentence_len(c, 2), 2);
    pep_corpus_destroy(&c);
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, 2, &c), PEP_OK);
    assert_int_equal(c->nsent, 2);
    assert_int_equal(c->nwords, 3);
    pep_corpus_destroy(&c);
}

static void test_conll_wrong_columns(void **state)
{
    const char *n1[] = {"bad.txt:3:", "expected 2 TAB-separated columns", "found 3", NULL};
    expect_error("A\tO\n\nB\tO\tX\n", PEP_ERR_FORMAT, n1);
    const char *n2[] = {"bad.txt:2:", "found 1", "'C O'", NULL};
    expect_error("A\tO\nC O\n", PEP_ERR_FORMAT, n2);
}

static void test_conll_bad_utf8(void **state)
{
    /* Line 2 starts at byte 4; the bad byte 0xFF is its third byte -> offset 6. */
    const char *n1[] = {"bad.txt:2:", "invalid UTF-8", "byte offset 6", "0xFF", NULL};
    expect_error("A\tO\nBC\xFF\tO\n", PEP_ERR_FORMAT, n1);
    /* Overlong encoding of '/' and a lone surrogate are rejected too. */
    const char *n2[] = {"bad.txt:1:", "byte offset 0", NULL};
    expect_error("\xC0\xAF\tO\n", PEP_ERR_FORMAT, n2);
    const char *n3[] = {"bad.txt:1:", "byte offset 1", NULL};
    expect_error("x\xED\xA0\x80\tO\n", PEP_ERR_FORMAT, n3);
}

static void test_conll_unknown_tag(void **state)
{
    const char *n[] = {"bad.txt:4:", "tag 'B-MISC'", "O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC", "data.tags", NULL};
    expect_error("A\tO\n\nB\tB-PER\nC\tB-MISC\n", PEP_ERR_FORMAT, n);
}

static void test_conll_missing_file_and_empty(void **state)
{
    struct pep_corpus *c = NULL;
    pep_error_clear();
    assert_int_equal(pep_conll_read("/nonexistent/ner/wikiann/xx/train.txt", TAGS, NTAGS, 0, &c), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "/nonexistent/ner/wikiann/xx/train.txt"));
    assert_non_null(strstr(pep_error_message(), "PEPRIME_DATA"));
    pep_error_clear();
    const char *n[] = {"no sentences", NULL};
    expect_error("\n\n-DOCSTART-\tO\n", PEP_ERR_FORMAT, n);
}

static void test_conll_data_path(void **state)
{
    const char *dir = pep_test_tmpdir("conll_root");
    char sub[1200];
    snprintf(sub, sizeof sub, "mkdir -p '%s/ner/wikiann/qq'", dir);
    assert_int_equal(system(sub), 0);
    snprintf(sub, sizeof sub, "%s/ner/wikiann/qq", dir);
    pep_test_write_file(sub, "dev.txt", "Ab\tB-PER\nCd\tI-PER\n");
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    snprintf(cfg.data.root, sizeof cfg.data.root, "%s", dir);
    char path[2048];
    assert_int_equal(pep_data_path(&cfg, NULL, "qq", "dev", path, sizeof path), PEP_OK);
    assert_non_null(strstr(path, "/ner/wikiann/qq/dev.txt"));
    pep_error_clear();
    assert_int_equal(pep_data_path(&cfg, NULL, "qq", "test", path, sizeof path), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "qq/test.txt"));
    assert_non_null(strstr(pep_error_message(), "data.root"));
    pep_error_clear();
    struct pep_corpus *c = NULL;
    assert_int_equal(pep_conll_read_lang(&cfg, NULL, "qq", "dev", &c), PEP_OK);
    assert_string_equal(c->name, "qq");
    assert_int_equal(c->nsent, 1);
    assert_int_equal(c->tags[1], 2);
    pep_corpus_destroy(&c);
    /* Without data.root: $PEPRIME_DATA, and a missing root names the variable. */
    cfg.data.root[0] = '\0';
    char saved[1024] = "";
    const char *env = getenv("PEPRIME_DATA");
    if (env) snprintf(saved, sizeof saved, "%s", env);
    setenv("PEPRIME_DATA", "/nonexistent-peprime-root", 1);
    pep_error_clear();
    assert_int_equal(pep_data_path(&cfg, NULL, "qq", "dev", path, sizeof path), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "/nonexistent-peprime-root"));
    assert_non_null(strstr(pep_error_message(), "PEPRIME_DATA"));
    pep_error_clear();
    unsetenv("PEPRIME_DATA");
    assert_int_equal(pep_data_root(&cfg, dir, path, sizeof path, NULL), PEP_ERR_IO); /* dir/../shared/data absent */
    assert_non_null(strstr(pep_error_message(), "shared/data"));
    pep_error_clear();
    if (saved[0]) setenv("PEPRIME_DATA", saved, 1);
}

static void test_conll_real_data_if_present(void **state)
{
    const char *root = pep_test_data_root();
    if (!root) skip();
    char path[1200];
    snprintf(path, sizeof path, "%s/ner/wikiann/en/dev.txt", root);
    struct pep_corpus *c = NULL;
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, 100, &c), PEP_OK);
    assert_int_equal(c->nsent, 100);
    assert_string_equal(c->name, "en");
    pep_corpus_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conll_crlf_bom_parses),
        cmocka_unit_test(test_conll_docstart_and_max_sentences),
        cmocka_unit_test(test_conll_wrong_columns),
        cmocka_unit_test(test_conll_bad_utf8),
        cmocka_unit_test(test_conll_unknown_tag),
        cmocka_unit_test(test_conll_missing_file_and_empty),
        cmocka_unit_test(test_conll_data_path),
        cmocka_unit_test(test_conll_real_data_if_present),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
