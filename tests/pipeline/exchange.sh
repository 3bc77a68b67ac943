#!/usr/bin/env bash
# The meta-gradient exchange end to end (mpi/exchange.h, docs/mpi.md): `peprime prime` on 1, 2
# and 4 ranks gives the same primed model, bit for bit, with the exchange overlapped with the
# backward or not, and with the word-embedding rows exchanged sparsely or densely; for both
# sums (MPI_Iallreduce and rank-ordered) on order-1 MAML, and for order 2 on 2 and 4 ranks. Overlapped runs must
# start buckets during the backward, the others must not; sparse runs must not move more.
#   exchange.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
. "$HERE/lib.sh"
prime_setup "$B" "$W"
# small buckets (about 2 600 floats) so the tiny model's layers make several of them
X=(--set maml.exchange_bucket_mb=0.01 --set optim.steps=6 --set checkpoint.every=0)
run() { # np out [--set ...]: the run's exchange line on stdout
  local np=$1 out=$2; shift 2
  "$MPIEXEC" -n "$np" --bind-to none "$B" prime --config job.ini --init base/base.h5 --out "$out" "${S[@]}" "${X[@]}" "$@" \
    > "$out.log" 2>&1 || { cat "$out.log"; echo "FAIL: $out"; exit 1; }
  grep "prime: exchange" "$out.log"
}
early() { sed -n 's/.*, \([0-9]*\) of \([0-9]*\) buckets started during the backward.*/\1/p' "$1.log"; }
mb() { sed -n 's/.* \([0-9.]*\) MB per meta-step summed of.*/\1/p' "$1.log"; }
fails=0
same() { # a b: bit-identical parameters
  if $PY "$HERE/compare_h5.py" "$1/primed.h5" "$2/primed.h5" --exact >/dev/null; then echo "same bits: $1 $2"
  else $PY "$HERE/compare_h5.py" "$1/primed.h5" "$2/primed.h5" --exact || true; echo "FAIL: $1 and $2 differ"; fails=1; fi
}
for cell in "1 mpi 1 2 4" "1 ordered 1 2 4" "2 mpi 2 4"; do
  read -r order sum nps <<< "$cell"
  for np in $nps; do
    t="o$order-$sum-np$np"
    O=(--set maml.order=$order --set maml.exchange_sum=$sum)
    run "$np" "$t-ov-sp" "${O[@]}"
    run "$np" "$t-bl-sp" "${O[@]}" --set maml.exchange_overlap=false
    run "$np" "$t-ov-de" "${O[@]}" --set maml.exchange_sparse=false
    same "$t-ov-sp" "$t-bl-sp"
    same "$t-ov-sp" "$t-ov-de"
    if [ "$np" -gt 1 ]; then
      [ "$(early "$t-ov-sp")" -gt 0 ] || { echo "FAIL: $t: no bucket started during the backward"; fails=1; }
      [ "$(early "$t-bl-sp")" -eq 0 ] || { echo "FAIL: $t: buckets started early with exchange_overlap = false"; fails=1; }
    fi
    awk -v s="$(mb "$t-ov-sp")" -v d="$(mb "$t-ov-de")" 'BEGIN { exit !(s <= d) }' \
      || { echo "FAIL: $t: sparse moved $(mb "$t-ov-sp") MB, dense $(mb "$t-ov-de") MB"; fails=1; }
  done
  # the rank count changes the sum's rounding only
  $PY "$HERE/compare_h5.py" "o$order-$sum-np2-ov-sp/primed.h5" "o$order-$sum-np4-ov-sp/primed.h5" --tol 1e-5
done
[ "$fails" -eq 0 ] || exit 1
echo "all exchange checks passed"
