/* `peprime import-hf`: converts a Hugging Face XLM-R / BERT safetensors checkpoint into a
 * peprime base checkpoint (base.h5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "hf_import.h"

#include "jobs.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: peprime import-hf --weights model.safetensors [--config config.json]\n"
            "                         --spm sentencepiece.bpe.model -o base.h5\n"
            "                         [--heads N] [--allow-unexpected] [--drop-heads] [--quiet]\n"
            "  --weights F          Hugging Face safetensors file (F32, F16 or BF16)\n"
            "  --config F           Hugging Face config.json (heads, eps, cross-checks); without it\n"
            "                       heads = hidden / 64 unless --heads is given\n"
            "  --spm F              the model's SentencePiece model (stored in the checkpoint; its\n"
            "                       piece count must match the vocabulary: V = pieces + 2)\n"
            "  -o, --out F          output checkpoint (written to F.tmp, then renamed)\n"
            "  --allow-unexpected   skip tensors that are not part of the encoder / heads\n"
            "  --drop-heads         import embeddings + encoder only\n");
}

int pep_cmd_import_hf(int argc, char **argv)
{
    struct pep_hf_import_options opt;
    pep_hf_import_default_options(&opt);
    const char *weights = NULL, *spm = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--weights") && has_val) {
            weights = argv[++i];
        } else if (!strcmp(a, "--config") && has_val) {
            opt.config_path = argv[++i];
        } else if (!strcmp(a, "--spm") && has_val) {
            spm = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && has_val) {
            out = argv[++i];
        } else if (!strcmp(a, "--heads") && has_val) {
            char *end;
            long h = strtol(argv[++i], &end, 10);
            if (*end || h < 1 || h > 256) {
                fprintf(stderr, "peprime import-hf: --heads wants an integer in [1, 256], got '%s'\n", argv[i]);
                return 2;
            }
            opt.heads = (int)h;
        } else if (!strcmp(a, "--allow-unexpected")) {
            opt.allow_unexpected = 1;
        } else if (!strcmp(a, "--drop-heads")) {
            opt.drop_heads = 1;
        } else if (!strcmp(a, "--quiet")) {
            pep_set_log_level(PEP_LOG_WARN);
        } else {
            fprintf(stderr, "peprime import-hf: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!weights || !spm || !out) {
        fprintf(stderr, "peprime import-hf: --weights, --spm and -o are required\n");
        usage(stderr);
        return 2;
    }
    struct pep_hf_model m;
    int rc = pep_hf_import(weights, &opt, &m);
    if (rc == PEP_OK) {
        int pieces = 0;
        rc = pep_spm_count_pieces(spm, &pieces);
        if (rc == PEP_OK && pieces + 2 != m.shape.V)
            rc = pep_error_set(PEP_ERR_FORMAT, __FILE__, __LINE__, __func__,
                               "%s has %d pieces, so the fairseq/XLM-R vocabulary is %d ids, but %s has %d embedding "
                               "rows; use the sentencepiece.bpe.model that comes with these weights",
                               spm, pieces, pieces + 2, weights, m.shape.V);
    }
    if (rc == PEP_OK) rc = pep_hf_write_h5(&m, out, spm, weights);
    if (rc == PEP_OK)
        pep_info("wrote %s: %d tensors, %.1f MiB of float32", out, m.table.count, (double)m.table.numel * 4 / 1048576.0);
    pep_hf_model_fini(&m);
    if (rc != PEP_OK) {
        fprintf(stderr, "peprime import-hf: error: %s\n", pep_error_message());
        if (pep_log_level() >= PEP_LOG_DEBUG) fprintf(stderr, "%s", pep_error_where());
        return 1;
    }
    return 0;
}
