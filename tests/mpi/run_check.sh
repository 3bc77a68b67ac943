#!/bin/bash
# Runs one MPI test command under a hard timeout and checks its exit status, wall time and
# output. Usage:
#   run_check.sh --expect ok|fail [--status N] --max-seconds S [--want REGEX]... [--reject REGEX]... -- cmd...
# PEP_TEST_TIME_SCALE=N (default 1) multiplies S, for slow builds (the sanitizer pass of
# scripts/test.sh runs these tests with 4).
set -u
expect=ok status= max=30 wants=() rejects=()
while [ $# -gt 0 ]; do
  case "$1" in
    --expect) expect=$2; shift 2 ;;
    --max-seconds) max=$2; shift 2 ;;
    --status) status=$2; shift 2 ;;
    --want) wants+=("$2"); shift 2 ;;
    --reject) rejects+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "run_check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
max=$((max * ${PEP_TEST_TIME_SCALE:-1}))
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s%N)
timeout -k 5 "$((max + 10))" "$@" >"$out" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
secs="$((ms / 1000)).$(printf %03d $((ms % 1000)))"
cat "$out"
echo "---- exit status $rc after ${secs}s"
fail=0
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "FAIL: timed out (hang)"; fail=1; fi
if [ "$expect" = ok ] && [ "$rc" -ne 0 ]; then echo "FAIL: expected exit status 0"; fail=1; fi
if [ "$expect" = fail ] && [ "$rc" -eq 0 ]; then echo "FAIL: expected a non-zero exit status"; fail=1; fi
if [ -n "$status" ] && [ "$rc" -ne "$status" ]; then echo "FAIL: expected exit status $status"; fail=1; fi
if [ "$ms" -gt "$((max * 1000))" ]; then echo "FAIL: took ${secs}s > ${max}s"; fail=1; fi
for re in "${wants[@]+"${wants[@]}"}"; do
  grep -Eq -- "$re" "$out" || { echo "FAIL: output lacks /$re/"; fail=1; }
done
for re in "${rejects[@]+"${rejects[@]}"}"; do
  if grep -Eq -- "$re" "$out"; then echo "FAIL: output has /$re/"; fail=1; fi
done
[ $fail -eq 0 ] && echo "PASS"
exit $fail
