"""Experiment v2's report for analysis/report.py, from a results_long.csv: per base and PE method
the F1 table, paired gains over no priming and the arm contrasts, Holm's adjustment over the
family, wall time and priming compute per arm, what the inner loop moved, and the plots;
writes results_v2.md and gains_v2.csv (and, through v2_cells, cells_v2.csv and
task_cosine.csv)."""
import csv
import math
import os

import numpy as np

from .cells import PE_LABEL, V2_ARM_ORDER, V2_ARM_LABEL, V2_CONTRASTS, v2_label, v2_order, warn
from .plots import plot_cosine, plot_gain_vs_base
from .read import mlm_loss_at, read_long
from .stats import holm, paired
from .tables import fmt_ms, fmt_p, results_table, row_value, write_md
from .v2_cells import v2_cells_table, v2_task_cosines


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
