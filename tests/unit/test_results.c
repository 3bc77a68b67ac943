/* Results files: JSON parses (checked with Python's json module) and holds the exact counts and
 * scores; CSV rows; an unwritable folder is an error naming the path; the one JSON string
 * writer turns any byte string (quotes, backslashes, control and non-UTF-8 bytes) into a
 * string the strict reader parses back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "json.h"
#include "results.h"
#include "testutil.h"

static void make(struct pep_eval_summary *s)
{
    memset(s, 0, 2 * sizeof *s);
    snprintf(s[0].name, sizeof s[0].name, "hi");
    s[0].all = (struct pep_eval_counts){4, 2, 2};
    s[0].sentences = 10, s[0].tokens = 40, s[0].tokens_correct = 30;
    s[0].ntypes = 2;
    snprintf(s[0].type_names[0], PEP_TAG_NAME_MAX, "PER");
    snprintf(s[0].type_names[1], PEP_TAG_NAME_MAX, "LOC");
    s[0].per_type[0] = (struct pep_eval_counts){3, 1, 1};
    s[0].per_type[1] = (struct pep_eval_counts){1, 1, 1};
    snprintf(s[1].name, sizeof s[1].name, "sw\"x");
    s[1].all = (struct pep_eval_counts){2, 4, 1};
    s[1].sentences = 5, s[1].tokens = 20, s[1].tokens_correct = 20;
    s[1].ntypes = 1;
    snprintf(s[1].type_names[0], PEP_TAG_NAME_MAX, "PER");
    s[1].per_type[0] = s[1].all;
}

static void test_results_json(void **state)
{
    struct pep_eval_summary s[2];
    make(s);
    const char *dir = pep_test_tmpdir("results");
    char path[PEP_TEST_PATH_MAX], cmd[PEP_TEST_CMD_MAX];
    snprintf(path, sizeof path, "%s/results.json", dir);
    assert_int_equal(pep_results_write_json(path, s, 2, "{\"stage\": \"evaluate\"}"), PEP_OK);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
             "assert d[\"run\"][\"stage\"]==\"evaluate\"; assert d[\"chunking\"]==\"conlleval\"; "
             "h=d[\"languages\"][\"hi\"]; assert (h[\"gold\"],h[\"pred\"],h[\"correct\"])==(4,2,2); "
             "assert abs(h[\"f1\"]-2/3)<1e-6 and h[\"precision\"]==1 and h[\"recall\"]==0.5; "
             "assert h[\"token_accuracy\"]==0.75 and h[\"sentences\"]==10; "
             "assert h[\"per_type\"][\"PER\"][\"gold\"]==3 and abs(h[\"per_type\"][\"PER\"][\"f1\"]-0.5)<1e-6; "
             "assert d[\"languages\"][\"sw\\\"x\"][\"pred\"]==4; "
             "m=d[\"micro\"]; assert (m[\"gold\"],m[\"pred\"],m[\"correct\"],m[\"sentences\"])==(6,6,3,15); "
             "assert m[\"f1\"]==0.5 and m[\"per_type\"][\"PER\"][\"gold\"]==5; "
             "a=d[\"macro\"]; assert a[\"precision\"]==0.625 and a[\"f1\"]==0.5 and a[\"languages\"]==2' '%s'",
             path);
    assert_int_equal(system(cmd), 0);
    /* no .tmp left behind */
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "r");
    assert_null(f);
    /* No languages: still valid JSON. */
    assert_int_equal(pep_results_write_json(path, s, 0, NULL), PEP_OK);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                              "assert d[\"languages\"]=={} and d[\"macro\"][\"f1\"]==0' '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void test_results_csv(void **state)
{
    struct pep_eval_summary s[2];
    make(s);
    snprintf(s[1].name, sizeof s[1].name, "sw");
    const char *dir = pep_test_tmpdir("results_csv");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    assert_int_equal(pep_results_write_csv(path, s, 2), PEP_OK);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char text[2048];
    size_t k = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[k] = '\0';
    const char *want = "language,precision,recall,f1,gold,pred,correct,sentences,tokens,token_accuracy\n"
                       "hi,1.000000,0.500000,0.666667,4,2,2,10,40,0.750000\n"
                       "sw,0.250000,0.500000,0.333333,2,4,1,5,20,1.000000\n"
                       "micro,0.500000,0.500000,0.500000,6,6,3,15,60,0.833333\n"
                       "macro,0.625000,0.500000,0.500000,,,,,,\n";
    assert_string_equal(text, want);
    pep_error_clear();
    assert_int_equal(pep_results_write_csv("/nonexistent-dir/r.csv", s, 2), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "/nonexistent-dir/r.csv.tmp"));
    pep_error_clear();
}

/* A path with every character class a JSON string must escape, written as a JSON string and
 * parsed back by the strict reader: the same bytes, invalid UTF-8 replaced by U+FFFD. */
static void test_results_json_string_escapes(void **state)
{
    (void)state;
    const char *raw = "/runs/a \"quoted\" dir\\x/tab\there\nnl/\xc3\xa9t\xe9/\x01end";
    const char *want = "/runs/a \"quoted\" dir\\x/tab\there\nnl/\xc3\xa9t\xef\xbf\xbd/\x01end";
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fputs("{\"model\": ", f);
    pep_json_write_string(f, raw);
    fputs("}", f);
    assert_int_equal(fclose(f), 0);
    struct pep_json *j = NULL;
    assert_int_equal(pep_json_parse(text, len, "escape test", 0, &j), PEP_OK);
    const struct pep_json *m = pep_json_get(j, "model");
    assert_non_null(m);
    assert_int_equal(m->type, PEP_JSON_TYPE_STRING);
    assert_string_equal(m->string, want);
    pep_json_free(&j);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_json),
        cmocka_unit_test(test_results_csv),
        cmocka_unit_test(test_results_json_string_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
