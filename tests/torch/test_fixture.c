/* Oracle fixtures between Python and C in safetensors: the C reader of tests/fixture.c on
 * the file Python wrote (tests/ref/safetensors_io.py selftest-write: F32, I32 and an F64
 * scalar), a file the C side writes with io/safetensors for Python to check (selftest-check),
 * a C round trip, and files that must be rejected.
 *
 * Usage: test_fixture FROM_PYTHON.safetensors TO_PYTHON.safetensors */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fixture.h"
#include "testutil.h"

static const char *from_python, *to_python;

/* What both sides agree on. Python -> C: "w" F32 (2, 3) = 0.5 i - 1, "ids" I32 (4) = 7 - 3 i,
 * "eps" F64 scalar 1e-5. C -> Python (the project's writer is F32 only): "w" as above and
 * "b" F32 (4) = 7 - 3 i. */
static void write_c_file(const char *path)
{
    float w[6], b[4];
    for (int i = 0; i < 6; i++) w[i] = 0.5f * (float)i - 1.0f;
    for (int i = 0; i < 4; i++) b[i] = (float)(7 - 3 * i);
    struct pep_st_out t[2] = {{.name = "w", .ndim = 2, .shape = {2, 3}, .data = w},
                              {.name = "b", .ndim = 1, .shape = {4}, .data = b}};
    if (pep_safetensors_write(path, t, 2, NULL, 0) != PEP_OK) fail_msg("%s", pep_error_message());
}

static void check_w(const struct pep_fixture *fx)
{
    const struct pep_fixture_tensor *w = pep_fixture_find(fx, "w");
    assert_non_null(w);
    assert_int_equal(w->dtype, PEP_ST_DTYPE_F32);
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->dims[0], 2);
    assert_int_equal(w->dims[1], 3);
    for (int i = 0; i < 6; i++) assert_true(((const float *)w->data)[i] == 0.5f * (float)i - 1.0f);
}

static void check_python_file(struct pep_fixture *fx)
{
    check_w(fx);
    const struct pep_fixture_tensor *ids = pep_fixture_find(fx, "ids");
    assert_non_null(ids);
    assert_int_equal(ids->dtype, PEP_ST_DTYPE_I32);
    assert_int_equal(ids->numel, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(((const int32_t *)ids->data)[i], 7 - 3 * i);
    double eps = 0;
    assert_int_equal(pep_fixture_scalar(fx, "eps", &eps), 0);
    assert_true(eps == 1e-5);
    assert_null(pep_fixture_find(fx, "nope"));
    assert_int_equal(pep_fixture_scalar(fx, "nope", &eps), -1);
    assert_int_equal(pep_fixture_scalar(fx, "w", &eps), -1); /* not a scalar */
}

static void test_fixture_round_trip(void **state)
{
    const char *dir = pep_test_tmpdir("fixture");
    char path[2200];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    write_c_file(path);
    struct pep_fixture fx;
    if (pep_fixture_load(&fx, path) != 0) fail_msg("%s", fx.err);
    assert_int_equal(fx.count, 2);
    check_w(&fx);
    const struct pep_fixture_tensor *b = pep_fixture_find(&fx, "b");
    assert_non_null(b);
    for (int i = 0; i < 4; i++) assert_true(((const float *)b->data)[i] == (float)(7 - 3 * i));
    pep_fixture_fini(&fx);
}

static void test_fixture_rejects_bad_files(void **state)
{
    const char *dir = pep_test_tmpdir("fixture_bad");
    struct pep_fixture fx;
    assert_int_equal(pep_fixture_load(&fx, pep_test_write_file(dir, "junk.safetensors", "NOTASAFETENSORSFILE")), -1);
    assert_non_null(strstr(fx.err, "junk.safetensors"));
    /* A valid file cut short must be rejected, not read past its end. */
    char good[2200], cut[2200];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", dir);
    write_c_file(good);
    FILE *f = fopen(good, "rb");
    assert_non_null(f);
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(cut, "wb");
    assert_non_null(f);
    fwrite(buf, 1, n - 3, f);
    fclose(f);
    assert_int_equal(pep_fixture_load(&fx, cut), -1);
    assert_non_null(strstr(fx.err, "cut.safetensors"));
    print_message("cut file: %s\n", fx.err);
    assert_int_equal(pep_fixture_load(&fx, "/nonexistent/x.safetensors"), -1);
    assert_non_null(strstr(fx.err, "cannot open"));
}

static void test_fixture_python_interop(void **state)
{
    struct pep_fixture fx;
    if (pep_fixture_load(&fx, from_python) != 0) fail_msg("%s", fx.err);
    check_python_file(&fx);
    pep_fixture_fini(&fx);
    write_c_file(to_python);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FROM_PYTHON.safetensors TO_PYTHON.safetensors\n", argv[0]);
        return 2;
    }
    from_python = argv[1];
    to_python = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_round_trip),
        cmocka_unit_test(test_fixture_rejects_bad_files),
        cmocka_unit_test(test_fixture_python_interop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
