/* PEPTENS1 archives between C and Python: a C round trip, reading the file Python wrote
 * (tests/ref/tensorfile.py selftest-write) and writing one Python then checks
 * (selftest-check), plus malformed files that must be rejected.
 *
 * Usage: test_tensorfile FROM_PYTHON.bin TO_PYTHON.bin */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensorfile.h"
#include "testutil.h"

static const char *from_python, *to_python;

/* The content both sides agree on: "w" f32 (2, 3) = 0.5 * i - 1, "ids" i32 (4) = 7 - 3 i,
 * "eps" f64 scalar 1e-5. */
static void add_agreed_archive(struct pep_tensorfile *tf)
{
    float w[6];
    int32_t ids[4];
    double eps = 1e-5;
    for (int i = 0; i < 6; i++) w[i] = 0.5f * (float)i - 1.0f;
    for (int i = 0; i < 4; i++) ids[i] = 7 - 3 * i;
    uint64_t dw[2] = {2, 3}, di[1] = {4};
    assert_int_equal(pep_tensorfile_add(tf, "w", PEP_TENSOR_F32, 2, dw, w), 0);
    assert_int_equal(pep_tensorfile_add(tf, "ids", PEP_TENSOR_I32, 1, di, ids), 0);
    assert_int_equal(pep_tensorfile_add(tf, "eps", PEP_TENSOR_F64, 0, NULL, &eps), 0);
}

static void check_agreed_archive(struct pep_tensorfile *tf)
{
    const struct pep_tensor *w = pep_tensorfile_find(tf, "w"), *ids = pep_tensorfile_find(tf, "ids");
    assert_non_null(w);
    assert_non_null(ids);
    assert_int_equal(w->dtype, PEP_TENSOR_F32);
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->dims[0], 2);
    assert_int_equal(w->dims[1], 3);
    for (int i = 0; i < 6; i++) assert_true(((const float *)w->data)[i] == 0.5f * (float)i - 1.0f);
    assert_int_equal(ids->dtype, PEP_TENSOR_I32);
    assert_int_equal(ids->numel, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(((const int32_t *)ids->data)[i], 7 - 3 * i);
    double eps = 0;
    assert_int_equal(pep_tensorfile_scalar(tf, "eps", &eps), 0);
    assert_true(eps == 1e-5);
    assert_null(pep_tensorfile_find(tf, "nope"));
    assert_int_equal(pep_tensorfile_scalar(tf, "nope", &eps), -1);
    assert_int_equal(pep_tensorfile_scalar(tf, "w", &eps), -1); /* not a scalar */
}

static void test_tensorfile_round_trip(void **state)
{
    const char *dir = pep_test_tmpdir("tensorfile");
    char path[2200];
    snprintf(path, sizeof path, "%s/rt.bin", dir);
    struct pep_tensorfile a, b;
    pep_tensorfile_init(&a);
    pep_tensorfile_init(&b);
    add_agreed_archive(&a);
    assert_int_equal(pep_tensorfile_write(&a, path), 0);
    assert_int_equal(pep_tensorfile_load(&b, path), 0);
    assert_int_equal(b.count, 3);
    check_agreed_archive(&b);
    pep_tensorfile_fini(&a);
    pep_tensorfile_fini(&b);
}

static void test_tensorfile_rejects_bad_files(void **state)
{
    const char *dir = pep_test_tmpdir("tensorfile_bad");
    struct pep_tensorfile tf;
    pep_tensorfile_init(&tf);
    assert_int_equal(pep_tensorfile_load(&tf, pep_test_write_file(dir, "magic.bin", "NOTATENSORFILE")), -1);
    assert_non_null(strstr(tf.err, "magic"));
    /* A valid file cut short must be rejected, not read past its end. */
    char good[2200], cut[2200];
    snprintf(good, sizeof good, "%s/good.bin", dir);
    snprintf(cut, sizeof cut, "%s/cut.bin", dir);
    struct pep_tensorfile w;
    pep_tensorfile_init(&w);
    add_agreed_archive(&w);
    assert_int_equal(pep_tensorfile_write(&w, good), 0);
    pep_tensorfile_fini(&w);
    FILE *f = fopen(good, "rb");
    assert_non_null(f);
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(cut, "wb");
    assert_non_null(f);
    fwrite(buf, 1, n - 3, f);
    fclose(f);
    pep_tensorfile_fini(&tf);
    pep_tensorfile_init(&tf);
    assert_int_equal(pep_tensorfile_load(&tf, cut), -1);
    assert_non_null(strstr(tf.err, "past the end"));
    assert_int_equal(pep_tensorfile_load(&tf, "/nonexistent/x.bin"), -1);
    pep_tensorfile_fini(&tf);
}

static void test_tensorfile_python_interop(void **state)
{
    struct pep_tensorfile tf;
    pep_tensorfile_init(&tf);
    if (pep_tensorfile_load(&tf, from_python) != 0) fail_msg("%s", tf.err);
    check_agreed_archive(&tf);
    pep_tensorfile_fini(&tf);
    pep_tensorfile_init(&tf);
    add_agreed_archive(&tf);
    assert_int_equal(pep_tensorfile_write(&tf, to_python), 0);
    pep_tensorfile_fini(&tf);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FROM_PYTHON.bin TO_PYTHON.bin\n", argv[0]);
        return 2;
    }
    from_python = argv[1];
    to_python = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensorfile_round_trip),
        cmocka_unit_test(test_tensorfile_rejects_bad_files),
        cmocka_unit_test(test_tensorfile_python_interop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
