#!/usr/bin/env bash
# A stage's start is quiet: one line naming <out>/config.ini with the digest of its text
# (the whole config only with --verbose), config.ini equals `peprime config` for the same
# options, and `peprime config --blas-env` gives the kernel rule for this CPU's flags.
#   start_line.sh PEPRIME_BIN WORKDIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
B="$1"; W="$2"
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W"; cd "$W"
tiny_job_ini job.ini
"$B" pretrain --config job.ini --out run > quiet.log 2>&1 || { cat quiet.log; fail "pretrain failed"; }
[ -s run/config.ini ] || fail "no run/config.ini"
"$B" config --config job.ini --set run.out=run > expected.ini
# config.ini is the resolved config; run.out is the only key the CLI sets after parsing
diff <(grep -v '^out = ' expected.ini) <(grep -v '^out = ' run/config.ini) || fail "config.ini differs from 'peprime config'"
digest=$(/usr/bin/python3 -c '
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("%016x" % h)' run/config.ini)
grep -q "config job.ini -> run/config.ini (digest $digest)" quiet.log || { cat quiet.log; fail "start line lacks path/digest $digest"; }
grep -q '^\[model\]' quiet.log && fail "the config was printed without --verbose"
lines=$(wc -l < quiet.log)
[ "$lines" -le 12 ] || { cat quiet.log; fail "a 2-step pretrain printed $lines lines"; }
"$B" pretrain --config job.ini --out run2 --verbose > verbose.log 2>&1 || { cat verbose.log; fail "verbose pretrain failed"; }
grep -q '^\[model\]' verbose.log || fail "--verbose does not print the config"

# --blas-env: SkylakeX with AVX-512 F/BW/VL/DQ/CD, Haswell with AVX2 + FMA, else nothing
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { grep -qw "$1" <<<"$flags"; }
want=""
if has avx512f && has avx512bw && has avx512vl && has avx512dq && has avx512cd; then want="OPENBLAS_CORETYPE=SkylakeX"
elif has avx2 && has fma; then want="OPENBLAS_CORETYPE=Haswell"; fi
got=$("$B" config --blas-env)
[ "$got" = "$want" ] || fail "config --blas-env printed '$got', expected '$want' for this CPU"
echo "start_line: ok ($lines lines, digest $digest, '$got')"
