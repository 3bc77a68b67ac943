/* Tests of the Hugging Face -> peprime tensor name mapping (io/hf_names.c). */
#include "testutil.h"

#include <string.h>

#include "hf_names.h"

static void expect(const char *hf, enum pep_hf_name_kind kind, const char *want)
{
    char out[96];
    const char *note = NULL;
    enum pep_hf_name_kind got = pep_hf_map_name(hf, out, sizeof out, &note);
    if (got != kind) fail_msg("%s: kind %d, want %d", hf, got, kind);
    if (want && strcmp(out, want) != 0) fail_msg("%s -> '%s', want '%s'", hf, out, want);
    if (kind != PEP_HF_NAME_KIND_PARAM && !note) fail_msg("%s: no note", hf);
}

static void test_hf_names_xlmr(void **state)
{
    expect("roberta.embeddings.word_embeddings.weight", PEP_HF_NAME_KIND_PARAM, "embeddings.word_embeddings.weight");
    expect("embeddings.word_embeddings.weight", PEP_HF_NAME_KIND_PARAM, "embeddings.word_embeddings.weight");
    expect("roberta.embeddings.LayerNorm.bias", PEP_HF_NAME_KIND_PARAM, "embeddings.LayerNorm.bias");
    expect("roberta.encoder.layer.11.attention.self.query.weight", PEP_HF_NAME_KIND_PARAM,
           "encoder.layer.11.attention.self.query.weight");
    expect("roberta.encoder.layer.3.output.LayerNorm.weight", PEP_HF_NAME_KIND_PARAM, "encoder.layer.3.output.LayerNorm.weight");
    expect("encoder.layer.0.intermediate.dense.bias", PEP_HF_NAME_KIND_PARAM, "encoder.layer.0.intermediate.dense.bias");
    expect("classifier.weight", PEP_HF_NAME_KIND_PARAM, "classifier.weight");
    expect("lm_head.dense.weight", PEP_HF_NAME_KIND_PARAM, "lm_head.dense.weight");
    expect("lm_head.layer_norm.bias", PEP_HF_NAME_KIND_PARAM, "lm_head.layer_norm.bias");
    expect("lm_head.bias", PEP_HF_NAME_KIND_PARAM, "lm_head.bias");
    expect("lm_head.decoder.weight", PEP_HF_NAME_KIND_TIED, "embeddings.word_embeddings.weight");
    expect("lm_head.decoder.bias", PEP_HF_NAME_KIND_TIED_BIAS, "lm_head.bias");
    expect("roberta.pooler.dense.weight", PEP_HF_NAME_KIND_IGNORED, NULL);
    expect("roberta.embeddings.position_ids", PEP_HF_NAME_KIND_IGNORED, NULL);
}

static void test_hf_names_bert(void **state)
{
    expect("bert.embeddings.LayerNorm.gamma", PEP_HF_NAME_KIND_PARAM, "embeddings.LayerNorm.weight");
    expect("bert.embeddings.LayerNorm.beta", PEP_HF_NAME_KIND_PARAM, "embeddings.LayerNorm.bias");
    expect("bert.encoder.layer.2.attention.output.LayerNorm.gamma", PEP_HF_NAME_KIND_PARAM,
           "encoder.layer.2.attention.output.LayerNorm.weight");
    expect("cls.predictions.transform.dense.weight", PEP_HF_NAME_KIND_PARAM, "lm_head.dense.weight");
    expect("cls.predictions.transform.LayerNorm.gamma", PEP_HF_NAME_KIND_PARAM, "lm_head.layer_norm.weight");
    expect("cls.predictions.bias", PEP_HF_NAME_KIND_PARAM, "lm_head.bias");
    expect("cls.predictions.decoder.weight", PEP_HF_NAME_KIND_TIED, "embeddings.word_embeddings.weight");
    expect("cls.seq_relationship.weight", PEP_HF_NAME_KIND_IGNORED, NULL);
    expect("bert.pooler.dense.bias", PEP_HF_NAME_KIND_IGNORED, NULL);
}

