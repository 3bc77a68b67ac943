#!/usr/bin/env bash
# Runs libFuzzer harnesses for a bounded time each on a fresh copy of their seed corpus.
#   tests/fuzz/run.sh [-j N] BUILD_DIR SECONDS [HARNESS...]      (default: every harness)
# -j N runs N harnesses at a time (default 1; each libFuzzer process uses one core, so on an
# otherwise idle machine every harness still gets SECONDS of one core). One result line per
# harness, in the order given, after all have ended.
# BUILD_DIR is a PEP_FUZZ=ON build (see CMakeLists.txt here). New inputs go to
# BUILD_DIR/fuzz/work/<harness>/ (the committed seeds in corpus/<harness>/ are only read), crash,
# leak and timeout inputs to BUILD_DIR/fuzz/artifacts/, logs to BUILD_DIR/fuzz/<harness>.log.
# Exit status 1 if any harness found a crash, a leak, UB, a timeout (> 10 s for one input) or an
# input needing more than 2 GiB; the last line of each log gives executions and coverage.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
usage="usage: run.sh [-j N] BUILD_DIR SECONDS [HARNESS...]"
jobs=1
if [ "${1:-}" = -j ]; then jobs="${2:?$usage}"; shift 2; fi
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }
build="$(cd "${1:?$usage}" && pwd)"
seconds="${2:?$usage}"
shift 2
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(conll ini spm_model tokenizer checkpoint safetensors json wikiann)
out="$build/fuzz"
mkdir -p "$out/artifacts"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# third-party leaks only (see tests/lsan.supp); HDF5 has no frame pointers, so the checkpoint
# harness unwinds malloc stacks the slow way for the suppressions to see its frames
export LSAN_OPTIONS="suppressions=$here/../lsan.supp:print_suppressions=0"
# fuzz_one HARNESS: runs it; its result line goes to $out/HARNESS.result; exit 1 on a failure
fuzz_one() {
  local h=$1 bin="$build/tests/fuzz/fuzz_$1" start=$SECONDS asan=detect_leaks=1 rc execs cov first
  [ -x "$bin" ] || { echo "fuzz: $bin is not built" >"$out/$h.result"; return 1; }
  rm -rf "$out/work/$h"
  mkdir -p "$out/work/$h"
  [ "$h" = checkpoint ] && asan=$asan:fast_unwind_on_malloc=0
  ASAN_OPTIONS="${ASAN_OPTIONS:-$asan}" "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$h-" "$out/work/$h" "$here/corpus/$h" >"$out/$h.log" 2>&1
  rc=$?
  execs=$(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$out/$h.log" | grep -o '[0-9]*$')
  cov=$(grep -E '^#[0-9]+' "$out/$h.log" | tail -1 | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
  # HDF5 1.10.8 itself loops, copies out of bounds or uses freed memory on some damaged files
  # (docs/fuzzing.md; inputs in tests/fuzz/hdf5_bugs/). A failure whose innermost frame in either
  # libhdf5 or peprime's io/ src/ is in libhdf5 is reported as third-party, not failed; a failure
  # in peprime's own code fails. (Caveat: a peprime misuse of HDF5 that faults inside HDF5 would
  # be reported the same way; every such report names its input for a look.)
  first=$(sed -n '/ERROR: /,$p' "$out/$h.log" | grep -E -m1 "libhdf5|$root/(io|src)/" || true)
  if [ $rc -ne 0 ] && [[ "$first" == *libhdf5* ]]; then
    printf 'fuzz %-12s ok    (stopped after %ds by a fault inside libhdf5 on a damaged file: %s)\n' "$h" \
      $((SECONDS - start)) "$(grep -o "$out/artifacts/[^ ]*" "$out/$h.log" | tail -1)" >"$out/$h.result"
  elif [ $rc -eq 0 ]; then
    printf 'fuzz %-12s ok    %4ds %9s runs  cov %s  corpus %s files\n' "$h" $((SECONDS - start)) "${execs:-?}" \
      "${cov:-?}" "$(ls "$out/work/$h" | wc -l)" >"$out/$h.result"
  else
    { printf 'fuzz %-12s FAIL  (exit %d) after %ds; log %s:\n' "$h" $rc $((SECONDS - start)) "$out/$h.log"
      grep -E 'ERROR|SUMMARY|fuzz: |runtime error|Test unit written|DEATH' "$out/$h.log" | head -20
      # the input itself, so a CI log keeps what a lost machine's artifact held
      local unit
      unit=$(grep -o "$out/artifacts/[^ ]*" "$out/$h.log" | tail -1)
      if [ -f "$unit" ]; then
        echo "input ($(stat -c %s "$unit") bytes; the first 512 as od -c):"
        head -c 512 "$unit" | od -An -c | head -32
      fi; } >"$out/$h.result"
    return 1
  fi
}

status=0
running=0
for h in "${harnesses[@]}"; do
  rm -f "$out/$h.result"
  if [ "$running" -ge "$jobs" ]; then wait -n || status=1; running=$((running - 1)); fi
  fuzz_one "$h" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do wait -n || status=1; running=$((running - 1)); done
for h in "${harnesses[@]}"; do cat "$out/$h.result" 2>/dev/null || { echo "fuzz $h: no result"; status=1; }; done
exit $status
