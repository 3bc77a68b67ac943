"""Side-by-side benchmark driver: runs `peprime bench ...` and the PyTorch 1.13 anchor
(torch_encoder.py / torch_maml.py) for the same rows in one run, each row in its own
process with the same thread count and BLAS settings, and prints a Markdown table with the
ratios. Suites:

  compare.py encoder [--shapes tiny,base] [--threads 1,2] [--repeat N]   fwd+bwd tokens/s, full and PE modes
  compare.py pe      [--shapes tiny,base] [--threads 1] [--repeat N]     PE methods vs a full step, vs PyTorch
  compare.py maml    [--shapes tiny] [--ks 1,3,5] [--repeat N]  ms per meta-step and peak RSS, order 1 and 2,
                                                             and the second-order cost order 2 / order 1

--peprime PATH names the binary (default build/peprime). OPENBLAS_CORETYPE is passed through
as given (set it on the command line to compare kernel sets); the table header says which.
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


def paired(a, pcmd, tcmd, env):
    """Runs peprime and PyTorch a.repeat times, interleaved (p, t, p, t, ...), so slow phases of
    a noisy machine hit both sides; returns (median peprime row, median PyTorch row,
    per-repeat list of (peprime, PyTorch) rows)."""
    pairs = []
    for _ in range(a.repeat):
        p = run_json(pcmd, env)
        t = None if a.no_torch or tcmd is None else run_json(tcmd, env)
        pairs.append((p, t))
    return median_row([p for p, _ in pairs]), median_row([t for _, t in pairs]), pairs


def spread(pairs, key, invert=False):
    """'lo–hi' of the per-repeat ratios peprime/PyTorch of `key` (PyTorch/peprime if invert)."""
    rs = sorted((t[key] / p[key]) if invert else (p[key] / t[key]) for p, t in pairs
                if p and t and p.get(key) and t.get(key))
    return "n/a" if not rs else "%.2f" % rs[0] if len(rs) == 1 else "%.2f–%.2f" % (rs[0], rs[-1])


def env_for(threads):
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def fmt(x, nd=0):
    return "n/a" if x is None else ("%.*f" % (nd, x))


def suite_encoder(a):
    print("| shape | mode | threads | peprime tokens/s | PyTorch tokens/s | ratio | ratio per repeat | peprime GFLOP/s | peprime RSS MiB | PyTorch RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape in a.shapes:
        for threads in a.threads:
            for mode in ("full", "pe"):
                env = env_for(threads)
                steps = "5" if shape == "base" else "60"
                p, t, pairs = paired(
                    a, [a.peprime, "bench", "encoder", "--shape", shape, "--mode", mode, "--steps", steps],
                    [sys.executable, os.path.join(HERE, "torch_encoder.py"), "--config", shape, "--mode", mode,
                     "--threads", str(threads), "--iters", steps], env)
                pt = p and p["tokens_per_s"]
                tt = t and t.get("tokens_per_s")
                print("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                    shape, mode, threads, fmt(pt), fmt(tt), fmt(pt / tt if pt and tt else None, 2),
                    spread(pairs, "tokens_per_s"), fmt(p and p["gflops"], 1), fmt(p and p["peak_rss_mib"]),
                    fmt(t and t.get("peak_rss_mib"))), flush=True)


def suite_pe(a):
    print("| shape | method | peprime ms/step | full step ms | PE/full | PyTorch PE ms/step | speed-up vs PyTorch | speed-up per repeat |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in a.shapes:
        env = env_for(a.threads[0])
        steps = "5" if shape == "base" else "60"
        for method in ("adapter", "prefix", "lora"):
            # the full step is re-run beside each method so PE/full compares neighbours in time
            full, _, _ = paired(a, [a.peprime, "bench", "encoder", "--shape", shape, "--mode", "full", "--steps", steps],
                                None, env)
            p, t, pairs = paired(
                a, [a.peprime, "bench", "encoder", "--shape", shape, "--mode", "pe", "--pe", method, "--steps", steps],
                [sys.executable, os.path.join(HERE, "torch_encoder.py"), "--config", shape, "--mode", "pe",
                 "--pe", method, "--threads", str(a.threads[0]), "--iters", steps], env)
            pm, fm = p and p["ms_per_step"], full and full["ms_per_step"]
            tm = t and t.get("ms_per_step")
            print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                shape, method, fmt(pm, 1), fmt(fm, 1), fmt(pm / fm if pm and fm else None, 2), fmt(tm, 1),
                fmt(tm / pm if tm and pm else None, 2), spread(pairs, "ms_per_step", invert=True)), flush=True)


def suite_maml(a):
    """Every (order, k) row a.repeat times; a repeat runs all rows, peprime then PyTorch per
    row, so order 1 and order 2 of one repeat are neighbours in time. Prints the medians and
    then the second-order cost, order 2 / order 1 at each k, per repeat and its median, for both."""
    rows = [(shape, order, k) for shape in a.shapes for order in (1, 2) for k in a.ks]
    runs = {r: [] for r in rows}
    env = env_for(a.threads[0])
    for _ in range(a.repeat):
        for shape, order, k in rows:
            p = run_json([a.peprime, "bench", "maml", "--shape", shape, "--order", str(order), "--k", str(k),
                          "--steps", "3" if shape == "base" else "5"], env)
            t = None
            if not a.no_torch:
                t = run_json([sys.executable, os.path.join(HERE, "torch_maml.py"), "--config", shape, "--order",
                              str(order), "--k", str(k), "--threads", str(a.threads[0]),
                              "--iters", "2" if shape == "base" else "5"], env)
            runs[(shape, order, k)].append((p and p["ms_per_step"], t and t.get("ms_per_meta_step"),
                                            p and p["peak_rss_mib"], t and t.get("peak_rss_mib")))
    print("| shape | order | k | peprime ms/meta-step | PyTorch ms/meta-step | speed-up | speed-up per repeat | peprime RSS MiB | PyTorch RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pm, tm = median([x[0] for x in runs[r]]), median([x[1] for x in runs[r]])
        per = sorted(x[1] / x[0] for x in runs[r] if x[0] and x[1])
        print("| %s | %d | %d | %s | %s | %s | %s | %s | %s |" % (
            r[0], r[1], r[2], fmt(pm, 1), fmt(tm, 1), fmt(tm / pm if pm and tm else None, 2),
            " ".join("%.2f" % x for x in per) or "n/a", fmt(max([x[2] or 0 for x in runs[r]]) or None),
            fmt(max([x[3] or 0 for x in runs[r]]) or None)))
    print("\n| shape | k | peprime order 2 / order 1 | per repeat | PyTorch order 2 / order 1 | per repeat |")
    print("|---|---|---|---|---|---|")
    for shape in a.shapes:
        for k in a.ks:
            one, two = runs[(shape, 1, k)], runs[(shape, 2, k)]
            cols = []
            for side in (0, 1):
                rs = [b[side] / o[side] for o, b in zip(one, two) if o[side] and b[side]]
                cols += [fmt(median(rs), 2), " ".join("%.2f" % x for x in rs) or "n/a"]
            print("| %s | %d | %s | %s | %s | %s |" % (shape, k, *cols), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", choices=["encoder", "pe", "maml"])
    ap.add_argument("--shapes", default="tiny,base")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--ks", default="1,3,5")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every row N times, peprime and PyTorch interleaved; print medians and the ratio range")
    ap.add_argument("--peprime", default=os.path.join(ROOT, "build", "peprime"))
    a = ap.parse_args()
    a.shapes = a.shapes.split(",")
    a.threads = [int(x) for x in a.threads.split(",")]
    a.ks = [int(x) for x in a.ks.split(",")]
    print("OPENBLAS_CORETYPE=%s, host %s, %d CPUs, %d repeat(s) per row (medians)\n" % (
        os.environ.get("OPENBLAS_CORETYPE", "(unset)"), os.uname().nodename, os.cpu_count(), a.repeat))
    {"encoder": suite_encoder, "pe": suite_pe, "maml": suite_maml}[a.suite](a)


if __name__ == "__main__":
    main()
