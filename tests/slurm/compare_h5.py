"""Compares the parameters of two peprime checkpoints (HDF5) with h5py: every dataset under
/model, /pe and /head must exist in both, have the same shape and agree to a relative
tolerance (norm of the difference / norm of the reference). Exit 0 when they agree."""
import sys

import h5py
import numpy as np


def datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.split("/")[0] in ("model", "pe", "head"):
            out[name] = obj[()]

    f.visititems(visit)
    return out


def main():
    if len(sys.argv) < 3:
        print("usage: compare_h5.py REFERENCE.h5 OTHER.h5 [RTOL]")
        return 2
    rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-6
    with h5py.File(sys.argv[1], "r") as fa, h5py.File(sys.argv[2], "r") as fb:
        a, b = datasets(fa), datasets(fb)
        step_a, step_b = fa.attrs.get("step"), fb.attrs.get("step")
    if not a:
        print(f"{sys.argv[1]}: no datasets under /model, /pe or /head")
        return 1
    bad = 0
    if step_a is not None and step_b is not None and int(step_a) != int(step_b):
        print(f"step differs: {step_a} vs {step_b}")
        bad += 1
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print(f"{name}: only in {'reference' if name in a else 'other'}")
            bad += 1
            continue
        x, y = np.asarray(a[name], np.float64), np.asarray(b[name], np.float64)
        if x.shape != y.shape:
            print(f"{name}: shape {x.shape} vs {y.shape}")
            bad += 1
            continue
        ref = max(np.linalg.norm(x), 1e-30)
        rel = np.linalg.norm(x - y) / ref
        if not np.isfinite(rel) or rel > rtol:
            print(f"{name}: relative difference {rel:.3e} > {rtol:.1e}")
            bad += 1
    print(f"compared {len(a)} datasets: {bad} mismatch(es)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
