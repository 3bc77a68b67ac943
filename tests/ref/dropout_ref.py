"""NumPy twin of peprime's dropout masks (docs/model.md, "Dropout"; src/core/rng.h, src/layers).

A mask depends only on (seed, site, sequence b, position t, channel c) or, for attention
probabilities, (seed, site, sequence b, head h, query i, key slot j) — never on padding or
on how the batch is laid out — so an oracle that pads the same sentences draws exactly the
masks the C model draws on its unpadded batch.

API (all masks are numpy bool arrays, True = kept; kept values are scaled by scale(p)):

    keep_activation(seed, site, B, T, W, p)  -> (B, T, W)
        element (b, t, c) of a (batch, position, width-W) activation at `site`.
    keep_attention(seed, site, B, NH, T, Tk, p) -> (B, NH, T, Tk)
        attention probability (b, h, query i, key slot j), Tk = P + T key slots: slots 0..P-1
        are the prefix keys, P + t is token t.
    scale(p) -> float32 1 / (1 - p), as C computes it.
    hash_uniform(seed, site, keys) -> float32 array: pep_hash_uniform of every uint64 key.
    SITE_EMB, SITE_HEAD, site_layer(l, k): the sites (k = 1 attention probabilities,
        2 attention output, 3 feed-forward output).
    STRIDE = 4096: the key stride (max_seq_len + prefix length must not exceed it).

With p <= 0 every mask is all True. Only positions t < T (and slots j < Tk) are drawn, so a
padded (B, T) batch and the same sentences unpadded give the same bits for every real token.
"""
import numpy as np

STRIDE = 4096
SITE_EMB = 1
SITE_HEAD = 2

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def site_layer(l, k):
    """Site of layer l's k-th dropout (1 attention probabilities, 2 attention output, 3 FFN output)."""
    return 100 + 10 * l + k


def _splitmix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_uniform(seed, site, keys):
    """pep_hash_uniform(seed, site, key) for every element of `keys` (uint64 array), float32."""
    keys = np.asarray(keys, dtype=np.uint64)
    with np.errstate(over="ignore"):
        inner = _splitmix64(np.uint64(site) * np.uint64(0x632BE59BD9B4E019) + keys)
        h = _splitmix64(np.uint64(int(seed) & 0xFFFFFFFFFFFFFFFF) ^ inner)
    return (h >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def scale(p):
    return np.float32(1.0) / (np.float32(1.0) - np.float32(p))


def _keep(seed, site, keys, p):
    if p <= 0:
        return np.ones(keys.shape, dtype=bool)
    return hash_uniform(seed, site, keys) >= np.float32(p)


def keep_activation(seed, site, B, T, W, p):
    """(B, T, W) keep-mask of an activation: key (b * STRIDE + t) * W + c."""
    assert T <= STRIDE
    b = np.arange(B, dtype=np.uint64)[:, None, None]
    t = np.arange(T, dtype=np.uint64)[None, :, None]
    c = np.arange(W, dtype=np.uint64)[None, None, :]
    return _keep(seed, site, (b * np.uint64(STRIDE) + t) * np.uint64(W) + c, p)


def keep_attention(seed, site, B, NH, T, Tk, p):
    """(B, NH, T, Tk) keep-mask of attention probabilities: key ((b NH + h) STRIDE + i) STRIDE + j."""
    assert T <= STRIDE and Tk <= STRIDE
    S = np.uint64(STRIDE)
    b = np.arange(B, dtype=np.uint64)[:, None, None, None]
    h = np.arange(NH, dtype=np.uint64)[None, :, None, None]
    i = np.arange(T, dtype=np.uint64)[None, None, :, None]
    j = np.arange(Tk, dtype=np.uint64)[None, None, None, :]
    return _keep(seed, site, ((b * np.uint64(NH) + h) * S + i) * S + j, p)
