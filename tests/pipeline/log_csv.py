"""Checks a stage's <out>/log.csv against its checkpoint's /log with h5py (tests/pipeline/log_csv.sh).

  log_csv.py check LOG.csv CKPT.h5 --stage pretrain|finetune|prime
      the header is the stage's (step, loss, lr, tokens_per_s, grad_norm, elapsed_s, tokens, then
      dev_f1 for finetune, support_loss for prime); one row per /log step, steps 1..N once each
      and in order; every cell equals its series (loss <- /log/loss or, for prime,
      /log/meta_loss; elapsed_s <- /log/wall_time) to the 10 digits written; the lr column
      equals the schedule of the checkpoint's config (tests/ref/schedule_ref.py's formula).
  log_csv.py same-rows A.csv B.csv --upto K
      A's and B's header and rows of steps 1..K are the same text (a resume kept them).
Exit 0 when it holds, 1 with the differences printed.
"""
import argparse
import configparser
import csv
import math
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from schedule_ref import hf_rate  # noqa: E402

COMMON = ["step", "loss", "lr", "tokens_per_s", "grad_norm", "elapsed_s", "tokens"]
EXTRA = {"pretrain": [], "finetune": ["dev_f1"], "prime": ["support_loss"]}
SERIES = {"elapsed_s": "wall_time"}


def read_csv(path):
    with open(path, newline="") as f:
        text = f.read()
    if not text.endswith("\n"):
        sys.exit("%s does not end with a newline" % path)
    rows = list(csv.reader(text.splitlines()))
    return rows[0], rows[1:]


def check(a):
    head, rows = read_csv(a.csv)
    want = COMMON + EXTRA[a.stage]
    if head != want:
        sys.exit("%s: header %s, expected %s" % (a.csv, head, want))
    f = h5py.File(a.h5, "r")
    log = f["log"]
    n = log["step"].shape[0]
    if len(rows) != n:
        sys.exit("%s has %d rows, /log of %s %d steps" % (a.csv, len(rows), a.h5, n))
    steps = [float(r[0]) for r in rows]
    if steps != list(np.arange(1, n + 1, dtype=float)):
        sys.exit("%s: steps are not 1..%d once each: %s" % (a.csv, n, steps))
    bad = []
    for j, name in enumerate(head):
        series = SERIES.get(name, "meta_loss" if (name == "loss" and a.stage == "prime") else name)
        ref = log[series][()]
        for i, r in enumerate(rows):
            x = float(r[j]) if r[j] != "" else math.nan
            y = float(ref[i])
            same = (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-9 * max(abs(y), 1e-300)
            if not same:
                bad.append((name, i + 1, r[j], y))
    if bad:
        sys.exit("%s: %d cells differ from /log (column, step, csv, /log): %s" % (a.csv, len(bad), bad[:8]))
    # the logged rate against the oracle's schedule, from the config the checkpoint stores
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(f.attrs["config"] if isinstance(f.attrs["config"], str) else f.attrs["config"].decode())
    o = cfg["optim"]
    sched, lr, warm, total = o["schedule"], float(o["lr"]), int(o["warmup"]), int(o["steps"])
    ratio = float(o.get("min_lr_ratio", "0"))
    lrs = [float(r[head.index("lr")]) for r in rows]
    want_lr = [hf_rate(sched, lr, warm, total, ratio, t) for t in range(n)]
    off = [(t + 1, x, y) for t, (x, y) in enumerate(zip(lrs, want_lr)) if abs(x - y) > 1e-6 * lr]
    if off:
        sys.exit("%s: lr differs from the %s schedule (step, csv, oracle): %s" % (a.csv, sched, off[:5]))
    gn = [float(r[head.index("grad_norm")]) for r in rows]
    if not all(math.isfinite(g) and g > 0 for g in gn):
        sys.exit("%s: grad_norm not finite and positive: %s" % (a.csv, gn))
    print("%s: %d rows = /log of %s (%s schedule, lr %g .. %g)" % (a.csv, n, a.h5, sched, min(lrs), max(lrs)))


def same_rows(a):
    ha, ra = read_csv(a.a)
    hb, rb = read_csv(a.b)
    ka = [r for r in ra if float(r[0]) <= a.upto]
    kb = [r for r in rb if float(r[0]) <= a.upto]
    if ha != hb or ka != kb or len(ka) != a.upto:
        sys.exit("%s and %s differ in the header or the rows of steps 1..%d" % (a.a, a.b, a.upto))
    print("%s and %s: the same %d rows up to step %d" % (a.a, a.b, len(ka), a.upto))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("csv")
    c.add_argument("h5")
    c.add_argument("--stage", required=True, choices=sorted(EXTRA))
    s = sub.add_parser("same-rows")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--upto", type=int, required=True)
    a = ap.parse_args()
    check(a) if a.cmd == "check" else same_rows(a)


if __name__ == "__main__":
    main()
