/* CoNLL reader: well-formed files (CRLF + BOM, DOCSTART, trailing blanks, no final newline),
 * CoNLL-2003-shaped files (whitespace columns, -DOCSTART- / -X-, IOB1), IOBES, unknown entity
 * types (error and O), hand-made bad files (columns, UTF-8, schemes, missing file) and the
 * data-path lookup with and without a data.path template. */
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
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, NULL, &c, NULL), code);
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
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, NULL, &c, NULL), PEP_OK);
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
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, NULL, &c, NULL), PEP_OK);
    assert_int_equal(c->nsent, 3);
    assert_int_equal(pep_corpus_sentence_len(c, 0), 2);
    assert_string_equal(pep_corpus_word(c, 1, 0), "C");
    assert_int_equal(pep_corpus_sentence_len(c, 2), 2);
    pep_corpus_destroy(&c);
    struct pep_conll_options o;
    pep_conll_default_options(&o);
    o.max_sentences = 2;
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, &o, &c, NULL), PEP_OK);
    assert_int_equal(c->nsent, 2);
    assert_int_equal(c->nwords, 3);
    pep_corpus_destroy(&c);
}

static void test_conll_wrong_columns(void **state)
{
    /* the tag is the last column: a third column 'X' is read as the tag */
    const char *n1[] = {"bad.txt:3:", "tag 'X' is not an IOB2 tag", "data.scheme", NULL};
    expect_error("A\tO\n\nB\tO\tX\n", PEP_ERR_FORMAT, n1);
    const char *n2[] = {"bad.txt:2:", "at least 2 TAB-separated columns", "found 1", "'C O'",
                        "data.separator = whitespace", NULL};
    expect_error("A\tO\nC O\n", PEP_ERR_FORMAT, n2);
    const char *n3[] = {"bad.txt:1:", "empty token", NULL};
    expect_error("\tO\n", PEP_ERR_FORMAT, n3);
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
    /* every unknown type is listed with its count and first line, then the two ways out */
    const char *n[] = {"bad.txt:", "PER, ORG, LOC", "MISC (2 tags, first at line 4)", "DATE (1 tag, first at line 5)",
                       "data.tags", "data.unknown_types = O", NULL};
    expect_error("A\tO\n\nB\tB-PER\nC\tB-MISC\nD\tB-DATE\nE\tI-MISC\n", PEP_ERR_FORMAT, n);
    const char *n2[] = {"bad.txt:2:", "tag 'PER' is not an IOB2 tag", NULL};
    expect_error("A\tO\nB\tPER\n", PEP_ERR_FORMAT, n2);
    /* E- and S- belong to IOBES only */
    const char *n3[] = {"bad.txt:1:", "tag 'S-PER' is not an IOB2 tag", NULL};
    expect_error("A\tS-PER\n", PEP_ERR_FORMAT, n3);
}

/* Writes <tmp>/<sub>/<file> (making the folders); returns <tmp>. */
static const char *make_data_file(const char *tmp, const char *sub, const char *file, const char *text)
{
    const char *dir = pep_test_tmpdir(tmp);
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "mkdir -p '%s/%s'", dir, sub);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    pep_test_write_file(path, file, text);
    return dir;
}

static struct pep_corpus *read_text(const char *name, const char *text, const struct pep_conll_options *o,
                                    struct pep_conll_stats *st)
{
    const char *dir = pep_test_tmpdir("conll_shapes");
    const char *path = pep_test_write_file(dir, name, text);
    struct pep_corpus *c = NULL;
    pep_error_clear();
    int rc = pep_conll_read(path, TAGS, NTAGS, o, &c, st);
    if (rc != PEP_OK) fail_msg("%s: %s", name, pep_error_message());
    return c;
}

