#!/usr/bin/env bash
# checkpoint.every_minutes: with no step cadence a stage still checkpoints on the wall clock
# (several checkpoints at a 0.00001-minute cadence), the result is bit-identical to the same run
# without them (a checkpoint does not perturb the run), a run resumed from one of them ends
# with the same model, and a checkpoint slower than half of Slurm's signal lead
# (PEP_SIGNAL_LEAD_S) is warned about once, with what to set.
#   time_checkpoints.sh PEPRIME_BIN WORKDIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
B="$1"; W="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
prime_setup "$B" "$W"
CMP="$HERE/compare_h5.py"
run() { local out=$1; shift; "$B" prime --config job.ini --init base/base.h5 --out "$out" "${S[@]}" \
  --set optim.steps=10 --set checkpoint.every=0 --set checkpoint.keep=100 "$@" > "$out.log" 2>&1 || {
  cat "$out.log"; fail "prime ($out) failed"; }; }
run plain --set checkpoint.every_minutes=0
[ -z "$(ls plain/checkpoints 2>/dev/null | grep step0000000[1-9])" ] || fail "every_minutes = 0 still wrote periodic checkpoints"
# 0.6 ms: shorter than any meta-step, however fast the machine (at 6 ms an idle Zen 5 wrote only 2)
PEP_SIGNAL_LEAD_S=0.0001 run timed --set checkpoint.every_minutes=0.00001
n=$(ls timed/checkpoints | grep -c '^prime-step0000000[1-9]\.h5$' || true)
[ "$n" -ge 3 ] || { ls timed/checkpoints; fail "a 0.00001-minute cadence wrote $n periodic checkpoints in 10 steps"; }
/usr/bin/python3 "$CMP" plain/primed.h5 timed/primed.h5 --exact || fail "checkpointing on the clock changed the result"
[ "$(grep -c "between Slurm's warning signal and the kill" timed.log)" -eq 1 ] || {
  cat timed.log; fail "no single warning about the signal lead"; }
grep -q "set PEP_SIGNAL_LEAD_S" timed.log || fail "the lead warning does not say what to set"
grep -q "between Slurm's warning signal" plain.log && fail "a run without PEP_SIGNAL_LEAD_S warned about the lead"
mid=$(ls timed/checkpoints | grep '^prime-step0000000[1-9]\.h5$' | sed -n 2p)
run resumed --resume "$W/timed/checkpoints/$mid" --set checkpoint.every_minutes=0
/usr/bin/python3 "$CMP" plain/primed.h5 resumed/primed.h5 --tol 1e-6 || fail "the run resumed from $mid differs"
echo "time-based checkpoint checks passed ($n clock checkpoints in 10 meta-steps)"
