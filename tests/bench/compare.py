"""Side-by-side benchmark driver: runs `peprime bench ...` and the PyTorch 1.13 anchor
(torch_encoder.py / torch_maml.py) for the same rows in one run, each row in its own
process, interleaved (peprime, PyTorch, peprime, ...) --repeat times, and prints the Markdown
rows of docs/benchmarks.md: medians and the range of the per-repeat ratios. The encoder suite
runs every thread count of a row in each repeat too, and prints each side's 1 -> N thread
speed-up from runs of the same repeat. Suites:

  compare.py encoder [--shapes tiny,base] [--threads 1,2] [--repeat N]   fwd+bwd tokens/s, full and PE modes
  compare.py pe      [--shapes tiny,base] [--threads 1] [--repeat N]     PE methods vs a full step, vs PyTorch
  compare.py maml    [--shapes tiny] [--ks 1,3,5] [--orders 1,2]         ms per meta-step and peak RSS, and the
                   [--no-update]                                      second-order cost (order 2 / order 1) of both sides;
                                                                      a meta-step ends with the outer clip + AdamW step on
                                                                      both sides, --no-update stops both at the meta-gradient

Real data (--data LANG, e.g. en): every row runs the same seeded random batches of LANG's
WikiAnn train split ($PEPRIME_DATA) on both sides — peprime unpadded (tokens/s counts real
tokens), PyTorch padded to each batch's longest sentence with an attention mask, its ids
re-made with the sentencepiece module and checked equal to peprime's. Batches of --batch
sentences (32) for the encoder, maml.support_size + query_size (8 + 8) for MAML. The
tokenizer is --tokenizer FILE, or one trained once with `peprime tokenizer train` (--vocab,
16000) and cached as build/bench-cache/spm-LANG-VOCAB.model. Without --data: synthetic
full-length batches.

PyTorch runs each row in its fastest thread configuration: before the timed repeats it tries
torch.set_num_threads in {1, N} x OPENBLAS_NUM_THREADS in {1, N} (N = the row's threads;
OMP_NUM_THREADS = torch's) once each, keeps the fastest and the table names it
(torch threads x BLAS threads). peprime runs with OPENBLAS_NUM_THREADS = N.

--peprime PATH names the binary (default build/peprime). OPENBLAS_CORETYPE is passed through
as given (set it on the command line to compare kernel sets); the header line says which.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write("failed: %s\n%s\n%s\n" % (" ".join(cmd), out.stdout[-2000:], out.stderr[-2000:]))
        return None
    for line in out.stdout.splitlines()[::-1]:
        line = line.strip()
        if line.startswith("JSON "):
            line = line[5:]
        if line.startswith("{"):
            return json.loads(line)
    return None


def median(xs):
    """Median of the non-empty values (None if there are none)."""
    xs = sorted(x for x in xs if x is not None)
    return None if not xs else xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def median_row(rows):
    """One row from repeated runs: the median of every number (peak RSS: the largest)."""
    rows = [r for r in rows if r]
    if not rows:
        return None
    out = dict(rows[0])
    for k, v in rows[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = sorted(r[k] for r in rows if isinstance(r.get(k), (int, float)))
            out[k] = vals[-1] if k == "peak_rss_mib" else median(vals)
    return out


def torch_threads(a, tcmd, n, key, lower_is_better=False):
    """(torch threads, BLAS threads) fastest for this PyTorch row: each of {1, n} x {1, n} run
    once; the winner's extra arguments, environment and label."""
    best = None
    for t in sorted({1, n}):
        for b in sorted({1, n}):
            cmd = tcmd + ["--threads", str(t), "--blas-threads", str(b)]
            row = run_json(cmd, env_for(t, b))
            v = row and row.get(key)
            if v and (best is None or (v < best[0] if lower_is_better else v > best[0])):
                best = (v, t, b)
    if best is None:
        return None, None, "n/a"
    _, t, b = best
    return tcmd + ["--threads", str(t), "--blas-threads", str(b)], env_for(t, b), "%dx%d" % (t, b)


