"""Python twin of peprime's seeded initialiser, so an oracle can start where the C code starts:
src/core/rng.c (splitmix64-seeded xoshiro256**, Box-Muller normals with the spare kept) and
pep_model_init_weights (src/model/model_create.c): LayerNorm gains 1; biases, adapter up-projections
and LoRA B 0; every other tensor init_std * normal from a stream seeded by (seed,
pep_fnv1a64(name), 0). MAML with maml.pe_init = fresh starts every task's PE + head from this
init with seed maml/fresh_seed (src/maml/maml.c), which is what maml_ref.py reproduces.

Plain Python integers (the tensors it is used for are small).
"""
import math

import numpy as np

M64 = (1 << 64) - 1


def splitmix64(x):
    """pep_splitmix64 (src/core/rng.h)."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Rng:
    """struct pep_rng: pep_rng_seed(seed, a, b), pep_rng_next, pep_rng_normal."""

    def __init__(self, seed, a, b):
        x = splitmix64(seed & M64) ^ ((splitmix64((a + 0x1234567) & M64) * 3) & M64) \
            ^ ((splitmix64((b + 0x89ABCDEF) & M64) * 7) & M64)
        self.s = []
        for i in range(4):
            x = splitmix64((x + i) & M64)
            self.s.append(x)
        if not any(self.s):
            self.s[0] = 1
        self.spare = None

    def next(self):
        s = self.s
        result = (_rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def below(self, n):
        """pep_rng_below: uniform integer in [0, n) (Lemire's multiply-shift with rejection)."""
        x = self.next()
        m = x * n
        lo = m & M64
        if lo < n:
            t = ((1 << 64) - n) % n
            while lo < t:
                x = self.next()
                m = x * n
                lo = m & M64
        return m >> 64

    def uniform(self):
        """pep_rng_uniform: float32 in [0, 1)."""
        return np.float32(self.next() >> 40) * np.float32(1.0 / 16777216.0)

    def normal(self):
        """float32 standard normal, in the C order (cos first, then the spare sin)."""
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u1 = ((self.next() >> 11) + 1.0) * (1.0 / 9007199254740992.0)
        u2 = (self.next() >> 11) * (1.0 / 9007199254740992.0)
        rad, ang = math.sqrt(-2.0 * math.log(u1)), 6.283185307179586 * u2
        self.spare = np.float32(rad * math.sin(ang))
        return np.float32(rad * math.cos(ang))


def fnv1a(name):
    """pep_fnv1a64 (src/core/rng.h) of the name's bytes."""
    h = 0xCBF29CE484222325
    for c in name.encode():
        h = ((h ^ c) * 0x100000001B3) & M64
    return h


def init_tensor(name, shape, seed, init_std):
    """One tensor as pep_model_init_weights writes it (float32 numpy array). The padding rows
    of the word and position tables, which the C code also zeroes, are not handled here (this
    twin is for PE and head tensors)."""
    n = int(np.prod(shape))
    if "LayerNorm.weight" in name or "layer_norm.weight" in name:
        return np.ones(shape, dtype=np.float32)
    if name.endswith(".bias") or "adapter_up.weight" in name or "lora_B" in name \
            or "LayerNorm.bias" in name or "layer_norm.bias" in name:
        return np.zeros(shape, dtype=np.float32)
    r = Rng(seed, fnv1a(name), 0)
    std = np.float32(init_std)
    return np.array([std * r.normal() for _ in range(n)], dtype=np.float32).reshape(shape)
