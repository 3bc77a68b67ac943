#!/usr/bin/env bash
# The fault matrix of docs/faults.md, measured: each fault is injected into a 2-rank
# `peprime prime` (generated corpus, small model) and the script checks what happens (exit
# status, message), how long until every rank has exited (mpiexec returns only then; a hang
# fails through the timeout), what is kept (every final-named checkpoint verifies) and that
# the run resumes. Prints one "FAULT | ..." row per case.
#   faults.sh PEPRIME_BIN WORKDIR MPIEXEC [matrix|full-disk]
# matrix (the default): every case but the full disk; full-disk: only the full disk, which
# mounts a 1 MiB tmpfs and so needs root with CAP_SYS_ADMIN: without it the script says so
# and exits 77 (ctest: skipped).
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"; PART="${4:-matrix}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
case "$PART" in
  matrix) ;;
  full-disk)
    probe=$(mktemp -d)
    if ! mount -t tmpfs -o size=1m tmpfs "$probe" 2>/dev/null; then
      rmdir "$probe"
      echo "SKIP: the full-disk case cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)"
      exit 77
    fi
    umount "$probe"; rmdir "$probe" ;;
  *) echo "faults.sh: unknown part '$PART' (matrix or full-disk)" >&2; exit 2 ;;
esac
. "$HERE/lib.sh"
prime_setup "$B" "$W"
# longer runs, a checkpoint every 20 meta-steps, 3 kept. A run a kill or a signal stops (a victim)
# is given LONG meta-steps, so it is still running whenever the signal arrives (a loaded machine
# once let a 400-step victim end first: `kill: '' not a pid`); it is signalled once a checkpoint
# shows it is under way. The rate is constant, so the step count never enters an update: the
# victim's --resume auto with faults.ini's own step count gives the uninterrupted run's model.
LONG=100000
cat > faults.ini <<'INI'
include = job.ini
[optim]
steps = 400
schedule = constant
[checkpoint]
every = 20
keep = 3
INI
fail() { echo "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
secs() { $PY -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
row() { echo "FAULT | $1 | exit $2 | $3 | kept: $4"; }
MP=
start() { # start OUT [args]: a 2-rank prime in the background, log in $W/<OUT with / as _>.log; sets MP
  local out=$1; shift
  "$MPIEXEC" -n 2 --bind-to none "$B" prime --config faults.ini --init base/base.h5 --out "$out" "${S[@]}" "$@" \
    >"$W/${out//\//_}.log" 2>&1 &
  MP=$!
}
stop_run() { # stop_run: SIGKILL for a run still going (its ranks, then mpiexec): a failed check leaves no victim
  [ -n "$MP" ] && kill -0 "$MP" 2>/dev/null || return 0
  pkill -9 -P "$MP" 2>/dev/null; kill -9 "$MP" 2>/dev/null; wait "$MP" 2>/dev/null || true
}
trap stop_run EXIT
finish() { # finish: waits for mpiexec (at most 60 s, else a hang); sets ST, GONE (seconds after T0)
  local i
  for i in $(seq 1 600); do kill -0 "$MP" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$MP" 2>/dev/null && { stop_run; fail "ranks still running 60 s after the fault (hang)"; }
  set +e; wait "$MP"; ST=$?; set -e
  MP=
  GONE=$(secs "$T0" "$(now)")
}
rank_pid() { # rank_pid R: the pid of rank R of the current mpiexec
  local p
  for p in $(pgrep -P "$MP"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return; }
  done
}
signal_rank() { # signal_rank SIG R: sends SIG to rank R of the current run, which must still be running
  local pid
  pid=$(rank_pid "$2")
  [ -n "$pid" ] || fail "rank $2 of the run is gone before its SIG$1 (mpiexec $MP: $(kill -0 "$MP" 2>/dev/null && echo running || echo ended))"
  kill -"$1" "$pid"
}
wait_for() { # wait_for FILE-GLOB: until a file matches (at most 60 s)
  local i
  for i in $(seq 1 1200); do compgen -G "$1" >/dev/null && return 0; sleep 0.05; done
  fail "nothing matched $1 within 60 s"
}
verify_kept() { # verify_kept DIR: every final-named checkpoint opens and verifies; prints them
  local f n=0
  for f in "$1"/prime-step*.h5; do
    [ -e "$f" ] || continue
    "$B" inspect --verify "$f" >/dev/null 2>&1 || fail "$f does not verify"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || fail "no checkpoint kept in $1"
  KEPT="$n verified checkpoint(s), newest $(basename "$(ls "$1"/prime-step*.h5 | tail -1)")"
}
resume_ok() { # resume_ok OUT [args]: --resume auto completes
  "$MPIEXEC" -n 2 --bind-to none "$B" prime --config faults.ini --init base/base.h5 --out "$1" "${S[@]}" \
    --resume auto "${@:2}" >"$1.resume.log" 2>&1 || { tail -5 "$1.resume.log"; fail "resume of $1 failed"; }
}
ref_run() { # ref_run N: the uninterrupted N-step run, in ref (N = 100) or refN, made once
  local out=ref$1
  [ "$1" = 100 ] && out=ref
  [ -e "$out/primed.h5" ] || "$MPIEXEC" -n 2 --bind-to none "$B" prime --config faults.ini --init base/base.h5 \
    --out "$out" "${S[@]}" --set optim.steps="$1" >"$out.log" 2>&1 || { tail -5 "$out.log"; fail "reference run $out"; }
  REF=$out
}
resume_same() { # resume_same OUT N WHAT [args]: a stopped victim resumed to N steps (or, when it was
  # stopped after step N, on a slow machine, to 20 past its newest checkpoint) is bit-identical to
  # the uninterrupted run of as many steps
  local out=$1 n=$2 what=$3 last; shift 3
  last=$(ls "$out/checkpoints"/prime-step*.h5 | tail -1 | sed 's/.*prime-step0*\([0-9][0-9]*\)\.h5$/\1/')
  [ "$last" -lt "$n" ] || n=$((last + 20))
  ref_run "$n"
  resume_ok "$out" "$@" --set optim.steps="$n"
  $PY "$HERE/compare_h5.py" "$out/primed.h5" "$REF/primed.h5" --exact >/dev/null || fail "resume after $what differs"
}

full_disk() { # the full-disk cases: a 1 MiB tmpfs (mountable: checked at the start)
  echo "== full disk while writing a checkpoint (a 1 MiB tmpfs)"
  mkdir -p full
  mount -t tmpfs -o size=1m tmpfs full || fail "cannot mount the tmpfs (the probe at the start could)"
  trap 'stop_run; umount "$W/full" 2>/dev/null || true' EXIT
  for chk in 1 0; do
    rm -rf full/run
    export PEP_CKPT_SPACE_CHECK=$chk
    T0=$(now); start full/run --set optim.steps=60 --set checkpoint.every=10; finish
    unset PEP_CKPT_SPACE_CHECK
    [ "$ST" -ne 0 ] || fail "full disk: the job must fail"
    if [ $chk = 1 ]; then
      grep -q "MB free, the prime checkpoint of step 20 needs about" full_run.log || fail "no free-space message"
      what="clean error before the write (free space checked)"
    else
      grep -q "a collective step of the checkpoint write failed on rank" full_run.log || fail "no abort message"
      what="disk filled during the write: MPI_Abort"
    fi
    verify_kept full/run/checkpoints
    row "full disk ($what)" "$ST" "all ranks gone ${GONE} s after the start (whole run)" "$KEPT"
  done
  umount full; trap stop_run EXIT
}
if [ "$PART" = full-disk ]; then
  full_disk
  echo "the full-disk fault cases behaved as documented"
  exit 0
fi

echo "== reference run (for bit-identical resumes)"
ref_run 100

echo "== SIGKILL of rank 1 mid-run (after its 2nd checkpoint)"
start k1 --set optim.steps=$LONG
wait_for "k1/checkpoints/prime-step00000040.h5"
T0=$(now); signal_rank 9 1; finish
[ "$ST" -ne 0 ] || fail "a killed rank must fail the job"
verify_kept k1/checkpoints
resume_same k1 400 SIGKILL
row "SIGKILL rank 1 mid-run" "$ST" "all ranks gone ${GONE} s after the signal" "$KEPT; resumed bit-identical"

echo "== SIGKILL of rank 1 mid-checkpoint (while a .tmp is being written)"
start k2 --set optim.steps=$LONG --set checkpoint.every=1
wait_for "k2/checkpoints/prime-step00000010.h5"
wait_for "k2/checkpoints/prime-step*.h5.tmp"
T0=$(now); signal_rank 9 1; finish
[ "$ST" -ne 0 ] || fail "a killed rank must fail the job"
verify_kept k2/checkpoints
resume_same k2 100 SIGKILL --set checkpoint.every=1
compgen -G "k2/checkpoints/*.tmp" >/dev/null && fail "stale .tmp left after the resumed run's rotation"
row "SIGKILL rank 1 mid-checkpoint" "$ST" "all ranks gone ${GONE} s after the signal" "$KEPT; the half file only as .tmp; resumed bit-identical"

for sig in TERM USR1; do
  echo "== SIG$sig to rank 1 only"
  start s$sig --set optim.steps=$LONG
  wait_for "s$sig/checkpoints/prime-step00000020.h5"
  T0=$(now); signal_rank $sig 1; finish
  [ "$ST" -eq 75 ] || { tail -5 s$sig.log; fail "SIG$sig: expected exit 75, got $ST"; }
  grep -q "resume with --resume auto" s$sig.log || fail "SIG$sig: no resume hint"
  verify_kept s$sig/checkpoints
  resume_same s$sig 400 SIG$sig
  row "SIG$sig to rank 1" "$ST" "all ranks gone ${GONE} s after the signal" "$KEPT (written at the stop); resumed bit-identical"
done

echo "== NaN on rank 1 (PEP_FAULT_RANK=1 PEP_FAULT_STEP=30)"
export PEP_FAULT_RANK=1 PEP_FAULT_STEP=30
T0=$(now); start nan; finish
unset PEP_FAULT_RANK PEP_FAULT_STEP
[ "$ST" -eq 1 ] || fail "NaN: expected exit 1, got $ST"
grep -q "non-finite meta-loss at meta-step 31.*on rank 1" nan.log || fail "NaN: rank 1's message missing"
verify_kept nan/checkpoints
row "NaN on rank 1 at meta-step 31" "$ST" "all ranks gone ${GONE} s after the start (whole run)" "$KEPT"

echo "== SIGKILL of rank 1 at the sharded outer step's weight allgather (rank 0 inside it)"
export PEP_FAULT_RANK=1 PEP_FAULT_STEP=30 PEP_FAULT_KILL_IN=allgather
T0=$(now); start kag; finish
unset PEP_FAULT_RANK PEP_FAULT_STEP PEP_FAULT_KILL_IN
[ "$ST" -ne 0 ] || fail "a rank killed in the allgather must fail the job"
grep -q "outer step sharded" kag.log && fail "the run ended: the fault was not injected"
verify_kept kag/checkpoints
resume_ok kag
$PY "$HERE/compare_h5.py" kag/primed.h5 ref400/primed.h5 --exact >/dev/null || fail "resume after the allgather kill differs"
row "SIGKILL rank 1 in the weight allgather (meta-step 31)" "$ST" "all ranks gone ${GONE} s after the start (whole run)" "$KEPT; resumed bit-identical"

echo "== unreadable data file on rank 1 (its data root lacks bb/train.txt)"
$PY "$HERE/log_figures.py" corpus good
cp -r good bad; rm bad/ner/wikiann/bb/train.txt
C=(--config faults.ini --init base/base.h5 --out data "${S[@]}" --set data.corpus=wikiann)
T0=$(now)
set +e
timeout 60 "$MPIEXEC" --bind-to none -n 1 "$B" prime "${C[@]}" --set "data.root=$W/good" : \
  -n 1 "$B" prime "${C[@]}" --set "data.root=$W/bad" >data.log 2>&1
ST=$?
set -e
GONE=$(secs "$T0" "$(now)")
[ "$ST" -eq 1 ] || { tail -5 data.log; fail "unreadable data: expected exit 1, got $ST"; }
grep -q "error: rank 1: .*bad/ner/wikiann/bb/train.txt" data.log || { tail -5 data.log; fail "rank 1's file not named"; }
row "data file missing on rank 1" "$ST" "all ranks gone ${GONE} s after the start (whole run)" "nothing written (fails before the first step)"

echo "== truncated and corrupted newest checkpoints: --resume auto falls back to an older one"
cp -r ref/checkpoints kept0
mkdir -p tc/checkpoints; cp kept0/prime-step00000060.h5 kept0/prime-step00000080.h5 kept0/prime-step00000100.h5 tc/checkpoints/
truncate -s 300000 tc/checkpoints/prime-step00000100.h5
off=$($PY -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); print(f['model/embeddings.word_embeddings.weight'].id.get_offset())" \
  tc/checkpoints/prime-step00000080.h5)
printf '\x7f' | dd of=tc/checkpoints/prime-step00000080.h5 bs=1 seek=$((off + 101)) conv=notrunc 2>/dev/null
T0=$(now)
resume_ok tc --set optim.steps=100
GONE=$(secs "$T0" "$(now)")
grep -q "resumed from .*prime-step00000060.h5" tc.resume.log || fail "did not resume from step 60"
grep -q "prime-step00000080.h5.*damaged: its bytes no longer match the digest" tc.resume.log ||
  fail "the corrupted checkpoint was not reported"
$PY "$HERE/compare_h5.py" tc/primed.h5 ref/primed.h5 --exact >/dev/null || fail "resume from step 60 differs"
row "newest checkpoint truncated, next corrupted" 0 "the resumed run took ${GONE} s" \
  "step 60 used, the two damaged files reported and skipped; bit-identical result"
set +e; "$B" inspect --verify kept0/prime-step00000100.h5 >/dev/null 2>&1; set -e
truncate -s 300000 kept0/prime-step00000100.h5
set +e
"$MPIEXEC" -n 2 --bind-to none "$B" prime --config faults.ini --init base/base.h5 --out tp "${S[@]}" \
  --resume "$W/kept0/prime-step00000100.h5" >tp.log 2>&1
ST=$?
set -e
[ "$ST" -eq 1 ] && grep -q "prime-step00000100.h5" tp.log || { tail -5 tp.log; fail "--resume PATH of a truncated file"; }
row "--resume PATH of a truncated file" "$ST" "error at start" "an error naming the file; nothing written"

echo "== a damaged task state (/tasks/<lang>) in a checkpoint given to --resume PATH"
cp kept0/prime-step00000060.h5 taskbad.h5
read -r lang off < <($PY -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); l=sorted(f['tasks'].keys())[0]; \
print(l, f['tasks/'+l+'/classifier.bias'].id.get_offset())" taskbad.h5)
printf '\x7f' | dd of=taskbad.h5 bs=1 seek=$((off + 5)) conv=notrunc 2>/dev/null
# sealed again, as a writer that wrote the bad bytes would have: the task tensor's own checksum must
# catch it (the file's digest would stop it at open, tested above)
$PY "$HERE/../fuzz/seal_damaged.py" --reseal taskbad.h5
set +e
"$MPIEXEC" -n 2 --bind-to none "$B" prime --config faults.ini --init base/base.h5 --out tb "${S[@]}" \
  --set optim.steps=100 --resume "$W/taskbad.h5" >tb.log 2>&1
ST=$?
set -e
[ "$ST" -eq 1 ] || { tail -5 tb.log; fail "a damaged task state must stop the resume (it restarted the task fresh)"; }
grep -q "cannot resume the task state /tasks/$lang of .*taskbad.h5: .*corrupted.*resume from an older checkpoint" tb.log ||
  { tail -5 tb.log; fail "the task-state message"; }
row "/tasks/$lang damaged, --resume PATH" "$ST" "error at start" "nothing written (the task is not silently restarted)"

echo "== checkpoint from another model shape"
T0=$(now)
set +e
"$MPIEXEC" -n 2 --bind-to none "$B" prime --config faults.ini --init base/base.h5 --out shape "${S[@]}" \
  --set model.hidden=64 --set model.ff=128 >shape.log 2>&1
ST=$?
set -e
GONE=$(secs "$T0" "$(now)")
[ "$ST" -eq 2 ] || { tail -5 shape.log; fail "another shape: expected exit 2, got $ST"; }
grep -q "holds a model with layers=2 hidden=32.*config asks for layers=2 hidden=64" shape.log || fail "shape message"
row "--init of another model shape" "$ST" "all ranks gone ${GONE} s after the start (whole run)" "nothing written"

echo "all fault cases of the matrix behaved as documented"
