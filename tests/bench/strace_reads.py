"""Bytes read from checkpoint files, from `strace -f -y` logs (one log per rank).

  strace_reads.py TRACE... [--suffix .h5]

Sums the return values of read, pread64, readv, preadv and preadv2 on descriptors whose path
(strace -y prints it beside the descriptor) ends with the suffix; a call split by another
thread's ("<unfinished ...>" ... "<... pread64 resumed>") is joined by thread id. Prints one
line per log (bytes per file) and the total over all logs, as "total <bytes>" last.
"""
import argparse
import re
import sys
from collections import defaultdict

CALLS = ("read", "pread64", "readv", "preadv", "preadv2")
START = re.compile(r"^(\d+)\s+(" + "|".join(CALLS) + r")\((\d+)<([^>]*)>,")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (" + "|".join(CALLS) + r") resumed>")
RESULT = re.compile(r"= (-?\d+)(?: [A-Z]\w*.*)?$")


def log_bytes(path, suffix):
    per_file = defaultdict(int)
    pending = {}  # thread id -> path of its unfinished read
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = START.match(line)
            if m:
                tid, fpath = m.group(1), m.group(4)
                if line.endswith("<unfinished ...>"):
                    pending[tid] = fpath
                    continue
            else:
                m = RESUMED.match(line)
                if not m:
                    continue
                fpath = pending.pop(m.group(1), None)
                if fpath is None:
                    continue
            r = RESULT.search(line)
            if r and int(r.group(1)) > 0 and fpath.endswith(suffix):
                per_file[fpath] += int(r.group(1))
    return per_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--suffix", default=".h5")
    a = ap.parse_args()
    total = 0
    for t in a.traces:
        per_file = log_bytes(t, a.suffix)
        n = sum(per_file.values())
        total += n
        files = ", ".join(f"{p.rsplit('/', 1)[-1]} {b}" for p, b in sorted(per_file.items()))
        print(f"{t}: {n} bytes ({files})")
    print(f"total {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
