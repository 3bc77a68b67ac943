#!/usr/bin/env bash
# Each rank chooses its own OpenBLAS kernels for its CPU (issue 30 item 5): with
# OPENBLAS_CORETYPE unset, a 2-rank prime where rank 0 sees an AVX2 + FMA CPU and rank 1 a CPU
# without them (PEP_CPU_FEATURES fakes the two kinds, as on a partition mixing node
# generations) prints Haswell kernels chosen for rank 0's CPU and OpenBLAS's own choice on
# rank 1. A value the user exports is kept on every rank, and PEP_BLAS_REEXEC=0 turns the
# choice off. Needs a CPU with AVX2 + FMA (rank 0 really runs the Haswell kernels).
#   blas_kernels.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
fail() { echo "FAIL: $*" >&2; exit 1; }
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo || { echo "SKIP: this CPU has no AVX2 + FMA"; exit 77; }
. "$HERE/lib.sh"
prime_setup "$B" "$W"
cat > fake-cpu.sh <<'SH'
#!/bin/sh
# rank 0: an AVX2 node; every other rank: a node without AVX2 (OpenBLAS picks for itself)
if [ "${OMPI_COMM_WORLD_RANK:-0}" = 0 ]; then PEP_CPU_FEATURES=avx,avx2,fma; else PEP_CPU_FEATURES=none; fi
export PEP_CPU_FEATURES
exec "$@"
SH
chmod +x fake-cpu.sh
run() { # OUT [env...]: a one-step prime on 2 ranks; its placement lines
  local out=$1; shift
  env -u OPENBLAS_CORETYPE -u PEP_BLAS_CORETYPE_AUTO "$@" "$MPIEXEC" -n 2 --oversubscribe --bind-to none ./fake-cpu.sh \
    "$B" prime --config job.ini --init base/base.h5 --out "$out" "${S[@]}" --set optim.steps=1 >"$out.log" 2>&1 ||
    { tail -20 "$out.log"; fail "prime ($out) failed"; }
  grep '^  rank [01] host' "$out.log"
}
run mixed | tee mixed.lines
grep -q '^  rank 0 .* kernel Haswell (chosen for this CPU)$' mixed.lines || fail "rank 0 (AVX2 + FMA) did not choose Haswell kernels"
grep -q "^  rank 1 .* kernel [A-Za-z0-9]* (OpenBLAS's own choice)$" mixed.lines || fail "rank 1 (no AVX2) did not leave the choice to OpenBLAS"
run user OPENBLAS_CORETYPE=Prescott | tee user.lines
[ "$(grep -c ' kernel Prescott (OPENBLAS_CORETYPE)$' user.lines)" = 2 ] || fail "a user's OPENBLAS_CORETYPE was not kept on both ranks"
run off PEP_BLAS_REEXEC=0 | tee off.lines
[ "$(grep -c "(OpenBLAS's own choice)$" off.lines)" = 2 ] || fail "PEP_BLAS_REEXEC=0 did not leave the choice to OpenBLAS"
echo "ok: each rank chose the kernels for its own CPU; an exported OPENBLAS_CORETYPE and PEP_BLAS_REEXEC=0 are respected"
