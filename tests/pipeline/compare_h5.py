"""Compares the parameters (/model, /pe, /head) of two peprime checkpoints with h5py.

  compare_h5.py A.h5 B.h5 --tol 1e-6     relative L2 difference over all parameters <= tol
  compare_h5.py A.h5 B.h5 --exact        every tensor bit-identical
  compare_h5.py A.h5 B.h5 --groups tasks --exact   the per-language adapted states instead
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
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--groups", default="model,pe,head",
                    help="comma-separated groups; 'tasks' means every /tasks/<lang> of A (B must have them too)")
    a = ap.parse_args()
    fa, fb = h5py.File(a.a, "r"), h5py.File(a.b, "r")
    num = den = 0.0
    differing = []
    groups = []
    for g in a.groups.split(","):
        groups += ["tasks/" + lang for lang in fa["tasks"]] if g == "tasks" and "tasks" in fa else [g]
    for g in groups:
        if g not in fa:
            continue
        if g not in fb:
            print("/%s missing in %s" % (g, a.b))
            return 1
        if sorted(fa[g].keys()) != sorted(fb[g].keys()):
            print("different tensors in /%s" % g)
            return 1
        for k in fa[g]:
            x, y = fa[g][k][()], fb[g][k][()]
            if x.shape != y.shape:
                print("/%s/%s: shapes %s vs %s" % (g, k, x.shape, y.shape))
                return 1
            if not np.array_equal(x, y):
                differing.append("/%s/%s" % (g, k))
            x, y = x.astype(np.float64), y.astype(np.float64)
            num += float(((x - y) ** 2).sum())
            den += float((y ** 2).sum())
    rel = (num / den) ** 0.5 if den > 0 else num ** 0.5
    print("relative L2 difference %.3e; %d tensors differ bitwise; steps %s vs %s" % (
        rel, len(differing), fa.attrs.get("step"), fb.attrs.get("step")))
    if a.exact:
        return 0 if not differing else 1
    return 0 if rel <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
