/* BLAS kernel check: kernel classes, recommended OPENBLAS_CORETYPE, warnings, all on fixed CPUs;
 * on this host, CPU detection against /proc/cpuinfo and the recommendation for the known CPUs. */
#include <cblas.h>
#include <stdio.h>
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

/* This host's CPU as the kernel reports it in /proc/cpuinfo (an independent reading of CPUID):
 * vendor, family, model and the flags line. Returns 0 when read. */
struct host_cpu {
    char vendor[64];
    int family, model;
    char flags[8192];
};

static int host_cpu_read(struct host_cpu *h)
{
    memset(h, 0, sizeof *h);
    h->family = h->model = -1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        char *v = strchr(line, ':');
        if (!v) {
            if (h->flags[0]) break; /* the end of the first processor's block */
            continue;
        }
        v++;
        v += strspn(v, " \t");
        v[strcspn(v, "\n")] = '\0';
        if (!strncmp(line, "vendor_id", 9) && !h->vendor[0]) snprintf(h->vendor, sizeof h->vendor, "%s", v);
        else if (!strncmp(line, "cpu family", 10) && h->family < 0) h->family = atoi(v);
        else if (!strncmp(line, "model\t", 6) && h->model < 0) h->model = atoi(v);
        else if (!strncmp(line, "flags", 5) && !h->flags[0]) snprintf(h->flags, sizeof h->flags, " %s ", v);
    }
    fclose(f);
    return h->flags[0] ? 0 : -1;
}

static int host_has(const struct host_cpu *h, const char *flag)
{
    char word[64];
    snprintf(word, sizeof word, " %s ", flag);
    return strstr(h->flags, word) != NULL;
}

/* pep_cpu_features_detect (the compiler's CPUID reading) agrees with the kernel's flags. */
static void test_blas_info_detect_matches_cpuinfo(void **state)
{
    struct host_cpu h;
    if (host_cpu_read(&h) != 0) skip(); /* no /proc/cpuinfo flags: not Linux x86 */
    struct pep_cpu_features f;
    pep_cpu_features_detect(&f);
    const struct {
        const char *flag;
        int got;
    } feats[] = {{"avx", f.avx},           {"avx2", f.avx2},         {"fma", f.fma},
                 {"avx512f", f.avx512f},   {"avx512bw", f.avx512bw}, {"avx512vl", f.avx512vl},
                 {"avx512dq", f.avx512dq}, {"avx512cd", f.avx512cd}};
    for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++)
        if (feats[i].got != host_has(&h, feats[i].flag))
            fail_msg("%s: detected %d, /proc/cpuinfo says %d", feats[i].flag, feats[i].got, host_has(&h, feats[i].flag));
}

/* The CPUs of docs/machine-facts.md and the OPENBLAS_CORETYPE each must get, fixed. A row applies
 * when vendor, family (and model, unless -1) match and every one of its flags is there (a
 * hypervisor may hide AVX-512: then the row says nothing about this host). */
static const struct {
    const char *vendor;
    int family, model;
    const char *flags, *what, *want;
} known_hosts[] = {
    {"GenuineIntel", 6, 207, "avx512f avx512bw avx512vl avx512dq avx512cd", "Intel family 6 model 207", "SkylakeX"},
    {"AuthenticAMD", 26, -1, "avx512f avx512bw avx512vl avx512dq avx512cd", "AMD EPYC Zen 5", "SkylakeX"},
    {"AuthenticAMD", 25, -1, "avx512f avx512bw avx512vl avx512dq avx512cd", "AMD EPYC Zen 4", "SkylakeX"},
    {"AuthenticAMD", 23, 1, "avx2 fma", "AMD EPYC Zen 1", "Haswell"},
};

static int known_host_applies(const struct host_cpu *h, size_t i)
{
    if (strcmp(h->vendor, known_hosts[i].vendor) || h->family != known_hosts[i].family) return 0;
    if (known_hosts[i].model >= 0 && h->model != known_hosts[i].model) return 0;
    char flags[256], *save = NULL;
    snprintf(flags, sizeof flags, "%s", known_hosts[i].flags);
    for (char *w = strtok_r(flags, " ", &save); w; w = strtok_r(NULL, " ", &save))
        if (!host_has(h, w)) return 0;
    return 1;
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
        /* the variable was in the environment at load time: OpenBLAS must have used it, and an
         * explicit setting that took effect is never warned about */
        assert_true(strcasecmp(info.corename, env) == 0);
        assert_int_equal(pep_blas_check(), 0);
    } else {
        assert_null(info.env_coretype);
        /* AVX2 or AVX-512 kernels are never warned about */
        if (pep_blas_kernel_level(info.corename) >= PEP_BLAS_LEVEL_AVX2) assert_int_equal(pep_blas_check(), 0);
    }
    /* the recommendation for this CPU, when it is one of the known ones */
    struct host_cpu h;
    if (host_cpu_read(&h) != 0) return;
    for (size_t i = 0; i < sizeof known_hosts / sizeof known_hosts[0]; i++) {
        if (!known_host_applies(&h, i)) continue;
        const char *rec = pep_blas_recommended_coretype();
        if (!rec || strcmp(rec, known_hosts[i].want) != 0)
            fail_msg("%s: recommended %s, want %s", known_hosts[i].what, rec ? rec : "NULL", known_hosts[i].want);
        print_message("this host is %s: recommended OPENBLAS_CORETYPE=%s\n", known_hosts[i].what, rec);
        return;
    }
    print_message("this host (%s family %d model %d) is not in the table: its recommendation is not checked\n",
                  h.vendor, h.family, h.model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blas_info_coretype_for),
        cmocka_unit_test(test_blas_info_kernel_level),
        cmocka_unit_test(test_blas_info_assess),
        cmocka_unit_test(test_blas_info_detect_matches_cpuinfo),
        cmocka_unit_test(test_blas_info_this_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
