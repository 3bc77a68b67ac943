"""safetensors files for the test oracles, with numpy + json only (Debian ships no
`safetensors` module). The layout is the reference one that io/safetensors.c reads and
writes: u64 little-endian header length N, N bytes of JSON
  {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
   "__metadata__": {"key": "value"}}
padded with spaces to a multiple of 8, then the tensors' row-major little-endian bytes in
header order without gaps (offsets relative to the first byte after the header).

write() keeps each tensor's dtype (torch or numpy; bfloat16 stays BF16); write_fixture() is
what the C parity fixtures use: int64 and bool become int32 and only float32, int32 and
float64 are allowed, which the C test helper (tests/fixture.c) reads. read() gives numpy
arrays (BF16 widened to float32), read_raw() the undecoded bytes.
"""
import json
import struct

import numpy as np

_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
       "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_CODE = {(np.dtype(v).kind, np.dtype(v).itemsize): k for k, v in _NP.items()}
_FIXTURE_DTYPES = (np.dtype("float32"), np.dtype("int32"), np.dtype("float64"))


def _raw(value):
    """(dtype code, shape, little-endian bytes) of a torch tensor, numpy array or scalar."""
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().cpu().contiguous()
        if str(value.dtype) == "torch.bfloat16":
            import torch
            return "BF16", tuple(value.shape), value.view(torch.int16).numpy().astype("<i2").tobytes()
        value = value.numpy()
    arr = np.asarray(value)
    code = _CODE.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise TypeError(f"safetensors_io: unsupported dtype {arr.dtype}")
    return code, arr.shape, np.ascontiguousarray(arr, dtype=_NP[code]).tobytes()


def write(path, tensors, metadata=None):
    """Writes an ordered mapping name -> array-like to `path`, each in its own dtype."""
    header, blobs, pos = {}, [], 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name, value in tensors.items():
        code, shape, raw = _raw(value)
        header[name] = {"dtype": code, "shape": [int(d) for d in shape], "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _fixture_array(value):
    """float32 / int32 / float64 numpy array: int64 and bool become int32, Python floats float64."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == np.int64 or arr.dtype == np.bool_:
        arr = arr.astype(np.int32)
    if arr.dtype not in _FIXTURE_DTYPES:
        raise TypeError(f"fixture: unsupported dtype {arr.dtype}; use float32, int32 or float64")
    return arr


def write_fixture(path, tensors):
    """A C parity fixture: write() after the fixture dtype rules (module docstring)."""
    write(path, {name: _fixture_array(value) for name, value in tensors.items()})


def read_raw(path):
    """({name: (dtype code, shape, bytes)} in header order, metadata dict) of `path`."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out, base = {}, 8 + n
    for name, v in header.items():
        b, e = v["data_offsets"]
        if not 0 <= b <= e <= len(data) - base:
            raise ValueError(f"{path}: tensor '{name}' has offsets {b}..{e} outside the data")
        out[name] = (v["dtype"], tuple(v["shape"]), data[base + b:base + e])
    return out, meta


def read(path):
    """{name: numpy array} of `path` in header order; BF16 is widened to float32."""
    out = {}
    for name, (code, shape, raw) in read_raw(path)[0].items():
        if code == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            out[name] = bits.view(np.float32).reshape(shape).copy()
        elif code in _NP:
            out[name] = np.frombuffer(raw, dtype=_NP[code]).reshape(shape).copy()
        else:
            raise ValueError(f"{path}: tensor '{name}' has dtype {code}, which this reader does not decode")
    return out


def _expected():
    """The file tests/torch/test_fixture.c reads (Python -> C)."""
    return {"w": (0.5 * np.arange(6, dtype=np.float32) - 1.0).reshape(2, 3),
            "ids": (7 - 3 * np.arange(4)).astype(np.int32), "eps": np.array(1e-5, dtype=np.float64)}


def _expected_from_c():
    """The file test_fixture.c writes with io/safetensors (C -> Python): float32 only."""
    return {"w": (0.5 * np.arange(6, dtype=np.float32) - 1.0).reshape(2, 3),
            "b": (7 - 3 * np.arange(4)).astype(np.float32)}


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "selftest-write":
        write_fixture(sys.argv[2], _expected())
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "selftest-check":
        got, want = read(sys.argv[2]), _expected_from_c()
        ok = list(got) == list(want) and all(got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
                                             and np.array_equal(got[k], want[k]) for k in want)
        print(f"{sys.argv[2]}: {'matches' if ok else 'DIFFERS from'} the expected file")
        sys.exit(0 if ok else 1)
    print("usage: safetensors_io.py selftest-write|selftest-check FILE", file=sys.stderr)
    sys.exit(2)