/* Tag names of sentence s joined by spaces, for compact expectations. */
static const char *tag_string(const struct pep_corpus *c, int s)
{
    static char buf[512];
    size_t used = 0;
    buf[0] = '\0';
    for (int j = 0; j < pep_corpus_sentence_len(c, s); j++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", j ? " " : "",
                                 c->tag_names[pep_corpus_sentence_tags(c, s)[j]]);
    return buf;
}

static void test_conll_conll2003_whitespace_iob1(void **state)
{
    /* CoNLL-2003 shape: four space-separated columns, -DOCSTART- lines, IOB1 tags */
    struct pep_conll_options o;
    pep_conll_default_options(&o);
    o.separator = PEP_CONLL_SEPARATOR_WHITESPACE;
    o.scheme = PEP_CONLL_SCHEME_IOB1;
    const char *dir = pep_test_tmpdir("conll_shapes");
    pep_test_write_file(dir, "c03.txt", "EU NNP B-NP I-ORG\nGerman JJ B-NP I-MISC\n");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/c03.txt", dir);
    struct pep_corpus *c = NULL;
    pep_error_clear();
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, &o, &c, NULL), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "MISC (1 tag, first at line 2)"));
    pep_error_clear();
    /* MISC is not in TAGS: error by default; as O when asked */
    o.unknown_to_o = 1;
    struct pep_conll_stats st;
    c = read_text("c03.txt",
                  "-DOCSTART- -X- -X- O\n\n"
                  "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\n\n"
                  "  Peter   NNP B-NP I-PER \nBlackburn NNP I-NP I-PER\n\n"
                  "A\tDT B-NP I-LOC\nB DT I-NP B-LOC\nC DT I-NP I-LOC\nD DT O I-PER\n"
                  "-X- -X- O\nE DT O I-ORG\n",
                  &o, &st);
    assert_int_equal(c->nsent, 4);
    assert_string_equal(pep_corpus_word(c, 0, 0), "EU");
    assert_string_equal(tag_string(c, 0), "B-ORG O O");
    assert_string_equal(pep_corpus_word(c, 1, 0), "Peter");
    assert_string_equal(tag_string(c, 1), "B-PER I-PER");
    /* IOB1: B-LOC splits two adjacent LOC chunks; a type change opens a chunk */
    assert_string_equal(tag_string(c, 2), "B-LOC B-LOC I-LOC B-PER");
    assert_string_equal(tag_string(c, 3), "B-ORG");
    assert_int_equal(st.unknown_to_o, 1);
    assert_string_equal(st.unknown, "MISC 1");
    pep_corpus_destroy(&c);
}

static void test_conll_iobes_and_iob2_kept(void **state)
{
    struct pep_conll_options o;
    pep_conll_default_options(&o);
    o.scheme = PEP_CONLL_SCHEME_IOBES;
    struct pep_corpus *c = read_text("s.txt",
                                     "a\tS-PER\nb\tB-LOC\nc\tI-LOC\nd\tE-LOC\ne\tO\n\n"
                                     /* ill-formed: E after E, I after S, I after O, E of another type */
                                     "f\tE-PER\ng\tE-PER\nh\tS-ORG\ni\tI-ORG\nj\tO\nk\tI-LOC\nl\tE-PER\n\n"
                                     "m\tB-ORG\nn\tS-ORG\no\tB-ORG\np\tB-ORG\n",
                                     &o, NULL);
    assert_int_equal(c->nsent, 3);
    assert_string_equal(tag_string(c, 0), "B-PER B-LOC I-LOC I-LOC O");
    assert_string_equal(tag_string(c, 1), "B-PER B-PER B-ORG B-ORG O B-LOC B-PER");
    assert_string_equal(tag_string(c, 2), "B-ORG B-ORG B-ORG B-ORG");
    pep_corpus_destroy(&c);
    /* IOB2 files keep what they say, ill-formed I- included (strict evaluation sees it) */
    pep_conll_default_options(&o);
    c = read_text("i.txt", "a\tO\nb\tI-PER\nc\tB-LOC\nd\tI-ORG\n", &o, NULL);
    assert_string_equal(tag_string(c, 0), "O I-PER B-LOC I-ORG");
    pep_corpus_destroy(&c);
}

