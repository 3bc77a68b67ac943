/* The watchable CSV log (io/logcsv.h): a fresh start writes the header and rows (NaN an empty
 * cell, each line flushed); a resume after step k keeps the rows up to k in place (same file,
 * so `tail -f` follows it) and cuts an earlier attempt's later rows and an unfinished line; a
 * file it cannot keep (missing, another header, rows missing) is written anew from the
 * checkpoint's rows; an unwritable folder is an error naming the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "logcsv.h"
#include "testutil.h"

static const char *const cols[3] = {"step", "loss", "lr"};

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static ino_t inode(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) fail_msg("cannot stat %s", path);
    return st.st_ino;
}

/* A run of steps 1..n: loss 1/step, lr 0.5 except NaN at step 2. */
static void write_run(const char *path, long start, int n)
{
    struct pep_logcsv lc;
    assert_int_equal(pep_logcsv_open(&lc, path, cols, 3, start, NULL, 0, NULL), PEP_OK);
    for (int s = (int)start + 1; s <= n; s++) {
        double row[3] = {s, 1.0 / s, s == 2 ? NAN : 0.5};
        assert_int_equal(pep_logcsv_row(&lc, row), PEP_OK);
        if (s == 1) assert_string_equal(slurp(path), "step,loss,lr\n1,1,0.5\n"); /* flushed as written */
    }
    pep_logcsv_close(&lc);
    pep_logcsv_close(&lc); /* idempotent */
}

static void test_logcsv_fresh_header_rows(void **st)
{
    const char *dir = pep_test_tmpdir("logcsv_fresh");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    write_run(path, 0, 3);
    assert_string_equal(slurp(path), "step,loss,lr\n1,1,0.5\n2,0.5,\n3,0.3333333333,0.5\n");
    write_run(path, 0, 1); /* a fresh start empties the file */
    assert_string_equal(slurp(path), "step,loss,lr\n1,1,0.5\n");
}

static void test_logcsv_resume_cuts_later_rows_in_place(void **st)
{
    const char *dir = pep_test_tmpdir("logcsv_resume");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    write_run(path, 0, 5);
    /* an earlier attempt got to step 5 and was killed while writing step 6 */
    FILE *f = fopen(path, "ab");
    fputs("6,0.16", f);
    fclose(f);
    ino_t before = inode(path);
    struct pep_logcsv lc;
    int rebuilt = -1;
    double ckpt[3 * 3] = {1, 9, 9, 2, 9, 9, 3, 9, 9}; /* not used: the file is kept */
    assert_int_equal(pep_logcsv_open(&lc, path, cols, 3, 3, ckpt, 3, &rebuilt), PEP_OK);
    assert_int_equal(rebuilt, 0);
    assert_string_equal(slurp(path), "step,loss,lr\n1,1,0.5\n2,0.5,\n3,0.3333333333,0.5\n");
    double row[3] = {4, 0.25, 0.25};
    assert_int_equal(pep_logcsv_row(&lc, row), PEP_OK);
    pep_logcsv_close(&lc);
    assert_string_equal(slurp(path), "step,loss,lr\n1,1,0.5\n2,0.5,\n3,0.3333333333,0.5\n4,0.25,0.25\n");
    assert_true(inode(path) == before);
    /* a resume at the file's last step keeps everything */
    assert_int_equal(pep_logcsv_open(&lc, path, cols, 3, 4, NULL, 4, &rebuilt), PEP_OK);
    assert_int_equal(rebuilt, 0);
    pep_logcsv_close(&lc);
    assert_non_null(strstr(slurp(path), "\n4,0.25,0.25\n"));
}

static void test_logcsv_resume_rebuilds_what_it_cannot_keep(void **st)
{
    const char *dir = pep_test_tmpdir("logcsv_rebuild");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    double ckpt[2 * 3] = {1, 2.5, 0.1, 2, 1.5, NAN};
    const char *want = "step,loss,lr\n1,2.5,0.1\n2,1.5,\n";
    struct pep_logcsv lc;
    int rebuilt = 0;
    /* no file */
    assert_int_equal(pep_logcsv_open(&lc, path, cols, 3, 2, ckpt, 2, &rebuilt), PEP_OK);
    pep_logcsv_close(&lc);
    assert_int_equal(rebuilt, 1);
    assert_string_equal(slurp(path), want);
    /* another stage's columns */
    pep_test_write_file(dir, "log.csv", "step,loss,lr,dev_f1\n1,2,0.1,-1\n2,2,0.1,-1\n");
    assert_int_equal(pep_logcsv_open(&lc, path, cols, 3, 2, ckpt, 2, &rebuilt), PEP_OK);
    pep_logcsv_close(&lc);
    assert_int_equal(rebuilt, 1);
    assert_string_equal(slurp(path), want);
    /* rows missing (the file was cut or edited): the checkpoint's rows, not a gap */
    pep_test_write_file(dir, "log.csv", "step,loss,lr\n2,7,0.1\n3,7,0.1\n");
    assert_int_equal(pep_logcsv_open(&lc, path, cols, 3, 2, ckpt, 2, &rebuilt), PEP_OK);
    pep_logcsv_close(&lc);
    assert_int_equal(rebuilt, 1);
    assert_string_equal(slurp(path), want);
}

static void test_logcsv_errors_name_the_file(void **st)
{
    struct pep_logcsv lc;
    pep_error_clear();
    assert_int_equal(pep_logcsv_open(&lc, "/nonexistent-dir/log.csv", cols, 3, 0, NULL, 0, NULL), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "/nonexistent-dir/log.csv"));
    pep_error_clear();
    assert_int_equal(pep_logcsv_open(&lc, "/nonexistent-dir/log.csv", cols, 3, 4, NULL, 0, NULL), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "/nonexistent-dir/log.csv"));
    pep_error_clear();
    const char *bad[2] = {"step", "a,b"};
    const char *dir = pep_test_tmpdir("logcsv_bad");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    assert_int_equal(pep_logcsv_open(&lc, path, bad, 2, 0, NULL, 0, NULL), PEP_ERR_USAGE);
    pep_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logcsv_fresh_header_rows),
        cmocka_unit_test(test_logcsv_resume_cuts_later_rows_in_place),
        cmocka_unit_test(test_logcsv_resume_rebuilds_what_it_cannot_keep),
        cmocka_unit_test(test_logcsv_errors_name_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
