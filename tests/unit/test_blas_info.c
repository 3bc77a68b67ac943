/* BLAS kernel check: kernel classes, recommended OPENBLAS_CORETYPE, warnings, and this host. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/blas_info.h"
#include "core/error.h"
#include "testutil.h"

static const struct pep_cpu_features cpu_avx512 = {1, 1, 1, 1, 1, 1, 1, 1};
static const struct pep_cpu_features cpu_avx2 = {1, 1, 1, 0, 0, 0, 0, 0};
static const struct pep_cpu_features cpu_sse = {0};

static void test_blas_info_coretype_for(void **state)
{
    assert_string_equal(pep_blas_coretype_for(&cpu_avx512), "SkylakeX");
    assert_string_equal(pep_blas_coretype_for(&cpu_avx2), "Haswell");
    assert_null(pep_blas_coretype_for(&cpu_sse));
    /* AVX-512F alone (no BW/VL, e.g. Knights Landing) is not enough for SkylakeX */
    struct pep_cpu_features knl = cpu_avx2;
    knl.avx512f = knl.avx512cd = 1;
    assert_string_equal(pep_blas_coretype_for(&knl), "Haswell");
    /* AVX2 without FMA has no Haswell kernels */
    struct pep_cpu_features nofma = cpu_avx2;
    nofma.fma = 0;
    assert_null(pep_blas_coretype_for(&nofma));
}

static void test_blas_info_kernel_level(void **state)
{
    assert_int_equal(pep_blas_kernel_level("Prescott"), PEP_BLAS_LEVEL_GENERIC);
    assert_int_equal(pep_blas_kernel_level("CORE2"), PEP_BLAS_LEVEL_GENERIC);
    assert_int_equal(pep_blas_kernel_level("Sandybridge"), PEP_BLAS_LEVEL_AVX);
    assert_int_equal(pep_blas_kernel_level("Haswell"), PEP_BLAS_LEVEL_AVX2);
    assert_int_equal(pep_blas_kernel_level("Zen"), PEP_BLAS_LEVEL_AVX2);
    assert_int_equal(pep_blas_kernel_level("SkylakeX"), PEP_BLAS_LEVEL_AVX512);
    assert_int_equal(pep_blas_kernel_level("sapphirerapids"), PEP_BLAS_LEVEL_AVX512);
    assert_int_equal(pep_blas_kernel_level("NeoverseN1"), PEP_BLAS_LEVEL_UNKNOWN);
    assert_int_equal(pep_blas_kernel_level(NULL), PEP_BLAS_LEVEL_UNKNOWN);
}

static void test_blas_info_assess(void **state)
{
    char msg[1024];
    /* generic kernels on AVX-512: warn and name SkylakeX */
    assert_int_equal(pep_blas_assess("Prescott", &cpu_avx512, NULL, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "OPENBLAS_CORETYPE=SkylakeX"));
    assert_non_null(strstr(msg, "Prescott"));
    /* generic kernels on AVX2: Haswell */
    assert_int_equal(pep_blas_assess("Core2", &cpu_avx2, NULL, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "OPENBLAS_CORETYPE=Haswell"));
    /* generic kernels on an SSE-only CPU are the right ones */
    assert_int_equal(pep_blas_assess("Prescott", &cpu_sse, NULL, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    /* AVX2 / AVX-512 kernels: fine */
    assert_int_equal(pep_blas_assess("Haswell", &cpu_avx512, NULL, msg, sizeof msg), 0);
    assert_int_equal(pep_blas_assess("SkylakeX", &cpu_avx512, NULL, msg, sizeof msg), 0);
    /* an explicit setting that took effect is respected, even a slow one */
    assert_int_equal(pep_blas_assess("Haswell", &cpu_avx512, "haswell", msg, sizeof msg), 0);
    assert_int_equal(pep_blas_assess("Prescott", &cpu_avx512, "Prescott", msg, sizeof msg), 0);
    /* an explicit setting OpenBLAS ignored is reported */
    assert_int_equal(pep_blas_assess("Prescott", &cpu_avx512, "Skylakex2", msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "OPENBLAS_CORETYPE=Skylakex2"));
    assert_non_null(strstr(msg, "'Prescott'"));
}

static void test_blas_info_this_host(void **state)
{
    struct pep_blas_info info;
    pep_blas_info_get(&info);
    assert_non_null(info.corename);
    assert_string_equal(info.corename, openblas_get_corename());
    assert_non_null(strstr(info.config, "OpenBLAS"));
    assert_true(info.threads >= 1);
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env && *env) {
        assert_string_equal(info.env_coretype, env);
        /* the variable was in the environment at load time: OpenBLAS must have used it */
        assert_true(strcasecmp(info.corename, env) == 0);
    } else {
        assert_null(info.env_coretype);
    }
    /* the recommendation follows the detected features */
    const char *rec = pep_blas_recommended_coretype();
    if (info.cpu.avx512f && info.cpu.avx512bw && info.cpu.avx512vl && info.cpu.avx512dq && info.cpu.avx512cd)
        assert_string_equal(rec, "SkylakeX");
    else if (info.cpu.avx2 && info.cpu.fma)
        assert_string_equal(rec, "Haswell");
    else
        assert_null(rec);
    char msg[1024];
    int warns = pep_blas_assess(info.corename, &info.cpu, info.env_coretype, msg, sizeof msg);
    assert_int_equal(pep_blas_check(), warns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blas_info_coretype_for),
        cmocka_unit_test(test_blas_info_kernel_level),
        cmocka_unit_test(test_blas_info_assess),
        cmocka_unit_test(test_blas_info_this_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
