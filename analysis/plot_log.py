#!/usr/bin/env python3
"""Training curves from a stage's log.csv (pretrain, finetune, prime write <out>/log.csv as they
run; docs/logs.md), with the csv module, numpy and matplotlib only — no peprime code, no h5py.

  analysis/plot_log.py RUN/log.csv [MORE/log.csv ...] [-o curves.png] [--smooth N] [--title T]

One PNG with four panels against the step: the loss (with dev_f1 on a second axis for
finetune, support_loss dashed for prime), the learning rate, tokens per second and the
gradient norm (before clipping). Several files are drawn over each other, labelled by their
folder: runs to compare, or a run still going (re-run the script to refresh). Empty cells
(series an older checkpoint lacked) and dev_f1 = -1 (no evaluation at that step) are gaps.
--smooth N adds a running mean over N steps to the loss. Default output: curves.png beside
the first CSV. Exit status 2 for a missing or unreadable file or one without the step, loss
and lr columns.
"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REQUIRED = ("step", "loss", "lr")


def read_log(path):
    """{column: float array} of a log.csv; empty cells are NaN."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or any(c not in rows[0] for c in REQUIRED):
        raise ValueError("%s: no header with the columns %s" % (path, ", ".join(REQUIRED)))
    head, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]  # a line being written is skipped
    cols = {}
    for i, name in enumerate(head):
        cols[name] = np.array([float(r[i]) if r[i] != "" else np.nan for r in body], dtype=np.float64)
    return cols


def running_mean(y, n):
    if n <= 1 or len(y) < n:
        return y
    k = np.ones(n) / n
    ok = np.isfinite(y)
    num = np.convolve(np.where(ok, y, 0.0), k, mode="valid")
    den = np.convolve(ok.astype(np.float64), k, mode="valid")
    out = np.full_like(y, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[n - 1:] = num / den
    return out


def label_of(path, paths):
    if len(paths) == 1:
        return None
    return os.path.basename(os.path.dirname(os.path.abspath(path))) or path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+", help="log.csv files (peprime pretrain / finetune / prime)")
    ap.add_argument("-o", "--out", help="PNG to write (default: curves.png beside the first CSV)")
    ap.add_argument("--smooth", type=int, default=0, help="running mean over N steps on the loss")
    ap.add_argument("--title", help="figure title (default: the first CSV's path)")
    a = ap.parse_args()
    logs = []
    for p in a.csv:
        try:
            logs.append((p, read_log(p)))
        except (OSError, ValueError) as e:
            print("plot_log.py: %s" % e, file=sys.stderr)
            return 2
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(a.csv[0])), "curves.png")

    fig, ax = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    (a_loss, a_lr), (a_tps, a_gn) = ax
    f1_ax = None
    for i, (p, c) in enumerate(logs):
        color = "C%d" % (i % 10)
        lab = label_of(p, a.csv)
        step = c["step"]
        a_loss.plot(step, c["loss"], color=color, lw=1, alpha=0.5 if a.smooth > 1 else 1.0, label=lab)
        if a.smooth > 1:
            a_loss.plot(step, running_mean(c["loss"], a.smooth), color=color, lw=2)
        if "support_loss" in c:
            a_loss.plot(step, c["support_loss"], color=color, lw=1, ls="--",
                        label="support loss" if lab is None else lab + " support")
        if "dev_f1" in c:
            f1 = np.where(c["dev_f1"] >= 0, c["dev_f1"], np.nan)
            if np.isfinite(f1).any():
                f1_ax = f1_ax or a_loss.twinx()
                ok = np.isfinite(f1)
                f1_ax.plot(step[ok], 100 * f1[ok], color=color, marker="o", ls=":", ms=4)
                f1_ax.set_ylabel("dev entity F1 (dots)")
        a_lr.plot(step, c["lr"], color=color, label=lab)
        if "tokens_per_s" in c:
            a_tps.plot(step, c["tokens_per_s"], color=color, lw=1, label=lab)
        if "grad_norm" in c:
            a_gn.plot(step, c["grad_norm"], color=color, lw=1, label=lab)
    a_loss.set_ylabel("loss (nats per target; prime: meta-loss)")
    a_lr.set_ylabel("learning rate")
    a_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    a_tps.set_ylabel("real tokens per second")
    a_gn.set_ylabel("gradient norm (before clipping)")
    a_tps.set_xlabel("step")
    a_gn.set_xlabel("step")
    for x in (a_loss, a_lr, a_tps, a_gn):
        x.grid(alpha=0.3)
    if len(logs) > 1 or any("support_loss" in c for _, c in logs):
        a_loss.legend(fontsize=8)
    fig.suptitle(a.title or a.csv[0], fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print("plot_log.py: %s (%s)" % (out, ", ".join("%s: %d steps" % (p, len(c["step"])) for p, c in logs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