static void test_hf_names_unknown(void **state)
{
    expect("classifier.dense.weight", PEP_HF_NAME_KIND_UNKNOWN, NULL);      /* sequence classifier */
    expect("classifier.out_proj.bias", PEP_HF_NAME_KIND_UNKNOWN, NULL);
    expect("roberta.encoder.layer.0.attention.self.extra.weight", PEP_HF_NAME_KIND_UNKNOWN, NULL);
    expect("roberta.encoder.layer.01.output.dense.weight", PEP_HF_NAME_KIND_UNKNOWN, NULL);
    expect("roberta.encoder.layer.x.output.dense.weight", PEP_HF_NAME_KIND_UNKNOWN, NULL);
    expect("roberta.encoder.layer.0.output.dense.weight.extra", PEP_HF_NAME_KIND_UNKNOWN, NULL);
    expect("roberta.roberta.embeddings.word_embeddings.weight", PEP_HF_NAME_KIND_UNKNOWN, NULL);
    expect("", PEP_HF_NAME_KIND_UNKNOWN, NULL);
    const char *rest;
    assert_int_equal(pep_hf_layer_index("encoder.layer.17.output.dense.bias", &rest), 17);
    assert_string_equal(rest, "output.dense.bias");
    assert_int_equal(pep_hf_layer_index("embeddings.LayerNorm.bias", NULL), -1);
    char small[8];
    assert_int_equal(pep_hf_map_name("roberta.embeddings.word_embeddings.weight", small, sizeof small, NULL),
                     PEP_HF_NAME_KIND_UNKNOWN); /* does not fit: never truncated silently */
}

static void test_hf_names_export(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(pep_hf_export_name("encoder.layer.3.attention.self.query.weight", out, sizeof out), 0);
    assert_string_equal(out, "roberta.encoder.layer.3.attention.self.query.weight");
    assert_int_equal(pep_hf_export_name("embeddings.LayerNorm.bias", out, sizeof out), 0);
    assert_string_equal(out, "roberta.embeddings.LayerNorm.bias");
    assert_int_equal(pep_hf_export_name("classifier.weight", out, sizeof out), 0);
    assert_string_equal(out, "classifier.weight");
    assert_int_equal(pep_hf_export_name("lm_head.layer_norm.weight", out, sizeof out), 0);
    assert_string_equal(out, "lm_head.layer_norm.weight");
    /* PE rows are not part of the transformers models */
    assert_int_equal(pep_hf_export_name("encoder.layer.0.output.adapter.adapter_up.weight", out, sizeof out), -1);
    assert_int_equal(pep_hf_export_name("encoder.layer.0.attention.self.value.lora_B", out, sizeof out), -1);
    assert_int_equal(pep_hf_export_name("encoder.layer.0.attention.self.query.weight", out, 10), -1);

    assert_int_equal(pep_hf_peft_name("encoder.layer.1.attention.self.value.lora_B", out, sizeof out), 0);
    assert_string_equal(out, "base_model.model.roberta.encoder.layer.1.attention.self.value.lora_B.weight");
    assert_int_equal(pep_hf_peft_name("classifier.bias", out, sizeof out), 0);
    assert_string_equal(out, "base_model.model.classifier.bias");
    assert_int_equal(pep_hf_peft_name("encoder.layer.1.attention.self.key.weight", out, sizeof out), -1);

    assert_int_equal(pep_hf_adapterhub_name("encoder.layer.2.output.adapter.adapter_down.weight", "ner", out, sizeof out), 0);
    assert_string_equal(out, "roberta.encoder.layer.2.output.adapters.ner.adapter_down.0.weight");
    assert_int_equal(pep_hf_adapterhub_name("encoder.layer.0.attention.output.adapter.adapter_up.bias", "ner", out, sizeof out), 0);
    assert_string_equal(out, "roberta.encoder.layer.0.attention.output.adapters.ner.adapter_up.bias");
    assert_int_equal(pep_hf_adapterhub_name("encoder.layer.0.output.dense.weight", "ner", out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_names_xlmr),
        cmocka_unit_test(test_hf_names_bert),
        cmocka_unit_test(test_hf_names_unknown),
        cmocka_unit_test(test_hf_names_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
