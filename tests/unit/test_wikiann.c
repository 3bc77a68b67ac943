/* io/wikiann.c: Rahimi et al.'s `lang:token<TAB>tag` files (prefixes, XTREME's unprefixed copies,
 * CRLF + BOM), Hugging Face JSON lines (label ids, tag strings, \u escapes, empty objects), the
 * IOB2 repair and its count, every rejection with its file:line message, the tag-set check, the
 * binary-file sniffing and the writer (exact bytes, read back by io/conll.c, no .tmp left). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conll.h"
#include "core/error.h"
#include "testutil.h"
#include "wikiann.h"

static const char *const TAGS[] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"};
#define NTAGS 7

static struct pep_corpus *parse_ok(enum pep_wikiann_format f, const char *text, struct pep_wikiann_stats *st)
{
    struct pep_corpus *c = NULL;
    pep_error_clear();
    int rc = pep_wikiann_parse(f, text, strlen(text), "in.txt", "de", TAGS, NTAGS, &c, st);
    if (rc != PEP_OK) fail_msg("parse failed: %s", pep_error_message());
    return c;
}

static void expect_error(enum pep_wikiann_format f, const char *text, const char *const *needles)
{
    struct pep_corpus *c = (struct pep_corpus *)0x1;
    pep_error_clear();
    assert_int_equal(pep_wikiann_parse(f, text, strlen(text), "in.txt", "de", TAGS, NTAGS, &c, NULL), PEP_ERR_FORMAT);
    assert_null(c);
    for (int i = 0; needles[i]; i++)
        if (!strstr(pep_error_message(), needles[i]))
            fail_msg("message '%s' lacks '%s'", pep_error_message(), needles[i]);
    pep_error_clear();
}

static void test_wikiann_rahimi_prefix_and_repair(void **state)
{
    struct pep_wikiann_stats st;
    struct pep_corpus *c = parse_ok(PEP_WIKIANN_FORMAT_RAHIMI,
                                    "\xEF\xBB\xBF" "de:Angela\tB-PER\r\nde:Merkel\tI-PER \r\nde:in\tO\nde:de:x\tI-LOC\n"
                                    "\n\n  \nde:K\xC3\xB6ln\tI-ORG\nde:Bank\tI-PER",
                                    &st);
    assert_int_equal(c->nsent, 2);
    assert_int_equal(c->nwords, 6);
    assert_string_equal(pep_corpus_word(c, 0, 0), "Angela");
    assert_string_equal(pep_corpus_word(c, 0, 3), "de:x"); /* only the first prefix is the language's */
    assert_string_equal(pep_corpus_word(c, 1, 0), "K\xC3\xB6ln");
    const int *t0 = pep_corpus_sentence_tags(c, 0), *t1 = pep_corpus_sentence_tags(c, 1);
    assert_int_equal(t0[1], 2); /* I-PER after B-PER kept */
    assert_int_equal(t0[3], 5); /* I-LOC after O -> B-LOC */
    assert_int_equal(t1[0], 3); /* I-ORG opening a sentence -> B-ORG */
    assert_int_equal(t1[1], 1); /* I-PER after (B-)ORG -> B-PER */
    assert_int_equal(st.sentences, 2);
    assert_int_equal(st.tokens, 6);
    assert_int_equal(st.repaired, 3);
    assert_int_equal(st.prefixes, 6);
    assert_string_equal(c->name, "de");
    pep_corpus_destroy(&c);
}

static void test_wikiann_rahimi_unprefixed_kept(void **state)
{
    struct pep_wikiann_stats st;
    /* XTREME's copies: no prefixes; a token that looks like one is kept as written */
    struct pep_corpus *c = parse_ok(PEP_WIKIANN_FORMAT_RAHIMI, "Paris\tB-LOC\nde:x\tO\nhttp://a\tO\n\n", &st);
    assert_int_equal(c->nwords, 3);
    assert_string_equal(pep_corpus_word(c, 0, 1), "de:x");
    assert_string_equal(pep_corpus_word(c, 0, 2), "http://a");
    assert_int_equal(st.prefixes, 0);
    pep_corpus_destroy(&c);
}

