#!/usr/bin/env bash
# A fine-tuning run that is interrupted after its best dev evaluation and resumed ends with the
# same adapted.h5 as the uninterrupted run: the checkpoint carries the best-so-far PE + head
# (/best) and the resume restores them with their F1 (issue 29 item 3). 2-rank runs on the
# generated corpus, a dev evaluation every 3 steps, a checkpoint every step; from the
# reference run's /log it takes g, the step of the best dev F1, and stops a run after g (where
# the current weights are not the best ones) in two ways:
#   kill     what a SIGKILL right after checkpoint g+1 leaves: that checkpoint as the newest
#            (copied from the reference, so the stop step is exact), then --resume auto;
#   sigterm  SIGTERM to rank 1 once checkpoint g+1 exists (the stage checkpoints the step it
#            is in and exits 75), then --resume auto.
# Both must give the reference's adapted.h5 bit for bit (/model, /pe, /head, /best). Then a
# checkpoint without /best (written before it existed; made with h5py) still resumes, with a
# warning, and its /best describes one set of weights: the best evaluation after the resume.
# `inspect --verify` reads /best and `strip` drops it.
#   finetune_best.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
FAILED=0
fail() { echo "FAIL: $*"; exit 1; }
# a failed comparison is reported and the next case still runs (all of them show on old code)
check() { local what=$1; shift; if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; FAILED=1; fi; }
cat > job.ini <<INI
include = $HERE/tiny-model.ini
[model]
tokenizer_vocab = 300
[data]
corpus = generated
languages = aa
source = aa
targets = bb
pretrain_languages = aa,bb
max_sentences = 200
[optim]
lr = 1e-2
batch_size = 8
steps = 60
eval_every = 3
[checkpoint]
every = 1
keep = 1000
[run]
log_every = 20
INI
N=60
"$B" pretrain --config job.ini --out base --set optim.steps=20 --set optim.lr=5e-3 --set optim.eval_every=0 \
  --set checkpoint.every=0 >pretrain.log 2>&1 || { tail -5 pretrain.log; fail "pretrain failed"; }
ft() { # ft OUT [args]: a 2-rank fine-tuning from base/base.h5
  local out=$1; shift
  "$MPIEXEC" -n 2 --bind-to none "$B" finetune --config job.ini --init base/base.h5 --out "$out" "$@"
}
ckpt() { printf '%s/checkpoints/finetune-step%08d.h5' "$1" "$2"; }
same() { # same A B GROUPS: the tensors of GROUPS bit-identical
  $PY "$HERE/compare_h5.py" "$1" "$2" --exact --groups "$3"
}

echo "== reference: uninterrupted"
ft ref >ref.log 2>&1 || { tail -5 ref.log; fail "the reference run failed"; }
# g: the first step with the highest dev F1 (the selection keeps the first); the stop goes
# after it; LATER: the first best evaluation after g + 1 (what a resume without /best keeps)
read -r G LATER < <($PY - ref/adapted.h5 <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
step, f1 = f["log/step"][()], f["log/dev_f1"][()]
ev = f1 >= 0
g = int(step[ev][np.argmax(f1[ev])])
after = ev & (step > g + 1)
later = int(step[after][np.argmax(f1[after])]) if after.any() else 0
print(g, later)
PY
)
echo "dev F1 best after step $G of $N; stops after step $((G + 1))"
[ "$G" -lt $((N - 3)) ] ||
  fail "the reference's best dev F1 is at step $G, too late to stop the run after it: change the config"
# the stop point must be one where the current weights are not the selected ones, else
# restoring the checkpoint's weights would pass too
if same "$(ckpt ref $((G + 1)))" ref/adapted.h5 pe,head >/dev/null; then
  fail "the weights of step $((G + 1)) equal the selected ones: the test would not tell"
fi

echo "== kill: resume from checkpoint $((G + 1)) as the newest"
mkdir -p kill/checkpoints
cp "$(ckpt ref $((G + 1)))" kill/checkpoints/
ft kill --resume auto >kill.log 2>&1 || { tail -5 kill.log; fail "the resume after the kill failed"; }
grep -q "resumed from .*step$(printf %08d $((G + 1))).h5 at step $((G + 1))" kill.log ||
  fail "kill: not resumed from step $((G + 1)): $(grep resumed kill.log)"
check "kill at step $((G + 1)), resumed: adapted.h5 equals the uninterrupted run's" \
  same kill/adapted.h5 ref/adapted.h5 model,pe,head,best/pe,best/head