def interleaved(a, rows, key, lower_is_better=False):
    """Runs rows = [(pcmd, tcmd, threads)] a.repeat times: each repeat runs every row in turn,
    peprime then PyTorch (in its fastest thread configuration, chosen in the first repeat), so
    slow phases of a noisy machine hit both sides and every thread count alike. Returns, per
    row, (median peprime row, median PyTorch row, per-repeat list of (peprime, PyTorch) rows,
    the PyTorch thread configuration)."""
    tcmds = [tcmd for _, tcmd, _ in rows]
    tenvs, labels = [None] * len(rows), ["-"] * len(rows)
    pairs = [[] for _ in rows]
    for i in range(a.repeat):
        for j, (pcmd, _, threads) in enumerate(rows):
            p = run_json(pcmd, env_for(threads))  # first: it writes the --dump the PyTorch side replays
            if i == 0 and not a.no_torch and tcmds[j] is not None:
                tcmds[j], tenvs[j], labels[j] = torch_threads(a, tcmds[j], threads, key, lower_is_better)
            t = None if a.no_torch or tcmds[j] is None else run_json(tcmds[j], tenvs[j])
            pairs[j].append((p, t))
    return [(median_row([p for p, _ in pr]), median_row([t for _, t in pr]), pr, lab) for pr, lab in zip(pairs, labels)]


def paired(a, pcmd, tcmd, threads, key, lower_is_better=False):
    """One row of interleaved(): (median peprime row, median PyTorch row, per-repeat pairs, label)."""
    return interleaved(a, [(pcmd, tcmd, threads)], key, lower_is_better)[0]


def scaling(pairs_by_threads, side, key):
    """Per repeat, each thread count's `key` over the first thread count's, for one side (0:
    peprime, 1: PyTorch): {threads: sorted ratios}, from runs of the same repeat."""
    first = pairs_by_threads[0][1]
    out = {}
    for threads, pairs in pairs_by_threads[1:]:
        out[threads] = sorted(x[side][key] / f[side][key] for f, x in zip(first, pairs)
                              if f[side] and x[side] and f[side].get(key) and x[side].get(key))
    return out


def spread(pairs, key, invert=False):
    """'lo–hi' of the per-repeat ratios peprime/PyTorch of `key` (PyTorch/peprime if invert)."""
    rs = sorted((t[key] / p[key]) if invert else (p[key] / t[key]) for p, t in pairs
                if p and t and p.get(key) and t.get(key))
    return "n/a" if not rs else "%.2f" % rs[0] if len(rs) == 1 else "%.2f–%.2f" % (rs[0], rs[-1])


def env_for(threads, blas=None):
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(threads if blas is None else blas)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def tokenizer(a):
    """--tokenizer, or a tokenizer for --data trained once with `peprime tokenizer train`."""
    if a.tokenizer:
        return a.tokenizer
    path = os.path.join(ROOT, "build", "bench-cache", "spm-%s-%d.model" % (a.data, a.vocab))
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        root = os.environ.get("PEPRIME_DATA") or os.path.join(ROOT, "..", "shared", "data")
        subprocess.run([a.peprime, "tokenizer", "train", "--data", root, "--languages", a.data, "--vocab",
                        str(a.vocab), "--out", path], check=True)
    return path


def data_args(a, suite, tag):
    """(peprime options, PyTorch options) for real data: peprime dumps the batches it draws
    (the same every repeat: seeded), PyTorch replays the dump."""
    if not a.data:
        return [], []
    dump = os.path.join(ROOT, "build", "bench-cache", "batches-%s-%s.txt" % (suite, tag))
    tok = tokenizer(a)
    p = ["--data", a.data, "--tokenizer", tok, "--dump", dump] + (["--batch", str(a.batch)] if suite == "encoder" else [])
    return p, ["--batches", dump, "--tokenizer", tok]


def fmt(x, nd=0):
    return "n/a" if x is None else ("%.*f" % (nd, x))


