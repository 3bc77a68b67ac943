"""Cost model of one priming meta-step of XLM-R base on a cluster (docs/scaling.md).

  analysis/exchange_model.py [--t-task 0.5] [--k 1] [--order 1] [--rows 4=1520,16=5260,64=15400]

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


def step(P, G, M, net, a, rows):
    """(efficiency, t_step s, exposed exchange s, compute s) of one meta-step."""
    _, gbit, alpha_us = net
    bw, alpha = 0.9 * gbit * 1e9 / 8, alpha_us * 1e-6
    groups = P // G
    tasks = math.ceil(M / groups)
    t_task = a.t_task / G
    nred = a.k if a.order == 1 else 2 * a.k + 1
    # in-group sums of the inner set's gradient: a ring over G ranks, on the critical path
    t_group = nred * allreduce_s(4 * PE, G, bw, alpha) if G > 1 else 0.0
    compute = tasks * (t_task + t_group)
    if a.today:
        exposed = allreduce_s(4 * PLM, P, bw, alpha, max(1, math.ceil(4 * PLM / 2**28)))
    else:
        dense = 4 * (PLM - WTE)
        nb = math.ceil(dense / BUCKET)
        t_dense = allreduce_s(dense, P, bw, alpha, nb)
        # units of a task: k inner steps of fwd + bwd (3 each), the query fwd + bwd (3); order 2
        # adds 2 HVP passes (fwd + bwd) per inner step, the last of which is the final pass
        units = 3 * (a.k + 1) + (6 * a.k if a.order == 2 else 0)
        window = t_task * 2 / units * (L - 1) / L  # the final backward after the top bucket is ready
        exposed_dense = max(t_dense - window, t_dense / nb)
        u = rows.get(M, min(V, M * a.tokens_per_task))
        exposed = exposed_dense + allreduce_s(4 * u * C + V / 8, P, bw, alpha,
                                              1 + math.ceil(4 * u * C / BUCKET))
    t = compute + exposed
    ideal = M * a.t_task / P
    return ideal / t, t, exposed, compute


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
    ap.add_argument("--ps", default="8,64,512")
    ap.add_argument("--ms", default="16,64,256")
    ap.add_argument("--gs", default="1,2,4,8")
    a = ap.parse_args()
    rows = {int(k): int(v) for k, v in (x.split("=") for x in a.rows.split(",") if x)}
    print("XLM-R base: outer set %.1f M floats (%.2f GB), of it word embeddings %.1f M, encoder %.1f M; "
          "inner set %.2f M floats" % (PLM / 1e6, 4 * PLM / 1e9, WTE / 1e6, (PLM - WTE) / 1e6, PE / 1e6))
    print("t_task %.2f s per node, k = %d, order %d\n" % (a.t_task, a.k, a.order))
    Ps, Ms, Gs = ([int(x) for x in s.split(",")] for s in (a.ps, a.ms, a.gs))
    for M in Ms:
        print("### meta-batch M = %d\n" % M)
        print("| P | interconnect | today (dense, blocking, G = 1) | new, G = 1 | best G (new) | efficiency | "
              "ms / meta-step | exchange exposed ms |")
        print("|---|---|---|---|---|---|---|---|")
        for P in Ps:
            for net in NETS:
                a.today = True
                e_today = step(P, 1, M, net, a, rows)[0]
                a.today = False
                e1 = step(P, 1, M, net, a, rows)[0]
                best = None
                for G in Gs:
                    if P % G or G > 8:  # G divides P; 8 sentences per batch: at most 8 ranks per task
                        continue
                    r = step(P, G, M, net, a, rows)
                    if best is None or r[0] > best[1][0]:
                        best = (G, r)
                G, (e, t, x, _) = best
                print("| %d | %s | %.0f%% | %.0f%% | %d | **%.0f%%** | %.0f | %.1f |" % (
                    P, net[0], 100 * e_today, 100 * e1, G, 100 * e, 1e3 * t, 1e3 * x))
        print()


if __name__ == "__main__":
    main()
