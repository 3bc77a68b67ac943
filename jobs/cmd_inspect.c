/* `peprime inspect FILE`: prints a checkpoint's stage, step, provenance, config, parameter
 * groups (tensor count, elements, L2 norm), optimizer state, the best-so-far weights' dev F1
 * (finetune), per-task losses and the last log entries. Reads with the serial HDF5 reader:
 * needs no MPI_Init. */
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "core/error.h"

#define INSPECT_LOG_TAIL 5

#include "jobs.h"

static int inspect(const char *path, int verify)
{
    struct pep_ckpt_reader *r = NULL;
    int rc = PEP_OK;
    double *series[16] = {NULL};
    char names[16][PEP_CKPT_NAME_MAX];
    size_t lens[16] = {0};
    PEP_CALL(pep_ckpt_open(path, &r));
    const struct pep_ckpt_info *in = pep_ckpt_info(r);
    printf("checkpoint     %s\n", path);
    printf("format         %d\n", in->format_version);
    printf("stage          %s\n", in->stage);
    printf("step           %lld\n", (long long)in->step);
    printf("created        %s\n", in->created);
    printf("revision       %s\n", in->git_revision);
    printf("world size     %d\n", in->world_size);
    if (in->base_path[0]) printf("encoder        not in this file: %s (SHA-256 %s)\n", in->base_path, in->base_sha256);
    if (in->has_spec)
        printf("model          L=%d C=%d NH=%d FF=%d V=%d positions=%d tags=%d head=%s pe=%s\n", in->spec.L,
               in->spec.C, in->spec.NH, in->spec.FF, in->spec.V, in->spec.max_positions, in->spec.ntags,
               pep_head_kind_name(in->spec.head), pep_pe_method_name(in->spec.pe));
    if (in->rng_words) {
        printf("rng state     ");
        for (size_t i = 0; i < in->rng_words && i < 4; i++) printf(" %016llx", (unsigned long long)in->rng_state[i]);
        printf("%s\n", in->rng_words > 4 ? " ..." : "");
    }

    printf("\nparameters\n  %-22s %8s %14s %14s\n", "group", "tensors", "elements", "L2 norm");
    static const char *const groups[] = {"/model", "/pe", "/head", "/optimizer/m", "/optimizer/v", "/best"};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        struct pep_ckpt_stats st;
        PEP_CALL_GOTO(rc, pep_ckpt_group_stats(r, groups[g], &st));
        if (st.tensors) printf("  %-22s %8d %14zu %14.6g\n", groups[g], st.tensors, st.numel, st.l2);
    }
    double best_f1 = -1.0;
    int64_t best_step = 0;
    int has_best = 0;
    PEP_CALL_GOTO(rc, pep_ckpt_read_best(r, NULL, 0, NULL, &best_f1, &best_step, &has_best));
    if (has_best && best_f1 >= 0)
        printf("\nbest so far    dev F1 %.2f after step %lld (/best)\n", 100 * best_f1, (long long)best_step);
    else if (has_best)
        printf("\nbest so far    no dev evaluation yet (/best holds the start weights)\n");

    int n = 0;
    PEP_CALL_GOTO(rc, pep_ckpt_task_count(r, &n));
    if (n) {
        printf("\ntasks (%d)\n  %-8s %10s %10s %14s %14s %14s\n", n, "lang", "episode", "step", "support_loss",
               "query_loss", "state L2");
        for (int i = 0; i < n; i++) {
            struct pep_ckpt_task_info ti;
            struct pep_ckpt_stats st;
            char g[64];
            PEP_CALL_GOTO(rc, pep_ckpt_task_info(r, i, &ti));
            snprintf(g, sizeof g, "/tasks/%s", ti.lang);
            PEP_CALL_GOTO(rc, pep_ckpt_group_stats(r, g, &st));
            printf("  %-8s %10lld %10lld %14.6g %14.6g %14.6g\n", ti.lang, (long long)ti.episode, (long long)ti.step,
                   ti.support_loss, ti.query_loss, st.l2);
        }
    }

    int ns = 0;
    PEP_CALL_GOTO(rc, pep_ckpt_log_count(r, &ns));
    if (ns > 16) ns = 16;
    size_t longest = 0;
    for (int i = 0; i < ns; i++) {
        PEP_CALL_GOTO(rc, pep_ckpt_log_name(r, i, names[i], sizeof names[i]));
        PEP_CALL_GOTO(rc, pep_ckpt_read_log(r, names[i], &series[i], &lens[i]));
        if (lens[i] > longest) longest = lens[i];
    }
    for (int i = 1; i < ns; i++) /* the step column first */
        if (!strcmp(names[i], "step")) {
            char tn[PEP_CKPT_NAME_MAX];
            double *tv = series[0];
            size_t tl = lens[0];
            memcpy(tn, names[0], sizeof tn);
            memcpy(names[0], names[i], sizeof tn);
            memcpy(names[i], tn, sizeof tn);
            series[0] = series[i], lens[0] = lens[i];
            series[i] = tv, lens[i] = tl;
        }
    if (ns) {
        size_t from = longest > INSPECT_LOG_TAIL ? longest - INSPECT_LOG_TAIL : 0;
        printf("\nlog (%zu entries, last %zu)\n ", longest, longest - from);
        for (int i = 0; i < ns; i++) printf(" %14s", names[i]);
        printf("\n");
        for (size_t k = from; k < longest; k++) {
            printf(" ");
            for (int i = 0; i < ns; i++)
                if (k < lens[i]) printf(" %14.6g", series[i][k]);
                else printf(" %14s", "-");
            printf("\n");
        }
    }
    if (verify) {
        PEP_CALL_GOTO(rc, pep_ckpt_verify(r));
        printf("\nverify         every tensor's checksum matches\n");
    }
    printf("\nconfig\n%s%s", in->config, in->config[0] && in->config[strlen(in->config) - 1] != '\n' ? "\n" : "");
cleanup:
    for (int i = 0; i < 16; i++) pep_free(series[i]);
    pep_ckpt_close(&r);
    return rc;
}

int pep_cmd_inspect(int argc, char **argv)
{
    int verify = 0;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--verify")) verify = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: peprime inspect [--verify] FILE.h5\n"
                   "  prints a checkpoint's stage, step, provenance, parameter groups, tasks, log and config;\n"
                   "  --verify also reads every tensor and checks its checksum\n");
            return PEP_OK;
        } else if (!path) path = argv[i];
        else PEP_FAIL(PEP_ERR_USAGE, "unexpected argument '%s' (usage: peprime inspect [--verify] FILE)", argv[i]);
    }
    PEP_CHECK(path, PEP_ERR_USAGE, "no checkpoint given (usage: peprime inspect [--verify] FILE)");
    return inspect(path, verify);
}
