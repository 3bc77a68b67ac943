#!/usr/bin/env python3
"""analysis/report.py on experiment v2 data made here (never real results): a synthetic
results_long.csv with planted gains over three bases, a RUN layout with a pretraining /log,
bases.csv and timings.csv, and a primed.h5 whose /tasks hold states and their episode starts
with known updates. Checks the numbers report.py writes: per-base means, paired gains and
their CIs against values computed here, the contrasts, the priming budget read from the
stored config, the gain-vs-base plot, the cosine of the updates (not of the states), and
what a later stretch's report keeps from the earlier reports (cells_v2.csv,
task_cosine.csv), and clear errors for a broken CSV.

  test_report_v2.py REPORT_PY WORKDIR"""
import csv
import math
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

REPORT, WORK = sys.argv[1], sys.argv[2]
shutil.rmtree(WORK, ignore_errors=True)
run = os.path.join(WORK, "run")
os.makedirs(run)
rng = np.random.default_rng(5)
LANGS = ["ar", "fi", "hi", "ko", "sw", "tr"]
BASES = [100, 400, 800]
SEEDS = [1, 2, 3, 4, 5]
# planted average gains over none per base: maml grows with base strength, mt-matched shrinks
PLANT = {"maml": {100: 0.5, 400: 1.0, 800: 2.0}, "mt-matched": {100: 1.5, 400: 1.0, 800: 0.2}}
rows, f1 = [], {}
for b in BASES:
    for s in SEEDS:
        base_lang = {l: 20 + 5 * BASES.index(b) + rng.normal(0, 1) for l in LANGS}
        for arm in ["none", "maml", "mt-matched"]:
            noise = rng.normal(0, 0.3)
            for l in LANGS:
                v = base_lang[l] + (PLANT[arm][b] if arm != "none" else 0.0) + noise
                f1[(b, arm, s, l)] = v
                rows.append([b, "adapter", arm, s, l, "%.4f" % v])
