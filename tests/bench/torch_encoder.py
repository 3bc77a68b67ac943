"""PyTorch speed anchor: fwd+bwd tokens/s of an XLM-R-style encoder with a PE module per
layer and a 7-tag head, the same functional model as the oracle (tests/ref/encoder_ref.py),
float32, dropout off. PE modules as `peprime bench encoder --pe`: a Pfeiffer adapter
(bottleneck C/16, ReLU; the default), 30 prefix keys/values, or LoRA r = 8, alpha = 16 on
query and value.

  torch_encoder.py --config tiny|base --mode full|pe [--pe adapter|prefix|lora] --threads N
                   [--blas-threads M] [--iters K] [--warmup W] [--batches DUMP --tokenizer FILE]
      one row in this process; --threads is torch.set_num_threads (and OMP_NUM_THREADS),
      --blas-threads OPENBLAS_NUM_THREADS (default: the same). --batches runs the real-data
      batches `peprime bench encoder --data LANG --dump DUMP` drew (same sentences, ids checked
      equal to peprime's), each padded to its longest sentence with an attention mask, the
      first W untimed; tokens/s then counts real tokens (timed tokens / timed time);
  torch_encoder.py --all [--configs tiny,base] [--threads N]
      every (config, mode) in its own child process, so each row's peak RSS is its own,
      then a table.
Modes: full = every parameter requires grad (full fine-tuning step, fwd+bwd only, no
optimizer update); pe = only adapters + head require grad. Synthetic: tokens/s counts B*T
tokens of full-length batches, from the median step. Each result is also printed as one line
`JSON {...}` for the C-side benchmark driver. OPENBLAS_CORETYPE is taken from the
environment as given.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil  # noqa: E402


def one(a):
    benchutil.set_threads_env(a.threads, a.blas_threads)
    sys.path.insert(0, benchutil.REF)
    import torch
    import encoder_ref as er
    torch.set_num_threads(a.threads)
    c = benchutil.CONFIGS[a.config]
    spec = benchutil.bench_spec(er, a.config, pe=a.pe)
    params = benchutil.bench_params(er, spec, torch)
    for name, _, group in er.param_specs(spec):
        params[name].requires_grad_(a.mode == "full" or group != er.GROUP_PLM)
    if a.batches:
        batches, spec["V"] = benchutil.load_dump(a.batches, a.tokenizer, torch)
        params = benchutil.bench_params(er, spec, torch)  # the tokenizer's vocabulary
        for name, _, group in er.param_specs(spec):
            params[name].requires_grad_(a.mode == "full" or group != er.GROUP_PLM)
        a.iters = len(batches) - a.warmup
        if a.iters < 1:
            raise SystemExit(f"{a.batches} holds {len(batches)} batches, fewer than --warmup {a.warmup} + 1")
        B = batches[0][0].shape[0]
    else:
        batches = [benchutil.full_batch(spec, c["B"], c["T"], torch) + (c["B"] * c["T"],)]
        B = c["B"]
    trainable = [p for p in params.values() if p.requires_grad]
    times, tokens, padded = [], 0, 0
    for it in range(a.warmup + a.iters):
        ids, labels, real = batches[it % len(batches)]
        t0 = time.perf_counter()
        loss, _ = er.forward(params, ids, labels, spec)
        loss.backward()
        t1 = time.perf_counter()
        for p in trainable:
            p.grad = None
        if it >= a.warmup:
            times.append(t1 - t0)
            tokens += real
            padded += ids.numel()
    ms = 1000.0 * sorted(times)[len(times) // 2]  # median
    tps = tokens / sum(times) if a.batches else c["B"] * c["T"] / (ms / 1000.0)
    lib, core, nthr = benchutil.blas_info()
    benchutil.emit(dict(bench="torch_encoder", config=a.config, mode=a.mode, pe=a.pe, threads=a.threads,
                        openblas_threads_env=a.blas_threads or a.threads, B=B, T=c["T"], data=bool(a.batches),
                        pad_fraction=1.0 - tokens / padded,
                        L=c["L"], C=c["C"], V=spec["V"], iters=a.iters, tokens_per_s=tps,
                        ms_per_step=ms, peak_rss_mib=benchutil.peak_rss_mib(), loss=float(loss),
                        torch=torch.__version__, blas_core=core, blas_threads=nthr,
                        coretype_env=os.environ.get("OPENBLAS_CORETYPE", ""), blas=lib))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(benchutil.CONFIGS), default="tiny")
    ap.add_argument("--mode", choices=["full", "pe"], default="pe")
    ap.add_argument("--pe", choices=["adapter", "prefix", "lora"], default="adapter")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--blas-threads", type=int, default=0, help="OPENBLAS_NUM_THREADS (default: --threads)")
    ap.add_argument("--batches", help="real-data batches: the --dump file of `peprime bench encoder --data`")
    ap.add_argument("--tokenizer", help="the SentencePiece model the dump was made with")
    ap.add_argument("--iters", type=int, default=0, help="timed steps (default: tiny 5, base 2)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--configs", default="tiny,base")
    a = ap.parse_args()
    if not a.all:
        a.iters = a.iters or (5 if a.config == "tiny" else 2)
        one(a)
        return 0
    rows = [["--config", cfg, "--mode", mode] for cfg in a.configs.split(",") for mode in ("full", "pe")]
    extra = ["--threads", str(a.threads), "--warmup", str(a.warmup)] + (["--iters", str(a.iters)] if a.iters else [])
    res = benchutil.run_children(os.path.abspath(__file__), rows, extra)
    if res:
        print(f"\n# torch {res[0]['torch']}, BLAS {res[0]['blas']} core={res[0]['blas_core']} "
              f"OPENBLAS_CORETYPE={res[0]['coretype_env'] or '(unset)'}")
    print(f"{'config':6} {'mode':4} {'thr':>3} {'B':>3} {'T':>4} {'tokens/s':>10} {'ms/step':>10} {'peak RSS MiB':>12}")
    for r in res:
        print(f"{r['config']:6} {r['mode']:4} {r['threads']:>3} {r['B']:>3} {r['T']:>4} {r['tokens_per_s']:>10.1f} "
              f"{r['ms_per_step']:>10.1f} {r['peak_rss_mib']:>12.0f}")
    return 0 if len(res) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