echo "== sigterm: to rank 1 once checkpoint $((G + 1)) exists"
"$MPIEXEC" -n 2 --bind-to none "$B" finetune --config job.ini --init base/base.h5 --out term >term.log 2>&1 &
MP=$! # mpiexec itself: the ranks are its children
for _ in $(seq 1 1200); do [ -e "$(ckpt term $((G + 1)))" ] && break; sleep 0.02; done
R1=
for p in $(pgrep -P "$MP"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && R1=$p
done
[ -n "$R1" ] || { wait "$MP" || true; fail "sigterm: rank 1 was gone before checkpoint $((G + 1)) (run over?)"; }
# stopped first, so the step it is in is the one that ends the run, however slow the poll was
kill -STOP "$R1"; kill -TERM "$R1"; kill -CONT "$R1"
set +e; wait "$MP"; ST=$?; set -e
[ "$ST" -eq 75 ] || { tail -5 term.log; fail "sigterm: exit status $ST, not 75 (checkpoint and stop)"; }
S=$(ls term/checkpoints/finetune-step*.h5 | tail -1 | sed 's/.*step0*\([0-9]*\)\.h5/\1/')
[ "$S" -gt "$G" ] || fail "sigterm: stopped at step $S, not after the best step $G"
echo "stopped at step $S (exit 75)"
ft term --resume auto >term.resume.log 2>&1 || { tail -5 term.resume.log; fail "the resume after SIGTERM failed"; }
check "SIGTERM at step $S, resumed: adapted.h5 equals the uninterrupted run's" \
  same term/adapted.h5 ref/adapted.h5 model,pe,head,best/pe,best/head

echo "== /best of the final file"
check "/best of adapted.h5 is its /pe + /head, with the best dev F1 and its step" $PY - ref/adapted.h5 "$G" <<'PY'
import sys, h5py, numpy as np
f, g = h5py.File(sys.argv[1], "r"), int(sys.argv[2])
b = f["best"]
for grp in ("pe", "head"):
    assert sorted(b[grp]) == sorted(f[grp]), grp
    for k in f[grp]:
        assert b[grp][k].dtype == np.dtype("<f4") and np.array_equal(b[grp][k][()], f[grp][k][()]), k
step, f1 = f["log/step"][()], f["log/dev_f1"][()]
assert int(b.attrs["step"]) == g and b.attrs["dev_f1"] == f1[step == g][0], dict(b.attrs)
PY
check "inspect --verify reads /best" bash -c "'$B' inspect --verify term/adapted.h5 >inspect.log 2>&1 &&
  grep -q 'best so far    dev F1 .* after step $G (/best)' inspect.log && grep -q 'every tensor' inspect.log"
"$B" strip ref/adapted.h5 -o stripped.h5 >strip.log 2>&1 || { cat strip.log; fail "strip failed"; }
check "strip drops /best" $PY -c "import h5py, sys; sys.exit('best' in h5py.File('stripped.h5', 'r'))"

echo "== a checkpoint without /best (older format): warning, one consistent selection"
$PY - "$(ckpt ref $((G + 1)))" old.h5 <<'PY'
import sys, h5py
src, dst = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "w")
for k, v in src.attrs.items():
    dst.attrs[k] = v
for name in src:
    if name != "best":
        src.copy(name, dst)
PY
ft old --resume "$W/old.h5" >old.log 2>&1 || { tail -5 old.log; fail "the resume from a checkpoint without /best failed"; }
check "the warning says the best-so-far weights are not in the checkpoint" \
  grep -q "old.h5 has no /best .*best dev F1 so far .* after step $G) are not in it" old.log
if [ "$LATER" -lt "$N" ]; then
  check "without /best: the selection is the best evaluation after the resume (step $LATER)" \
    same old/adapted.h5 "$(ckpt ref "$LATER")" pe,head
fi
check "without /best: /best's dev F1 and step are those of step $LATER" $PY - old/adapted.h5 ref/adapted.h5 "$LATER" <<'PY'
import sys, h5py
o, r, later = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), int(sys.argv[3])
step, f1 = r["log/step"][()], r["log/dev_f1"][()]
assert int(o["best"].attrs["step"]) == later and o["best"].attrs["dev_f1"] == f1[step == later][0], dict(o["best"].attrs)
PY
[ "$FAILED" -eq 0 ] || fail "see above"
echo "finetune best-so-far resume: all checks passed"