static void test_conll_data_path_template(void **state)
{
    const char *dir =
        make_data_file("conll_tpl", "corp/xx", "xx-test.conll", "-DOCSTART- O\n\nAb B-DATE\nCd I-DATE\nEf B-PER\n");
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    snprintf(cfg.data.path, sizeof cfg.data.path, "%s/corp/{lang}/{lang}-{split}.conll", dir);
    assert_int_equal(pep_config_set(&cfg, "data.separator", "whitespace", "test"), PEP_OK);
    char path[2048];
    assert_int_equal(pep_data_path(&cfg, NULL, "xx", "test", path, sizeof path), PEP_OK);
    assert_non_null(strstr(path, "/corp/xx/xx-test.conll"));
    struct pep_corpus *c = NULL;
    pep_error_clear();
    assert_int_equal(pep_conll_read_lang(&cfg, NULL, "xx", "test", &c, NULL), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "DATE (2 tags, first at line 3)"));
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "data.unknown_types", "O", "test"), PEP_OK);
    struct pep_conll_stats st;
    assert_int_equal(pep_conll_read_lang(&cfg, NULL, "xx", "test", &c, &st), PEP_OK);
    assert_string_equal(c->name, "xx");
    assert_string_equal(tag_string(c, 0), "O O B-PER");
    assert_int_equal(st.unknown_to_o, 2);
    pep_corpus_destroy(&c);
    /* a missing split names the template; an unknown placeholder is a usage error */
    assert_int_equal(pep_data_path(&cfg, NULL, "xx", "dev", path, sizeof path), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "xx-dev.conll"));
    assert_non_null(strstr(pep_error_message(), "data.path"));
    pep_error_clear();
    snprintf(cfg.data.path, sizeof cfg.data.path, "%s/{language}/{split}.txt", dir);
    assert_int_equal(pep_data_path(&cfg, NULL, "xx", "dev", path, sizeof path), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "'{language}'"));
    pep_error_clear();
    /* bad values of the new keys are refused by the config */
    assert_int_not_equal(pep_config_set(&cfg, "data.scheme", "bilou", "test"), PEP_OK);
    pep_error_clear();
}

static void test_conll_missing_file_and_empty(void **state)
{
    struct pep_corpus *c = NULL;
    pep_error_clear();
    assert_int_equal(pep_conll_read("/nonexistent/ner/wikiann/xx/train.txt", TAGS, NTAGS, NULL, &c, NULL), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "/nonexistent/ner/wikiann/xx/train.txt"));
    assert_non_null(strstr(pep_error_message(), "PEPRIME_DATA"));
    pep_error_clear();
    const char *n[] = {"no sentences", NULL};
    expect_error("\n\n-DOCSTART-\tO\n", PEP_ERR_FORMAT, n);
}

static void test_conll_data_path(void **state)
{
    const char *dir = make_data_file("conll_root", "ner/wikiann/qq", "dev.txt", "Ab\tB-PER\nCd\tI-PER\n");
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
    assert_int_equal(pep_conll_read_lang(&cfg, NULL, "qq", "dev", &c, NULL), PEP_OK);
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
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/ner/wikiann/en/dev.txt", root);
    struct pep_corpus *c = NULL;
    struct pep_conll_options o;
    pep_conll_default_options(&o);
    o.max_sentences = 100;
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, &o, &c, NULL), PEP_OK);
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
        cmocka_unit_test(test_conll_conll2003_whitespace_iob1),
        cmocka_unit_test(test_conll_iobes_and_iob2_kept),
        cmocka_unit_test(test_conll_data_path_template),
        cmocka_unit_test(test_conll_missing_file_and_empty),
        cmocka_unit_test(test_conll_data_path),
        cmocka_unit_test(test_conll_real_data_if_present),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
