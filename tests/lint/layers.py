#!/usr/bin/env python3
"""layers.py ROOT: fails, naming each one, on an #include "..." that points the wrong way
between the layers (README.md, Layout):

    jobs/  ->  io/, mpi/  ->  mpi/call/  ->  src/
    inside src/:  core <- layers <- tokenizer <- model <- data <- metrics <- optim <- maml <- config

A file may include its own folder and any layer below it; io/ and mpi/ do not include each
other (both may include mpi/call/mpi_call.h); nothing includes jobs/ but jobs/. System headers
(<...>) are not looked at; the compiler's include paths keep src/ away from MPI and HDF5.
"""
import os
import re
import sys

SRC_ORDER = ["core", "layers", "tokenizer", "model", "data", "metrics", "optim", "maml", "config"]

# Known wrong-way includes, each with why it is still there. An entry that no longer occurs
# fails the lint too, so the list only shrinks.
ALLOWED = set()

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer(rel):
    """(kind, rank) of a file by its path relative to ROOT."""
    parts = rel.split("/")
    if parts[0] == "src":
        sub = parts[1] if len(parts) > 2 else ""
        return ("src", SRC_ORDER.index(sub)) if sub in SRC_ORDER else ("src?", -1)
    if parts[0] == "mpi" and len(parts) > 2 and parts[1] == "call":
        return ("mpi/call", 0)
    return (parts[0], 0)


def may_include(frm, to):
    (fk, fr), (tk, tr) = frm, to
    if tk == "src":
        return fk != "src" or tr <= fr
    if tk == "mpi/call":
        return fk in ("mpi/call", "mpi", "io", "jobs")
    if tk in ("io", "mpi"):
        return fk in (tk, "jobs")
    if tk == "jobs":
        return fk == "jobs"
    return False


def resolve(root, rel, name):
    """The file an #include "name" in rel means, relative to ROOT, by the build's include path."""
    here = os.path.dirname(rel)
    for d in (here, "src", "io", "mpi", "mpi/call", "jobs"):
        cand = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def main():
    root = sys.argv[1]
    bad, seen, n = [], set(), 0
    for top in ("src", "io", "mpi", "jobs"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                n += 1
                frm = layer(rel)
                if frm[0] == "src?":
                    bad.append(f"{rel}: folder src/{rel.split('/')[1]} is not in the layer order; add it to SRC_ORDER")
                    continue
                text = open(os.path.join(root, rel), encoding="utf-8", errors="replace").read()
                for m in INCLUDE.finditer(text):
                    target = resolve(root, rel, m.group(1))
                    if target is None:
                        continue  # a generated or test-only header; the compiler says if it is missing
                    if may_include(frm, layer(target)):
                        continue
                    if (rel, target) in ALLOWED:
                        seen.add((rel, target))
                        continue
                    line = text.count("\n", 0, m.start()) + 1
                    bad.append(f"{rel}:{line}: includes {target}, a layer above it (README.md, Layout): "
                               "move the code to the layer that may see both, or pass what it needs down")
    for frm, to in sorted(ALLOWED - seen):
        bad.append(f"{frm} no longer includes {to}: remove the entry from ALLOWED in tests/lint/layers.py")
    if n == 0:
        print("no C files found")
        return 1
    for b in bad:
        print(b)
    if not bad:
        print(f"{n} C files, every include points down the layers ({len(ALLOWED)} known exceptions)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
