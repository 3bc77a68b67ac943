"""Turns a damaged checkpoint without a digest (a file from before io/checkpoint_digest.c, e.g.
the inputs of tests/fuzz/hdf5_bugs/) into the damaged checkpoint a sealing peprime would
have left: the 1 MiB user block with the digest header (checkpoint_digest.h), then the same
bytes. The header is that of the file before its damage; its digest is not known here (the
undamaged originals were not kept), so the one written is the damaged bytes' own digest with
its lowest bit flipped: a digest the damaged bytes do not match, which is all the reader can
see of any damage. --intact writes the bytes' true digest instead (a file that checks out).
--reseal FILE rewrites the header of a sealed checkpoint for its current bytes (a file as a
writer that wrote those bytes would have sealed it: tests of the per-tensor checksums).

usage: seal_damaged.py [--intact] IN.h5 OUT.h5 | --reseal FILE.h5"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from init_ref import M64, splitmix64  # noqa: E402

USERBLOCK = 1 << 20
K = 0x9E3779B97F4A7C15


def digest(data):
    """pep_ckpt_checksum's running hash (io/checkpoint_attr.c) over the bytes as little-endian
    32-bit words, a short tail zero-padded to one word."""
    if len(data) % 4:
        data = data + b"\0" * (4 - len(data) % 4)
    lanes = [splitmix64(i + 1) for i in range(4)]
    words = struct.unpack("<%dI" % (len(data) // 4), data)
    for i, w in enumerate(words):
        lanes[i & 3] = ((lanes[i & 3] ^ w) * K) & M64
    r = 0
    for i in range(4):
        r ^= splitmix64((lanes[i] + i) & M64)
    return splitmix64(r ^ len(words))


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def header(body, d):
    head = b"PEPCKDG1" + struct.pack("<II", USERBLOCK, 0) + struct.pack("<QQ", len(body), d)
    return head + struct.pack("<Q", fnv1a64(head))


def main(argv):
    if len(argv) == 2 and argv[0] == "--reseal":
        with open(argv[1], "r+b") as f:
            body = f.read()[USERBLOCK:]
            f.seek(0)
            f.write(header(body, digest(body)))
        return 0
    intact = "--intact" in argv
    args = [a for a in argv if a != "--intact"]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    body = open(args[0], "rb").read()
    head = header(body, digest(body) ^ (0 if intact else 1))
    with open(args[1], "wb") as f:
        f.write(head + b"\0" * (USERBLOCK - len(head)) + body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
