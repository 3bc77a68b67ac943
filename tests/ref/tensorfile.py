"""PEPTENS1: the tiny binary tensor archive shared by the Python oracles and the C tests.

Layout (all little-endian): magic b"PEPTENS1", u32 count, then per tensor
u32 name_len, name bytes (UTF-8, no terminator), u32 dtype (0 float32, 1 int32, 2 float64),
u32 ndim, u64 dims[ndim], then prod(dims) elements, row-major.
tests/tensorfile.{h,c} is the C side of the same format.
"""
import struct

import numpy as np

MAGIC = b"PEPTENS1"
_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<i4"), 2: np.dtype("<f8")}
_CODES = {np.dtype("float32"): 0, np.dtype("int32"): 1, np.dtype("float64"): 2}


def _as_array(value):
    """numpy array (float32 / int32 / float64) from a numpy array, torch tensor or scalar."""
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == np.int64 or arr.dtype == np.bool_:
        arr = arr.astype(np.int32)
    if arr.dtype not in _CODES:
        raise TypeError(f"tensorfile: unsupported dtype {arr.dtype}; use float32, int32 or float64")
    return arr


def write(path, tensors):
    """Writes an ordered mapping name -> array-like to `path`."""
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(tensors)))
        for name, value in tensors.items():
            arr = _as_array(value)
            raw = name.encode("utf-8")
            f.write(struct.pack("<I", len(raw)))
            f.write(raw)
            f.write(struct.pack("<II", _CODES[arr.dtype], arr.ndim))
            for d in arr.shape:
                f.write(struct.pack("<Q", d))
            f.write(np.ascontiguousarray(arr, dtype=_DTYPES[_CODES[arr.dtype]]).tobytes())


def read(path):
    """Reads `path` into a dict name -> numpy array (insertion order = file order)."""
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise ValueError(f"{path}: not a PEPTENS1 file (magic {data[:8]!r})")
    pos = 8
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    for i in range(count):
        (nlen,) = struct.unpack_from("<I", data, pos)
        pos += 4
        name = data[pos:pos + nlen].decode("utf-8")
        pos += nlen
        code, ndim = struct.unpack_from("<II", data, pos)
        pos += 8
        if code not in _DTYPES:
            raise ValueError(f"{path}: tensor {i} '{name}' has unknown dtype code {code}")
        dims = struct.unpack_from(f"<{ndim}Q", data, pos)
        pos += 8 * ndim
        n = int(np.prod(dims, dtype=np.int64)) if ndim else 1
        nbytes = n * _DTYPES[code].itemsize
        if pos + nbytes > len(data):
            raise ValueError(f"{path}: tensor '{name}' runs past the end of the file")
        out[name] = np.frombuffer(data, dtype=_DTYPES[code], count=n, offset=pos).reshape(dims).copy()
        pos += nbytes
    if pos != len(data):
        raise ValueError(f"{path}: {len(data) - pos} trailing bytes after {count} tensors")
    return out


def _expected():
    """The archive test_tensorfile.c agrees on."""
    return {"w": (0.5 * np.arange(6, dtype=np.float32) - 1.0).reshape(2, 3),
            "ids": (7 - 3 * np.arange(4)).astype(np.int32), "eps": np.array(1e-5, dtype=np.float64)}


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "selftest-write":
        write(sys.argv[2], _expected())
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "selftest-check":
        got, want = read(sys.argv[2]), _expected()
        ok = list(got) == list(want) and all(got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
                                             and np.array_equal(got[k], want[k]) for k in want)
        print(f"{sys.argv[2]}: {'matches' if ok else 'DIFFERS from'} the expected archive")
        sys.exit(0 if ok else 1)
    print("usage: tensorfile.py selftest-write|selftest-check FILE", file=sys.stderr)
    sys.exit(2)
