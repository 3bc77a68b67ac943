#!/usr/bin/env bash
# Input checkpoints are read once per job (issue 30 item 3), counted by the reader itself
# (PEP_IO_STATS: one "<stage> rank R of P checkpoint_bytes_read N" line per rank), with real
# mpiexec -n 4 on the generated corpus and a 4-layer width-128 encoder (the 1 MiB header block
# of a checkpoint, a hole that is never read, is then a tenth of the file, so a second read of
# the file fails the bound):
#   prime fresh    reads --init once: all ranks together at most 1.5x base.h5's size;
#   prime resume   the newest checkpoint truncated (reported and skipped, only its header read),
#                  the one before it read once and --init not at all: at most 1.5x that
#                  checkpoint's size; ranks 1-3 read nothing; the resumed primed.h5 and /tasks
#                  bit-identical to the uninterrupted run's (same rank count), and a 2-rank
#                  resume of the same checkpoint within prime_mpi.sh's 1e-6;
#   finetune       a resume needs the frozen encoder from --init (finetune checkpoints hold PE +
#                  head only) but not its PE: each input read once, at most 1.5x the two files'
#                  sizes; adapted.h5 (with /best) bit-identical to the uninterrupted run's.
# The interrupted runs are the reference's checkpoints copied up to the stop step (what a kill
# right after that checkpoint leaves), then --resume auto.
#   resume_reads.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
. "$HERE/lib.sh"
step() { echo "== $*"; }
fail() { echo "FAIL: $*"; exit 1; }
step "tokenizer + a 4-layer width-128 base"
prime_setup "$B" "$W"
M=(--set model.layers=4 --set model.hidden=128 --set model.heads=4 --set model.ff=512)
"$B" pretrain --config job.ini --out base128 "${S[@]}" "${M[@]}" --set optim.steps=2 --set optim.batch_size=8 \
  >pretrain.log 2>&1 || { tail -5 pretrain.log; fail "pretrain"; }
size() { stat -c %s "$1"; }
# reads STATS: the bytes all ranks read (sum of the lines), after checking there is one line per rank
reads() {
  [ "$(wc -l <"$1")" -eq 4 ] || { cat "$1"; fail "$1: expected one line per rank"; }
  awk '{ s += $NF } END { print s }' "$1"
}
# only_rank0 STATS: ranks 1-3 read no checkpoint bytes
only_rank0() {
  awk '$3 != 0 && $NF != 0 { bad = 1 } END { exit bad }' "$1" || { cat "$1"; fail "$1: a rank other than 0 read a checkpoint"; }
}
# at_most WHAT BYTES LIMIT_BYTES: BYTES <= 1.5 x LIMIT_BYTES
at_most() {
  $PY - "$@" <<'PY' || exit 1
import sys
what, got, ref = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"{what}: {got} bytes read by the 4 ranks, {got / ref:.2f}x {ref} bytes")
if got > 1.5 * ref:
    print(f"FAIL: {what}: more than 1.5x")
    sys.exit(1)
PY
}
ck() { printf '%s/checkpoints/%s-step%08d.h5' "$1" "$2" "$3"; }
run4() { # run4 STAGE OUT STATS [args]: a 4-rank stage, its read counts in STATS
  local stage=$1 out=$2 stats=$3; shift 3
  rm -f "$stats"
  PEP_IO_STATS="$stats" "$MPIEXEC" -n 4 --bind-to none -x PEP_IO_STATS "$B" "$stage" --config job.ini --out "$out" \
    "${S[@]}" "${M[@]}" "$@" >"$out.log" 2>&1 || { tail -5 "$out.log"; fail "$stage $out"; }
}

step "prime, fresh: --init read once"
run4 prime ref ref.io --init base128/base.h5
only_rank0 ref.io
at_most "prime fresh start (--init base.h5)" "$(reads ref.io)" "$(size base128/base.h5)"

step "prime, resumed after step 8 (the step-12 checkpoint truncated): the checkpoint read once, --init not read"
mkdir -p res/checkpoints
cp "$(ck ref prime 4)" "$(ck ref prime 8)" res/checkpoints/
head -c 500000 "$(ck ref prime 12)" >"$(ck res prime 12)"
run4 prime res res.io --init base128/base.h5 --resume auto
grep -q "skipping damaged checkpoint .*prime-step00000012.h5: .*truncated" res.log || fail "the truncated checkpoint was not reported"
grep -q "resumed from .*prime-step00000008.h5 at meta-step 8" res.log || fail "did not resume from step 8"
grep -q "init base128/base.h5 not read" res.log || fail "--init was read on a resume"
only_rank0 res.io
at_most "prime resume (prime-step00000008.h5)" "$(reads res.io)" "$(size "$(ck ref prime 8)")"
$PY "$HERE/compare_h5.py" res/primed.h5 ref/primed.h5 --exact
$PY "$HERE/compare_h5.py" res/primed.h5 ref/primed.h5 --exact --groups tasks

step "the same checkpoint resumed by 2 ranks: within 1e-6 of the 4-rank run"
mkdir -p res2/checkpoints
cp "$(ck ref prime 8)" res2/checkpoints/
"$MPIEXEC" -n 2 --bind-to none "$B" prime --config job.ini --out res2 "${S[@]}" "${M[@]}" --init base128/base.h5 \
  --resume auto >res2.log 2>&1 || { tail -5 res2.log; fail "2-rank resume"; }
$PY "$HERE/compare_h5.py" res2/primed.h5 ref/primed.h5 --tol 1e-6

step "finetune, resumed after step 4: the checkpoint and --init (its encoder) read once each"
FT=(--set data.source=aa --set data.targets=bb --set optim.steps=6 --set optim.batch_size=8 --set optim.eval_every=2
    --set checkpoint.every=2 --set pe.init=meta --init ref/primed.h5)
run4 finetune fref fref.io "${FT[@]}"
only_rank0 fref.io
at_most "finetune fresh start (--init primed.h5)" "$(reads fref.io)" "$(size ref/primed.h5)"
mkdir -p fres/checkpoints
cp "$(ck fref finetune 2)" "$(ck fref finetune 4)" fres/checkpoints/
run4 finetune fres fres.io "${FT[@]}" --resume auto
grep -q "resumed from .*finetune-step00000004.h5 at step 4" fres.log || fail "did not resume from step 4"
only_rank0 fres.io
at_most "finetune resume (finetune-step00000004.h5 + --init primed.h5)" "$(reads fres.io)" \
  "$(( $(size "$(ck fref finetune 4)") + $(size ref/primed.h5) ))"
$PY "$HERE/compare_h5.py" fres/adapted.h5 fref/adapted.h5 --exact --groups model,pe,head,best/pe,best/head
echo "all read-once checks passed"
