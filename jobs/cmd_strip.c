/* `peprime strip`: a checkpoint without its optimizer state, per-task states and finetune's
 * best-so-far weights (/best, resume state like the optimizer's). The copy keeps what a later
 * stage reads from --init / --model — the weights (/model, /pe, /head), the root attributes
 * (stage, step, config, RNG state, model shape) — and the /log series; it is about a third of
 * a training checkpoint's size (AdamW keeps two moments per weight). For keeping or sharing a
 * base: the bases of docs/results.md's experiment are stripped pretraining checkpoints.
 * Written by io/checkpoint_write.c on one process (mpi/mpi_self.h). */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "core/error.h"
#include "jobs.h"
#include "mpi_self.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: peprime strip IN.h5 -o OUT.h5\n"
            "  IN.h5        a peprime checkpoint (pretrain, prime, finetune, import-hf)\n"
            "  -o, --out F  the copy: weights, root attributes and log, without /optimizer, /tasks and /best\n"
            "               (written to F.tmp, then renamed; F must not be IN.h5)\n");
}

static int copy_log(struct pep_ckpt_reader *r, struct pep_ckpt_writer *w)
{
    int n = 0, rc = PEP_OK;
    PEP_CALL(pep_ckpt_log_count(r, &n));
    for (int i = 0; i < n && rc == PEP_OK; i++) {
        char name[PEP_CKPT_NAME_MAX];
        double *v = NULL;
        size_t len = 0;
        rc = pep_ckpt_log_name(r, i, name, sizeof name);
        if (rc == PEP_OK) rc = pep_ckpt_read_log(r, name, &v, &len);
        if (rc == PEP_OK) rc = pep_ckpt_write_log(w, name, v, len);
        pep_free(v);
    }
    return rc;
}

static int strip(const char *in, const char *out, MPI_Comm comm)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    PEP_CHECK(!(realpath(in, ra) && realpath(out, rb) && !strcmp(ra, rb)), PEP_ERR_USAGE,
              "strip: -o %s is the input itself; write the copy under another name", out);
    struct pep_ckpt_reader *r = NULL;
    struct pep_ckpt_writer *w = NULL;
    struct pep_model *m = NULL;
    int rc = PEP_OK;
    PEP_CALL(pep_ckpt_open(in, &r));
    const struct pep_ckpt_info *info = pep_ckpt_info(r);
    unsigned groups = 0;
    PEP_CALL_GOTO(rc, pep_ckpt_read_model(r, NULL, &m, &groups));
    struct pep_ckpt_header h = {.stage = info->stage, .step = info->step, .config = info->config,
                                .rng_state = info->rng_state, .rng_words = info->rng_words, .spec = &info->spec};
    PEP_CALL_GOTO(rc, pep_ckpt_create(out, comm, NULL, &w));
    PEP_CALL_GOTO(rc, pep_ckpt_write_header(w, &h));
    PEP_CALL_GOTO(rc, pep_ckpt_write_params(w, &m->table, m->params, groups));
    PEP_CALL_GOTO(rc, copy_log(r, w));
    PEP_CALL_GOTO(rc, pep_ckpt_commit(&w));
    pep_info("strip: wrote %s (stage %s, step %lld, %zu weights; no optimizer state, no task states, no best-so-far "
             "weights)",
             out, info->stage, (long long)info->step, pep_param_table_group_numel(&m->table, groups));
cleanup:
    pep_ckpt_abort(&w);
    pep_model_destroy(&m);
    pep_ckpt_close(&r);
    return rc;
}

int pep_cmd_strip(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return PEP_OK;
        }
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) {
            PEP_CHECK(i + 1 < argc, PEP_ERR_USAGE, "strip: %s needs a file name (see --help)", argv[i]);
            out = argv[++i];
        } else if (argv[i][0] == '-' || in) {
            PEP_FAIL(PEP_ERR_USAGE, "strip: unexpected argument '%s' (usage: peprime strip IN.h5 -o OUT.h5)", argv[i]);
        } else {
            in = argv[i];
        }
    }
    PEP_CHECK(in && out, PEP_ERR_USAGE, "strip needs IN.h5 and -o OUT.h5 (see --help)");
    /* the checkpoint writer is MPI-IO: one process (singleton init without mpirun) */
    struct pep_mpi_self self;
    int rc = pep_mpi_self_init(&self);
    if (rc == PEP_OK) rc = strip(in, out, self.comm);
    pep_mpi_self_fini(&self);
    return rc;
}
