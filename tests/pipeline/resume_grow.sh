#!/usr/bin/env bash
# A checkpoint resumes with more ranks than wrote it (issue 31 item 8: grow, not only shrink),
# for every training stage: pretrain, prime and finetune each run on 1 rank with a checkpoint
# half way, then resume from it on 2 and on 4 ranks. Prime and finetune are independent of the
# rank count, so their results equal the uninterrupted 1-rank run to float rounding (1e-8 here;
# finetune was not until 2026-12-07: it weighted the ranks' target means by sentences, and every
# rank drew the dropout masks of the batch's first sentences). Pretraining draws its MLM masks
# per rank by design, so a grown run of its is checked to continue the checkpoint: it resumes at
# step 4, ends at step 8, keeps /log's first 4 rows bit for bit and moves the weights.
#   resume_grow.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
. "$HERE/lib.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
prime_setup "$B" "$W"
CMP="$HERE/compare_h5.py"
run() { # NP STAGE OUT [args...]
  local np=$1 st=$2 out=$3; shift 3
  "$MPIEXEC" -n "$np" --oversubscribe --bind-to none "$B" "$st" --config job.ini --out "$out" "${S[@]}" "$@" \
    > "$out.log" 2>&1 || { tail -20 "$out.log"; fail "$st on $np rank(s) ($out) failed"; }
}
# stage, the options of its runs, its checkpoint name, its final file, the groups compared, the tolerance
check() {
  local st=$1 final=$2 groups=$3 tol=$4; shift 4
  local exact=1
  [ "$tol" = continue ] && exact=0
  run 1 "$st" "$st-ref" "$@" --set checkpoint.every=4 --set checkpoint.keep=10
  local mid
  mid=$(ls "$st-ref/checkpoints" | grep -E "^$st-step0+4\.h5$") || fail "$st: no step-4 checkpoint"
  for np in 2 4; do
    run "$np" "$st" "$st-grow$np" "$@" --set checkpoint.every=4 --resume "$W/$st-ref/checkpoints/$mid"
    grep -q "resumed from .*$mid" "$st-grow$np.log" || fail "$st: the $np-rank run did not resume from $mid"
    # progress counts the stage's steps, not the run's: 8 of 8 at the end, not 4 of 8
    grep -q "^$st step 8/8 " "$st-grow$np.log" || { grep " step " "$st-grow$np.log"; fail "$st: progress after the resume does not end at step 8/8"; }
    echo "-- $st: 1 rank to step 4, then $np ranks, vs 1 rank throughout"
    if ((exact)); then
      $PY "$CMP" "$st-ref/$final" "$st-grow$np/$final" --groups "$groups" --tol "$tol" || fail "$st: resumed on $np ranks differs"
    else
      $PY - "$st-ref/checkpoints/$mid" "$st-grow$np/$final" <<'PY' || fail "$st: the $np-rank run did not continue the checkpoint"
import sys, h5py, numpy as np
ck, fin = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert int(fin.attrs["step"]) == 8, fin.attrs["step"]
for k in ("step", "loss"):
    a, b = ck["log"][k][()], fin["log"][k][()]
    assert len(b) == 8 and np.array_equal(a[:4], b[:4]), (k, a, b)
assert list(fin["log"]["step"][()]) == list(range(1, 9))
moved = sum(float(np.abs(fin[g][n][()] - ck[g][n][()]).max()) for g in ("model", "pe", "head") if g in ck and g in fin
            for n in ck[g])
assert moved > 0 and np.isfinite(fin["log"]["loss"][()]).all(), moved
print("continued from step 4 to 8 on more ranks; /log rows 1-4 kept bit for bit")
PY
    fi
  done
}
check pretrain base.h5 model,head continue --set optim.steps=8 --set optim.batch_size=8
check prime primed.h5 model,pe,head 1e-6 --init base/base.h5 --set optim.steps=8
check finetune adapted.h5 pe,head 1e-5 --init base/base.h5 --set optim.steps=8 --set optim.batch_size=8 \
  --set optim.eval_every=8
echo "every stage resumes on more ranks than wrote its checkpoint"
