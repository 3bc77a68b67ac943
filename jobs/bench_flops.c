/* The FLOP model of one encoder training step, for `peprime bench` (GFLOP/s from tokens/s):
 * forward and backward matmuls and attention of a batch's real tokens, with the backward cut
 * short where pep_model_backward stops for a frozen base. */
#include "jobs.h"

double pep_bench_flops(const struct pep_model_spec *s, const struct pep_batch *b, unsigned groups)
{
    double N = pep_batch_tokens(b), C = s->C, FF = s->FF;
    double P = s->pe == PEP_PE_METHOD_PREFIX ? s->prefix_len : 0;
    double qk = 0.0, qp = 0.0; /* sum over sequences of L (L + P) and of L P */
    for (int i = 0; i < b->nseq; i++) {
        double L = pep_batch_len(b, i);
        qk += L * (L + P), qp += L * P;
    }
    double mm = 2.0 * N * (3 * C * C + C * C + 2 * C * FF); /* projections per layer */
    double att = 2.0 * 2.0 * qk * C;                        /* scores + context per layer */
    double head = s->head == PEP_HEAD_KIND_TAGGER ? 2.0 * N * C * s->ntags : 0.0;
    double fwd = s->L * (mm + att) + head;
    int plm = (groups & PEP_GROUP_BIT(PEP_GROUP_PLM)) != 0;
    /* backward: input gradients for every matmul, plus weight gradients when the base trains.
     * With the base frozen, pep_model_backward stops in layer 0 below the lowest trainable
     * module: Pfeiffer adapters, nothing of layer 0; Houlsby, after its feed-forward block;
     * prefixes, after the score gradients and the prefix key/value products; LoRA, before
     * the q|k|v input gradient. */
    double layer0 = mm + 2 * att;
    if (!plm) {
        double ffn = 2.0 * N * 2 * C * FF, outp = 2.0 * N * C * C;
        if (s->pe == PEP_PE_METHOD_ADAPTER)
            layer0 = s->placement == PEP_ADAPTER_PLACEMENT_PFEIFFER ? 0.0 : ffn;
        else if (s->pe == PEP_PE_METHOD_PREFIX)
            layer0 = ffn + outp + 2.0 * qk * C + 2.0 * 2.0 * qp * C;
        else
            layer0 = mm + 2 * att - 2.0 * N * 3 * C * C;
    }
    double bwd = (s->L - 1) * (mm + 2 * att) + layer0 + head + (plm ? s->L * mm : 0.0) + head;
    return fwd + bwd;
}
