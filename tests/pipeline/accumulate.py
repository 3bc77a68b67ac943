"""Compares two runs that differ only in optim.accumulate (tests/pipeline/accumulate.sh), with h5py.

  accumulate.py A.h5 B.h5 [--tol 1e-5] [--groups model,pe,head]
      the trained parameters (the groups of /model, /pe, /head named; finetune: pe,head) agree to a relative L2
      difference <= tol; /log/loss and /log/grad_norm agree step by step to a relative
      difference <= tol; /log/step, tokens and lr are equal.
Gradient accumulation that normalised the micro-batches differently from the one-pass batch
(a mean of micro-batch means, or their sum) moves grad_norm by percents or a factor, far
beyond float rounding (about 1e-7 here).
Exit 0 when they agree, 1 otherwise (with the numbers printed).
"""
import argparse
import sys

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--groups", default="model,pe,head")
    a = ap.parse_args()
    fa, fb = h5py.File(a.a, "r"), h5py.File(a.b, "r")
    num = den = 0.0
    for g in a.groups.split(","):
        if g not in fa:
            continue
        for k in fa[g]:
            x, y = fa[g][k][()].astype(np.float64), fb[g][k][()].astype(np.float64)
            num += float(np.sum((x - y) ** 2))
            den += float(np.sum(x ** 2))
    rel = (num / den) ** 0.5 if den > 0 else num ** 0.5
    worst = {}
    for s in ("loss", "grad_norm"):
        x, y = fa["log"][s][()], fb["log"][s][()]
        worst[s] = float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-12)))
    exact = all(np.array_equal(fa["log"][s][()], fb["log"][s][()]) for s in ("step", "tokens", "lr"))
    print("%s vs %s: parameters %.2e, loss %.2e, grad_norm %.2e (relative); step/tokens/lr %s"
          % (a.a, a.b, rel, worst["loss"], worst["grad_norm"], "equal" if exact else "DIFFER"))
    return 0 if rel <= a.tol and max(worst.values()) <= a.tol and exact else 1


if __name__ == "__main__":
    sys.exit(main())
