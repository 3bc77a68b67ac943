/* Task stream for priming (tasks.h). */
#include "maml/tasks.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/rng.h"

void pep_task_weights(int nlang, const int *sizes, int temperature_sampling, float temperature, float *weights)
{
    double total = 0.0;
    for (int i = 0; i < nlang; i++) {
        weights[i] = temperature_sampling ? (float)pow((double)sizes[i], 1.0 / temperature) : 1.0f;
        total += weights[i];
    }
    for (int i = 0; i < nlang; i++) weights[i] = (float)(weights[i] / total);
}

int pep_task_check_sizes(int nlang, const int *sizes, const char *const *names, int support, int query)
{
    PEP_CHECK(nlang >= 1, PEP_ERR_USAGE, "priming needs at least one language (data.languages is empty)");
    for (int i = 0; i < nlang; i++)
        PEP_CHECK(sizes[i] >= support + query, PEP_ERR_USAGE,
                  "priming language '%s' has %d training sentences, fewer than maml.support_size + maml.query_size = "
                  "%d; lower the sizes or drop the language from data.languages",
                  names ? names[i] : "?", sizes[i], support + query);
    return PEP_OK;
}

void pep_task_draw(uint64_t seed, long step, int task, int nlang, const int *sizes, const float *weights, int support,
                   int query, int *lang, int *support_idx, int *query_idx)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, (uint64_t)step, (uint64_t)task);
    float u = pep_rng_uniform(&r), acc = 0.0f;
    int l = nlang - 1;
    for (int i = 0; i < nlang; i++) {
        acc += weights[i];
        if (u < acc) {
            l = i;
            break;
        }
    }
    *lang = l;
    /* support + query distinct indices: rejection against the ones already drawn (the sets
     * are small next to a language's data) */
    int n = sizes[l], need = support + query;
    for (int j = 0; j < need; j++) {
        int x, dup;
        do {
            x = (int)pep_rng_below(&r, (uint64_t)n);
            dup = 0;
            for (int q = 0; q < j && !dup; q++) dup = (q < support ? support_idx[q] : query_idx[q - support]) == x;
        } while (dup);
        if (j < support) support_idx[j] = x;
        else query_idx[j - support] = x;
    }
}
