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

/* Fixed CPUs and the OPENBLAS_CORETYPE each must get (NULL: nothing to ask for). Fields:
 * avx, avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512cd. */
static const struct {
    const char *cpu;
    struct pep_cpu_features f;
    const char *want;
} coretype_cases[] = {
    {"AVX-512 F/BW/VL/DQ/CD (Skylake-SP, Zen 4/5)", {1, 1, 1, 1, 1, 1, 1, 1}, "SkylakeX"},
    {"AVX-512 without F", {1, 1, 1, 0, 1, 1, 1, 1}, "Haswell"},
    {"AVX-512 without BW", {1, 1, 1, 1, 0, 1, 1, 1}, "Haswell"},
    {"AVX-512 without VL", {1, 1, 1, 1, 1, 0, 1, 1}, "Haswell"},
    {"AVX-512 without DQ", {1, 1, 1, 1, 1, 1, 0, 1}, "Haswell"},
    {"AVX-512 without CD", {1, 1, 1, 1, 1, 1, 1, 0}, "Haswell"},
    {"AVX-512 F + CD only (Knights Landing)", {1, 1, 1, 1, 0, 0, 0, 1}, "Haswell"},
    {"AVX2 + FMA (Haswell, Zen 1-3)", {1, 1, 1, 0, 0, 0, 0, 0}, "Haswell"},
    {"AVX2 without FMA", {1, 1, 0, 0, 0, 0, 0, 0}, NULL},
    {"FMA without AVX2", {1, 0, 1, 0, 0, 0, 0, 0}, NULL},
    {"AVX only (Sandy Bridge)", {1, 0, 0, 0, 0, 0, 0, 0}, NULL},
    {"SSE only", {0, 0, 0, 0, 0, 0, 0, 0}, NULL},
};

static void test_blas_info_coretype_for(void **state)
{
    for (size_t i = 0; i < sizeof coretype_cases / sizeof coretype_cases[0]; i++) {
        const char *got = pep_blas_coretype_for(&coretype_cases[i].f), *want = coretype_cases[i].want;
        if (want ? !got || strcmp(got, want) != 0 : got != NULL)
            fail_msg("%s: got %s, want %s", coretype_cases[i].cpu, got ? got : "NULL", want ? want : "NULL");
    }
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
    /* the recommendation is the rule (checked on fixed CPUs in test_blas_info_coretype_for)
     * applied to this CPU's detected features, whatever the host */
    const char *rec = pep_blas_recommended_coretype(), *rule = pep_blas_coretype_for(&info.cpu);
    if (rule) {
        assert_non_null(rec);
        assert_string_equal(rec, rule);
    } else {
        assert_null(rec);
    }
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
