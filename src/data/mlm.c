/* Masked-LM masking (see mlm.h). */
#include "data/mlm.h"

#include "core/error.h"
#include "core/rng.h"

#define PEP_MLM_STREAM 0x6d6c6dULL /* "mlm": keeps this stream apart from others seeded (seed, step) */

int pep_mlm_mask(struct pep_batch *b, int V, float mask_prob, uint64_t seed, uint64_t step, long *nchosen)
{
    PEP_CHECK(V >= 6, PEP_ERR_USAGE, "masked LM needs a vocabulary of at least 6 ids, got %d", V);
    PEP_CHECK(mask_prob >= 0 && mask_prob <= 1, PEP_ERR_USAGE, "optim.mask_prob = %g outside [0, 1]",
              (double)mask_prob);
    struct pep_rng r;
    pep_rng_seed(&r, seed, step, PEP_MLM_STREAM);
    const int mask_id = V - 1;
    long chosen = 0;
    size_t n = (size_t)pep_batch_tokens(b);
    for (size_t i = 0; i < n; i++) {
        int id = b->input_ids[i];
        PEP_CHECK(id >= 0 && id < V, PEP_ERR_USAGE, "token id %d at token %zu outside [0, %d)", id, i, V);
        /* Two draws per token whatever happens, so token i's fate depends only on (seed, step, i). */
        float u = pep_rng_uniform(&r);
        uint64_t x = pep_rng_next(&r);
        b->labels[i] = PEP_IGNORE_INDEX;
        if (id <= PEP_UNK_ID || id == mask_id || u >= mask_prob) continue;
        chosen++;
        b->labels[i] = id;
        float v = (float)(x >> 40) * (1.0f / 16777216.0f);
        if (v < 0.8f) b->input_ids[i] = mask_id;
        else if (v < 0.9f) b->input_ids[i] = 4 + (int)((x & 0xffffffffULL) % (uint64_t)(V - 5));
    }
    if (nchosen) *nchosen = chosen;
    return PEP_OK;
}