def suite_encoder(a):
    print("| shape | mode | threads | batches | pad fraction | peprime tokens/s | PyTorch tokens/s | PyTorch threads (torch x BLAS) | ratio | ratio per repeat | peprime GFLOP/s | peprime RSS MiB | PyTorch RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    speedups = []  # (shape, mode, {side: {threads: per-repeat ratios}})
    for shape in a.shapes:
        for mode in ("full", "pe"):
            steps = a.steps or ("5" if shape == "base" else "60" if not a.data else "20")
            pd, td = data_args(a, "encoder", "%s-%s" % (shape, mode))
            pcmd = [a.peprime, "bench", "encoder", "--shape", shape, "--mode", mode, "--steps", str(steps),
                    "--warmup", "2"] + pd
            tcmd = [sys.executable, os.path.join(HERE, "torch_encoder.py"), "--config", shape, "--mode", mode,
                    "--iters", str(steps), "--warmup", "2"] + td
            # every thread count in each repeat, so the 1 -> N thread ratios are interleaved too
            res = interleaved(a, [(pcmd, tcmd, threads) for threads in a.threads], "tokens_per_s")
            for threads, (p, t, pairs, label) in zip(a.threads, res):
                pt = p and p["tokens_per_s"]
                tt = t and t.get("tokens_per_s")
                print("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    shape, mode, threads, "%s x %d" % (a.data, p["B"]) if a.data and p else "synthetic",
                    fmt(p and p.get("pad_fraction"), 2), fmt(pt), fmt(tt), label,
                    fmt(pt / tt if pt and tt else None, 2), spread(pairs, "tokens_per_s"), fmt(p and p["gflops"], 1),
                    fmt(p and p["peak_rss_mib"]), fmt(t and t.get("peak_rss_mib"))), flush=True)
            if len(a.threads) > 1:
                by = list(zip(a.threads, [r[2] for r in res]))
                speedups.append((shape, mode, {side: scaling(by, side, "tokens_per_s") for side in (0, 1)}))
    if not speedups:
        return
    # thread scaling of each side: the ratios of runs of the same repeat
    print("\n| shape | mode | threads | peprime speed-up over %d thread(s) | per repeat | PyTorch speed-up | per repeat |"
          % a.threads[0])
    print("|---|---|---|---|---|---|---|")
    for shape, mode, sides in speedups:
        for threads in a.threads[1:]:
            cols = []
            for side in (0, 1):
                rs = sides[side].get(threads, [])
                cols += [fmt(median(rs) if rs else None, 2), " ".join("%.2f" % x for x in rs) or "n/a"]
            print("| %s | %s | %d | %s | %s | %s | %s |" % (shape, mode, threads, *cols), flush=True)


def suite_pe(a):
    print("| shape | method | peprime ms/step | full step ms | PE/full | PyTorch PE ms/step | PyTorch threads | speed-up vs PyTorch | speed-up per repeat |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in a.shapes:
        steps = a.steps or ("5" if shape == "base" else "60" if not a.data else "20")
        for method in ("adapter", "prefix", "lora"):
            pd, td = data_args(a, "encoder", "%s-pe-%s" % (shape, method))
            # the full step is re-run beside each method so PE/full compares neighbours in time
            full, _, _, _ = paired(a, [a.peprime, "bench", "encoder", "--shape", shape, "--mode", "full", "--steps",
                                       str(steps), "--warmup", "2"] + pd, None, a.threads[0], "ms_per_step")
            p, t, pairs, label = paired(
                a, [a.peprime, "bench", "encoder", "--shape", shape, "--mode", "pe", "--pe", method, "--steps",
                    str(steps), "--warmup", "2"] + pd,
                [sys.executable, os.path.join(HERE, "torch_encoder.py"), "--config", shape, "--mode", "pe",
                 "--pe", method, "--iters", str(steps), "--warmup", "2"] + td, a.threads[0], "ms_per_step", True)
            pm, fm = p and p["ms_per_step"], full and full["ms_per_step"]
            tm = t and t.get("ms_per_step")
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                shape, method, fmt(pm, 1), fmt(fm, 1), fmt(pm / fm if pm and fm else None, 2), fmt(tm, 1), label,
                fmt(tm / pm if tm and pm else None, 2), spread(pairs, "ms_per_step", invert=True)), flush=True)


