#!/usr/bin/env python3
"""Tables and plots of a priming experiment (scripts/experiment.sh or slurm/pipeline.sh
--pe-methods), read from its results directory with h5py, numpy and matplotlib only — no
peprime code.

  analysis/report.py RUN [--out DIR] [--pe adapter,prefix] [--arms none,maml,...]
                         [--seeds 1,2,3] [--exp JOBDIR]

RUN is laid out as pretrain/base.h5, prime/<cell>/primed.h5, finetune/<cell>/adapted.h5,
evaluate/<cell>/results.json, failed/<cell>, with <cell> = <pe>-<arm>-s<seed>. Without
--pe/--arms/--seeds the cells are the ones found there. Writes into DIR (default RUN/report):

  results.md          the F1 table (targets + average; columns arm x PE method; mean ± std
                      over seeds, best per row and PE method in bold), the gains of every
                      arm over no priming paired by seed, the per-run status
  results_long.csv    one row per (pe, arm, seed, language): f1 precision recall
  gains.csv           paired gains over 'none' per (pe, arm, language)
  meta_loss.png       priming meta-loss (query loss after adaptation) per arm and PE method
  finetune_loss.png   English fine-tuning loss and dev F1 per arm and PE method
  f1_per_language.png zero-shot F1 per target language per arm, error bars = std over seeds
  task_cosine.png     cosine similarity of the languages' per-task adapter states (/tasks)

Experiment v2 (scripts/experiment.sh with a grid.conf: RUN/results_long.csv with columns
base,pe,arm,seed,language,f1 and RUN/b<step>/{prime,finetune,evaluate}/<pe>-<arm>-s<seed>) is
detected by RUN/results_long.csv, or given as --long CSV (then RUN may hold nothing else).
It writes results_v2.md (per base: F1 mean ± std; paired gains over no priming with 95% CIs;
the arm contrasts; English dev F1; wall time and priming compute per arm), gains_v2.csv,
gain_vs_base.png (each arm's average priming gain against base strength) and
task_cosine.png from the strongest base's maml cells, with their data in cells_v2.csv (per
cell: English dev F1, seconds per stage, priming budget) and task_cosine.csv. Rows of those two
files already in DIR stay for the cells RUN does not hold (a later stretch of work on a fresh
machine runs only its own cells; its report keeps the earlier ones').

task_cosine.png compares each language's inner-loop *update*: /tasks/<lang> minus the
episode's actual start /tasks/<lang>.start (written by peprime prime since experiment v2).
For files without the starts it only draws the states with their mean over languages
removed, which equals the centred updates only when every inner loop started from one point.

Missing or failed runs are listed (with the failing stage and its log) and left out; the
tables say over how many seeds each cell is averaged. Exit status 0 when every expected run
is complete, 1 when some are missing or failed (the report is still written), 2 on bad use.
"""
import argparse
import csv
import json
import math
import os
import re
import sys

import numpy as np

CELL = re.compile(r"^(?P<pe>[a-z]+)-(?P<arm>none|maml|maml-all|multitask)-s(?P<seed>\d+)$")
V2_ARM_ORDER = ["none", "mlm", "maml", "maml-meta", "maml-sgd", "maml-so", "maml-all", "mt-matched", "mt-persistent"]
V2_ARM_LABEL = {"none": "no priming", "mlm": "continued MLM (equal compute)", "maml": "MAML (Adam inner, fresh start)",
                "maml-meta": "MAML, meta-learned start", "maml-sgd": "MAML (SGD inner)",
                "maml-so": "MAML second order (SGD inner)", "maml-all": "MAML inner = all (SGD)",
                "mt-matched": "multi-task matched", "mt-persistent": "multi-task persistent head (v1)"}
# (arm a, arm b, what the difference isolates): paired by seed within a base and PE method
V2_CONTRASTS = [("maml", "mt-matched", "the inner loop (same encoder sentences)"),
                ("maml-sgd", "maml-all", "a PE-specific inner loop vs adapting everything"),
                ("maml-so", "maml-sgd", "second order"),
                ("maml-meta", "maml", "a meta-learned start vs a fresh draw"),
                ("maml-sgd", "maml", "the inner optimiser: SGD at the calibrated rate vs Adam (see 'What the inner loop moved')"),
                ("maml", "mlm", "MAML vs equal-compute masked LM"),
                ("mt-persistent", "mt-matched", "a persistent, trained head (v1's multi-task)")]
ARM_ORDER = ["none", "maml", "maml-all", "multitask"]
ARM_LABEL = {"none": "no priming", "maml": "MAML", "maml-all": "MAML inner=all", "multitask": "multi-task"}
PE_LABEL = {"adapter": "adapter", "prefix": "prefix", "lora": "LoRA"}


def warn(msg):
    print("report: " + msg, file=sys.stderr)


# ---------------------------------------------------------------- statistics

def betacf(a, b, x):
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def betainc(a, b, x):
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbt) * betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * betacf(b, a, 1 - x) / b


