#!/usr/bin/env python3
"""Where a step's time goes at 1 and N threads: BLAS calls or our own code (issue 30 item 6).

Runs CMD under the blas_profile shim (tests/bench/blas_profile.c, LD_PRELOAD) at each thread
count (OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = t), the counts interleaved, REPS times, and prints
one Markdown table of medians (min-max beside): the seconds inside sgemm calls of at least
--big multiply-adds (OpenBLAS threads those), inside smaller ones (it runs them on one thread),
and outside BLAS (the span from the first call to the last minus the time inside calls: our own
code between BLAS calls), the rest (span minus the big calls: the wall time of everything but
the big calls, right also when our own threads make the small calls side by side), with each
part's speed-up over the first thread count. Then the call
shapes that lose most against the big calls' median speed-up. The whole run is profiled,
warm-up steps included: the same work at every thread count.

    tests/bench/blas_profile.py [--threads 1,2] [--reps 3] [--top 8] [--keep DIR] LIB -- CMD ARGS...
    tests/bench/blas_profile.py --selftest PEPRIME LIB     (ctest blas_profile: counts real calls)

e.g. tests/bench/blas_profile.py build/tests/bench/libblas_profile.so -- build/peprime bench
encoder --shape base --mode full --steps 5 --warmup 2 --data en --tokenizer SPM
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from benchutil import cpu_name


def read_profile(path):
    """{'calls', 'total_s', 'span_s', 'lost', 'rows': {(m, n, k, ta, tb): (calls, seconds)}}"""
    with open(path) as f:
        head = f.readline().split()
        if head[:3] != ["#", "blas_profile", "1"]:
            sys.exit(f"blas_profile.py: {path} is not a blas_profile 1 file (first line {' '.join(head)!r})")
        prof = {head[i]: float(head[i + 1]) for i in range(3, len(head), 2)}
        f.readline()
        prof["rows"] = {}
        for line in f:
            m, n, k, ta, tb, calls, sec = line.split()
            prof["rows"][(int(m), int(n), int(k), int(ta), int(tb))] = (int(calls), float(sec))
    return prof


def run(lib, cmd, threads, path=None):
    """Runs cmd under the shim; the profile is kept at path (if given)."""
    keep = path is not None
    if not keep:
        with tempfile.NamedTemporaryFile(suffix=".tsv", delete=False) as tmp:
            path = tmp.name
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), BLAS_PROFILE_OUT=path,
               LD_PRELOAD=os.path.abspath(lib))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"blas_profile.py: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    prof = read_profile(path)
    if not keep:
        os.unlink(path)
    return prof


def split(prof, big):
    rows = prof["rows"]
    inside_big = sum(s for key, (c, s) in rows.items() if key[0] * key[1] * key[2] >= big)
    inside_small = sum(s for key, (c, s) in rows.items() if key[0] * key[1] * key[2] < big)
    return {"big": inside_big, "small": inside_small, "outside": prof["span_s"] - prof["total_s"],
            "rest": prof["span_s"] - inside_big, "span": prof["span_s"]}


def speedups(before, after, part):
    """'median [min–max]' of the per-repeat ratios before / after of one part (repeat i with i)."""
    r = [b[part] / x[part] for b, x in zip(before, after) if x[part] > 0]
    return f"{statistics.median(r):.2f} [{min(r):.2f}–{max(r):.2f}]" if r else "–"


def selftest(lib, peprime):
    """bench sgemm --n 64 --reps 3 makes 4 calls (a warm-up + 3) of each of its shapes: the
    64-cube and the tiny shape's 12 projection calls (N = 16 x 64 tokens, C = 256, FF = 1024)."""
    prof = run(lib, [peprime, "bench", "sgemm", "--shape", "tiny", "--n", "64", "--reps", "3"], 1)
    rows, N, C, FF = prof["rows"], 16 * 64, 256, 1024
    want = {(64, 64, 64, 0, 0): 4, (N, 3 * C, C, 0, 1): 4, (N, C, FF, 0, 1): 4, (FF, C, N, 1, 0): 4}
    for key, calls in want.items():
        got = rows.get(key, (0, 0.0))[0]
        assert got == calls, f"shape {key}: {got} calls profiled, {calls} made"
    assert prof["calls"] == sum(c for c, _ in rows.values()) and prof["lost"] == 0, prof
    assert 0 < prof["total_s"] <= prof["span_s"] + 1e-6, prof
    print(f"blas_profile selftest: {int(prof['calls'])} calls in {len(rows)} shapes, "
          f"{prof['total_s']:.4f} s of {prof['span_s']:.4f} s span")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lib")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--big", type=int, default=4 * 65536, help="multiply-adds from which OpenBLAS threads sgemm")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--selftest", metavar="PEPRIME")
    ap.add_argument("--keep", metavar="DIR", help="keep each run's profile as DIR/t<threads>-r<repeat>.tsv")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.selftest:
        return selftest(a.lib, a.selftest)
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("give the command to profile after --")
    threads = [int(t) for t in a.threads.split(",")]
    profs = {t: [] for t in threads}
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    for r in range(a.reps):
        for t in threads:
            path = os.path.join(a.keep, f"t{t}-r{r + 1}.tsv") if a.keep else None
            profs[t].append(run(a.lib, cmd, t, path))
    t0 = threads[0]
    print(f"CPU {cpu_name()}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
          f"{a.reps} runs per thread count, interleaved: `{' '.join(cmd)}`\n")
    print(f"| threads | sgemm >= {a.big} (s) | smaller sgemm (s) | outside BLAS (s) | rest = span - big (s) | "
          f"span (s) | speed-up of each part over {t0} thread(s), median [range] |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    parts = ("big", "small", "outside", "rest", "span")
    base_split = [split(p, a.big) for p in profs[t0]]
    for t in threads:
        sp = [split(p, a.big) for p in profs[t]]
        med = {k: statistics.median(s[k] for s in sp) for k in parts}
        cells = "–"
        if t != t0:
            cells = ", ".join(f"{k} {speedups(base_split, sp, k)}" for k in parts)
        print(f"| {t} | {med['big']:.3f} | {med['small']:.3f} | {med['outside']:.3f} | {med['rest']:.3f} | {med['span']:.3f} | "
              f"{cells} |")
    for t in threads[1:]:
        base = {key: statistics.median(p["rows"][key][1] for p in profs[t0]) for key in profs[t0][0]["rows"]}
        now = {key: statistics.median(p["rows"].get(key, (0, 0.0))[1] for p in profs[t]) for key in base}
        bigkeys = [key for key in base if key[0] * key[1] * key[2] >= a.big and now[key] > 0]
        typical = statistics.median(base[key] / now[key] for key in bigkeys) if bigkeys else 1.0
        print(f"\nShapes losing most at {t} threads against the big calls' median speed-up {typical:.2f}x "
              f"(seconds over the whole run):\n")
        print("| M | N | K | op(A) op(B) | calls | s at %d | s at %d | speed-up | lost (s) |" % (t0, t))
        print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
        lost = sorted(base, key=lambda key: -(now[key] - base[key] / typical))
        for key in lost[:a.top]:
            calls = profs[t0][0]["rows"][key][0]
            ops = ("T" if key[3] else "N") + ("T" if key[4] else "N")
            print(f"| {key[0]} | {key[1]} | {key[2]} | {ops} | {calls} | {base[key]:.3f} | {now[key]:.3f} | "
                  f"{base[key] / now[key] if now[key] else float('inf'):.2f} | {now[key] - base[key] / typical:+.3f} |")


if __name__ == "__main__":
    main()