static void test_wikiann_rahimi_errors(void **state)
{
    enum pep_wikiann_format R = PEP_WIKIANN_FORMAT_RAHIMI;
    expect_error(R, "de:A\tO\nfr:B\tO\n", (const char *[]){"in.txt:2:", "prefix 'fr:'", "'de' (--lang)", NULL});
    expect_error(R, "fr:A\tO\nfr:B\tO\n", (const char *[]){"in.txt:1:", "prefix 'fr:'", NULL});
    expect_error(R, "de:A\tO\nB\tO\nde:C\tO\n", (const char *[]){"in.txt:2:", "lacks the 'de:' prefix", NULL});
    expect_error(R, "de:A\tB-MISC\n", (const char *[]){"in.txt:1:", "tag 'B-MISC'", "--tags", NULL});
    expect_error(R, "de:A\tO\n\nde:B\tX\tO\n", (const char *[]){"in.txt:3:", "2 TABs", NULL});
    expect_error(R, "de:A\n", (const char *[]){"in.txt:1:", "no TAB", "tags removed", NULL});
    expect_error(R, "de:A B-PER\n", (const char *[]){"in.txt:1:", "TAB-separated", NULL});
    expect_error(R, "de:\tO\n", (const char *[]){"in.txt:1:", "empty", NULL});
    expect_error(R, "de:-X-\tO\n", (const char *[]){"in.txt:1:", "sentence boundary", NULL});
    /* the reader skips leading blanks before its marker test (fuzz_wikiann, 2026-12-07) */
    expect_error(R, "de:\r -X- a\tO\n", (const char *[]){"in.txt:1:", "sentence boundary", NULL});
    expect_error(R, "de:A\tO\nde:\xC3\tO\n", (const char *[]){"in.txt:2:", "invalid UTF-8", "iconv", NULL});
    expect_error(R, "\n\n", (const char *[]){"in.txt", "no sentences", NULL});
}

static void test_wikiann_hf_jsonl(void **state)
{
    struct pep_wikiann_stats st;
    struct pep_corpus *c = parse_ok(PEP_WIKIANN_FORMAT_HF_JSONL,
                                    "{\"tokens\": [\"Angela\", \"Merkel\", \"in\", \"K\\u00f6ln\", "
                                    "\"\\ud83d\\ude00\"], \"ner_tags\": [1, 2, 0, 6, 0], "
                                    "\"langs\": [\"de\", \"de\", \"de\", \"de\", \"de\"], "
                                    "\"spans\": [\"PER: Angela Merkel\", \"LOC: K\\u00f6ln\"]}\n"
                                    "\n"
                                    "{\"tokens\": [], \"ner_tags\": []}\n"
                                    "{\"ner_tags\": [\"I-ORG\", \"O\"], \"tokens\": [\"UNO\", \"!\"]}",
                                    &st);
    assert_int_equal(c->nsent, 2);
    assert_int_equal(c->nwords, 7);
    assert_string_equal(pep_corpus_word(c, 0, 3), "K\xC3\xB6ln");
    assert_string_equal(pep_corpus_word(c, 0, 4), "\xF0\x9F\x98\x80");
    assert_int_equal(pep_corpus_sentence_tags(c, 0)[3], 5); /* I-LOC after O -> B-LOC */
    assert_int_equal(pep_corpus_sentence_tags(c, 1)[0], 3); /* a tag string, repaired */
    assert_int_equal(st.repaired, 2);
    assert_int_equal(st.empty, 1);
    assert_int_equal(st.sentences, 2);
    assert_int_equal(st.tokens, 7);
    pep_corpus_destroy(&c);

    /* another label order (--tags) */
    static const char *const MISC[] = {"O", "B-MISC", "I-MISC", "B-PER", "I-PER"};
    const char *line = "{\"tokens\": [\"a\", \"b\"], \"ner_tags\": [1, 2]}\n";
    assert_int_equal(pep_wikiann_parse(PEP_WIKIANN_FORMAT_HF_JSONL, line, strlen(line), "x", "de", MISC, 5, &c, NULL),
                     PEP_OK);
    assert_string_equal(c->tag_names[c->tags[0]], "B-MISC");
    assert_string_equal(c->tag_names[c->tags[1]], "I-MISC");
    pep_corpus_destroy(&c);
}

