/* peprime: command-line entry point; dispatches to the stage drivers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blas_info.h"
#include "core/dispatch.h"
#include "core/error.h"
#include "jobs.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
    int raw;  /* 1: gets argv[0] = the command name, reports its own errors and returns the exit code */
    int blas; /* 1: computes with BLAS (blas_kernels_for_this_cpu before it starts) */
};

/* OpenBLAS chooses its kernels when it loads, from OPENBLAS_CORETYPE, and Debian's 0.3.21 does
 * not know recent CPUs (generic kernels, half the speed). When the variable is unset, a
 * computing command sets it for the CPU it runs on and starts itself again, so that each rank
 * of a job spanning CPU kinds gets its own kernels (the batch node's choice would not suit
 * them all). PEP_BLAS_CORETYPE_AUTO=1 tells the placement lines; PEP_BLAS_REEXEC=0 turns this
 * off; a value the user set is kept. When the restart is impossible the process goes on, and
 * the stage's BLAS check warns about slow kernels. */
static void blas_kernels_for_this_cpu(char **argv)
{
    const char *env = getenv("OPENBLAS_CORETYPE"), *off = getenv("PEP_BLAS_REEXEC");
    if ((env && env[0]) || (off && !strcmp(off, "0"))) return;
    const char *core = pep_blas_recommended_coretype();
    if (!core || setenv("OPENBLAS_CORETYPE", core, 1) || setenv("PEP_BLAS_CORETYPE_AUTO", "1", 1)) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* not restarted: OpenBLAS already chose, say so truthfully */
    unsetenv("PEP_BLAS_CORETYPE_AUTO");
}

static const struct command commands[] = {
    {"tokenizer", pep_cmd_tokenizer, "tokenizer train|encode|text|align|bench (SentencePiece)", 0, 1},
    {"pretrain", pep_cmd_pretrain, "masked-LM pretraining of the base encoder -> <out>/base.h5", 1, 1},
    {"prime", pep_cmd_prime, "MAML priming for PE fine-tuning (mpirun / srun) -> <out>/primed.h5", 1, 1},
    {"finetune", pep_cmd_finetune, "PE fine-tuning on the source language(s) -> <out>/adapted.h5", 1, 1},
    {"evaluate", pep_cmd_evaluate, "zero-shot entity F1 per target language -> <out>/results.{json,csv}", 1, 1},
    {"fidelity", pep_cmd_fidelity, "how well the inner loop simulates PE fine-tuning (--tasks T --steps N --from-step S)", 1, 1},
    {"import-hf", pep_cmd_import_hf, "import Hugging Face XLM-R weights (safetensors) -> base.h5", 1, 0},
    {"export-hf", pep_cmd_export_hf, "export a checkpoint as Hugging Face files (+ peft / AdapterHub PE modules)", 0, 0},
    {"strip", pep_cmd_strip, "copy a checkpoint without optimizer and task states (weights, config, log)", 0, 0},
    {"inspect", pep_cmd_inspect, "print a checkpoint: stage, step, config, groups with norms, tasks, log (--verify)", 0, 0},
    {"data", pep_cmd_data, "data convert: WikiAnn as distributed (Rahimi et al., HF JSON lines) -> <root>/ner/wikiann", 1, 0},
    {"config", pep_cmd_config, "print the resolved config (--config F --set k=v), or --doc for the key reference", 0, 0},
    {"bench", pep_cmd_bench, "benchmarks: bench encoder --shape tiny|base --mode full|pe", 0, 1},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: peprime <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nstage options: --config JOB.ini --set section.key=value --out DIR --init FILE.h5 --model FILE.h5\n"
               "               --resume auto|none|PATH --verbose   (see docs/config.md)\n");
}

void pep_print_error(const char *command)
{
    fprintf(stderr, "peprime %s: error: %s\n", command, pep_error_message());
    if (pep_log_level() >= PEP_LOG_DEBUG) fprintf(stderr, "%s", pep_error_where());
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("peprime %s (%s)\n", PEP_VERSION, PEP_GIT_REVISION);
        printf("cpu code: %s\n", pep_dispatch_path());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            if (commands[i].blas) blas_kernels_for_this_cpu(argv);
            if (commands[i].raw) return commands[i].run(argc - 1, argv + 1);
            int rc = commands[i].run(argc - 2, argv + 2);
            if (rc != PEP_OK) {
                pep_print_error(argv[1]);
                return rc == PEP_ERR_INTERRUPTED ? 75 : rc == PEP_ERR_USAGE ? 2 : 1;
            }
            return 0;
        }
    fprintf(stderr, "peprime: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
