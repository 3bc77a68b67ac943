"""PyTorch speed anchor of one MAML meta-step (1 task): k inner SGD steps on adapters + head
(Pfeiffer adapter per layer, 7-tag head) over a support batch, then the query loss and its
meta-gradient for the encoder (outer set plm), order 1 (inner gradients detached) or order 2
(autograd through the inner loop, create_graph=True), then the outer step a training loop
takes: the encoder's gradient-norm clipped to 1 and one AdamW step (lr 1e-4, weight decay
0.01, betas 0.9/0.999, eps 1e-8: peprime's optim defaults; the single-tensor implementation,
foreach=False, which ran 37 ms against foreach's 44 ms on 7.3 M parameters on an AMD EPYC
(Zen 3, AVX2)); --no-update stops at the meta-gradient, as `peprime bench maml --no-update`.
Same functional model as the oracle.

Support and query batches are both B = 8 full-length sequences of the config's T
(tiny T=64, base T=128), or with --batches DUMP --tokenizer FILE the real support / query
sentences `peprime bench maml --data LANG --dump DUMP` drew (batch 2i = support, 2i + 1 =
query of meta-step i; ids checked equal to peprime's; padded to each batch's longest with an
attention mask). Time per meta-step = median of --iters after --warmup (real data: the mean,
as peprime's). --threads = torch.set_num_threads, --blas-threads = OPENBLAS_NUM_THREADS.

  torch_maml.py --config tiny --order 1 --k 3 --threads N     one row in this process
  torch_maml.py --all [--configs tiny,base] [--ks 1,3,5]        each row in its own process
By default --all skips base/order 2/k=5 (too slow and memory hungry for the shared 2-core
machine); --base-o2-ks 1,3,5 adds them. Rows are also printed as `JSON {...}` lines.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil  # noqa: E402

META_B = 8


def one(a):
    benchutil.set_threads_env(a.threads, a.blas_threads)
    sys.path.insert(0, benchutil.REF)
    import torch
    import encoder_ref as er
    torch.set_num_threads(a.threads)
    c = benchutil.CONFIGS[a.config]
    spec = benchutil.bench_spec(er, a.config)
    params = benchutil.bench_params(er, spec, torch)
    rows = er.param_specs(spec)
    inner = [n for n, _, g in rows if g != er.GROUP_PLM]
    outer = [n for n, _, g in rows if g == er.GROUP_PLM]
    tasks = [(benchutil.full_batch(spec, META_B, c["T"], torch, seed=1),
              benchutil.full_batch(spec, META_B, c["T"], torch, seed=2))]
    if a.batches:
        bs, spec["V"] = benchutil.load_dump(a.batches, a.tokenizer, torch)
        params = benchutil.bench_params(er, spec, torch)
        tasks = [(bs[2 * i][:2], bs[2 * i + 1][:2]) for i in range(len(bs) // 2)]
        a.iters = len(tasks) - a.warmup
        if a.iters < 1:
            raise SystemExit(f"{a.batches} holds {len(tasks)} meta-steps, fewer than --warmup {a.warmup} + 1")
    for n in params:
        params[n].requires_grad_(True)
    lr = 0.1
    outer_params = [params[n] for n in outer]
    opt = None if a.no_update else torch.optim.AdamW(outer_params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
                                                     weight_decay=0.01, foreach=False)

    def meta_step(support, query):
        phi = {n: params[n] for n in inner}
        for _ in range(a.k):
            cur = dict(params)
            cur.update(phi)
            ls, _ = er.forward(cur, support[0], support[1], spec)
            g = torch.autograd.grad(ls, [phi[n] for n in inner], create_graph=(a.order == 2))
            phi = {n: phi[n] - lr * (gi if a.order == 2 else gi.detach()) for n, gi in zip(inner, g)}
        cur = dict(params)
        cur.update(phi)
        lq, _ = er.forward(cur, query[0], query[1], spec)
        grads = torch.autograd.grad(lq, outer_params)
        if opt is not None:
            with torch.no_grad():
                for p, g in zip(outer_params, grads):
                    p.grad = g
                torch.nn.utils.clip_grad_norm_(outer_params, 1.0)
                opt.step()
                for p in outer_params:
                    p.grad = None
        return float(lq), grads

    times = []
    for it in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        lq, grads = meta_step(*tasks[it % len(tasks)])
        del grads
        if it >= a.warmup:
            times.append(time.perf_counter() - t0)
    ms = 1000.0 * (sum(times) / len(times) if a.batches else sorted(times)[len(times) // 2])
    lib, core, nthr = benchutil.blas_info()
    benchutil.emit(dict(bench="torch_maml", config=a.config, order=a.order, k=a.k, threads=a.threads,
                        openblas_threads_env=a.blas_threads or a.threads, data=bool(a.batches), B=META_B,
                        T=c["T"], L=c["L"], C=c["C"], V=spec["V"], update=not a.no_update, iters=a.iters, ms_per_meta_step=ms,
                        peak_rss_mib=benchutil.peak_rss_mib(), meta_loss=lq, torch=torch.__version__,
                        blas_core=core, blas_threads=nthr, coretype_env=os.environ.get("OPENBLAS_CORETYPE", ""),
                        blas=lib))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(benchutil.CONFIGS), default="tiny")
    ap.add_argument("--order", type=int, choices=[1, 2], default=1)
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--no-update", action="store_true", help="stop at the meta-gradient (no clip, no AdamW step)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blas-threads", type=int, default=0, help="OPENBLAS_NUM_THREADS (default: --threads)")
    ap.add_argument("--batches", help="real-data tasks: the --dump file of `peprime bench maml --data`")
    ap.add_argument("--tokenizer", help="the SentencePiece model the dump was made with")
    ap.add_argument("--iters", type=int, default=0, help="timed meta-steps (default: tiny 3, base 1)")
    ap.add_argument("--warmup", type=int, default=-1, help="untimed meta-steps (default: tiny 1, base 0)")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--configs", default="tiny,base")
    ap.add_argument("--ks", default="1,3,5")
    ap.add_argument("--base-o2-ks", default="1", help="k values for base at order 2 under --all")
    a = ap.parse_args()
    if not a.all:
        a.iters = a.iters or (3 if a.config == "tiny" else 1)
        a.warmup = a.warmup if a.warmup >= 0 else (1 if a.config == "tiny" else 0)
        one(a)
        return 0
    rows = []
    for cfg in a.configs.split(","):
        for order in (1, 2):
            ks = a.base_o2_ks if (cfg == "base" and order == 2) else a.ks
            for k in [int(x) for x in ks.split(",") if x]:
                rows.append(["--config", cfg, "--order", str(order), "--k", str(k)])
    extra = ["--threads", str(a.threads)] + (["--iters", str(a.iters)] if a.iters else []) + \
        (["--warmup", str(a.warmup)] if a.warmup >= 0 else [])
    res = benchutil.run_children(os.path.abspath(__file__), rows, extra)
    if res:
        print(f"\n# torch {res[0]['torch']}, BLAS core={res[0]['blas_core']} "
              f"OPENBLAS_CORETYPE={res[0]['coretype_env'] or '(unset)'}, support = query = {META_B} x T")
    print(f"{'config':6} {'order':>5} {'k':>2} {'thr':>3} {'ms/meta-step':>13} {'peak RSS MiB':>12}")
    for r in res:
        print(f"{r['config']:6} {r['order']:>5} {r['k']:>2} {r['threads']:>3} {r['ms_per_meta_step']:>13.1f} "
              f"{r['peak_rss_mib']:>12.0f}")
    return 0 if len(res) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
