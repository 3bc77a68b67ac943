#!/usr/bin/env python3
"""The outer step on a rank's threads (issue 30 item 1), measured.

In a meta-step (default): `peprime bench maml` (synthetic 8 + 8 full-length sequences, first order,
k = 1, AdamW over the whole PLM with clipping) at each thread count (OPENBLAS_NUM_THREADS: BLAS and
the outer step's pool both get it), the counts interleaved, REPS times, and one Markdown table of
medians (min-max beside) of the outer step's ms per meta-step (norm + clip + element-wise update,
right after the meta-step's last backward) and of the whole meta-step.

Alone (--alone): `peprime bench outer` REPS times, each process alternating a 1-thread and a
T-thread optimizer step by step over the same PLM; the table gives the median over the processes
of each one's median ms per step.

    tests/bench/outer_threads.py BIN [--alone] [--shape base] [--threads 1,2] [--reps 3] [--steps 3] [--warmup 1]
"""
import argparse
import json
import os
import statistics
import subprocess
import time

from benchutil import cpu_name


def one(binary, shape, threads, steps, warmup):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "bench", "maml", "--shape", shape, "--steps", str(steps), "--warmup", str(warmup)],
                         env=env, check=True, capture_output=True, text=True).stdout
    row = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    if row["outer_threads"] != threads:
        print(f"note: {threads} threads asked, the outer step ran on {row['outer_threads']}")
    return row


def alone(a):
    """--alone: bench outer REPS times at the largest thread count of --threads."""
    t = max(int(x) for x in a.threads.split(","))
    start = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    one_t, many_t, used = [], [], t
    for rep in range(a.reps):
        out = subprocess.run([a.binary, "bench", "outer", "--shape", a.shape, "--threads", str(t), "--steps",
                              str(a.steps), "--warmup", str(a.warmup)], check=True, capture_output=True,
                             text=True).stdout
        r = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
        one_t.append(r["ms_per_step_1"])
        many_t.append(r["ms_per_step_threads"])
        used = r["threads"]
        print(f"rep {rep + 1}: 1 thread {r['ms_per_step_1']:.1f} ms, {used} threads {r['ms_per_step_threads']:.1f} ms "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    print(f"\nCPU: {cpu_name()}, {os.cpu_count()} CPUs, {start}, {a.reps} processes, each the median of {a.steps} "
          f"alternating steps after {a.warmup} warm-up, shape {a.shape}, {r['floats']} floats, {r['optim']}\n")
    print("| threads | outer step ms (median) | min-max | speed-up |")
    print("|---|---|---|---|")
    base = statistics.median(one_t)
    for n, xs in ((1, one_t), (used, many_t)):
        print(f"| {n} | {statistics.median(xs):.1f} | {min(xs):.1f}-{max(xs):.1f} | {base / statistics.median(xs):.2f}x |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--shape", default="base")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--alone", action="store_true", help="bench outer: the step alone, 1 thread against T")
    a = ap.parse_args()
    if a.alone:
        alone(a)
        return
    counts = [int(t) for t in a.threads.split(",")]
    rows = {t: [] for t in counts}
    start = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    for rep in range(a.reps):
        for t in counts:
            r = one(a.binary, a.shape, t, a.steps, a.warmup)
            rows[t].append(r)
            print(f"rep {rep + 1} threads {t}: outer step {r['outer_ms_per_step']:.1f} ms, "
                  f"meta-step {r['ms_per_step']:.1f} ms", flush=True)
    print(f"\nCPU: {cpu_name()}, {os.cpu_count()} CPUs, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}, {start}, {a.reps} repeats interleaved, "
          f"{a.steps} meta-steps after {a.warmup} warm-up, shape {a.shape}\n")
    print("| threads | outer step ms (median) | min-max | meta-step ms (median) | min-max | outer step speed-up |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(r["outer_ms_per_step"] for r in rows[counts[0]])
    for t in counts:
        o = [r["outer_ms_per_step"] for r in rows[t]]
        s = [r["ms_per_step"] for r in rows[t]]
        print(f"| {t} | {statistics.median(o):.1f} | {min(o):.1f}-{max(o):.1f} | {statistics.median(s):.1f} | "
              f"{min(s):.1f}-{max(s):.1f} | {base / statistics.median(o):.2f}x |")


if __name__ == "__main__":
    main()