def t_two_sided_p(t, df):
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    if not math.isfinite(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile_975(df):
    """Two-sided 95% critical value, by bisection on t_two_sided_p."""
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_two_sided_p(mid, df) > 0.05:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def paired(diffs):
    """mean, std, 95% CI half-width, p (paired t-test), wins for a list of paired differences."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    out = {"n": n, "mean": float(d.mean()) if n else float("nan"), "wins": int((d > 0).sum())}
    if n >= 2:
        sd = float(d.std(ddof=1))
        out["std"] = sd
        se = sd / math.sqrt(n)
        out["ci95"] = t_quantile_975(n - 1) * se
        out["p"] = t_two_sided_p(out["mean"] / se, n - 1) if se > 0 else (0.0 if out["mean"] else 1.0)
    else:
        out["std"] = out["ci95"] = out["p"] = float("nan")
    return out


def holm(ps):
    """Holm's step-down adjustment of a family of p-values (same order as given): the i-th
    smallest p is multiplied by (m - i + 1), made monotone, capped at 1. Controls the chance of
    any false finding in the family at the nominal level."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adj, run_max = [1.0] * m, 0.0
    for rank, i in enumerate(order):
        run_max = max(run_max, min(1.0, (m - rank) * ps[i]))
        adj[i] = run_max
    return adj


# ---------------------------------------------------------------- reading the run

def cells_in(run):
    found = set()
    for sub in ("prime", "finetune", "evaluate", "failed"):
        d = os.path.join(run, sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                m = CELL.match(name)
                if m:
                    found.add((m["pe"], m["arm"], int(m["seed"])))
    return found


def read_results(path):
    with open(path) as f:
        r = json.load(f)
    if r.get("format") != "peprime-results-1":
        raise ValueError("format %r, expected peprime-results-1" % r.get("format"))
    return {lang: v for lang, v in r["languages"].items()}


def read_log(path, names):
    """The /log series of a checkpoint as numpy arrays (missing series are left out)."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        if "log" not in f:
            return out
        for n in names:
            if n in f["log"]:
                out[n] = np.asarray(f["log"][n][...], dtype=float)
    return out


def read_task_parts(path):
    """{lang: {dataset name: float64 array}} of /tasks/<lang> and of /tasks/<lang>.start (the
    state that language's last episode started its inner loop from), as two dicts."""
    import h5py
    states, starts = {}, {}
    with h5py.File(path, "r") as f:
        if "tasks" not in f:
            return states, starts
        for key in sorted(f["tasks"].keys()):
            g = f["tasks"][key]
            arrs = {n: np.asarray(g[n][...], dtype=np.float64).ravel() for n in sorted(g.keys())}
            if key.endswith(".start"):
                starts[key[:-len(".start")]] = arrs
            else:
                states[key] = arrs
    return states, starts


def read_task_updates(path, part=None):
    """{lang: flat float64 vector} and whether they are updates. Each language's update is
    /tasks/<lang> minus /tasks/<lang>.start, the state that episode's inner loop actually
    started from (not /pe: v1 subtracted /pe, which is the run.seed initialisation and not the
    inner loop's start, so every "update" carried the same offset). When any language lacks
    its start (files written before the starts were kept) the raw states are returned and the
    second value is False. part: None for every tensor, "head" for the tagging head
    (classifier.*) only, "pe" for the PE modules only."""
    return task_updates(*read_task_parts(path), part)


def task_updates(states, starts, part=None):
    """read_task_updates on read_task_parts' two dicts."""
    keep = lambda n: part is None or (n.startswith("classifier") == (part == "head"))
    flat = lambda arrs: np.concatenate([a for n, a in arrs.items() if keep(n)] or [np.zeros(0)])
    if states and all(l in starts and starts[l].keys() == v.keys() and
                      all(starts[l][n].shape == v[n].shape for n in v) for l, v in states.items()):
        return {l: flat(v) - flat(starts[l]) for l, v in states.items()}, True
    return {l: flat(v) for l, v in states.items()}, False


def update_summary(path):
    """Per part of the task states ("head", "pe"): the mean norm of the languages' inner-loop
    updates and the mean cosine between the updates of two languages. {} when the file has no
    per-task starts."""
    out, parts = {}, read_task_parts(path)
    for part in ("head", "pe"):
        ups, deltas = task_updates(*parts, part)
        if not deltas or len(ups) < 2:
            return {}
        X = np.stack([ups[l] for l in sorted(ups)])
        n = np.linalg.norm(X, axis=1)
        cos = [X[i] @ X[j] / (n[i] * n[j]) for i in range(len(X)) for j in range(i + 1, len(X)) if n[i] * n[j] > 0]
        out[part + "_update"] = float(n.mean())
        if cos:
            out[part + "_cosine"] = float(np.mean(cos))
    return out


def status_of(run, cell):
    """('ok', None) or (problem, detail)."""
    failed = os.path.join(run, "failed", cell)
    if os.path.exists(failed):
        with open(failed) as f:
            return "failed", f.read().strip()
    res = os.path.join(run, "evaluate", cell, "results.json")
    if os.path.exists(res):
        return "ok", None
    pe, arm, _ = cell_key(cell)
    for stage, fname in (("prime", "primed.h5"), ("finetune", "adapted.h5"), ("evaluate", "results.json")):
        if stage == "prime" and arm == "none":
            continue
        if not os.path.exists(os.path.join(run, stage, cell, fname)):
            started = os.path.isdir(os.path.join(run, stage, cell))
            return "missing", "%s %s" % (stage, "interrupted or running" if started else "not run")
    return "missing", "?"


def cell_name(pe, arm, seed):
    return "%s-%s-s%d" % (pe, arm, seed)


def cell_key(cell):
    m = CELL.match(cell)
    return m["pe"], m["arm"], int(m["seed"])


# ---------------------------------------------------------------- tables

def fmt_ms(vals):
    if not vals:
        return "n/a"
    a = np.asarray(vals)
    if len(a) == 1:
        return "%.2f (n=1)" % a[0]
    return "%.2f ± %.2f" % (a.mean(), a.std(ddof=1))


def build(run, pes, arms, seeds):
    f1 = {}      # (pe, arm, seed) -> {lang: f1 in %}
    status = {}
    langs = []
    for pe in pes:
        for arm in arms:
            for seed in seeds:
                c = cell_name(pe, arm, seed)
                st, detail = status_of(run, c)
                if st == "ok":
                    try:
                        r = read_results(os.path.join(run, "evaluate", c, "results.json"))
                    except (OSError, ValueError, KeyError) as e:
                        st, detail = "unreadable", "evaluate/%s/results.json: %s" % (c, e)
                    else:
                        f1[(pe, arm, seed)] = {k: 100.0 * v["f1"] for k, v in r.items()}
                        for k in r:
                            if k not in langs:
                                langs.append(k)
                status[c] = (st, detail)
    return f1, status, langs


def average(d, langs):
    vals = [d[k] for k in langs if k in d]
    return sum(vals) / len(vals) if len(vals) == len(langs) else None


def row_value(d, row, langs):
    """One run's F1 for a table row: a language, or "average" over the targets."""
    return average(d, langs) if row == "average" else d.get(row)


def results_table(f1, pes, arms, seeds, langs, labels=None):
    cols = [(pe, arm) for pe in pes for arm in arms]
    rows = langs + ["average"]
    cell = {}
    for (pe, arm) in cols:
        for row in rows:
            vals = []
            for s in seeds:
                d = f1.get((pe, arm, s))
                if d is None:
                    continue
                v = row_value(d, row, langs)
                if v is not None:
                    vals.append(v)
            cell[(row, pe, arm)] = vals
    head = (lambda pe, arm: labels.get(arm, arm)) if labels else (lambda pe, arm: "%s %s" % (PE_LABEL.get(pe, pe), ARM_LABEL[arm]))
    lines = ["| target | " + " | ".join(head(pe, arm) for pe, arm in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for row in rows:
        best = {}
        for pe in pes:
            means = [(np.mean(cell[(row, pe, a)]), a) for a in arms if cell[(row, pe, a)]]
            if means:
                best[pe] = max(means)[1]
        out = []
        for pe, arm in cols:
            txt = fmt_ms(cell[(row, pe, arm)])
            out.append("**%s**" % txt if best.get(pe) == arm and len(arms) > 1 else txt)
        lines.append("| %s | %s |" % ("**average**" if row == "average" else row, " | ".join(out)))
    return "\n".join(lines), cell


def fmt_p(p):
    if not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else "%.3f" % p


def source_dev_table(run, pes, arms, seeds):
    """Best English (source) dev F1 per arm and PE method: the maximum of /log/dev_f1 of each
    adapted.h5, i.e. the model that was kept. Tells whether an arm only transfers better or
    also fits the source language better."""
    rows = []
    for pe in pes:
        cells = []
        for arm in arms:
            vals = []
            for s in seeds:
                path = os.path.join(run, "finetune", cell_name(pe, arm, s), "adapted.h5")
                if not os.path.exists(path):
                    continue
                try:
                    log = read_log(path, ["dev_f1"])
                except (OSError, KeyError) as e:
                    warn("cannot read /log of %s: %s" % (path, e))
                    continue
                d = log.get("dev_f1")
                if d is not None and len(d) and np.nanmax(d) >= 0:
                    vals.append(100.0 * float(np.nanmax(d)))
            cells.append(fmt_ms(vals))
        rows.append("| %s | %s |" % (PE_LABEL.get(pe, pe), " | ".join(cells)))
    head = "| PE method | " + " | ".join(ARM_LABEL[a] for a in arms) + " |"
    return "\n".join([head, "|---|" + "---:|" * len(arms)] + rows)


def gains_table(f1, pes, arms, seeds, langs):
    """Paired comparison over seeds of each arm against 'none' (same seed = same fine-tuning
    data order and PE initialisation)."""
    rows, lines = [], []
    if "none" not in arms:
        return "", rows
    lines.append("| PE method | arm | average gain (F1) | 95% CI | paired t-test p | seeds better | "
                 + " | ".join(langs) + " |")
    lines.append("|---|---|---:|---:|---:|---:|" + "---:|" * len(langs))
    for pe in pes:
        for arm in arms:
            if arm == "none":
                continue
            per = {}
            for row in langs + ["average"]:
                diffs = []
                for s in seeds:
                    a, b = f1.get((pe, arm, s)), f1.get((pe, "none", s))
                    if a is None or b is None:
                        continue
                    va = row_value(a, row, langs)
                    vb = row_value(b, row, langs)
                    if va is not None and vb is not None:
                        diffs.append(va - vb)
                per[row] = paired(diffs)
                rows.append({"pe": pe, "arm": arm, "language": row, **per[row]})
            g = per["average"]
            if g["n"] == 0:
                lines.append("| %s | %s | n/a | | | | %s |" % (pe, ARM_LABEL[arm], " | ".join("" for _ in langs)))
                continue
            lines.append("| %s | %s | %+.2f | %s | %s | %d/%d | %s |" % (
                PE_LABEL.get(pe, pe), ARM_LABEL[arm], g["mean"],
                "±%.2f" % g["ci95"] if math.isfinite(g["ci95"]) else "n/a",
                fmt_p(g["p"]), g["wins"], g["n"],
                " | ".join("%+.2f" % per[l]["mean"] if per[l]["n"] else "n/a" for l in langs)))
    return "\n".join(lines), rows


def timings_table(run):
    """Mean wall time per stage and arm from RUN/timings.csv (written by scripts/experiment.sh;
    absent for Slurm runs, whose times are in the job accounting)."""
    path = os.path.join(run, "timings.csv")
    if not os.path.exists(path):
        return ""
    per, total, n = {}, 0.0, 0
    try:
        with open(path) as f:
            for r in csv.DictReader(f):
                if r.get("status") != "ok":
                    continue
                secs = float(r["seconds"])
                m = CELL.match(r["cell"])
                arm = m["arm"] if m else "-"
                per.setdefault((r["stage"], arm), []).append(secs)
                total += secs
                n += 1
    except (OSError, KeyError, ValueError) as e:
        warn("cannot read %s: %s" % (path, e))
        return ""
    order = {"pretrain": 0, "prime": 1, "finetune": 2, "evaluate": 3}
    lines = ["| stage | arm | runs | mean wall time (s) |", "|---|---|---:|---:|"]
    for (st, arm), v in sorted(per.items(), key=lambda kv: (order.get(kv[0][0], 9), ARM_ORDER.index(kv[0][1])
                                                           if kv[0][1] in ARM_ORDER else -1)):
        lines.append("| %s | %s | %d | %.0f |" % (st, ARM_LABEL.get(arm, arm), len(v), sum(v) / len(v)))
    lines.append("| all stages | | %d | %.0f s summed (%.2f h; stages that ran side by side overlap) |"
                 % (n, total, total / 3600.0))
    return "\n".join(lines)


# ---------------------------------------------------------------- plots

def arm_colors():
    return {"none": "#444444", "maml": "#d62728", "maml-all": "#ff7f0e", "multitask": "#1f77b4"}


def write_md(out, name, md, plots):
    """Appends the plots section to the markdown lines, writes OUT/NAME and prints it."""
    if plots:
        md = md + ["## Plots", ""] + ["![%s](%s)" % (os.path.basename(p)[:-4], os.path.basename(p))
                                      for p in plots] + [""]
    text = "\n".join(md)
    with open(os.path.join(out, name), "w") as f:
        f.write(text)
    print(text)


def save_fig(fig, out, name):
    """Lays out, writes OUT/NAME.png and closes the figure; returns the path."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    path = os.path.join(out, name + ".png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def smooth(y, k):
    """Trailing moving average over k points (over fewer at the start)."""
    if len(y) < 2 or k <= 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    n = np.minimum(np.arange(1, len(y) + 1), k)
    return (c[1:] - c[np.arange(1, len(y) + 1) - n]) / n


def plot_curves(run, out, pes, arms, seeds, stage, fname, series, ylabels, title, skip_none):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    col = arm_colors()
    fig, axes = plt.subplots(len(series), len(pes), figsize=(5.5 * len(pes), 3.6 * len(series)), squeeze=False)
    drawn = 0
    for j, pe in enumerate(pes):
        for arm in arms:
            if skip_none and arm == "none":
                continue
            first = True
            for s in seeds:
                path = os.path.join(run, stage, cell_name(pe, arm, s), fname)
                if not os.path.exists(path):
                    continue
                try:
                    log = read_log(path, ["step"] + series)
                except (OSError, KeyError) as e:
                    warn("cannot read /log of %s: %s" % (path, e))
                    continue
                if "step" not in log:
                    continue
                for i, name in enumerate(series):
                    if name not in log or not len(log[name]):
                        continue
                    y = log[name]
                    ok = np.isfinite(y)
                    if name == "dev_f1":  # -1 marks steps without a dev evaluation
                        ok &= y >= 0
                    x = log["step"][:len(y)][ok]
                    y = y[ok]
                    if name == "dev_f1":
                        y = 100.0 * y
                    if name.endswith("loss"):
                        y = smooth(y, 9)
                    axes[i][j].plot(x, y, color=col[arm], alpha=0.75, lw=1.2,
                                    marker="o" if len(x) < 12 else None, ms=3,
                                    label=ARM_LABEL[arm] if first else None)
                    drawn += 1
                first = False
        for i, name in enumerate(series):
            ax = axes[i][j]
            ax.set_title("%s — %s" % (PE_LABEL.get(pe, pe), title[i]), fontsize=10)
            ax.set_xlabel("step")
            ax.set_ylabel(ylabels[i])
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    path = save_fig(fig, out, "meta_loss" if stage == "prime" else "finetune_loss")
    return path if drawn else None


def plot_f1(out, cell, pes, arms, langs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    col = arm_colors()
    rows = langs + ["average"]
    fig, axes = plt.subplots(1, len(pes), figsize=(6.5 * len(pes), 3.8), squeeze=False)
    width = 0.8 / max(1, len(arms))
    for j, pe in enumerate(pes):
        ax = axes[0][j]
        for a_i, arm in enumerate(arms):
            m = [np.mean(cell[(r, pe, arm)]) if cell[(r, pe, arm)] else np.nan for r in rows]
            e = [np.std(cell[(r, pe, arm)], ddof=1) if len(cell[(r, pe, arm)]) > 1 else 0 for r in rows]
            x = np.arange(len(rows)) + (a_i - (len(arms) - 1) / 2) * width
            ax.bar(x, m, width, yerr=e, color=col[arm], label=ARM_LABEL[arm], capsize=2)
        ax.set_xticks(np.arange(len(rows)))
        ax.set_xticklabels(rows)
        ax.set_ylabel("entity F1 (%)")
        ax.set_title("zero-shot F1 from English — %s" % PE_LABEL.get(pe, pe), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return save_fig(fig, out, "f1_per_language")


def task_cosines(run, pes, seeds, arm="maml"):
    """{(pe, seed): (langs, raw, centred, updates)} from RUN/prime/<pe>-<arm>-s<seed>/primed.h5
    /tasks: the cosine similarity between the languages' per-task PE modules. Every task starts
    its inner loop from its episode's start, so what is compared is the update each language
    made (state - start; `updates` False for files without the starts, which hold raw
    states). raw: the updates themselves; centred: with their mean over languages removed,
    i.e. only what is language-specific."""
    mats = {}
    for pe in pes:
        for s in seeds:
            path = os.path.join(run, "prime", cell_name(pe, arm, s), "primed.h5")
            if not os.path.exists(path):
                continue
            try:
                states, d = read_task_updates(path)
            except (OSError, KeyError) as e:
                warn("cannot read /tasks of %s: %s" % (path, e))
                continue
            if len(states) < 2:
                continue
            ls = sorted(states)
            X = np.stack([states[l] for l in ls])
            pair = []
            for centre in (False, True):
                Y = X - X.mean(axis=0, keepdims=True) if centre else X
                n = np.linalg.norm(Y, axis=1, keepdims=True)
                n[n == 0] = 1
                Y = Y / n
                pair.append(Y @ Y.T)
            mats[(pe, s)] = (ls, pair[0], pair[1], d)
    return mats


def plot_cosine(out, mats, arm="maml"):
    """Heatmaps of task_cosines' matrices averaged over seeds, one row per PE method. Left: the
    languages' inner-loop updates; right: the same with their mean over languages removed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = []
    for pe in sorted({k[0] for k in mats}, key=lambda p: list(PE_LABEL).index(p) if p in PE_LABEL else 9):
        raw, cen, langs, deltas = [], [], None, True
        for (pp, s), (ls, R, C, d) in sorted(mats.items()):
            if pp != pe:
                continue
            if langs is None:
                langs = ls
            if ls != langs:
                warn("%s seed %d has tasks %s, expected %s; skipped" % (pe, s, ls, langs))
                continue
            deltas = deltas and d
            raw.append(R)
            cen.append(C)
        if raw:
            panels.append((pe, langs, np.mean(raw, axis=0), np.mean(cen, axis=0), len(raw), deltas))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 2, figsize=(9.6, 4.2 * len(panels)), squeeze=False)
    for i, (pe, langs, R, Cm, n, deltas) in enumerate(panels):
        what = "inner-loop updates (state - episode start)" if deltas else "inner-loop states"
        seeds_s = "mean of %d seed%s" % (n, "s" if n > 1 else "")
        chance = -1.0 / (len(langs) - 1)
        for j, (M, title) in enumerate(((R, "%s %s: %s\n(cosine, %s)" % (arm, PE_LABEL.get(pe, pe), what, seeds_s)),
                                        (Cm, "%s %s: the same minus their mean over languages\n(cosine, %s; "
                                             "unrelated vectors give %.2f)" % (arm, PE_LABEL.get(pe, pe), seeds_s,
                                                                                chance)))):
            ax = axes[i][j]
            if j == 0 and not deltas:
                # no starts in the file: raw states say nothing about the updates
                ax.axis("off")
                ax.text(0.5, 0.5, "inner-loop starts not stored:\nupdates cannot be measured", ha="center",
                        va="center", fontsize=9)
                continue
            im = ax.imshow(M, vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_xticks(range(len(langs)))
            ax.set_yticks(range(len(langs)))
            ax.set_xticklabels(langs)
            ax.set_yticklabels(langs)
            for a in range(len(langs)):
                for b in range(len(langs)):
                    ax.text(b, a, ("%.3f" if j == 0 else "%.2f") % M[a, b], ha="center", va="center", fontsize=7)
            ax.set_title(title, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
    return save_fig(fig, out, "task_cosine")


# ---------------------------------------------------------------- experiment v2 (long CSV)

def read_long(path):
    """{(base, pe, arm, seed): {language: f1 in %}} from a results_long.csv."""
    need = ["base", "pe", "arm", "seed", "language", "f1"]
    out = {}
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        missing = [c for c in need if c not in (r.fieldnames or [])]
        if missing:
            raise ValueError("%s: columns %s missing (expected %s)" % (path, ", ".join(missing), ",".join(need)))
        for i, row in enumerate(r, start=2):
            try:
                key = (int(row["base"]), row["pe"], row["arm"], int(row["seed"]))
                out.setdefault(key, {})[row["language"]] = float(row["f1"])
            except (TypeError, ValueError) as e:
                raise ValueError("%s line %d: %s" % (path, i, e))
    return out


def v2_order(arms):
    return sorted(arms, key=lambda a: (V2_ARM_ORDER.index(a) if a in V2_ARM_ORDER else 99, a))


def v2_label(arm):
    return V2_ARM_LABEL.get(arm, arm)


def v2_diffs(f1, base, pe, a, b, seeds, langs, row="average"):
    out = []
    for s in seeds:
        x, y = f1.get((base, pe, a, s)), f1.get((base, pe, b, s))
        if x is None or y is None:
            continue
        vx, vy = row_value(x, row, langs), row_value(y, row, langs)
        if vx is not None and vy is not None:
            out.append(vx - vy)
    return out


def mlm_loss_at(run, step, window=100):
    """Mean masked-LM training loss over the `window` steps up to `step`, from the log of
    RUN/pretrain/base.h5 or, for bases taken with --bases-from (no pretraining in this run),
    of the stripped base RUN/bases/base-step<step>.h5, which keeps the log up to its step."""
    paths = [os.path.join(run, "pretrain", "base.h5"), os.path.join(run, "bases", "base-step%d.h5" % step)]
    path = next((p for p in paths if os.path.exists(p)), None)
    if path is None:
        return None
    try:
        log = read_log(path, ["step", "loss"])
    except (OSError, KeyError) as e:
        warn("cannot read /log of %s: %s" % (path, e))
        return None
    if "step" not in log or "loss" not in log:
        return None
    sel = (log["step"] <= step) & (log["step"] > step - window)
    return float(np.mean(log["loss"][sel])) if sel.any() else None


def read_config_attr(path):
    """The resolved INI a checkpoint stores in its root attribute 'config', as {section.key: value}."""
    import h5py
    with h5py.File(path, "r") as f:
        text = f.attrs.get("config", b"")
    text = text.decode() if isinstance(text, bytes) else str(text)
    cfg, sec = {}, ""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            sec = line[1:-1].strip()
        elif "=" in line:
            k, v = line.split("=", 1)
            cfg["%s.%s" % (sec, k.strip())] = v.strip()
    return cfg


def priming_budget(cfg):
    """(passes, encoder-gradient sentences) per meta-step from a prime stage's config; a pass
    is one forward + backward of one support- or query-sized batch."""
    g = lambda k, d: cfg.get(k, d)
    method, k = g("maml.method", "maml"), int(g("maml.inner_steps", "1"))
    order, m = int(g("maml.order", "1")), int(g("maml.meta_batch", "4"))
    q, sup = int(g("maml.query_size", "8")), int(g("maml.support_size", "8"))
    if method == "multitask-matched":
        return m * 1, m * q
    if method == "multitask":
        return m * 2, m * (q + sup)
    return m * (k + 1 + (2 * k if order == 2 else 0)), m * q


V2_CELL_COLS = ["base", "pe", "arm", "seed", "dev_f1", "prime_s", "finetune_s", "evaluate_s", "passes_per_step",
                "encoder_sentences_per_step", "meta_steps", "head_update", "pe_update", "head_cosine", "pe_cosine"]


def v2_cell_facts(run, keys):
    """{(base, pe, arm, seed): {column of V2_CELL_COLS: value}} of the cells in `keys` that RUN
    holds: the best English dev F1 (%) of the kept model (finetune adapted.h5 /log/dev_f1), wall
    seconds per stage (RUN/timings.csv; arm mlm primes by pretraining) and the priming budget
    per meta-step read from primed.h5's stored config, and from its /tasks the size and the
    cross-language cosine of the last inner-loop updates, head and PE modules apart
    (update_summary)."""
    facts = {}
    path = os.path.join(run, "timings.csv")
    cell = re.compile(r"^b(?P<b>\d+)/(?P<pe>[a-z]+)-(?P<arm>[a-z][a-z0-9-]*)-s(?P<s>\d+)$")
    if os.path.exists(path):
        try:
            with open(path) as f:
                for r in csv.DictReader(f):
                    m = cell.match(r.get("cell", ""))
                    if r.get("status") == "ok" and m:
                        st = "prime" if r["stage"] == "pretrain" else r["stage"]
                        key = (int(m["b"]), m["pe"], m["arm"], int(m["s"]))
                        facts.setdefault(key, {})[st + "_s"] = float(r["seconds"])
        except (OSError, KeyError, ValueError) as e:
            warn("cannot read %s: %s" % (path, e))
    facts = {k: v for k, v in facts.items() if k in keys}
    for key in keys:
        b, pe, arm, seed = key
        c = cell_name(pe, arm, seed)
        ad = os.path.join(run, "b%d" % b, "finetune", c, "adapted.h5")
        if os.path.exists(ad):
            try:
                d = read_log(ad, ["dev_f1"]).get("dev_f1")
            except (OSError, KeyError) as e:
                warn("cannot read /log of %s: %s" % (ad, e))
                d = None
            if d is not None and len(d) and np.nanmax(d) >= 0:
                facts.setdefault(key, {})["dev_f1"] = 100.0 * float(np.nanmax(d))
        pr = os.path.join(run, "b%d" % b, "prime", c, "primed.h5")
        if arm not in ("none", "mlm") and os.path.exists(pr):
            try:
                cfg = read_config_attr(pr)
                passes, sentences = priming_budget(cfg)
                facts.setdefault(key, {}).update(passes_per_step=passes, encoder_sentences_per_step=sentences,
                                                 meta_steps=float(cfg.get("optim.steps", "nan")))
            except (OSError, ValueError, KeyError) as e:
                warn("cannot read the config of %s: %s" % (pr, e))
            try:
                facts.setdefault(key, {}).update(update_summary(pr))
            except (OSError, KeyError) as e:
                warn("cannot read /tasks of %s: %s" % (pr, e))
    return facts


def v2_cells_table(out, run, keys):
    """The per-cell facts (V2_CELL_COLS) of every cell of the long CSV: what RUN holds, over what
    OUT/cells_v2.csv kept from the reports of earlier stretches of work (whose RUN may be on
    another machine); written back to OUT/cells_v2.csv. Returns {key: {column: value}}."""
    path = os.path.join(out, "cells_v2.csv")
    prev = {}
    if os.path.exists(path):
        try:
            with open(path, newline="") as f:
                for r in csv.DictReader(f):
                    k = (int(r["base"]), r["pe"], r["arm"], int(r["seed"]))
                    prev[k] = {c: float(r[c]) for c in V2_CELL_COLS[4:] if r.get(c) not in (None, "")}
        except (OSError, KeyError, ValueError) as e:
            warn("cannot read %s (%s): its cells' dev F1 and wall times are left out" % (path, e))
            prev = {}
    here = {}
    if run:
        try:
            here = v2_cell_facts(run, set(keys))
        except ImportError as e:
            warn("no English dev F1 or priming budget from %s: %s" % (run, e))
    table = {}
    for k in sorted(keys):
        table[k] = dict(prev.get(k, {}))
        table[k].update(here.get(k, {}))
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(V2_CELL_COLS)
        for k, v in table.items():
            w.writerow(list(k) + ["%.6g" % v[c] if c in v else "" for c in V2_CELL_COLS[4:]])
    return table


def v2_task_cosines(out, rd, pes, seeds):
    """task_cosines of the strongest base's maml cells in RD, over those OUT/task_cosine.csv kept
    from earlier stretches' reports (pe, seed pairs RD does not hold); written back to
    OUT/task_cosine.csv (pe, seed, updates, lang_a, lang_b, cosine, cosine_centred)."""
    path = os.path.join(out, "task_cosine.csv")
    mats = {}
    if os.path.exists(path):
        try:
            rows = {}
            with open(path, newline="") as f:
                for r in csv.DictReader(f):
                    rows.setdefault((r["pe"], int(r["seed"])), []).append(r)
            for k, rs in rows.items():
                ls = sorted({r["lang_a"] for r in rs})
                R, C = np.zeros((len(ls), len(ls))), np.zeros((len(ls), len(ls)))
                for r in rs:
                    i, j = ls.index(r["lang_a"]), ls.index(r["lang_b"])
                    R[i, j], C[i, j] = float(r["cosine"]), float(r["cosine_centred"])
                mats[k] = (ls, R, C, rs[0]["updates"] == "1")
        except (OSError, KeyError, ValueError) as e:
            warn("cannot read %s (%s): the cosines of earlier stretches are left out" % (path, e))
            mats = {}
    try:
        if rd:
            mats.update(task_cosines(rd, pes, seeds))
    except ImportError as e:
        warn("no task cosines from %s: %s" % (rd, e))
    mats = {k: v for k, v in mats.items() if k[0] in pes and k[1] in seeds}
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["pe", "seed", "updates", "lang_a", "lang_b", "cosine", "cosine_centred"])
        for (pe, seed), (ls, R, C, d) in sorted(mats.items()):
            for i, a in enumerate(ls):
                for j, b in enumerate(ls):
                    w.writerow([pe, seed, int(bool(d)), a, b, "%.6f" % R[i, j], "%.6f" % C[i, j]])
    return mats


def plot_gain_vs_base(out, gains, bases, base_x, xlabel, stronger_right=False):
    """Average priming gain (mean ± 95% CI over seeds) of each arm against base strength. Arms
    are drawn side by side around each base (a small offset) so that their intervals do not hide
    each other, in one colour per arm across the panels; every panel spans all bases."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pes = sorted({pe for (pe, _, _) in gains})
    fig, axes = plt.subplots(1, len(pes), figsize=(6.0 * len(pes), 4.0), squeeze=False)
    cmap = plt.get_cmap("tab10")
    every = v2_order({a for (_, a, _) in gains})
    xs = [base_x[b] for b in bases]
    span = (max(xs) - min(xs)) or 1.0
    step = 0.015 * span
    for j, pe in enumerate(pes):
        ax = axes[0][j]
        arms = v2_order({a for (p, a, _) in gains if p == pe})
        for i, arm in enumerate(arms):
            pts = [(base_x[b], gains[(pe, arm, b)]) for b in bases if (pe, arm, b) in gains and gains[(pe, arm, b)]["n"]]
            if not pts:
                continue
            dx = (i - (len(arms) - 1) / 2.0) * step
            x = [p[0] + dx for p in pts]
            y = [p[1]["mean"] for p in pts]
            e = [p[1]["ci95"] if math.isfinite(p[1]["ci95"]) else 0.0 for p in pts]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=cmap(every.index(arm) % 10), label=v2_label(arm))
        ax.axhline(0.0, color="#888888", lw=0.8)
        pad = 0.06 * span + step * len(every) / 2.0
        ax.set_xlim((max(xs) + pad, min(xs) - pad) if stronger_right else (min(xs) - pad, max(xs) + pad))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("gain over no priming, average F1 (points)")
        ax.set_title("priming gain vs base strength — %s" % PE_LABEL.get(pe, pe), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_fig(fig, out, "gain_vs_base")


def updates_table(cells):
    """What the inner loop moved, per base, PE method and MAML-type arm (mean over seeds of
    update_summary's figures in cells_v2.csv)."""
    keys = sorted({(b, pe, a) for (b, pe, a, _), c in cells.items() if "pe_update" in c},
                  key=lambda k: (-k[0], k[1], V2_ARM_ORDER.index(k[2]) if k[2] in V2_ARM_ORDER else 99))
    if not keys:
        return []
    md = ["## What the inner loop moved", "",
          "From each primed model's /tasks: every priming language's last episode, its state after the inner "
          "loop minus the state that loop started from. |update| is the update's Euclidean norm (mean over "
          "the languages), cosine the mean cosine between two languages' updates; the tagging head "
          "(classifier.*) and the PE modules apart; mean over seeds. Multi-task matched has no inner loop, "
          "so its updates are 0.", "",
          "| base | PE method | arm | seeds | head |update| | PE |update| | head cosine | PE cosine |",
          "|---:|---|---|---:|---:|---:|---:|---:|"]
    for b, pe, a in keys:
        cs = [c for (bb, pp, aa, _), c in cells.items() if (bb, pp, aa) == (b, pe, a) and "pe_update" in c]
        m = lambda col: ("%.3g" % np.mean([c[col] for c in cs if col in c])) if any(col in c for c in cs) else "n/a"
        md.append("| %d | %s | %s | %d | %s | %s | %s | %s |" % (b, pe, v2_label(a), len(cs), m("head_update"),
                                                               m("pe_update"), m("head_cosine"), m("pe_cosine")))
    md.append("")
    return md


def multiple_comparisons(gain_rows):
    """The family of average-F1 tests (every gain over no priming and every arm contrast, all
    bases and PE methods): how many have p < 0.05, how many chance alone would give, and which
    survive Holm's adjustment for the family. Sets r["p_holm"] on the family's rows."""
    fam = [r for r in gain_rows if r["language"] == "average" and math.isfinite(r["p"])]
    if not fam:
        return []
    for r, a in zip(fam, holm([r["p"] for r in fam])):
        r["p_holm"] = a
    nominal = sum(r["p"] < 0.05 for r in fam)
    kept = sorted((r for r in fam if r["p_holm"] < 0.05), key=lambda r: r["p"])
    md = ["## Multiple comparisons", "",
          "The tables above hold %d tests of average F1 (gains over no priming and arm contrasts, all bases and "
          "PE methods); %d of them have p < 0.05, where chance alone would give about %.1f. After Holm's "
          "adjustment for all %d (column p_holm of gains_v2.csv), %s" % (
              len(fam), nominal, 0.05 * len(fam), len(fam),
              "none has p < 0.05." if not kept else "%d ha%s p < 0.05:" % (len(kept), "s" if len(kept) == 1 else "ve")),
          ""]
    if kept:
        md += ["| base | PE method | test | difference | p | p (Holm) |", "|---:|---|---|---:|---:|---:|"]
        for r in kept:
            md.append("| %d | %s | %s − %s | %+.2f | %s | %s |" % (r["base"], r["pe"], r["arm"], r["versus"], r["mean"],
                                                                 fmt_p(r["p"]), fmt_p(r["p_holm"])))
        md.append("")
    md += ["The per-target gains are %d further tests, for reading only." % sum(
        1 for r in gain_rows if r["language"] != "average"), ""]
    return md


def report_v2(run, long_csv, out, exp):
    try:
        f1 = read_long(long_csv)
    except (OSError, ValueError) as e:
        warn("cannot read %s: %s" % (long_csv, e))
        return 2
    if not f1:
        warn("%s has no rows" % long_csv)
        return 2
    os.makedirs(out, exist_ok=True)
    bases = sorted({k[0] for k in f1})
    langs = []
    for d in f1.values():
        for l in d:
            if l not in langs and l != "average":
                langs.append(l)
    sha = {}
    bcsv = os.path.join(run, "bases.csv")
    if os.path.exists(bcsv):
        with open(bcsv, newline="") as f:
            for r in csv.DictReader(f):
                sha[int(r["base"])] = r.get("sha256", "")
    loss = {b: mlm_loss_at(run, b) for b in bases}
    md = ["# Priming experiment v2: %s" % (run or long_csv), ""]
    if exp:
        md += ["Job files: `%s`" % exp, ""]
    md += ["%d runs in %s; bases (pretraining steps) %s." % (len(f1), long_csv, ", ".join(map(str, bases))), "",
           "## Bases", "", "| base (pretraining step) | MLM loss (mean of the last 100 steps) | SHA-256 |",
           "|---:|---:|---|"]
    for b in bases:
        md.append("| %d | %s | %s |" % (b, "%.3f" % loss[b] if loss[b] is not None else "n/a",
                                         ("`%s`" % sha[b]) if sha.get(b) else "n/a"))
    md.append("")
    cells = v2_cells_table(out, run, list(f1))
    gains, gain_rows = {}, []
    for b in bases:
        pes = sorted({k[1] for k in f1 if k[0] == b}, key=lambda p: ["adapter", "prefix", "lora"].index(p)
                     if p in ("adapter", "prefix", "lora") else 9)
        for pe in pes:
            arms = v2_order({k[2] for k in f1 if k[0] == b and k[1] == pe})
            seeds = sorted({k[3] for k in f1 if k[0] == b and k[1] == pe})
            sub = {(pe, a, s): d for (bb, pp, a, s), d in f1.items() if bb == b and pp == pe}
            table, _ = results_table(sub, [pe], arms, seeds, langs, V2_ARM_LABEL)
            md += ["## Base %d, %s: zero-shot entity F1 (%%), mean ± std over seeds" % (b, PE_LABEL.get(pe, pe)), "",
                   table, ""]
            if "none" in arms:
                md += ["Gain over no priming (average F1, paired by seed; 95% CI and p of a paired t-test):", "",
                       "| arm | gain | 95% CI | p | seeds better | " + " | ".join(langs) + " |",
                       "|---|---:|---:|---:|---:|" + "---:|" * len(langs)]
                for a in arms:
                    if a == "none":
                        continue
                    g = paired(v2_diffs(f1, b, pe, a, "none", seeds, langs))
                    gains[(pe, a, b)] = g
                    per = {l: paired(v2_diffs(f1, b, pe, a, "none", seeds, langs, l)) for l in langs}
                    for l, gl in list(per.items()) + [("average", g)]:
                        gain_rows.append({"base": b, "pe": pe, "arm": a, "versus": "none", "language": l, **gl})
                    if not g["n"]:
                        continue
                    md.append("| %s | %+.2f | %s | %s | %d/%d | %s |" % (
                        v2_label(a), g["mean"], "±%.2f" % g["ci95"] if math.isfinite(g["ci95"]) else "n/a",
                        fmt_p(g["p"]), g["wins"], g["n"],
                        " | ".join("%+.2f" % per[l]["mean"] if per[l]["n"] else "n/a" for l in langs)))
                md.append("")
            cons = [(x, y, why) for (x, y, why) in V2_CONTRASTS if x in arms and y in arms]
            if cons:
                md += ["Arm contrasts (average F1, paired by seed):", "",
                       "| contrast | isolates | difference | 95% CI | p | seeds |", "|---|---|---:|---:|---:|---:|"]
                for x, y, why in cons:
                    g = paired(v2_diffs(f1, b, pe, x, y, seeds, langs))
                    gain_rows.append({"base": b, "pe": pe, "arm": x, "versus": y, "language": "average", **g})
                    if g["n"]:
                        md.append("| %s − %s | %s | %+.2f | %s | %s | %d/%d |" % (
                            x, y, why, g["mean"], "±%.2f" % g["ci95"] if math.isfinite(g["ci95"]) else "n/a",
                            fmt_p(g["p"]), g["wins"], g["n"]))
                md.append("")
            dev = [[cells[(b, pe, a, s)]["dev_f1"] for s in seeds if "dev_f1" in cells.get((b, pe, a, s), {})]
                   for a in arms]
            if any(dev):
                md += ["English dev F1 of the kept model: " +
                       "; ".join("%s %s" % (v2_label(a), fmt_ms(d)) for a, d in zip(arms, dev)) + ".", ""]
    md += multiple_comparisons(gain_rows)
    with open(os.path.join(out, "gains_v2.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["base", "pe", "arm", "versus", "language", "n", "mean_gain", "std", "ci95", "p_paired_t",
                    "seeds_better", "p_holm"])
        for r in gain_rows:
            w.writerow([r["base"], r["pe"], r["arm"], r["versus"], r["language"], r["n"], "%.4f" % r["mean"],
                        "%.4f" % r["std"], "%.4f" % r["ci95"], "%.4f" % r["p"], r["wins"],
                        "%.4f" % r["p_holm"] if "p_holm" in r else ""])
    # wall time and compute per arm
    arms_all = v2_order({k[2] for k in f1})
    md += ["## Wall time and compute per arm", "",
           "Wall times: median seconds per run of each stage over the arm's cells (RUN/timings.csv, one BLAS "
           "thread, two cells at a time; the median, so that a cell paused or slowed by other work does not "
           "move it). Priming compute per meta-step from the primed model's stored config: passes = forward + "
           "backward passes of one support- or query-sized batch; encoder sentences = sentences whose loss "
           "the encoder update is the gradient of.", "",
           "| arm | prime (s) | finetune (s) | evaluate (s) | passes / meta-step | encoder sentences / meta-step | meta-steps |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for a in arms_all:
        mine = [cells[k] for k in sorted(cells, key=lambda k: -k[0]) if k[2] == a]  # strongest base first
        budget = next(((("%g" % c["passes_per_step"]), "%g" % c["encoder_sentences_per_step"], "%g" % c["meta_steps"])
                       for c in mine if "passes_per_step" in c), ("", "", ""))
        t = lambda st: "%.0f" % np.median([c[st + "_s"] for c in mine if st + "_s" in c]) \
            if any(st + "_s" in c for c in mine) else "n/a"
        md.append("| %s | %s | %s | %s | %s | %s | %s |" % (v2_label(a), t("prime"), t("finetune"), t("evaluate"),
                                                           *budget))
    md.append("")
    md += updates_table(cells)
    plots = []
    xlabel, base_x, by_loss = "pretraining step of the base", {b: b for b in bases}, False
    if all(loss[b] is not None for b in bases):
        xlabel, base_x, by_loss = "MLM loss of the base (stronger to the right)", {b: loss[b] for b in bases}, True
    try:
        if gains:
            plots.append(plot_gain_vs_base(out, gains, bases, base_x, xlabel, stronger_right=by_loss))
        rd = os.path.join(run, "b%d" % bases[-1]) if run else ""
        pes = sorted({k[1] for k in f1 if k[0] == bases[-1]})
        seeds = sorted({k[3] for k in f1 if k[0] == bases[-1]})
        plots.append(plot_cosine(out, v2_task_cosines(out, rd, pes, seeds)))
    except ImportError as e:
        warn("no plots: %s (install python3-h5py and python3-matplotlib)" % e)
    plots = [p for p in plots if p]
    write_md(out, "results_v2.md", md, plots)
    print("report: wrote %s (results_v2.md, gains_v2.csv, %d plots)" % (out, len(plots)))
    return 0


# ---------------------------------------------------------------- main

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--out")
    ap.add_argument("--pe")
    ap.add_argument("--arms")
    ap.add_argument("--seeds")
    ap.add_argument("--exp", help="the experiment's job folder (named in the report)")
    ap.add_argument("--long", help="experiment v2: a results_long.csv (default RUN/results_long.csv when present)")
    a = ap.parse_args(argv)
    run = a.run
    long_csv = a.long or (os.path.join(run, "results_long.csv") if os.path.isdir(run) else None)
    if long_csv and (a.long or os.path.exists(long_csv)):
        if a.long and not os.path.exists(a.long):
            warn("--long %s: file not found" % a.long)
            return 2
        return report_v2(run if os.path.isdir(run) else "", long_csv, a.out or os.path.join(run, "report"), a.exp)
    if not os.path.isdir(run):
        warn("results directory '%s' not found" % run)
        return 2
    found = cells_in(run)
    if not found and not (a.pe and a.arms and a.seeds):
        warn("no runs under %s (expected prime/, finetune/, evaluate/ with <pe>-<arm>-s<seed> folders)" % run)
        return 2

    def pick(opt, idx, order=None):
        if opt:
            return [int(x) if idx == 2 else x for x in opt.split(",") if x]
        vals = sorted({c[idx] for c in found})
        return sorted(vals, key=order.index) if order else vals

    try:
        pes = pick(a.pe, 0)
        arms = pick(a.arms, 1, ARM_ORDER)
        seeds = pick(a.seeds, 2)
    except ValueError as e:
        warn("bad --seeds: %s" % e)
        return 2
    for arm in arms:
        if arm not in ARM_ORDER:
            warn("unknown arm '%s' (choices: %s)" % (arm, ", ".join(ARM_ORDER)))
            return 2
    out = a.out or os.path.join(run, "report")
    os.makedirs(out, exist_ok=True)

    f1, status, langs = build(run, pes, arms, seeds)
    bad = {c: s for c, s in status.items() if s[0] != "ok"}
    table, cell = results_table(f1, pes, arms, seeds, langs)
    gains, gain_rows = gains_table(f1, pes, arms, seeds, langs)

    with open(os.path.join(out, "results_long.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["pe", "arm", "seed", "language", "f1"])
        for (pe, arm, s), d in sorted(f1.items()):
            for lang in langs:
                if lang in d:
                    w.writerow([pe, arm, s, lang, "%.4f" % d[lang]])
            avg = average(d, langs)
            if avg is not None:
                w.writerow([pe, arm, s, "average", "%.4f" % avg])
    with open(os.path.join(out, "gains.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["pe", "arm", "language", "n", "mean_gain", "std", "ci95", "p_paired_t", "seeds_better"])
        for r in gain_rows:
            w.writerow([r["pe"], r["arm"], r["language"], r["n"], "%.4f" % r["mean"], "%.4f" % r["std"],
                        "%.4f" % r["ci95"], "%.4f" % r["p"], r["wins"]])

    plots = []
    try:
        plots.append(plot_curves(run, out, pes, arms, seeds, "prime", "primed.h5", ["meta_loss"],
                                 ["query loss (moving avg. of 9)"], ["priming meta-loss"], True))
        plots.append(plot_curves(run, out, pes, arms, seeds, "finetune", "adapted.h5", ["loss", "dev_f1"],
                                 ["training loss (moving avg. of 9)", "English dev F1 (%)"], ["English PE fine-tuning loss", "English dev F1"],
                                 False))
        if cell and langs:
            plots.append(plot_f1(out, cell, pes, arms, langs))
        plots.append(plot_cosine(out, task_cosines(run, pes, seeds)))
    except ImportError as e:
        warn("no plots: %s (install python3-h5py and python3-matplotlib)" % e)
    plots = [p for p in plots if p]

    n_ok = sum(1 for s in status.values() if s[0] == "ok")
    md = ["# Priming experiment: %s" % run, ""]
    if a.exp:
        md += ["Job files: `%s`" % a.exp, ""]
    md += ["%d of %d runs complete (PE methods %s; arms %s; seeds %s)." % (
        n_ok, len(status), ", ".join(pes), ", ".join(arms), ", ".join(map(str, seeds))), ""]
    md += ["## Zero-shot entity F1 (%), mean ± std over seeds", "",
           "Fine-tuned on English, evaluated on the targets' test splits; **bold** = best arm of the "
           "row for that PE method; average = mean over the targets of each run.", "", table, ""]
    try:
        md += ["## English dev F1 (%) of the kept model (source language)", "",
               source_dev_table(run, pes, arms, seeds), ""]
    except ImportError as e:
        warn("no English dev table: %s" % e)
    if gains:
        md += ["## Gain over no priming, paired by seed", "",
               "Difference in F1 (points) against the no-priming run of the same seed and PE method; "
               "95% CI and p from a paired t-test over seeds.", "", gains, ""]
    tt = timings_table(run)
    if tt:
        md += ["## Wall times (RUN/timings.csv)", "", tt, ""]
    if bad:
        md += ["## Missing or failed runs", ""]
        for c, (st, detail) in sorted(bad.items()):
            md.append("- `%s`: %s — %s" % (c, st, detail))
        md.append("")
    write_md(out, "results.md", md, plots)
    for c, (st, detail) in sorted(bad.items()):
        warn("%s: %s (%s)" % (c, st, detail))
    print("report: wrote %s (results.md, results_long.csv, gains.csv, %d plots)" % (out, len(plots)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
