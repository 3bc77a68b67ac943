/* MAML tasks: task t of meta-step s is a (language, episode) pair drawn from a generator
 * seeded by (seed, s, t) alone, so the task stream is the same however the meta-batch is
 * divided between ranks. An episode is a support set and a disjoint query set of sentence
 * indices from that language's training split. */
#ifndef PEP_TASKS_H
#define PEP_TASKS_H

#include <stdint.h>

/* Sampling weights per language: uniform, or temperature-scaled data sizes p ~ n^(1/T)
 * (as in multilingual pretraining). Writes nlang weights summing to 1. */
void pep_task_weights(int nlang, const int *sizes, int temperature_sampling, float temperature, float *weights);
/* Checks that every language can supply support + query distinct sentences; the error names
 * the language and its size. `names` may be NULL. */
int pep_task_check_sizes(int nlang, const int *sizes, const char *const *names, int support, int query);
/* Draws task `task` of meta-step `step`: its language and the sentence indices. */
void pep_task_draw(uint64_t seed, long step, int task, int nlang, const int *sizes, const float *weights, int support,
                   int query, int *lang, int *support_idx, int *query_idx);

#endif
