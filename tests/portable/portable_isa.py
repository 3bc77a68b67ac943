#!/usr/bin/env python3
"""lint_portable_isa: the portable build runs on any x86-64 node. Disassembles the binary
(objdump) and fails if a function of our own uses an instruction beyond the x86-64 baseline
(AVX/AVX2/AVX-512: VEX/EVEX mnemonics, ymm/zmm/mask registers, FMA, BMI) outside the clones
GCC made for PEP_DISPATCH (src/core/dispatch.h), or if an x86-64-v3 clone uses AVX-512.
It also checks that the clones exist, so a build that lost the dispatch fails too.

  portable_isa.py BINARY [FUNCTION ...]   (the functions that must have v3 and v4 clones)
"""
import re
import subprocess
import sys

# Instructions the x86-64 baseline (SSE2) lacks, as objdump spells them (AT&T syntax).
BEYOND_BASE = re.compile(r"^\s*[0-9a-f]+:\s+(v[a-z0-9]+|andn|bextr|blsi|blsmsk|blsr|bzhi|pdep|pext|"
                         r"sarx|shlx|shrx|rorx|lzcnt|tzcnt|popcnt|movbe)\b|%[yz]mm|%k[0-7]")
AVX512 = re.compile(r"%zmm|%k[0-7]|\{k[0-7]\}|%[xy]mm(1[6-9]|2[0-9]|3[01])\b")


def functions(binary):
    """(name, [instruction lines]) of every function in the binary's .text."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", binary],
                         check=True, capture_output=True, text=True).stdout
    name, body = None, []
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            if name:
                yield name, body
            name, body = m.group(1), []
        elif name:
            body.append(line)
    if name:
        yield name, body


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary, required = sys.argv[1], sys.argv[2:]
    bad, clones = [], set()
    for name, body in functions(binary):
        if ".arch_x86_64_v4" in name:
            clones.add(name)
            continue
        if ".arch_x86_64_v3" in name:
            clones.add(name)
            hits = [l.strip() for l in body if AVX512.search(l)]
            if hits:
                bad.append("%s (an AVX2 clone) uses AVX-512: %s" % (name, hits[0]))
            continue
        hits = [l.strip() for l in body if BEYOND_BASE.search(l)]
        if hits:
            bad.append("%s uses %d instruction(s) beyond x86-64, e.g. %s" % (name, len(hits), hits[0]))
    for f in required:
        for arch in ("arch_x86_64_v3", "arch_x86_64_v4"):
            if "%s.%s" % (f, arch) not in clones:
                bad.append("%s has no %s clone: is PEP_DISPATCH on its definition?" % (f, arch))
    for b in bad:
        print("lint_portable_isa: " + b)
    if bad:
        print("lint_portable_isa: %d problem(s) in %s: a node without those instructions would die with "
              "SIGILL; mark the function PEP_DISPATCH or fix the build flags" % (len(bad), binary))
        return 1
    print("lint_portable_isa: %s: baseline x86-64 outside %d dispatched clones" % (binary, len(clones)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
