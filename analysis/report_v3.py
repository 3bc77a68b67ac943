#!/usr/bin/python3
"""Experiment v3's tables (docs/results.md, "Experiment v3: pre-registration"): from a
results_long.csv (base,pe,arm,seed,language,f1 in %) of scripts/experiment.sh over
jobs/experiments/wikiann-v3, the pre-registered analysis:

  * average zero-shot F1 (six targets) per PE method and arm: mean, 95% CI, seeds;
  * the six primary contrasts (maml-ft - maml-sgd, maml-ft - none, maml-ft-head - none, per PE
    method), paired by seed: mean, 95% CI, paired t-test p, Holm's adjustment over the six, the
    90% CI and the equivalence verdict at +-1 F1 (two one-sided tests at 0.05), wins;
  * the secondary contrasts (no claim): maml-ft - maml-ft-head, maml-ft - mt-matched,
    maml-sgd - none, mt-matched - none;
  * English dev F1 of the kept model per arm (the largest /log/dev_f1 of each adapted.h5: the
    per-cell rows of a run's dev_f1.csv and of v2's cells_v2.csv, and recorded means of seed
    groups whose per-cell values were lost, weighted by their seed counts);
  * per-target gains of maml-ft over none (for reading only).

Usage:
  analysis/report_v3.py LONG.csv [--dev CSV]... [--dev-means CSV] [--out DIR]     writes DIR/results_v3.md, DIR/gains_v3.csv
"""
import argparse
import csv
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (the statistics and readers shared with v2's report)

BASE = 16000
PES = ["adapter", "prefix"]
ARMS = ["none", "maml-sgd", "maml-ft", "maml-ft-head", "mt-matched", "maml-sgd-4x", "maml-ft-4x"]
PRIMARY = [("maml-ft", "maml-sgd"), ("maml-ft", "none"), ("maml-ft-head", "none")]
SECONDARY = [("maml-ft", "maml-ft-head"), ("maml-ft", "mt-matched"), ("maml-sgd", "none"), ("mt-matched", "none"),
             ("maml-ft-4x", "maml-sgd-4x")]
TARGETS = ["ar", "fi", "hi", "ko", "sw", "tr"]
MARGIN = 1.0  # F1 points: the pre-registered equivalence margin


def t_quantile(p_two_sided, df):
    """The critical value c with P(|T| >= c) = p_two_sided, by bisection."""
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if report.t_two_sided_p(mid, df) > p_two_sided:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def avg_f1(cell):
    vals = [cell[t] for t in TARGETS if t in cell]
    return float(np.mean(vals)) if len(vals) == len(TARGETS) else None


def diffs(f1, pe, a, b):
    """Paired (seed, difference of average F1) for the seeds both arms finished."""
    out = []
    seeds = sorted({k[3] for k in f1 if k[1] == pe})
    for s in seeds:
        x, y = f1.get((BASE, pe, a, s)), f1.get((BASE, pe, b, s))
        if x is None or y is None:
            continue
        vx, vy = avg_f1(x), avg_f1(y)
        if vx is not None and vy is not None:
            out.append(vx - vy)
    return out


def contrast(f1, pe, a, b):
    d = diffs(f1, pe, a, b)
    r = report.paired(d)
    n = r["n"]
    r["ci90"] = t_quantile(0.10, n - 1) * r["std"] / math.sqrt(n) if n >= 2 else float("nan")
    lo, hi = r["mean"] - r["ci90"], r["mean"] + r["ci90"]
    r["equivalent"] = n >= 2 and -MARGIN < lo and hi < MARGIN
    return r


def fmt(x, nd=2):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else ("%+.*f" % (nd, x))


def read_dev(paths):
    """English dev F1 in % per cell, {(base, pe, arm, seed): f1}, from per-cell CSVs with the
    columns base,pe,arm,seed,dev_f1 (a run's dev_f1.csv of scripts/experiment.sh, or v2's
    cells_v2.csv), later files winning."""
    out = {}
    for path in paths or []:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if r.get("dev_f1") not in (None, ""):
                    out[(int(r["base"]), r["pe"], r["arm"], int(r["seed"]))] = float(r["dev_f1"])
    return out


def read_dev_means(path):
    """Recorded per-arm means of English dev F1 over groups of seeds whose per-cell values were
    not kept: {(pe, arm): [(seeds, mean)]} from a CSV pe,arm,seeds,mean_dev_f1 (seeds "6-10")."""
    out = {}
    if not path:
        return out
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            lo, hi = (int(x) for x in r["seeds"].split("-"))
            out.setdefault((r["pe"], r["arm"]), []).append((set(range(lo, hi + 1)), float(r["mean_dev_f1"])))
    return out


def dev_summary(dev, means, pe, arm, seeds):
    """The arm's mean English dev F1 over its seeds and how many seeds it covers: recorded
    group means weighted by their seed counts, and the per-cell values of the other seeds."""
    total, n = 0.0, 0
    covered = set()
    for group, mean in means.get((pe, arm), []):
        g = group & set(seeds)
        if len(g) != len(group):
            continue
        total, n = total + mean * len(g), n + len(g)
        covered |= g
    for s in seeds:
        if s not in covered and (BASE, pe, arm, s) in dev:
            total, n = total + dev[(BASE, pe, arm, s)], n + 1
    return (total / n, n) if n else (None, 0)


def build(long_csv, dev, means):
    f1 = report.read_long(long_csv)
    lines = ["# Experiment v3: results (generated by analysis/report_v3.py)", "",
             "Source: `%s`; base %d; average zero-shot F1 over %s; paired by seed." % (
                 os.path.basename(long_csv), BASE, ", ".join(TARGETS)), ""]
    lines += ["## Average zero-shot F1 per arm", "", "| PE | arm | seeds | mean | 95% CI | English dev F1 (seeds) |",
              "|---|---|---:|---:|---:|---|"]
    for pe in PES:
        for arm in ARMS:
            seeds = sorted(k[3] for k in f1 if k[0] == BASE and k[1] == pe and k[2] == arm and avg_f1(f1[k]) is not None)
            if not seeds:
                continue
            v = [avg_f1(f1[(BASE, pe, arm, s)]) for s in seeds]
            r = report.paired(v)
            dm, dn = dev_summary(dev, means, pe, arm, seeds)
            dtxt = "%.2f (%d)" % (dm, dn) if dn else "n/a"
            lines.append("| %s | %s | %d | %.2f | %s | %s |" % (pe, arm, len(seeds), r["mean"],
                                                                 "±%.2f" % r["ci95"] if len(seeds) > 1 else "n/a", dtxt))
    rows, ps = [], []
    for pe in PES:
        for a, b in PRIMARY:
            r = contrast(f1, pe, a, b)
            rows.append((pe, a, b, r))
            ps.append(r["p"] if math.isfinite(r["p"]) else 1.0)
    adj = report.holm(ps)
    lines += ["", "## Primary contrasts (pre-registered; Holm over these six)", "",
              "| PE | contrast | seeds | mean | 95% CI | p | Holm p | 90% CI | within ±1 (TOST) | wins |",
              "|---|---|---:|---:|---|---:|---:|---|---|---:|"]
    out_rows = []
    for (pe, a, b, r), ph in zip(rows, adj):
        lines.append("| %s | %s − %s | %d | %s | [%s, %s] | %.3g | %.3g | [%s, %s] | %s | %d/%d |" % (
            pe, a, b, r["n"], fmt(r["mean"]), fmt(r["mean"] - r["ci95"]), fmt(r["mean"] + r["ci95"]), r["p"], ph,
            fmt(r["mean"] - r["ci90"]), fmt(r["mean"] + r["ci90"]), "yes" if r["equivalent"] else "no", r["wins"],
            r["n"]))
        out_rows.append(["primary", pe, a, b, r["n"], r["mean"], r["ci95"], r["p"], ph, r["ci90"], int(r["equivalent"])])
    lines += ["", "## Secondary contrasts (no claim)", "", "| PE | contrast | seeds | mean | 95% CI | p | wins |",
              "|---|---|---:|---:|---|---:|---:|"]
    for pe in PES:
        for a, b in SECONDARY:
            r = contrast(f1, pe, a, b)
            if r["n"] == 0:
                continue
            lines.append("| %s | %s − %s | %d | %s | [%s, %s] | %.3g | %d/%d |" % (
                pe, a, b, r["n"], fmt(r["mean"]), fmt(r["mean"] - r["ci95"]), fmt(r["mean"] + r["ci95"]), r["p"],
                r["wins"], r["n"]))
            out_rows.append(["secondary", pe, a, b, r["n"], r["mean"], r["ci95"], r["p"], float("nan"), r["ci90"],
                             int(r["equivalent"])])
    lines += ["", "## Per-target gain of maml-ft over none (reading only)", "",
              "| PE | " + " | ".join(TARGETS) + " |", "|---|" + "---:|" * len(TARGETS)]
    for pe in PES:
        cells = []
        for t in TARGETS:
            d = [f1[(BASE, pe, "maml-ft", s)][t] - f1[(BASE, pe, "none", s)][t] for s in sorted({k[3] for k in f1})
                 if (BASE, pe, "maml-ft", s) in f1 and (BASE, pe, "none", s) in f1
                 and t in f1[(BASE, pe, "maml-ft", s)] and t in f1[(BASE, pe, "none", s)]]
            cells.append(fmt(float(np.mean(d))) if d else "n/a")
        lines.append("| %s | %s |" % (pe, " | ".join(cells)))
    return "\n".join(lines) + "\n", out_rows


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("long_csv")
    ap.add_argument("--dev", action="append", help="per-cell English dev F1 (base,pe,arm,seed,dev_f1): a run's "
                    "dev_f1.csv or v2's cells_v2.csv; repeatable, later files win")
    ap.add_argument("--dev-means", help="recorded per-arm means of seed groups (pe,arm,seeds,mean_dev_f1)")
    ap.add_argument("--out", default=".")
    a = ap.parse_args(argv)
    md, rows = build(a.long_csv, read_dev(a.dev), read_dev_means(a.dev_means))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results_v3.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "gains_v3.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["kind", "pe", "arm", "minus", "seeds", "mean", "ci95", "p", "p_holm", "ci90", "within_margin"])
        for r in rows:
            w.writerow([("%.6g" % x) if isinstance(x, float) else x for x in r])
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
