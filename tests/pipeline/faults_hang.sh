#!/usr/bin/env bash
# The hung-rank rows of docs/faults.md: a rank that stops making progress without dying is
# found by the progress watchdog (run.watchdog_s, mpi/watchdog.h), which ends the job with a
# message naming it. Each case runs `peprime prime` on the generated corpus (tests/pipeline/
# lib.sh) with a 5 s bound and a checkpoint every 20 meta-steps and checks:
#   * a healthy 2-rank run with that bound never fires and ends bit-identical to one with the
#     watchdog off (it only observes);
#   * SIGSTOP of rank 1 (its pid from its heartbeat file): every rank gone within the bound
#     plus a margin (mpiexec returns; timed), exit status 76, the message names rank 1, its
#     meta-step and phase; the kept checkpoints verify and --resume auto (watchdog on auto)
#     finishes bit-identical to the uninterrupted run;
#   * rank 1 stuck while its process runs (PEP_FAULT_HANG=1 at meta-step 31): named with its
#     task, one message;
#   * SIGSTOP of rank 2 of 4: named, every rank gone.
# Prints one "FAULT | ..." row per case.
#   faults_hang.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
. "$HERE/lib.sh"
prime_setup "$B" "$W"
BOUND=5
MARGIN=15 # mpiexec's start-up alone takes 1.3-1.8 s here; the machine may be loaded
# 1 200 meta-steps: about 2.5 s on an idle Zen 5, so a run is still going when its heartbeat has
# been rewritten (every bound / 10 s) and the test stops a rank
cat > hang.ini <<INI
include = job.ini
[optim]
steps = 1200
[checkpoint]
every = 20
keep = 3
[run]
watchdog_s = $BOUND
INI
MP=""; STOPPED=""
cleanup() { # only what this script started: the stopped rank and its mpiexec
  [ -n "$STOPPED" ] && kill -CONT "$STOPPED" 2>/dev/null || true
  [ -n "$MP" ] && kill -0 "$MP" 2>/dev/null && kill -9 "$MP" 2>/dev/null || true
  [ -n "$STOPPED" ] && kill -9 "$STOPPED" 2>/dev/null || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
secs() { $PY -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
row() { echo "FAULT | $1 | exit $2 | $3 | kept: $4"; }
start() { # start N OUT [args]: an N-rank prime in the background, log in $W/OUT.log; sets MP
  local n=$1 out=$2; shift 2
  "$MPIEXEC" -n "$n" --bind-to none "$B" prime --config hang.ini --init base/base.h5 --out "$out" "${S[@]}" "$@" \
    >"$W/$out.log" 2>&1 &
  MP=$!
}
finish() { # finish: waits for mpiexec at most BOUND + MARGIN + 30 s; sets ST, GONE (s after T0)
  local i
  for i in $(seq 1 $(((BOUND + MARGIN + 30) * 10))); do kill -0 "$MP" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$MP" 2>/dev/null && fail "ranks still running $((BOUND + MARGIN + 30)) s after the fault (hang)"
  set +e; wait "$MP"; ST=$?; set -e
  GONE=$(secs "$T0" "$(now)")
  MP=""
}
wait_for() { # wait_for FILE-GLOB: until a file matches (at most 60 s)
  local i
  for i in $(seq 1 1200); do compgen -G "$1" >/dev/null && return 0; sleep 0.05; done
  fail "nothing matched $1 within 60 s"
}
rank_pid() { # rank_pid OUT R: rank R's pid from its heartbeat file, checked to be a child of mpiexec
  local p
  p=$(awk '$1 == "pid" { print $2 }' "$1/.heartbeat/rank-$2")
  pgrep -P "$MP" | grep -qx "$p" || fail "pid $p of $1/.heartbeat/rank-$2 is not a rank of mpiexec $MP"
  echo "$p"
}
beat_started() { # beat_started OUT R: wait until rank R's heartbeat file names a step (it is rewritten
  # every bound / 10 s, so on a fast machine a rank can reach its 2nd checkpoint before the first
  # rewrite; the message is then about "starting", not a meta-step and phase)
  local i
  for i in $(seq 1 1200); do
    awk '$1 == "step" && $2 > 0 { f = 1 } END { exit !f }' "$1/.heartbeat/rank-$2" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "the heartbeat of rank $2 in $1 named no step within 60 s"
}
verify_kept() { # verify_kept DIR: every final-named checkpoint verifies; sets KEPT
  local f n=0
  for f in "$1"/prime-step*.h5; do
    [ -e "$f" ] || continue
    "$B" inspect --verify "$f" >/dev/null 2>&1 || fail "$f does not verify"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || fail "no checkpoint kept in $1"
  KEPT="$n verified checkpoint(s), newest $(basename "$(ls "$1"/prime-step*.h5 | tail -1)")"
}
running() { # running PID: the process exists and is not a zombie (a dead rank waits for init to reap it)
  local st
  st=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
  [ -n "$st" ] && [ "$st" != Z ]
}
messages() { grep -c "peprime: watchdog:" "$1" || true; }

echo "== healthy runs: watchdog 5 s (never fires) and off, bit-identical"
"$MPIEXEC" -n 2 --bind-to none "$B" prime --config hang.ini --init base/base.h5 --out ref "${S[@]}" >ref.log 2>&1 ||
  { tail -5 ref.log; fail "the healthy run with run.watchdog_s = $BOUND failed"; }
[ "$(messages ref.log)" = 0 ] || fail "the watchdog fired in a healthy run"
[ -s ref/.heartbeat/rank-0 ] && [ -s ref/.heartbeat/rank-1 ] || fail "no heartbeat files"
"$MPIEXEC" -n 2 --bind-to none "$B" prime --config hang.ini --init base/base.h5 --out off "${S[@]}" \
  --set run.watchdog_s=-1 >off.log 2>&1 || fail "the run with the watchdog off failed"
[ -e off/.heartbeat ] && fail "run.watchdog_s = -1 still wrote heartbeats"
$PY "$HERE/compare_h5.py" ref/primed.h5 off/primed.h5 --exact >/dev/null || fail "the watchdog changed the result"

echo "== SIGSTOP of rank 1 mid-run (after its 2nd checkpoint)"
start 2 stop
wait_for "stop/checkpoints/prime-step00000040.h5"
beat_started stop 1
pid=$(rank_pid stop 1)
T0=$(now); kill -STOP "$pid"; STOPPED=$pid; finish
STOPPED=""
running "$pid" && { kill -9 "$pid"; fail "the stopped rank $pid survived the job"; }
[ "$ST" -eq 76 ] || { tail -5 stop.log; fail "SIGSTOP: expected exit 76, got $ST"; }
$PY -c "import sys; sys.exit(float(sys.argv[1]) > $BOUND + $MARGIN)" "$GONE" ||
  fail "ranks gone only ${GONE} s after the stop (bound $BOUND s + $MARGIN s)"
grep -q "watchdog: rank 1 (pid $pid on [^)]*) has not run for [0-9.]* s (stopped.*its last heartbeat.*: meta-step [0-9]*, [a-z]" stop.log ||
  { grep watchdog stop.log; fail "the message does not name rank 1, its meta-step and phase"; }
grep -q "ending the job (MPI_Abort, exit status 76)" stop.log || fail "the message does not say the job is ended"
[ "$(messages stop.log)" = 1 ] || fail "expected one watchdog message, got $(messages stop.log)"
verify_kept stop/checkpoints
"$MPIEXEC" -n 2 --bind-to none "$B" prime --config hang.ini --init base/base.h5 --out stop "${S[@]}" \
  --set run.watchdog_s=0 --resume auto >stop.resume.log 2>&1 || { tail -5 stop.resume.log; fail "resume failed"; }
grep -q "resumed from .*prime-step" stop.resume.log || fail "the resume did not start from a checkpoint"
$PY "$HERE/compare_h5.py" stop/primed.h5 ref/primed.h5 --exact >/dev/null || fail "resume after the hang differs"
row "SIGSTOP of rank 1 (run.watchdog_s = $BOUND)" "$ST" "all ranks gone ${GONE} s after the stop" \
  "$KEPT; resumed (watchdog auto) bit-identical"
sed -n 's/.*\(peprime: watchdog: .*\)/  \1/p' stop.log

echo "== rank 1 stuck at meta-step 31 while its process runs (PEP_FAULT_HANG=1)"
export PEP_FAULT_RANK=1 PEP_FAULT_STEP=30 PEP_FAULT_HANG=1
T0=$(now); start 2 alive; finish
unset PEP_FAULT_RANK PEP_FAULT_STEP PEP_FAULT_HANG
[ "$ST" -eq 76 ] || { tail -5 alive.log; fail "stuck rank: expected exit 76, got $ST"; }
grep -q "watchdog: rank 1 (pid [0-9]* on [^)]*) made no progress for [0-9.]* s, at meta-step 31, task [0-9]* of 4 (language [a-z]*) (it still runs" alive.log ||
  { grep watchdog alive.log; fail "the message does not name rank 1 stuck in its task"; }
[ "$(messages alive.log)" = 1 ] || fail "expected one watchdog message, got $(messages alive.log)"
verify_kept alive/checkpoints
row "rank 1 stuck in a task, process alive" "$ST" "all ranks gone ${GONE} s after the start (whole run)" "$KEPT"

echo "== SIGSTOP of rank 2 of 4"
start 4 stop4
wait_for "stop4/checkpoints/prime-step00000020.h5"
beat_started stop4 2
pid=$(rank_pid stop4 2)
T0=$(now); kill -STOP "$pid"; STOPPED=$pid; finish
STOPPED=""
running "$pid" && { kill -9 "$pid"; fail "the stopped rank $pid survived the job"; }
[ "$ST" -eq 76 ] || { tail -5 stop4.log; fail "4 ranks: expected exit 76, got $ST"; }
grep -q "watchdog: rank 2 (pid $pid on [^)]*) has not run for" stop4.log || fail "4 ranks: rank 2 not named"
$PY -c "import sys; sys.exit(float(sys.argv[1]) > $BOUND + $MARGIN)" "$GONE" ||
  fail "4 ranks: gone only ${GONE} s after the stop"
verify_kept stop4/checkpoints
row "SIGSTOP of rank 2 of 4" "$ST" "all ranks gone ${GONE} s after the stop; $(messages stop4.log) message(s)" "$KEPT"
echo "all hang cases behaved as documented"
