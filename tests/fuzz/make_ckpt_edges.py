"""Writes the hand-made checkpoint seeds that peprime's writer cannot produce (HDF5's oldest
format, no metadata checksums, so mutations reach peprime's checks instead of HDF5's): every
required root attribute, then
  regress_zero_width.h5   /model tensor of shape (3, 0)            (was a division by zero)
  regress_huge_log.h5     /log/step of 2^40 unallocated elements   (was an 8 TiB allocation)
  regress_huge_tensor.h5  /model tensor of 2^40 unallocated elements (was a read without end)
usage: /usr/bin/python3 tests/fuzz/make_ckpt_edges.py tests/fuzz/corpus/checkpoint"""
import os
import sys

import h5py
import numpy as np


def root(f):
    f.attrs["format_version"] = np.int32(1)
    for k, v in (("stage", "prime"), ("created", "2026-01-01T00:00:00Z"), ("git_revision", "x"),
                 ("config", "[maml]\n")):
        f.attrs[k] = v
    f.attrs["step"] = np.int64(1)
    f.attrs["world_size"] = np.int32(1)


def main():
    out = sys.argv[1]
    with h5py.File(os.path.join(out, "regress_zero_width.h5"), "w") as f:
        root(f)
        f.create_dataset("/model/embeddings.word_embeddings.weight", shape=(3, 0), dtype="<f4")
    with h5py.File(os.path.join(out, "regress_huge_log.h5"), "w") as f:
        root(f)
        f.create_dataset("/log/step", shape=(1 << 40,), maxshape=(None,), chunks=(4,), dtype="<f8")
    with h5py.File(os.path.join(out, "regress_huge_tensor.h5"), "w") as f:
        root(f)
        f.create_dataset("/model/x", shape=(1 << 20, 1 << 20), chunks=(4, 4), dtype="<f4")


if __name__ == "__main__":
    main()