with open(os.path.join(run, "results_long.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["base", "pe", "arm", "seed", "language", "f1"])
    w.writerows(rows)
with open(os.path.join(run, "bases.csv"), "w") as f:
    f.write("base,file,sha256\n" + "".join("%d,bases/base-step%d.h5,%s\n" % (b, b, "ab" * 32) for b in BASES))
os.makedirs(os.path.join(run, "pretrain"))
with h5py.File(os.path.join(run, "pretrain", "base.h5"), "w") as h:
    steps = np.arange(1, 801, dtype=float)
    h["log/step"] = steps
    h["log/loss"] = 10.0 - steps / 100.0
with open(os.path.join(run, "timings.csv"), "w") as f:
    f.write("cell,stage,seconds,status,finished\n")
    for s in SEEDS:
        f.write("b800/adapter-maml-s%d,prime,%d,ok,x\nb800/adapter-maml-s%d,finetune,100,ok,x\n" % (s, 300 + s, s))
# primed.h5 of the strongest base's maml cells: updates u_l with known cosines, starts differ
cfg = "[maml]\nmethod = maml\norder = 2\ninner_steps = 5\nmeta_batch = 4\nquery_size = 8\nsupport_size = 8\n" \
      "[optim]\nsteps = 1000\n"
u = {"de": np.array([1.0, 0.0, 0.0, 0.0]), "es": np.array([1.0, 1.0, 0.0, 0.0]), "zh": np.array([0.0, 0.0, 1.0, 0.0])}
hu = {"de": np.array([2.0, 0.0]), "es": np.array([0.0, 2.0]), "zh": np.array([2.0, 2.0])}
for s in SEEDS:
    d = os.path.join(run, "b800", "prime", "adapter-maml-s%d" % s)
    os.makedirs(d)
    with h5py.File(os.path.join(d, "primed.h5"), "w") as h:
        h.attrs["config"] = cfg
        h["pe/x"] = np.full(4, 7.0, dtype=np.float32)  # the v1 artefact: /pe is not the start
        for l, v in u.items():
            start = rng.normal(0, 1, 4)
            h["tasks/%s/x" % l] = (start + v).astype(np.float32)
            h["tasks/%s.start/x" % l] = start.astype(np.float32)
            start = rng.normal(0, 1, 2)  # the tagging head's part, with its own known updates
            h["tasks/%s/classifier.weight" % l] = (start + hu[l]).astype(np.float32)
            h["tasks/%s.start/classifier.weight" % l] = start.astype(np.float32)
out = os.path.join(WORK, "out")
r = subprocess.run([sys.executable, REPORT, run, "--out", out], capture_output=True, text=True)
print(r.stdout[-3000:], r.stderr[-2000:])
assert r.returncode == 0, r.returncode
md = open(os.path.join(out, "results_v2.md")).read()

# gains against an independent computation (paired differences of the per-seed averages)
def avg(b, arm, s):
    return sum(f1[(b, arm, s, l)] for l in LANGS) / len(LANGS)

T975_4 = 2.7764451051977987  # two-sided 95% t quantile, 4 degrees of freedom
got = {}
with open(os.path.join(out, "gains_v2.csv")) as f:
    for row in csv.DictReader(f):
        got[(int(row["base"]), row["arm"], row["versus"], row["language"])] = row
for b in BASES:
    for arm in ["maml", "mt-matched"]:
        d = np.array([avg(b, arm, s) - avg(b, "none", s) for s in SEEDS])
        g = got[(b, arm, "none", "average")]
        assert abs(float(g["mean_gain"]) - d.mean()) < 1e-3, (b, arm, g["mean_gain"], d.mean())
        ci = T975_4 * d.std(ddof=1) / math.sqrt(len(d))
        assert abs(float(g["ci95"]) - ci) < 1e-3, (b, arm, g["ci95"], ci)
        assert abs(d.mean() - PLANT[arm][b]) < 0.6
        assert "| %s |" % ("%+.2f" % d.mean()) in md.replace("| MAML (Adam inner, fresh start) | ", "| ").replace(
            "| multi-task matched | ", "| ") or ("%+.2f" % d.mean()) in md
    c = np.array([avg(b, "maml", s) - avg(b, "mt-matched", s) for s in SEEDS])
    assert abs(float(got[(b, "maml", "mt-matched", "average")]["mean_gain"]) - c.mean()) < 1e-3
# Holm's adjustment over the family of average-F1 tests, computed here from the raw p-values
fam = [r for r in got.values() if r["language"] == "average"]
ps = sorted(float(r["p_paired_t"]) for r in fam)
m, run_max, want = len(ps), 0.0, []
for i, pv in enumerate(ps):
    run_max = max(run_max, min(1.0, (m - i) * pv))
    want.append(run_max)
assert m == 9, m  # 3 bases x (2 gains + 1 contrast)
# (the CSV rounds p to 4 decimals, so m x 0.5e-4 of slack)
assert max(abs(a - b) for a, b in zip(sorted(float(r["p_holm"]) for r in fam), want)) < 1e-3, (fam, want)
assert all(r["p_holm"] == "" for r in got.values() if r["language"] != "average")
nominal = sum(float(r["p_paired_t"]) < 0.05 for r in fam)
kept = sum(float(r["p_holm"]) < 0.05 for r in fam)
assert 0 < kept <= nominal, (kept, nominal)
assert ("The tables above hold 9 tests of average F1" in md and "%d of them have p < 0.05" % nominal in md
        and "%d ha%s p < 0.05:" % (kept, "s" if kept == 1 else "ve") in md), md[md.find("## Multiple"):][:600]
# per-base mean ± std of the average row
for b in BASES:
    v = np.array([avg(b, "none", s) for s in SEEDS])
    assert ("%.2f ± %.2f" % (v.mean(), v.std(ddof=1))) in md, (b, v.mean())
# bases: MLM loss over the 100 steps up to each base; checksum shown
assert "| 800 | 2.495 |" in md and "`" + "ab" * 32 + "`" in md, md[:800]
# wall time and the second-order budget from the stored config: 4 x (5 + 1 + 10) passes, 32 sentences
assert "| 303 | 100 | n/a | 64 | 32 | 1000 |" in md, [l for l in md.splitlines() if l.startswith("| MAML")]
assert os.path.getsize(os.path.join(out, "gain_vs_base.png")) > 5000
assert os.path.getsize(os.path.join(out, "task_cosine.png")) > 5000

# the cosine reads updates (state - start), not states or state - /pe
sys.path.insert(0, os.path.dirname(REPORT))
import report  # noqa: E402
states, deltas = report.read_task_updates(os.path.join(run, "b800", "prime", "adapter-maml-s1", "primed.h5"), "pe")
assert deltas and sorted(states) == ["de", "es", "zh"]
cos = states["de"] @ states["es"] / np.linalg.norm(states["de"]) / np.linalg.norm(states["es"])
assert abs(cos - 1 / math.sqrt(2)) < 1e-6 and abs(states["zh"] @ states["de"]) < 1e-6

# what the inner loop moved, head and PE modules apart: norms and cross-language cosines of the
# planted updates (PE: cosines 1/sqrt2, 0, 0; head: 0, 1/sqrt2, 1/sqrt2)
with open(os.path.join(out, "cells_v2.csv")) as f:
    c3 = [r for r in csv.DictReader(f) if (r["base"], r["arm"], r["seed"]) == ("800", "maml", "3")][0]
want = {"pe_update": (2 + math.sqrt(2)) / 3, "head_update": (4 + 2 * math.sqrt(2)) / 3,
        "pe_cosine": math.sqrt(0.5) / 3, "head_cosine": 2 * math.sqrt(0.5) / 3}
for col, v in want.items():
    assert abs(float(c3[col]) - v) < 1e-4, (col, c3[col], v)
row = [l for l in md.splitlines() if l.startswith("| 800 | adapter | MAML (Adam")]
assert row == ["| 800 | adapter | MAML (Adam inner, fresh start) | 5 | %.3g | %.3g | %.3g | %.3g |" % (
    want["head_update"], want["pe_update"], want["head_cosine"], want["pe_cosine"])], row

# a run that took its bases with --bases-from has no pretrain/: the MLM loss comes from each
# stripped base's own log, which ends at its step
os.makedirs(os.path.join(run, "bases"))
for b in BASES:
    with h5py.File(os.path.join(run, "bases", "base-step%d.h5" % b), "w") as h:
        steps = np.arange(1, b + 1, dtype=float)
        h["log/step"] = steps
        h["log/loss"] = 10.0 - steps / 100.0
shutil.rmtree(os.path.join(run, "pretrain"))
r = subprocess.run([sys.executable, REPORT, run, "--out", out], capture_output=True, text=True)
assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
md = open(os.path.join(out, "results_v2.md")).read()
assert "| 800 | 2.495 |" in md and "| 100 | 9.495 |" in md, [l for l in md.splitlines() if l.startswith("| ")][:5]

# a later stretch on another machine: RUN holds none of these cells (no timings, no primed or
# fine-tuned files), only the long CSV; the report keeps the wall times, budget and cosines its
# earlier run wrote into OUT (cells_v2.csv, task_cosine.csv), and RUN's own cells win
keep_md = md
cells_csv = open(os.path.join(out, "cells_v2.csv")).read()
assert "800,adapter,maml,3,,303,100,,64,32,1000" in cells_csv, cells_csv[:600]
run_b = os.path.join(WORK, "run_b")
os.makedirs(run_b)
shutil.copy(os.path.join(run, "results_long.csv"), run_b)
os.remove(os.path.join(out, "task_cosine.png"))
r = subprocess.run([sys.executable, REPORT, run_b, "--out", out], capture_output=True, text=True)
assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
md = open(os.path.join(out, "results_v2.md")).read()
row = [l for l in md.splitlines() if l.startswith("| MAML (Adam")][-1]
assert row.endswith("| 303 | 100 | n/a | 64 | 32 | 1000 |"), row
assert os.path.getsize(os.path.join(out, "task_cosine.png")) > 5000
assert open(os.path.join(out, "cells_v2.csv")).read() == cells_csv
with open(os.path.join(run_b, "timings.csv"), "w") as f:
    f.write("cell,stage,seconds,status,finished\nb800/adapter-maml-s1,prime,411,ok,x\n")
r = subprocess.run([sys.executable, REPORT, run_b, "--out", out], capture_output=True, text=True)
assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
assert "800,adapter,maml,1,,411,100,,64,32,1000" in open(os.path.join(out, "cells_v2.csv")).read()
row = [l for l in open(os.path.join(out, "results_v2.md")).read().splitlines() if l.startswith("| MAML (Adam")][-1]
assert row.startswith("| MAML (Adam inner, fresh start) | %.0f |" % np.median([411, 302, 303, 304, 305])), row

# bad input: a CSV without the f1 column -> exit 2 and a message naming the column
bad = os.path.join(WORK, "bad.csv")
with open(bad, "w") as f:
    f.write("base,pe,arm,seed,language\n800,adapter,none,1,ar\n")
r = subprocess.run([sys.executable, REPORT, WORK, "--long", bad, "--out", os.path.join(WORK, "o2")],
                   capture_output=True, text=True)
assert r.returncode == 2 and "f1" in r.stderr, (r.returncode, r.stderr)
print("test_report_v2: ok")
