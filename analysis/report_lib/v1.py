"""Experiment v1's report for analysis/report.py, from a run folder laid out as prime/, finetune/,
evaluate/ and failed/ with <pe>-<arm>-s<seed> cells: picks the cells (the options or what the
folder holds), then writes results.md, results_long.csv, gains.csv and the plots."""
import csv
import os

from .cells import ARM_ORDER, warn
from .plots import plot_cosine, plot_curves, plot_f1, task_cosines
from .read import cells_in
from .tables import average, build, gains_table, results_table, source_dev_table, timings_table, write_md


def report_v1(run, out_opt, pe_opt, arms_opt, seeds_opt, exp):
    """The report of RUN (an existing folder) into OUT_OPT (default RUN/report); the options are
    report.py's comma-separated --pe, --arms, --seeds (None: the cells found). Returns the exit
    status: 0 every expected run complete, 1 some missing or failed, 2 bad use."""
    found = cells_in(run)
    if not found and not (pe_opt and arms_opt and seeds_opt):
        warn("no runs under %s (expected prime/, finetune/, evaluate/ with <pe>-<arm>-s<seed> folders)" % run)
        return 2

    def pick(opt, idx, order=None):
        if opt:
            return [int(x) if idx == 2 else x for x in opt.split(",") if x]
        vals = sorted({c[idx] for c in found})
        return sorted(vals, key=order.index) if order else vals

    try:
        pes = pick(pe_opt, 0)
        arms = pick(arms_opt, 1, ARM_ORDER)
        seeds = pick(seeds_opt, 2)
    except ValueError as e:
        warn("bad --seeds: %s" % e)
        return 2
    for arm in arms:
        if arm not in ARM_ORDER:
            warn("unknown arm '%s' (choices: %s)" % (arm, ", ".join(ARM_ORDER)))
            return 2
    out = out_opt or os.path.join(run, "report")
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
    if exp:
        md += ["Job files: `%s`" % exp, ""]
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
