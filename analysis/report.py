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


def read_task_updates(path):
    """{lang: flat float64 vector}: how each language's inner loop moved the PE modules, i.e.
    /tasks/<lang>/<row> - /pe/<row> over the PE rows. With maml.pe_init = fresh and an outer
    loop that leaves the PE group alone, /pe is the common start of every inner loop, so the
    difference is exactly the language's adaptation. The second value says whether that
    holds; when it does not (no /pe rows in /tasks) the raw states are returned."""
    import h5py
    states, deltas = {}, True
    with h5py.File(path, "r") as f:
        if "tasks" not in f:
            return states, False
        pe = f["pe"] if "pe" in f else {}
        for lang in sorted(f["tasks"].keys()):
            g = f["tasks"][lang]
            names = sorted(n for n in g.keys() if n in pe)
            if not names:
                deltas = False
                names = sorted(g.keys())
            parts = []
            for n in names:
                v = np.asarray(g[n][...], dtype=np.float64).ravel()
                if deltas:
                    v = v - np.asarray(pe[n][...], dtype=np.float64).ravel()
                parts.append(v)
            states[lang] = np.concatenate(parts)
    return states, deltas


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


def results_table(f1, pes, arms, seeds, langs):
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
    lines = ["| target | " + " | ".join("%s %s" % (PE_LABEL.get(pe, pe), ARM_LABEL[arm]) for pe, arm in cols) + " |",
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
    fig.tight_layout()
    path = os.path.join(out, "%s.png" % ("meta_loss" if stage == "prime" else "finetune_loss"))
    fig.savefig(path, dpi=110)
    plt.close(fig)
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
    fig.tight_layout()
    path = os.path.join(out, "f1_per_language.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cosine(run, out, pes, seeds):
    """Heatmaps of the cosine similarity between the languages' per-task PE states of the MAML
    arm (primed.h5 /tasks), averaged over seeds; one row per PE method. Every task starts its
    inner loop from one shared initialisation, so what is compared is the update each
    language made to the modules (state - start). Left: the updates themselves. Right: the
    updates with their mean over languages removed, i.e. only what is language-specific."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = []
    for pe in pes:
        raw, cen, langs, deltas = [], [], None, True
        for s in seeds:
            path = os.path.join(run, "prime", cell_name(pe, "maml", s), "primed.h5")
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
            if langs is None:
                langs = ls
            if ls != langs:
                warn("%s has tasks %s, expected %s; skipped" % (path, ls, langs))
                continue
            deltas = deltas and d
            X = np.stack([states[l] for l in ls])
            for centre, acc in ((False, raw), (True, cen)):
                Y = X - X.mean(axis=0, keepdims=True) if centre else X
                n = np.linalg.norm(Y, axis=1, keepdims=True)
                n[n == 0] = 1
                Y = Y / n
                acc.append(Y @ Y.T)
        if raw:
            panels.append((pe, langs, np.mean(raw, axis=0), np.mean(cen, axis=0), len(raw), deltas))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 2, figsize=(9.6, 4.2 * len(panels)), squeeze=False)
    for i, (pe, langs, R, Cm, n, deltas) in enumerate(panels):
        what = "updates" if deltas else "states"
        for j, (M, title) in enumerate(((R, "%s %s" % (PE_LABEL.get(pe, pe), what)),
                                        (Cm, "%s %s, mean over languages removed" % (PE_LABEL.get(pe, pe), what)))):
            ax = axes[i][j]
            im = ax.imshow(M, vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_xticks(range(len(langs)))
            ax.set_yticks(range(len(langs)))
            ax.set_xticklabels(langs)
            ax.set_yticklabels(langs)
            for a in range(len(langs)):
                for b in range(len(langs)):
                    ax.text(b, a, ("%.3f" if j == 0 else "%.2f") % M[a, b], ha="center", va="center", fontsize=7)
            ax.set_title("MAML inner-loop %s\n(cosine, mean of %d seed%s)" % (title, n, "s" if n > 1 else ""),
                         fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = os.path.join(out, "task_cosine.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    a = ap.parse_args(argv)
    run = a.run
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
        plots.append(plot_cosine(run, out, pes, seeds))
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
    if plots:
        md += ["## Plots", ""] + ["![%s](%s)" % (os.path.basename(p)[:-4], os.path.basename(p)) for p in plots] + [""]
    text = "\n".join(md)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    for c, (st, detail) in sorted(bad.items()):
        warn("%s: %s (%s)" % (c, st, detail))
    print("report: wrote %s (results.md, results_long.csv, gains.csv, %d plots)" % (out, len(plots)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
