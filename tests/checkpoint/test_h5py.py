"""Reads a checkpoint written by ckpt_tool with h5py only (no peprime code) and checks names,
shapes, dtypes, values and attributes; then h5ls -r and h5dump -H must read it too.

usage: test_h5py.py CKPT_TOOL TMPDIR"""
import os
import subprocess
import sys

import h5py
import xxhash
import numpy as np


def expected(row, numel, base):
    """The fill rule of ckpt_test_fill, in float32 like the C code."""
    return np.float32(base + row + 1) + np.arange(numel, dtype=np.float32) * np.float32(0.001)


def write(tool, mode, path):
    """Runs `ckpt_tool mode path`; returns its manifest rows (index, group, name, shape)."""
    out = subprocess.run([tool, mode, path], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        _, idx, group, name, d0, d1 = line.split()
        shape = (int(d0),) if int(d1) == 0 else (int(d0), int(d1))
        rows.append((int(idx), group, name, shape))
    return rows


def check_big(tool, tmp):
    """Tensors over 1 MiB go through the writer's direct-I/O path: every value must read back."""
    path = os.path.join(tmp, "big.h5")
    rows = write(tool, "write-big", path)
    dirs = {"plm": "model", "pe": "pe", "head": "head"}
    big = 0
    with h5py.File(path, "r") as f:
        for idx, group, name, shape in rows:
            n = int(np.prod(shape))
            big += n * 4 >= 1 << 20
            d = f["/%s/%s" % (dirs[group], name)]
            assert d.shape == shape and d.dtype == np.dtype("<f4"), name
            assert np.array_equal(d[()].ravel(), expected(idx, n, 7)), name
            if group == "plm":
                assert np.array_equal(f["/optimizer/m/plm/" + name][()].ravel(), expected(idx, n, 1000)), name
                assert np.array_equal(f["/optimizer/v/plm/" + name][()].ravel(), expected(idx, n, 2000)), name
            else:
                for i, lang in enumerate(["en", "de", "fr", "sw"]):
                    got = f["/tasks/%s/%s" % (lang, name)][()].ravel()
                    assert np.array_equal(got, expected(idx, n, 100 * (i + 1))), (lang, name)
    assert big >= 5, big  # embeddings, 2 FF matrices, 2 adapter matrices
    os.remove(path)
    return big


def main():
    tool, tmp = sys.argv[1], sys.argv[2]
    os.makedirs(tmp, exist_ok=True)
    path = os.path.join(tmp, "prime.h5")
    rows = write(tool, "write", path)
    assert len(rows) == 5 + 2 * 16 + 2 * 4 + 2, len(rows)  # embeddings, 2 layers, 2 adapters, head
    assert not os.path.exists(path + ".tmp")
    dirs = {"plm": "model", "pe": "pe", "head": "head"}

    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format_version"] == 2
        assert a["stage"] == "prime", a["stage"]
        assert a["step"] == 7
        assert a["world_size"] == 1
        assert a["config"].startswith("[model]\nlayers = 2\n"), a["config"]
        assert len(a["created"]) == 20 and a["created"].endswith("Z")
        assert len(a["git_revision"]) > 0
        assert list(a["rng_state"]) == [11, 22, 33, 7] and a["rng_state"].dtype == np.uint64
        assert (a["layers"], a["hidden"], a["ff"], a["vocab"], a["ntags"]) == (2, 8, 16, 30, 5)
        assert a["pe_method"] == "adapter" and a["pe_bottleneck"] == 2

        # names a reader of Hugging Face XLM-R expects, independently of the manifest
        assert f["/model/embeddings.word_embeddings.weight"].shape == (30, 8)
        assert f["/model/encoder.layer.1.attention.self.query.weight"].shape == (8, 8)
        assert f["/model/encoder.layer.0.intermediate.dense.weight"].shape == (16, 8)
        assert f["/pe/encoder.layer.1.output.adapter.adapter_up.weight"].shape == (8, 2)
        assert f["/head/classifier.weight"].shape == (5, 8)
        for idx, group, name, shape in rows:
            d = f["/%s/%s" % (dirs[group], name)]
            assert d.shape == shape, (name, d.shape, shape)
            assert d.dtype == np.dtype("<f4"), (name, d.dtype)
            want = expected(idx, int(np.prod(shape)), 7).reshape(shape)
            assert np.array_equal(d[()], want), name
            # the check docs show a user: XXH3-64 of the little-endian float32 bytes (format_version 2)
            assert xxhash.xxh3_64_intdigest(d[()].astype("<f4").tobytes()) == d.attrs["checksum"], name
        n_model = sum(1 for r in rows if r[1] == "plm")
        assert len(f["/model"]) == n_model

        opt = f["/optimizer"]
        assert opt.attrs["t"] == 77 and opt.attrs["groups"] == "plm"
        for idx, group, name, shape in rows:
            if group != "plm":
                continue
            n = int(np.prod(shape))
            assert np.array_equal(f["/optimizer/m/plm/" + name][()].ravel(), expected(idx, n, 1000))
            assert np.array_equal(f["/optimizer/v/plm/" + name][()].ravel(), expected(idx, n, 2000))
        assert "pe" not in f["/optimizer/m"]

        assert sorted(f["/tasks"].keys()) == ["de", "en", "fr", "sw"]
        for i, lang in enumerate(["en", "de", "fr", "sw"]):
            g = f["/tasks/" + lang]
            assert g.attrs["episode"] == 10 + i and g.attrs["step"] == 7
            assert g.attrs["support_loss"] == 0.5 + i and g.attrs["query_loss"] == 0.25 + i
            task_rows = [r for r in rows if r[1] in ("pe", "head")]
            assert len(g) == len(task_rows)
            for idx, group, name, shape in task_rows:
                want = expected(idx, int(np.prod(shape)), 100 * (i + 1)).reshape(shape)
                assert np.array_equal(g[name][()], want), (lang, name)

        for series in ("step", "meta_loss"):
            d = f["/log/" + series]
            assert d.dtype == np.dtype("<f8") and d.maxshape == (None,) and d.chunks is not None
        assert np.array_equal(f["/log/step"][()], np.arange(1, 11, dtype=np.float64))
        assert np.array_equal(f["/log/meta_loss"][()], 1.0 / np.arange(1, 11, dtype=np.float64))

    # the whole-file digest the README shows: XXH3-64 of the XXH3-64s of the 16 MiB pieces
    # after the 1 MiB user block
    data = open(path, "rb").read()
    assert data[:8] == b"PEPCKDG3", data[:8]
    assert int.from_bytes(data[12:16], "little") == 1 << 24
    body, piece = data[1 << 20:], 1 << 24
    pieces = b"".join(xxhash.xxh3_64_intdigest(body[i:i + piece]).to_bytes(8, "little")
                      for i in range(0, len(body), piece))
    assert int.from_bytes(data[24:32], "little") == xxhash.xxh3_64_intdigest(pieces)

    # the log is extendable by ordinary tools (which voids the digest: h5py does not know it)
    with h5py.File(path, "r+") as f:
        d = f["/log/step"]
        d.resize((11,))
        d[10] = 11.0
    with h5py.File(path, "r") as f:
        assert f["/log/step"].shape == (11,)

    ls = subprocess.run(["h5ls", "-r", path], check=True, capture_output=True, text=True).stdout
    listed = {" ".join(line.split()) for line in ls.splitlines()}  # h5ls pads names with spaces
    assert "/model/encoder.layer.0.attention.self.query.weight Dataset {8, 8}" in listed, ls
    assert "/tasks/sw/classifier.bias Dataset {5}" in listed, ls
    assert "/log/step Dataset {11/Inf}" in listed, ls
    dump = subprocess.run(["h5dump", "-H", path], check=True, capture_output=True, text=True).stdout
    assert "H5T_IEEE_F32LE" in dump and 'ATTRIBUTE "format_version"' in dump
    print("h5py, h5ls -r and h5dump -H read %s: %d parameter rows, 4 tasks, 2 log series" % (path, len(rows)))
    print("h5py read back %d tensors over 1 MiB of big.h5" % check_big(tool, tmp))


if __name__ == "__main__":
    main()
