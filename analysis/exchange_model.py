"""Cost model of one priming meta-step of XLM-R base on a cluster (docs/scaling.md).

  analysis/exchange_model.py [--t-task 0.5] [--k 1] [--order 1] [--rows 4=1520,16=5260,64=15400]
                             [--update-ns 0.70] [--torch-update-ns 26.9] [--update-threads 1]

P ranks (one per node) in groups of G (maml.group_size) run a meta-batch of M tasks: each group
runs ceil(M / (P/G)) tasks, one at a time, each task's support and query batches split over its
G ranks (compute per rank 1/G of a task, ideal split), with the inner set's gradient (PE + head,
0.9 M floats) summed inside the group k times per task (2k + 1 for second order). The
meta-gradient is then summed over all P ranks:

  today   one blocking dense allreduce of the whole outer set (277.5 M floats, 1.11 GB)
  new     the encoder (85 M floats) in 25 MiB buckets started while the last task's query
          backward runs (hidden up to that backward's remaining time), then the union of the
          touched word-embedding rows (U x 768 floats, after a V-bit bitmap), exposed

Every reduction is bandwidth-optimal (reduce-scatter + allgather, as maml.exchange_sum =
ordered does): 2 (P-1)/P x bytes / BW, plus per bucket two phases of one latency alpha and
P-1 messages of o = 0.3 us injection overhead each. Efficiency = (M t_task / P) / t_step.

Then the outer step (AdamW over the outer set, memory-bound elementwise work), measured per
float on one rank (--update-ns, tests/bench/zero1.sh; divided by --update-threads for a rank
whose threads share the step at the node's bandwidth):

  replicated  every rank steps the whole outer set: PLM x update-ns
  sharded     ZeRO-1 (maml.outer_shard): the encoder buckets are reduce-scattered instead of
              all-reduced ((P-1)/P x bytes, hidden as above), the touched rows still all-reduced,
              each rank steps PLM / P floats, then a blocking allgather of the whole outer set's
              weights ((P-1)/P x 4 PLM / BW): AdamW's weight decay and moments change every row of
              the word embeddings every step, so the weights cannot go sparse as the gradient does
  DDP         PyTorch DDP + replicated AdamW, modelled the same way: every gradient (the word
              embeddings densely too) all-reduced in 25 MiB buckets behind the last backward,
              then torch.optim.AdamW over the whole outer set (--torch-update-ns, measured by
              tests/bench/torch_adamw.py)
Prints Markdown tables. Assumptions and the measured inputs: docs/scaling.md.
"""
import argparse
import math