static void test_wikiann_hf_jsonl_errors(void **state)
{
    enum pep_wikiann_format H = PEP_WIKIANN_FORMAT_HF_JSONL;
    expect_error(H, "{\"tokens\": [\"a\"], \"ner_tags\": [0]}\n{\"tokens\": [\"a\",], \"ner_tags\": [0]}\n",
                 (const char *[]){"in.txt:2:", "invalid JSON", "(column 17", "one object", NULL});
    expect_error(H, "{\"tokens\": [\"a\", \"b\"], \"ner_tags\": [0]}\n",
                 (const char *[]){"in.txt:1:", "2 tokens but 1 ner_tags", NULL});
    expect_error(H, "{\"tokens\": [\"a\"], \"ner_tags\": [7]}\n",
                 (const char *[]){"in.txt:1:", "ner_tags[0] = 7", "ids 0..6", "--tags", NULL});
    expect_error(H, "{\"tokens\": [\"a\"], \"ner_tags\": [-1]}\n",
                 (const char *[]){"in.txt:1:", "ner_tags[0] is the number -1", NULL});
    expect_error(H, "{\"tokens\": [\"a\"], \"ner_tags\": [1.5]}\n",
                 (const char *[]){"the number 1.5", "label id", NULL});
    expect_error(H, "{\"tokens\": [\"a\"], \"ner_tags\": [\"B-MISC\"]}\n", (const char *[]){"'B-MISC'", NULL});
    expect_error(H, "{\"tokens\": [\"a\\tb\"], \"ner_tags\": [0]}\n",
                 (const char *[]){"in.txt:1:", "tokens[0] 'a\\tb'", "TAB", NULL});
    expect_error(H, "{\"tokens\": [\"a\", \"b\\nc\"], \"ner_tags\": [0, 0]}\n",
                 (const char *[]){"tokens[1]", "newline", NULL});
    expect_error(H, "{\"tokens\": [\"a\\u0000\"], \"ner_tags\": [0]}\n", (const char *[]){"NUL byte", NULL});
    expect_error(H, "{\"tokens\": [\"\"], \"ner_tags\": [0]}\n", (const char *[]){"tokens[0] is empty", NULL});
    expect_error(H, "{\"tokens\": [\"a\"], \"ner_tags\": [0], \"langs\": [\"fr\"]}\n",
                 (const char *[]){"langs[0] is 'fr'", "--lang", NULL});
    expect_error(H, "{\"words\": [\"a\"], \"tags\": [0]}\n", (const char *[]){"the object has words, tags", NULL});
    expect_error(H, "[1]\n", (const char *[]){"JSON array, not JSON lines", NULL});
    expect_error(H, "\"x\"\n", (const char *[]){"in.txt:1:", "JSON string", NULL});
    expect_error(H, "{\"tokens\": [], \"ner_tags\": []}\n", (const char *[]){"no sentences", NULL});
}

static void test_wikiann_check_tags(void **state)
{
    assert_int_equal(pep_wikiann_check_tags(TAGS, NTAGS, "--tags"), PEP_OK);
    static const char *const no_o[] = {"B-PER", "I-PER"};
    static const char *const no_b[] = {"O", "I-PER"};
    static const char *const bad[] = {"O", "PER"};
    static const char *const dup[] = {"O", "O"};
    pep_error_clear();
    assert_int_equal(pep_wikiann_check_tags(no_o, 2, "--tags"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "no 'O'"));
    pep_error_clear();
    assert_int_equal(pep_wikiann_check_tags(no_b, 2, "--tags"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "no B-PER"));
    pep_error_clear();
    assert_int_equal(pep_wikiann_check_tags(bad, 2, "--tags"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "not IOB2"));
    pep_error_clear();
    assert_int_equal(pep_wikiann_check_tags(dup, 2, "--tags"), PEP_ERR_USAGE);
    pep_error_clear();
    enum pep_wikiann_format f;
    assert_int_equal(pep_wikiann_format_parse("hf-jsonl", &f), PEP_OK);
    assert_int_equal(f, PEP_WIKIANN_FORMAT_HF_JSONL);
    assert_int_equal(pep_wikiann_format_parse("csv", &f), PEP_ERR_USAGE);
    pep_error_clear();
}

