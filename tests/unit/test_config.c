/* Config: defaults, the one setter, error messages with file/key/choices, did-you-mean. */
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "testutil.h"

static void test_config_set_values(void **state)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    assert_int_equal(pep_config_set(&cfg, "maml.inner_steps", "3", "t.ini:1"), PEP_OK);
    assert_int_equal(cfg.maml.inner_steps, 3);
    assert_int_equal(pep_config_set(&cfg, "pe.method", "lora", "t.ini:2"), PEP_OK);
    assert_string_equal(cfg.pe.method, "lora");
    assert_int_equal(pep_config_set(&cfg, "optim.lr", "3e-4", "t.ini:3"), PEP_OK);
    assert_float_equal(cfg.optim.lr, 3e-4f, 1e-9);
    assert_int_equal(pep_config_set(&cfg, "pe.prefix_reparam", "true", "t.ini:4"), PEP_OK);
    assert_int_equal(cfg.pe.prefix_reparam, 1);
}

static void test_config_unknown_key_suggests(void **state)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "maml.inner_step", "3", "config.ini:12"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "config.ini:12"));
    assert_non_null(strstr(pep_error_message(), "did you mean 'maml.inner_steps'"));
    pep_error_clear();
}

static void test_config_bad_enum_lists_choices(void **state)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "pe.method", "adaptor", "x.ini:3"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "adapter|prefix|lora|none"));
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "model.layers", "0", "x.ini:4"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "out of range"));
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "model.layers", "4x", "x.ini:5"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "whole number"));
    pep_error_clear();
    assert_int_equal(pep_config_set_arg(&cfg, "noequals"), PEP_ERR_USAGE);
    pep_error_clear();
}

static void test_config_validate_cross_keys(void **state)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    assert_int_equal(pep_config_validate(&cfg), PEP_OK);
    cfg.model.heads = 3;
    pep_error_clear();
    assert_int_equal(pep_config_validate(&cfg), PEP_ERR_USAGE);
    pep_config_defaults(&cfg);
    cfg.pe.reduction = 512;
    pep_error_clear();
    assert_int_equal(pep_config_validate(&cfg), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "no bottleneck"));
    pep_error_clear();
}

static void test_config_optim_schedule_and_accumulate(void **state)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    assert_int_equal(pep_config_set(&cfg, "optim.schedule", "cosine", "x.ini:1"), PEP_OK);
    assert_int_equal(pep_config_set(&cfg, "optim.min_lr_ratio", "0.1", "x.ini:2"), PEP_OK);
    assert_int_equal(pep_config_set(&cfg, "optim.accumulate", "4", "x.ini:3"), PEP_OK);
    assert_int_equal(pep_config_validate(&cfg), PEP_OK);
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "optim.schedule", "cosin", "x.ini:4"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "cosine"));
    pep_error_clear();
    /* a floor on a schedule that has none is a mistake, not something to ignore */
    strcpy(cfg.optim.schedule, "linear");
    assert_int_equal(pep_config_validate(&cfg), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "optim.min_lr_ratio"));
    pep_error_clear();
    strcpy(cfg.optim.schedule, "cosine");
    cfg.optim.accumulate = cfg.optim.batch_size + 1;
    assert_int_equal(pep_config_validate(&cfg), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "optim.accumulate"));
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "optim.accumulate", "0", "x.ini:5"), PEP_ERR_USAGE);
    pep_error_clear();
}

/* --set cannot store a string a job file would read back differently (every checkpoint keeps
 * its config as INI). */
static void test_config_rejects_unwritable_strings(void **state)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    const char *bad[] = {"#x", "a #b", "a\t#b", " x", "x ", "a\nb", "a\rb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pep_error_clear();
        assert_int_equal(pep_config_set(&cfg, "model.tokenizer", bad[i], "--set model.tokenizer"), PEP_ERR_USAGE);
        assert_non_null(strstr(pep_error_message(), "cannot be stored in a job file"));
        assert_non_null(strstr(pep_error_message(), "--set model.tokenizer"));
    }
    pep_error_clear();
    assert_int_equal(pep_config_set(&cfg, "model.tokenizer", "dir#1/spm.model", "--set"), PEP_OK);
    assert_string_equal(cfg.model.tokenizer, "dir#1/spm.model");
}

static void test_config_ini_round_trip(void **state)
{
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    char *ini = NULL;
    assert_int_equal(pep_config_to_ini(&cfg, &ini), PEP_OK);
    assert_non_null(strstr(ini, "[maml]\n"));
    assert_non_null(strstr(ini, "inner_steps = 1\n"));
    pep_free(ini);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_set_values),
        cmocka_unit_test(test_config_unknown_key_suggests),
        cmocka_unit_test(test_config_bad_enum_lists_choices),
        cmocka_unit_test(test_config_validate_cross_keys),
        cmocka_unit_test(test_config_optim_schedule_and_accumulate),
        cmocka_unit_test(test_config_rejects_unwritable_strings),
        cmocka_unit_test(test_config_ini_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
