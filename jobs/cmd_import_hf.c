/* `peprime import-hf`: converts a Hugging Face XLM-R / BERT safetensors checkpoint into a
 * peprime base checkpoint (base.h5, written by io/checkpoint_write.c on one process) and the
 * [model] section the stages need (base.ini next to it). */
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "hf_import.h"
#include "mpi_self.h"
#include "spm_file.h"

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
            "  --spm F              the model's SentencePiece model (its piece count must match the\n"
            "                       vocabulary: V = pieces + 2); model.tokenizer points at it\n"
            "  -o, --out F          output checkpoint (written to F.tmp, then renamed); the [model]\n"
            "                       section for job files goes to F without .h5 + .ini (base.ini)\n"
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
    char ini_path[PATH_MAX + 8], spm_abs[PATH_MAX];
    char *ini = NULL;
    struct pep_mpi_self self = {MPI_COMM_NULL, 0};
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
    if (rc == PEP_OK && !realpath(spm, spm_abs))
        rc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "cannot resolve the path of %s: %s", spm,
                           strerror(errno));
    if (rc == PEP_OK) {
        /* base.h5 -> base.ini (any other name: name + .ini) */
        size_t n = strlen(out);
        if (n > 3 && !strcmp(out + n - 3, ".h5")) n -= 3;
        if (n + 5 > sizeof ini_path)
            rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__, "output path too long: %s", out);
        else snprintf(ini_path, sizeof ini_path, "%.*s.ini", (int)n, out);
    }
    if (rc == PEP_OK) rc = pep_hf_model_ini(&m, spm_abs, &ini);
    /* the checkpoint writer is MPI-IO: one process (singleton init without mpirun) */
    if (rc == PEP_OK) rc = pep_mpi_self_init(&self);
    if (rc == PEP_OK) rc = pep_hf_write_checkpoint(&m, out, ini, self.comm);
    if (rc == PEP_OK) {
        FILE *f = fopen(ini_path, "w");
        int ok = f && fputs(ini, f) >= 0;
        if (f && fclose(f) != 0) ok = 0;
        if (!ok)
            rc = pep_error_set(PEP_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s: %s", ini_path,
                               strerror(errno));
    }
    if (rc == PEP_OK) {
        pep_info("wrote %s: %d tensors, %.1f MiB of float32", out, m.table.count, (double)m.table.numel * 4 / 1048576.0);
        pep_info("wrote %s; put `include = %s` at the top of the job file and run the stage with --init %s", ini_path,
                 ini_path, out);
        printf("%s", ini);
    }
    pep_free(ini);
    pep_hf_model_fini(&m);
    pep_mpi_self_fini(&self);
    if (rc != PEP_OK) {
        pep_print_error("import-hf");
        return 1;
    }
    return 0;
}
