/* Enum <-> name tables (core/names.h): the names checkpoints and config files store map to
 * the same values as before (a renamed or renumbered entry would make old checkpoints or the
 * oracles' fixtures read wrong), every table round-trips, unknown names are refused, and the
 * choice lists come out in the order messages use. */
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "core/names.h"
#include "layers/activation.h"
#include "model/kinds.h"
#include "optim/optim.h"
#include "testutil.h"

/* Every entry parses back to its value and every value has one name. */
static void check_round_trip(const struct pep_names *t)
{
    for (int i = 0; i < t->count; i++) {
        int v = -1;
        assert_int_equal(pep_names_parse(t, t->entry[i].name, &v), 0);
        assert_int_equal(v, t->entry[i].value);
        assert_string_equal(pep_names_name(t, v), t->entry[i].name);
        for (int j = 0; j < i; j++) {
            assert_true(t->entry[j].value != t->entry[i].value);
            assert_true(strcmp(t->entry[j].name, t->entry[i].name) != 0);
        }
    }
    int v = 12345;
    assert_int_equal(pep_names_parse(t, "no-such-name", &v), -1);
    assert_int_equal(v, 12345);
    assert_int_equal(pep_names_parse(t, NULL, &v), -1);
    assert_string_equal(pep_names_name(t, 999), "?");
}

static void test_names_stored_values_unchanged(void **state)
{
    static const struct {
        const struct pep_names *table;
        const char *name;
        int value;
    } stored[] = {
        {&pep_pe_method_names, "none", 0},         {&pep_pe_method_names, "adapter", 1},
        {&pep_pe_method_names, "prefix", 2},       {&pep_pe_method_names, "lora", 3},
        {&pep_adapter_placement_names, "pfeiffer", 0}, {&pep_adapter_placement_names, "houlsby", 1},
        {&pep_head_kind_names, "tagger", 0},       {&pep_head_kind_names, "mlm", 1},
        {&pep_activation_names, "relu", 0},        {&pep_activation_names, "gelu", 1},
        {&pep_activation_names, "swish", 2},       {&pep_optim_kind_names, "sgd", 0},
        {&pep_optim_kind_names, "adamw", 1},
    };
    for (size_t i = 0; i < sizeof stored / sizeof stored[0]; i++) {
        int v = -1;
        assert_int_equal(pep_names_parse(stored[i].table, stored[i].name, &v), 0);
        assert_int_equal(v, stored[i].value);
    }
    /* the typed wrappers */
    enum pep_pe_method m;
    assert_int_equal(pep_pe_method_parse("Adapter", &m), -1);
    assert_int_equal(pep_pe_method_parse("lora", &m), 0);
    assert_int_equal(m, PEP_PE_METHOD_LORA);
    enum pep_activation a;
    assert_int_equal(pep_activation_parse("tanh", &a), -1); /* the prefix MLP's, no adapter choice */
    assert_string_equal(pep_activation_name(PEP_ACTIVATION_TANH), "?");
    assert_string_equal(pep_adapter_placement_name(PEP_ADAPTER_PLACEMENT_HOULSBY), "houlsby");
    assert_string_equal(pep_head_kind_name(PEP_HEAD_KIND_MLM), "mlm");
}

static void test_names_round_trip(void **state)
{
    check_round_trip(&pep_pe_method_names);
    check_round_trip(&pep_adapter_placement_names);
    check_round_trip(&pep_head_kind_names);
    check_round_trip(&pep_activation_names);
    check_round_trip(&pep_optim_kind_names);
}

static void test_names_list(void **state)
{
    char buf[64];
    pep_names_list(&pep_pe_method_names, "|", "|", buf, sizeof buf);
    assert_string_equal(buf, "adapter|prefix|lora|none");
    pep_names_list(&pep_pe_method_names, ", ", " or ", buf, sizeof buf);
    assert_string_equal(buf, "adapter, prefix, lora or none");
    pep_names_list(&pep_pe_method_names, ", ", " or ", buf, 10); /* cut to fit, terminated */
    assert_string_equal(buf, "adapter, ");
    pep_names_list(&pep_adapter_placement_names, "|", "|", buf, sizeof buf);
    assert_string_equal(buf, "pfeiffer|houlsby");
}

/* The config keys take their choices from the same tables. */
static void test_names_config_uses_tables(void **state)
{
    size_t n;
    const struct pep_config_key *k = pep_config_keys(&n);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[128];
        pep_config_choices(&k[i], buf, sizeof buf);
        if (!strcmp(k[i].name, "pe.method")) {
            assert_ptr_equal(k[i].names, &pep_pe_method_names);
            assert_string_equal(buf, "adapter|prefix|lora|none");
            found++;
        } else if (!strcmp(k[i].name, "pe.placement")) {
            assert_ptr_equal(k[i].names, &pep_adapter_placement_names);
            found++;
        } else if (!strcmp(k[i].name, "pe.activation")) {
            assert_ptr_equal(k[i].names, &pep_activation_names);
            assert_string_equal(buf, "relu|gelu|swish");
            found++;
        } else if (!strcmp(k[i].name, "optim.name")) {
            assert_ptr_equal(k[i].names, &pep_optim_kind_names);
            assert_string_equal(buf, "adamw|sgd");
            found++;
        }
    }
    assert_int_equal(found, 4);
    struct pep_config cfg;
    pep_config_defaults(&cfg);
    assert_int_equal(pep_config_set(&cfg, "pe.method", "lora", "t"), PEP_OK);
    assert_string_equal(cfg.pe.method, "lora");
    assert_int_equal(pep_config_set(&cfg, "pe.placement", "middle", "t"), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "pfeiffer|houlsby"));
    pep_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_stored_values_unchanged),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_names_list),
        cmocka_unit_test(test_names_config_uses_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
