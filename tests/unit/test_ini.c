/* INI job files: sections, comments, includes, and errors that name file, line and key. */
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "ini.h"
#include "testutil.h"

static void test_ini_reads_sections_and_includes(void **state)
{
    const char *dir = pep_test_tmpdir("ini");
    pep_test_write_file(dir, "model.ini", "# shared model\n[model]\nlayers = 2\nhidden = 64 # inline comment\n");
    const char *path = pep_test_write_file(dir, "prime.ini",
                                           "include = model.ini\n\n[maml]\ninner_steps = 3\n; comment\norder = 2\n");
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    assert_int_equal(pep_ini_load(&cfg, path), PEP_OK);
    assert_int_equal(cfg.model.layers, 2);
    assert_int_equal(cfg.model.hidden, 64);
    assert_int_equal(cfg.maml.inner_steps, 3);
    assert_int_equal(cfg.maml.order, 2);
}

/* A '#' at a value's start or after a space or tab begins a comment, so every value read
 * back from a written config is the value written (found by fuzz_ini: "key =#x" once read as
 * "#x" and was written as "key = #x", which reads as empty). */
static void test_ini_comment_rule_round_trips(void **state)
{
    const char *dir = pep_test_tmpdir("ini_hash");
    const char *path = pep_test_write_file(dir, "h.ini",
                                           "[model]\ntokenizer =#abc\n[data]\ntags = O,B-X\t# tab comment\n"
                                           "languages = en#de\n");
    struct pep_config cfg, again;
    pep_config_defaults(&cfg);
    assert_int_equal(pep_ini_load(&cfg, path), PEP_OK);
    assert_string_equal(cfg.model.tokenizer, "");
    assert_string_equal(cfg.data.tags, "O,B-X");
    assert_string_equal(cfg.data.languages, "en#de");
    char *ini = NULL, *ini2 = NULL;
    assert_int_equal(pep_config_to_ini(&cfg, &ini), PEP_OK);
    pep_config_defaults(&again);
    assert_int_equal(pep_ini_load(&again, pep_test_write_file(dir, "rt.ini", ini)), PEP_OK);
    assert_int_equal(pep_config_to_ini(&again, &ini2), PEP_OK);
    assert_string_equal(ini, ini2);
    pep_free(ini);
    pep_free(ini2);
}

static void test_ini_error_names_file_line_key(void **state)
{
    const char *dir = pep_test_tmpdir("ini_bad");
    const char *path = pep_test_write_file(dir, "bad.ini", "[maml]\norder = 1\ninner_step = 3\n");
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    pep_error_clear();
    assert_int_equal(pep_ini_load(&cfg, path), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "bad.ini:3"));
    assert_non_null(strstr(pep_error_message(), "did you mean 'maml.inner_steps'"));
    pep_error_clear();
    path = pep_test_write_file(dir, "bad2.ini", "[maml\norder = 1\n");
    assert_int_equal(pep_ini_load(&cfg, path), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "bad2.ini:1"));
    pep_error_clear();
    path = pep_test_write_file(dir, "bad3.ini", "[maml]\norder\n");
    assert_int_equal(pep_ini_load(&cfg, path), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "bad3.ini:2"));
    pep_error_clear();
    assert_int_equal(pep_ini_load(&cfg, "/nonexistent/x.ini"), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "/nonexistent/x.ini"));
    pep_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini_reads_sections_and_includes),
        cmocka_unit_test(test_ini_comment_rule_round_trips),
        cmocka_unit_test(test_ini_error_names_file_line_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