static void test_wikiann_sniff(void **state)
{
    const char *dir = pep_test_tmpdir("wikiann_sniff");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s", pep_test_write_file(dir, "x.bin", "PAR1\x15\x04"));
    pep_error_clear();
    assert_int_equal(pep_wikiann_sniff(path, "de"), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "Parquet"));
    assert_non_null(strstr(pep_error_message(), "to_json"));
    pep_error_clear();
    struct pep_corpus *c = (struct pep_corpus *)0x1;
    assert_int_equal(pep_wikiann_read(PEP_WIKIANN_FORMAT_HF_JSONL, path, "de", TAGS, NTAGS, &c, NULL), PEP_ERR_FORMAT);
    assert_null(c);
    pep_error_clear();
    snprintf(path, sizeof path, "%s", pep_test_write_file(dir, "train.parquet", "{}"));
    assert_int_equal(pep_wikiann_sniff(path, "de"), PEP_ERR_FORMAT);
    pep_error_clear();
    snprintf(path, sizeof path, "%s", pep_test_write_file(dir, "de.tar.gz", "\x1f\x8b\x08"));
    assert_int_equal(pep_wikiann_sniff(path, "de"), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "tar xzf de.tar.gz"));
    pep_error_clear();
    snprintf(path, sizeof path, "%s", pep_test_write_file(dir, "train", "de:a\tO\n"));
    assert_int_equal(pep_wikiann_sniff(path, "de"), PEP_OK);
    assert_int_equal(pep_wikiann_sniff("/nonexistent/train", "de"), PEP_ERR_IO);
    pep_error_clear();
}

static void test_wikiann_write_reads_back(void **state)
{
    struct pep_corpus *c = parse_ok(PEP_WIKIANN_FORMAT_HF_JSONL,
                                    "{\"tokens\": [\" lead\", \"a b\", \"x\\r\"], \"ner_tags\": [3, 4, 0]}\n"
                                    "{\"tokens\": [\"Z\"], \"ner_tags\": [2]}\n",
                                    NULL);
    const char *dir = pep_test_tmpdir("wikiann_write");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/ner/wikiann/de/train.txt", dir);
    assert_int_equal(pep_wikiann_write(path, c), PEP_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const char *want = " lead\tB-ORG\na b\tI-ORG\nx\r\tO\n\nZ\tB-PER\n\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
    char tmp[PEP_TEST_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct stat st;
    assert_int_not_equal(stat(tmp, &st), 0);
    /* what the stages read */
    struct pep_corpus *back = NULL;
    assert_int_equal(pep_conll_read(path, TAGS, NTAGS, NULL, &back, NULL), PEP_OK);
    assert_int_equal(back->nwords, 4);
    assert_string_equal(pep_corpus_word(back, 0, 0), " lead");
    assert_string_equal(pep_corpus_word(back, 0, 2), "x\r");
    pep_corpus_destroy(&back);
    /* overwriting is the caller's decision: the writer replaces */
    assert_int_equal(pep_wikiann_write(path, c), PEP_OK);
    pep_corpus_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wikiann_rahimi_prefix_and_repair),
        cmocka_unit_test(test_wikiann_rahimi_unprefixed_kept),
        cmocka_unit_test(test_wikiann_rahimi_errors),
        cmocka_unit_test(test_wikiann_hf_jsonl),
        cmocka_unit_test(test_wikiann_hf_jsonl_errors),
        cmocka_unit_test(test_wikiann_check_tags),
        cmocka_unit_test(test_wikiann_sniff),
        cmocka_unit_test(test_wikiann_write_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
