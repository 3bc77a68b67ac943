#!/usr/bin/env bash
# The ZeRO-1 sharded outer step (maml.outer_shard, docs/scaling.md#the-sharded-outer-step) end
# to end with real mpiexec on the generated corpus:
#  * on 1 rank the sharded step is today's replicated step, bit for bit (parameters and the
#    AdamW moments of the checkpoint);
#  * on 2, 3 (uneven slices) and 4 ranks, with and without task groups, AdamW with clipping and
#    plain SGD, the primed model equals the replicated step's and the 1-rank run's to float
#    rounding, and the checkpoint holds the whole moments (read here with h5py alone);
#  * a sharded checkpoint of 2 ranks resumes on 1, 3 and 4 ranks and a sharded 4-rank one
#    unsharded on 2; a checkpoint of the replicated step (today's format) resumes sharded, and
#    so does one written by an older binary when PEP_OLD_BIN names it.
#   zero1.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
CMP="$HERE/compare_h5.py"
. "$HERE/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
prime_setup "$B" "$W"
X=(--set optim.steps=8 --set checkpoint.every=4 --set checkpoint.keep=10)
run() { # NP OUT [--set ...]
  local np=$1 out=$2; shift 2
  "$MPIEXEC" -n "$np" --oversubscribe --bind-to none "$B" prime --config job.ini --init base/base.h5 --out "$out" \
    "${S[@]}" "${X[@]}" "$@" > "$out.log" 2>&1 || { tail -20 "$out.log"; fail "prime -n $np ($out) failed"; }
}
MOM="optimizer/m/plm,optimizer/v/plm"
params() { $PY "$CMP" "$1/primed.h5" "$2/primed.h5" "${@:3}" || fail "$1 vs $2: parameters ${*:3}"; }
moments() { $PY "$CMP" "$1/primed.h5" "$2/primed.h5" --groups "$MOM" "${@:3}" || fail "$1 vs $2: moments ${*:3}"; }

echo "== one rank: the sharded step is the replicated one, bit for bit"
run 1 s1
run 1 r1 --set maml.outer_shard=false
params s1 r1 --exact
moments s1 r1 --exact
grep -q "outer step replicated" s1.log || fail "1 rank should report its step as replicated (one slice is everything)"

echo "== 2, 3, 4 ranks: sharded = replicated = 1 rank to rounding; whole moments in the checkpoint"
for np in 2 3 4; do
  run "$np" "s$np"
  run "$np" "r$np" --set maml.outer_shard=false
  grep -q "outer step sharded" "s$np.log" || fail "s$np: no sharded outer step reported"
  # about 1/P of the outer set per rank
  read -r mine all < <(sed -n 's/.*outer step sharded, \([0-9]*\) of \([0-9]*\) floats per rank.*/\1 \2/p' "s$np.log")
  awk -v m="$mine" -v a="$all" -v p="$np" 'BEGIN { exit !(m <= a / p + 16 && m >= a / p - 16) }' \
    || fail "s$np: rank 0's slice is $mine of $all floats, not about 1/$np"
  params "s$np" "r$np" --tol 1e-6
  params s1 "s$np" --tol 1e-6
  moments s1 "s$np" --tol 1e-5
done

echo "== task groups (P = 4, G = 2 and 4) and order 2"
run 4 g42 --set maml.group_size=2
params s1 g42 --tol 1e-6
run 4 g44 --set maml.group_size=4
params s1 g44 --tol 1e-6
run 1 o2-1 --set maml.order=2
run 2 o2-2 --set maml.order=2
params o2-1 o2-2 --tol 1e-5

echo "== plain SGD without clipping: the updates from a common start"
SGD=(--set optim.name=sgd --set optim.clip=0 --set optim.schedule=constant --set optim.warmup=0)
run 1 sgd-start "${SGD[@]}" --set optim.lr=0
run 1 sgd1 "${SGD[@]}" --set optim.lr=0.5
for cell in "3 1" "4 2"; do
  read -r np g <<< "$cell"
  run "$np" "sgd$np" "${SGD[@]}" --set optim.lr=0.5 --set maml.group_size="$g"
  params sgd1 "sgd$np" --base sgd-start/primed.h5 --tol 1e-4
done

echo "== resume across rank counts"
ck=s2/checkpoints/prime-step00000004.h5
[ -f "$ck" ] || fail "no checkpoint $ck"
for np in 1 3 4; do
  run "$np" "res2to$np" --resume "$ck"
  grep -q "resumed from .*step00000004.h5 at meta-step 4" "res2to$np.log" || fail "res2to$np did not resume"
  params s1 "res2to$np" --tol 1e-6
  moments s1 "res2to$np" --tol 1e-5
done
run 2 res4to2r --resume s4/checkpoints/prime-step00000004.h5 --set maml.outer_shard=false
params s1 res4to2r --tol 1e-6
# the replicated step writes today's format: a sharded resume reads it
run 3 resr2to3 --resume r2/checkpoints/prime-step00000004.h5
params s1 resr2to3 --tol 1e-6
moments s1 resr2to3 --tol 1e-5
if [ -n "${PEP_OLD_BIN:-}" ]; then
  echo "== a checkpoint of $PEP_OLD_BIN resumes sharded"
  "$MPIEXEC" -n 2 --oversubscribe --bind-to none "$PEP_OLD_BIN" prime --config job.ini --init base/base.h5 \
    --out old2 "${S[@]}" "${X[@]}" > old2.log 2>&1 || { tail -20 old2.log; fail "the old binary failed"; }
  run 4 resold2to4 --resume old2/checkpoints/prime-step00000004.h5
  params old2 resold2to4 --tol 1e-6
  params s1 resold2to4 --tol 1e-6
  moments old2 resold2to4 --tol 1e-5
fi
echo "all sharded outer-step checks passed"