L, C, FF, V, POS = 12, 768, 3072, 250002, 514
LAYER = 4 * C * C + 4 * C + 2 * C * FF + FF + C + 4 * C  # q, k, v, o (+ biases), FFN, 2 LayerNorms
WTE = V * C
PLM = WTE + POS * C + C + 2 * C + L * LAYER
PE = L * (2 * C * (C // 16) + C // 16 + C) + 7 * C + 7  # Pfeiffer adapters (reduction 16) + 7-tag head
BUCKET = 25 * 2**20  # bytes

# (name, line rate in Gb/s, latency alpha in us); payload bandwidth taken as 90% of the line rate
NETS = [("10 GbE (TCP)", 10, 25.0), ("25 GbE (TCP)", 25, 15.0), ("100 GbE (RoCE)", 100, 3.0),
        ("EDR IB 100 Gb/s", 100, 1.5), ("HDR IB 200 Gb/s", 200, 1.5)]
O_MSG = 0.3e-6


def allreduce_s(nbytes, P, bw, alpha, buckets=1):
    if P == 1 or nbytes == 0:
        return 0.0
    return 2.0 * (P - 1) / P * nbytes / bw + buckets * 2 * (alpha + (P - 1) * O_MSG)


def step(P, G, M, net, a, rows, mode="replicated"):
    """(efficiency, t_step s, exposed exchange s, compute s, outer step s) of one meta-step;
    mode: today (dense blocking sum, replicated step), replicated, sharded or ddp."""
    _, gbit, alpha_us = net
    bw, alpha = 0.9 * gbit * 1e9 / 8, alpha_us * 1e-6
    groups = P // G
    tasks = math.ceil(M / groups)
    t_task = a.t_task / G
    nred = a.k if a.order == 1 else 2 * a.k + 1
    # in-group sums of the inner set's gradient: a ring over G ranks, on the critical path
    t_group = nred * allreduce_s(4 * PE, G, bw, alpha) if G > 1 else 0.0
    compute = tasks * (t_task + t_group)
    # units of a task: k inner steps of fwd + bwd (3 each), the query fwd + bwd (3); order 2
    # adds 2 HVP passes (fwd + bwd) per inner step, the last of which is the final pass
    units = 3 * (a.k + 1) + (6 * a.k if a.order == 2 else 0)
    window = t_task * 2 / units * (L - 1) / L  # the final backward after the top bucket is ready
    upd = a.update_ns * 1e-9 / a.update_threads
    outer = PLM * upd
    if mode == "today":
        exposed = allreduce_s(4 * PLM, P, bw, alpha, max(1, math.ceil(4 * PLM / 2**28)))
    elif mode == "ddp":
        nb = math.ceil(4 * PLM / BUCKET)
        t_all = allreduce_s(4 * PLM, P, bw, alpha, nb)
        exposed = max(t_all - window, t_all / nb)
        outer = PLM * a.torch_update_ns * 1e-9 / a.update_threads
    else:
        dense = 4 * (PLM - WTE)
        nb = math.ceil(dense / BUCKET)
        t_dense = allreduce_s(dense, P, bw, alpha, nb)
        if mode == "sharded":  # a reduce-scatter is half an allreduce
            t_dense /= 2
        exposed_dense = max(t_dense - window, t_dense / nb)
        u = rows.get(M, min(V, M * a.tokens_per_task))
        exposed = exposed_dense + allreduce_s(4 * u * C + V / 8, P, bw, alpha,
                                              1 + math.ceil(4 * u * C / BUCKET))
        if mode == "sharded" and P > 1:
            outer = math.ceil(PLM / P) * upd + allreduce_s(4 * PLM, P, bw, alpha, math.ceil(4 * PLM / BUCKET)) / 2
    t = compute + exposed + outer
    ideal = M * a.t_task / P
    return ideal / t, t, exposed, compute, outer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t-task", type=float, default=0.5,
                    help="seconds per task on one node (first order, k = 1, 8 + 8 sentences of <= 128 tokens)")
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--order", type=int, default=1)
    ap.add_argument("--tokens-per-task", type=int, default=16 * 128,
                    help="upper bound of rows a task touches when --rows has no figure for M")
    ap.add_argument("--rows", default="",
                    help="measured union of touched embedding rows per meta-step, M=U,... (docs/scaling.md)")
    ap.add_argument("--update-ns", type=float, default=0.70,
                    help="ns per float of peprime's AdamW outer step on one rank, one thread (tests/bench/zero1.sh)")
    ap.add_argument("--torch-update-ns", type=float, default=26.9,
                    help="ns per float of torch.optim.AdamW, one thread (tests/bench/torch_adamw.py)")
    ap.add_argument("--update-threads", type=float, default=1.0,
                    help="speed-up of the outer step from the rank's threads (1: one thread, as built)")
    ap.add_argument("--ps", default="8,64,512")
    ap.add_argument("--ms", default="16,64,256")
    ap.add_argument("--gs", default="1,2,4,8")
    a = ap.parse_args()
    rows = {int(k): int(v) for k, v in (x.split("=") for x in a.rows.split(",") if x)}
    print("XLM-R base: outer set %.1f M floats (%.2f GB), of it word embeddings %.1f M, encoder %.1f M; "
          "inner set %.2f M floats" % (PLM / 1e6, 4 * PLM / 1e9, WTE / 1e6, (PLM - WTE) / 1e6, PE / 1e6))
    print("t_task %.2f s per node, k = %d, order %d; outer step %.2f ns per float (torch %.2f), / %.1f threads: "
          "replicated %.0f ms per meta-step\n" % (a.t_task, a.k, a.order, a.update_ns, a.torch_update_ns,
                                                  a.update_threads, PLM * a.update_ns * 1e-6 / a.update_threads))
    Ps, Ms, Gs = ([int(x) for x in s.split(",")] for s in (a.ps, a.ms, a.gs))
    for M in Ms:
        print("### meta-batch M = %d\n" % M)
        print("| P | interconnect | today (dense, blocking, G = 1) | replicated step (best G) | "
              "sharded step (best G) | PyTorch DDP + AdamW (best G) | ms / meta-step replicated / sharded | "
              "outer step ms replicated / sharded |")
        print("|---|---|---|---|---|---|---|---|")

        def best(P, mode):
            top = None
            for G in Gs:
                if P % G or G > 8:  # G divides P; 8 sentences per batch: at most 8 ranks per task
                    continue
                r = step(P, G, M, net, a, rows, mode)
                if top is None or r[0] > top[1][0]:
                    top = (G, r)
            return top
        for P in Ps:
            for net in NETS:
                e_today = step(P, 1, M, net, a, rows, "today")[0]
                gr, rr = best(P, "replicated")
                gs, rs = best(P, "sharded")
                gd, rd = best(P, "ddp")
                print("| %d | %s | %.0f%% | %.0f%% (G = %d) | %.0f%% (G = %d) | %.0f%% (G = %d) | %.0f / %.0f | "
                      "%.0f / %.0f |" % (P, net[0], 100 * e_today, 100 * rr[0], gr, 100 * rs[0], gs, 100 * rd[0], gd,
                                         1e3 * rr[1], 1e3 * rs[1], 1e3 * rr[4], 1e3 * rs[4]))
        print()


if __name__ == "__main__":
    main()
