/* libFuzzer harness for the HDF5 checkpoint reader (io/checkpoint_read.c, checkpoint_verify.c):
 * the input is written to a file, opened twice (pep_ckpt_open, HDF5 reading the file; pep_ckpt_load, HDF5 reading the
 * reader's in-memory copy of it, as the stages open their inputs) and each time read as
 * `peprime inspect --verify` reads it (open, root attributes, group stats,
 * tasks, log series, then every tensor's checksum), then as a stage reads its --init / resume
 * checkpoint (shape check, parameters, optimizer moments, a task state) with the seed's
 * parameter table (ckpt_table.h). Every step must succeed or fail with PEP_ERR_FORMAT (or
 * PEP_ERR_IO) and a message naming the file, and once the reader is closed no HDF5 object may be
 * left open (a leaked handle keeps the file open). HDF5 itself is not instrumented: the harness
 * finds faults in peprime's use of it, and crashes inside libhdf5 show as plain SEGVs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "checkpoint.h"
#include "ckpt_table.h"
#include "core/error.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *g_path;
static const unsigned k_errors = FUZZ_ERR(PEP_ERR_FORMAT) | FUZZ_ERR(PEP_ERR_IO);

/* 1 if the step succeeded, 0 (error checked and cleared) if it was rejected. */
static int ok(int rc)
{
    if (rc == PEP_OK) return 1;
    fuzz_rejected(rc, k_errors, g_path);
    return 0;
}

static void inspect(struct pep_ckpt_reader *r)
{
    const struct pep_ckpt_info *in = pep_ckpt_info(r);
    if (!in->config || in->rng_words > PEP_CKPT_RNG_MAX) fuzz_fail("bad info after open");
    static const char *const groups[] = {"/model", "/pe", "/head", "/optimizer/m", "/optimizer/v"};
    struct pep_ckpt_stats st;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        if (!ok(pep_ckpt_group_stats(r, groups[g], &st))) return;
    int n = 0;
    if (!ok(pep_ckpt_task_count(r, &n))) return;
    for (int i = 0; i < n; i++) {
        struct pep_ckpt_task_info ti;
        char g[64];
        if (!ok(pep_ckpt_task_info(r, i, &ti))) return;
        snprintf(g, sizeof g, "/tasks/%s", ti.lang);
        if (!ok(pep_ckpt_group_stats(r, g, &st))) return;
    }
    int ns = 0;
    if (!ok(pep_ckpt_log_count(r, &ns))) return;
    for (int i = 0; i < ns && i < 16; i++) {
        char name[PEP_CKPT_NAME_MAX];
        double *values = NULL;
        size_t len = 0;
        if (!ok(pep_ckpt_log_name(r, i, name, sizeof name))) return;
        int rc = pep_ckpt_read_log(r, name, &values, &len);
        pep_free(values);
        if (!ok(rc)) return;
    }
    ok(pep_ckpt_verify(r));
}

static void read_state(struct pep_ckpt_reader *r)
{
    struct pep_param_table t;
    struct pep_model_spec spec;
    if (fuzz_ckpt_table(&t) != PEP_OK) fuzz_fail("table: %s", pep_error_message());
    fuzz_ckpt_spec(&spec);
    float params[64], m[64], v[64];
    int64_t step = 0;
    const unsigned task_groups = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    if (pep_ckpt_info(r)->has_spec) ok(pep_ckpt_check_spec(r, &spec));
    ok(pep_ckpt_read_params(r, &t, params, PEP_GROUPS_ALL));
    ok(pep_ckpt_read_moments(r, &t, m, v, PEP_GROUP_BIT(PEP_GROUP_PLM), &step));
    int n = 0;
    struct pep_ckpt_task_info ti;
    if (ok(pep_ckpt_task_count(r, &n)) && n > 0 && ok(pep_ckpt_task_info(r, 0, &ti)))
        ok(pep_ckpt_read_task(r, ti.lang, &t, task_groups, params, NULL));
    pep_param_table_fini(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_path = fuzz_write("fuzz.h5", data, size);
    int (*const opens[2])(const char *, struct pep_ckpt_reader **) = {pep_ckpt_open, pep_ckpt_load};
    for (int i = 0; i < 2; i++) {
        struct pep_ckpt_reader *r = NULL;
        pep_error_clear();
        int rc = opens[i](g_path, &r);
        if (rc != PEP_OK) {
            if (r) fuzz_fail("reader returned with an error");
            fuzz_rejected(rc, k_errors, g_path);
        } else {
            inspect(r);
            read_state(r);
            pep_ckpt_close(&r);
        }
        ssize_t open_objects = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
        if (open_objects != 0) fuzz_fail("%zd HDF5 objects left open after the reader closed", open_objects);
    }
    return 0;
}
