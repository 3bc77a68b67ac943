/* Stage drivers and subcommands of the `peprime` CLI (jobs/). */
#ifndef PEP_JOBS_H
#define PEP_JOBS_H

#include <stdint.h>

#include "model/model.h"

/* commands: argv holds the arguments after the command name; they return a pep_status,
 * which main() reports and turns into the exit code */
int pep_cmd_bench(int argc, char **argv);
int pep_cmd_config(int argc, char **argv);
int pep_cmd_tokenizer(int argc, char **argv);
int pep_cmd_inspect(int argc, char **argv);
int pep_cmd_strip(int argc, char **argv);
int pep_cmd_export_hf(int argc, char **argv);
/* raw commands (main.c's table: raw = 1): argv[0] is the command name; they report their own
 * errors and return the process exit code */
int pep_cmd_import_hf(int argc, char **argv);
int pep_cmd_pretrain(int argc, char **argv);
int pep_cmd_prime(int argc, char **argv);
int pep_cmd_finetune(int argc, char **argv);
int pep_cmd_evaluate(int argc, char **argv);
int pep_cmd_fidelity(int argc, char **argv);
int pep_cmd_data(int argc, char **argv);

/* helpers shared by commands */
/* Prints the current error as "peprime COMMAND: error: MESSAGE" on stderr (with the call trace
 * under --verbose): the one error-exit report of the commands (main.c). */
void pep_print_error(const char *command);
double pep_peak_rss_mib(void);
int pep_bench_shape(const char *name, struct pep_model_spec *s, int *B, int *T);
/* bench_flops.c: fwd+bwd FLOPs of one training step on batch b, its real tokens and
 * per-sequence attention, with gradients for `grad_groups` (for tokens/s -> GFLOP/s). */
double pep_bench_flops(const struct pep_model_spec *spec, const struct pep_batch *b, unsigned grad_groups);

#endif