def suite_maml(a):
    print("| shape | order | k | batches | pad fraction | peprime ms/meta-step | PyTorch ms/meta-step | PyTorch threads (torch x BLAS) | speed-up | speed-up per repeat | peprime RSS MiB | PyTorch RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    per_repeat = {}  # (shape, order, k) -> [(peprime ms, PyTorch ms) per repeat]
    for shape in a.shapes:
        for order in a.orders:
            for k in a.ks:
                steps = a.steps or ("3" if shape == "base" else "5")
                pd, td = data_args(a, "maml", "%s-o%d-k%d" % (shape, order, k))
                nu = ["--no-update"] if a.no_update else []
                p, t, pairs, label = paired(
                    a, [a.peprime, "bench", "maml", "--shape", shape, "--order", str(order), "--k", str(k),
                        "--steps", str(steps), "--warmup", "1"] + nu + pd,
                    [sys.executable, os.path.join(HERE, "torch_maml.py"), "--config", shape, "--order", str(order),
                     "--k", str(k), "--iters", str(steps), "--warmup", "1"] + nu + td,
                    a.threads[0], "ms_per_meta_step", True)
                for r in [t] + [x for _, x in pairs]:
                    if r and "ms_per_meta_step" in r:
                        r["ms_per_step"] = r["ms_per_meta_step"]
                pm, tm = p and p["ms_per_step"], t and t.get("ms_per_step")
                per_repeat[(shape, order, k)] = [(x and x.get("ms_per_step"), y and y.get("ms_per_step"))
                                                 for x, y in pairs]
                print("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    shape, order, k, "%s %d+%d" % (a.data, p["support"], p["query"]) if a.data and p else "synthetic",
                    fmt(p and p.get("pad_fraction"), 2), fmt(pm, 1), fmt(tm, 1), label,
                    fmt(tm / pm if pm and tm else None, 2), spread(pairs, "ms_per_step", invert=True),
                    fmt(p and p["peak_rss_mib"]), fmt(t and t.get("peak_rss_mib"))), flush=True)
    if 1 not in a.orders or 2 not in a.orders:
        return
    # the second-order cost: order 2 / order 1 of the same repeat, for each side
    print("\n| shape | k | peprime order 2 / order 1 | per repeat | PyTorch order 2 / order 1 | per repeat |")
    print("|---|---|---|---|---|---|")
    for shape in a.shapes:
        for k in a.ks:
            one, two = per_repeat[(shape, 1, k)], per_repeat[(shape, 2, k)]
            cols = []
            for side in (0, 1):
                rs = sorted(b[side] / o[side] for o, b in zip(one, two) if o[side] and b[side])
                cols += [fmt(rs[len(rs) // 2] if rs else None, 2), " ".join("%.2f" % x for x in rs) or "n/a"]
            print("| %s | %d | %s | %s | %s | %s |" % (shape, k, *cols), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", choices=["encoder", "pe", "maml"])
    ap.add_argument("--shapes", default="tiny,base")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--ks", default="1,3,5")
    ap.add_argument("--orders", default="1,2")
    ap.add_argument("--steps", type=int, default=0, help="timed steps per run (default: per suite and shape)")
    ap.add_argument("--data", help="real WikiAnn batches of this language (e.g. en) instead of synthetic ones")
    ap.add_argument("--tokenizer", help="SentencePiece model for --data (default: trained once, cached in build/)")
    ap.add_argument("--vocab", type=int, default=16000, help="vocabulary of the cached --data tokenizer")
    ap.add_argument("--batch", type=int, default=32, help="sentences per encoder batch with --data")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-update", action="store_true",
                    help="maml: stop at the meta-gradient on both sides (default: the outer clip + AdamW step too)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every row N times, peprime and PyTorch interleaved; print medians and the ratio range")
    ap.add_argument("--peprime", default=os.path.join(ROOT, "build", "peprime"))
    a = ap.parse_args()
    a.shapes = a.shapes.split(",")
    a.threads = [int(x) for x in a.threads.split(",")]
    a.ks = [int(x) for x in a.ks.split(",")]
    a.orders = [int(x) for x in a.orders.split(",")]
    print("OPENBLAS_CORETYPE=%s, host %s, %d CPUs, %d repeat(s) per row (medians)\n" % (
        os.environ.get("OPENBLAS_CORETYPE", "(unset)"), os.uname().nodename, os.cpu_count(), a.repeat))
    {"encoder": suite_encoder, "pe": suite_pe, "maml": suite_maml}[a.suite](a)


if __name__ == "__main__":
    main()
