/* Writes the checkpoint harness's seed with peprime's own writer: a tiny checkpoint with every
 * part the reader knows (root attributes with a model shape, /model /pe /head, optimizer
 * moments, one task state, two log series), about 20 KB instead of the 170 KB of a real tiny
 * model. Usage (fuzz build, see docs/fuzzing.md): make_ckpt_seed OUT.h5 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "ckpt_table.h"
#include "core/error.h"

static int write_seed(const char *path)
{
    struct pep_param_table t;
    struct pep_model_spec spec;
    struct pep_ckpt_writer *w = NULL;
    PEP_CALL(fuzz_ckpt_table(&t));
    fuzz_ckpt_spec(&spec);
    float params[64], m[64], v[64];
    for (size_t i = 0; i < t.numel; i++) params[i] = 0.5f * (float)i - 1.0f, m[i] = 0.01f * (float)i, v[i] = 1e-4f;
    size_t tb, te;
    const unsigned task_groups = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    PEP_CALL(pep_param_table_range(&t, task_groups, &tb, &te));
    struct pep_ckpt_task task = {.lang = "sw", .owner = 0, .episode = 3, .step = 7, .support_loss = 1.5,
                                 .query_loss = 1.25, .state = params + tb};
    const uint64_t rng[2] = {0x1234, 0x5678};
    struct pep_ckpt_header h = {.stage = "prime", .step = 7, .config = "[maml]\norder = 1\n",
                                .rng_state = rng, .rng_words = 2, .spec = &spec};
    const double steps[3] = {5, 6, 7}, loss[3] = {2.5, 2.25, 2.0};
    int rc = PEP_OK;
    PEP_CALL_GOTO(rc, pep_ckpt_create(path, MPI_COMM_SELF, NULL, &w));
    PEP_CALL_GOTO(rc, pep_ckpt_write_header(w, &h));
    PEP_CALL_GOTO(rc, pep_ckpt_write_params(w, &t, params, PEP_GROUPS_ALL));
    PEP_CALL_GOTO(rc, pep_ckpt_write_moments(w, &t, m, v, PEP_GROUP_BIT(PEP_GROUP_PLM), 7));
    PEP_CALL_GOTO(rc, pep_ckpt_write_tasks(w, &t, task_groups, &task, 1));
    PEP_CALL_GOTO(rc, pep_ckpt_write_log(w, "step", steps, 3));
    PEP_CALL_GOTO(rc, pep_ckpt_write_log(w, "meta_loss", loss, 3));
    rc = pep_ckpt_commit(&w);
cleanup:
    pep_ckpt_abort(&w);
    pep_param_table_fini(&t);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_ckpt_seed OUT.h5\n");
        return 2;
    }
    MPI_Init(&argc, &argv);
    int rc = write_seed(argv[1]);
    if (rc != PEP_OK) fprintf(stderr, "make_ckpt_seed: %s\n", pep_error_message());
    MPI_Finalize();
    return rc == PEP_OK ? 0 : 1;
}
