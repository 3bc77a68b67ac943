/* Test tool for check_hf_export.py: peprime's logits for a checkpoint, as the stages compute
 * them (model shape from the checkpoint, every group read, dropout off).
 *   export_logits MODEL.h5 IDS.txt OUT.txt
 * IDS.txt: "B T", then B rows of T fairseq ids (1 = padding after the sentence), run as
 * peprime's unpadded batch. For an MLM head every real token is a target. OUT.txt: "n" then n
 * logits (%.9g): tagger (N, K) for the N real tokens, MLM (M, V) for the targets, both in
 * (b, t) order. */
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "core/error.h"
#include "model/model.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.h5 IDS.txt OUT.txt\n", argv[0]);
        return 2;
    }
    int B, T;
    FILE *f = fopen(argv[2], "r");
    if (!f || fscanf(f, "%d %d", &B, &T) != 2 || B < 1 || T < 2) {
        fprintf(stderr, "%s: bad ids file\n", argv[2]);
        return 1;
    }
    int *ids = calloc((size_t)B * T, sizeof *ids), *labels = calloc((size_t)B * T, sizeof *labels);
    for (int i = 0; i < B * T; i++)
        if (fscanf(f, "%d", &ids[i]) != 1) {
            fprintf(stderr, "%s: short ids file\n", argv[2]);
            return 1;
        }
    fclose(f);
    struct pep_ckpt_reader *r = NULL;
    struct pep_model *m = NULL;
    if (pep_ckpt_open(argv[1], &r) != PEP_OK) goto fail;
    struct pep_model_spec spec = pep_ckpt_info(r)->spec;
    spec.max_B = B, spec.max_T = T;
    /* tagger: label 0 on every real token; MLM: every real token is a target */
    for (int i = 0; i < B * T; i++)
        labels[i] = ids[i] == PEP_PAD_ID ? PEP_IGNORE_INDEX : spec.head == PEP_HEAD_KIND_MLM ? ids[i] : 0;
    if (pep_model_create(&spec, &m) != PEP_OK || pep_ckpt_read_params_based(r, NULL, &m->table, m->params, PEP_GROUPS_ALL) != PEP_OK)
        goto fail;
    struct pep_batch b = {0};
    if (pep_batch_alloc(&b, B, B * T) != PEP_OK) goto fail;
    for (int i = 0; i < B; i++) {
        int len = 0;
        while (len < T && ids[(size_t)i * T + len] != PEP_PAD_ID) len++;
        if (pep_batch_append(&b, ids + (size_t)i * T, labels + (size_t)i * T, len) != PEP_OK) goto fail;
    }
    float loss;
    if (pep_model_forward(m, &b, 0, 0, &loss) != PEP_OK) goto fail;
    size_t n = spec.head == PEP_HEAD_KIND_MLM ? (size_t)pep_model_ntargets(m) * (size_t)spec.V
                                              : (size_t)pep_batch_tokens(&b) * (size_t)spec.ntags;
    const float *z = pep_model_logits(m);
    FILE *o = fopen(argv[3], "w");
    if (!o) goto fail;
    fprintf(o, "%zu\n", n);
    for (size_t i = 0; i < n; i++) fprintf(o, "%.9g\n", (double)z[i]);
    fclose(o);
    pep_batch_free(&b);
    pep_model_destroy(&m);
    pep_ckpt_close(&r);
    free(ids);
    free(labels);
    return 0;
fail:
    fprintf(stderr, "export_logits: %s\n", pep_error_message());
    return 1;
}
