"""The markdown tables of analysis/report.py's v1 report (F1 mean ± std per arm and PE method,
English dev F1, paired gains over no priming, wall times), the number formats v2 shares,
and write_md, which adds the plots section and writes a report's markdown."""
import csv
import math
import os

import numpy as np

from .cells import ARM_LABEL, ARM_ORDER, CELL, PE_LABEL, cell_name, warn
from .read import read_log, read_results, status_of
from .stats import paired


def fmt_ms(vals):
    if not vals:
        return "n/a"
    a = np.asarray(vals)
    if len(a) == 1:
        return "%.2f (n=1)" % a[0]
    return "%.2f ± %.2f" % (a.mean(), a.std(ddof=1))


def fmt_p(p):
    if not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else "%.3f" % p


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


def write_md(out, name, md, plots):
    """Appends the plots section to the markdown lines, writes OUT/NAME and prints it."""
    if plots:
        md = md + ["## Plots", ""] + ["![%s](%s)" % (os.path.basename(p)[:-4], os.path.basename(p))
                                      for p in plots] + [""]
    text = "\n".join(md)
    with open(os.path.join(out, name), "w") as f:
        f.write(text)
    print(text)
