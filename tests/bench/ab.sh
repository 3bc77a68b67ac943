#!/usr/bin/env bash
# tests/bench/ab.sh: two peprime binaries on the same `peprime bench ...` command, alternated
# (A, B, A, B, ...), to tell whether a change made a benchmark slower. Prints each run's
# tokens/s (or ms/step for `bench maml`), the medians, and B/A per alternation.
#
#   tests/bench/ab.sh BEFORE_BIN AFTER_BIN REPEATS bench encoder --shape base --mode full --steps 6 --warmup 1
#
# Runs with OPENBLAS_NUM_THREADS=1 unless it is set. Quiet machines only: anything else
# running on the cores shows up as noise in the ratios.
set -euo pipefail
(($# >= 5)) || { echo "usage: $0 BEFORE_BIN AFTER_BIN REPEATS bench ..." >&2; exit 2; }
a=$1 b=$2 n=$3
shift 3
for bin in "$a" "$b"; do [ -x "$bin" ] || { echo "ab.sh: $bin is not an executable" >&2; exit 2; }; done
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "ab.sh: REPEATS must be a positive integer, got '$n'" >&2; exit 2; }
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
field=tokens_per_s
[ "${2:-}" = maml ] && field=ms_per_step
run() { "$1" "${@:2}" | sed -n "s/.*\"$field\":\([0-9.]*\).*/\1/p" | tail -1; }
va=() vb=()
for ((i = 1; i <= n; i++)); do
  x=$(run "$a" "$@") y=$(run "$b" "$@")
  [ -n "$x" ] && [ -n "$y" ] || { echo "ab.sh: a run printed no $field" >&2; exit 1; }
  va+=("$x") vb+=("$y")
  printf 'alternation %d: before %s  after %s  after/before %s  (%s)\n' "$i" "$x" "$y" \
    "$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.3f", y / x }')" "$field"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ma=$(median "${va[@]}") mb=$(median "${vb[@]}")
printf 'median %s: before %s  after %s  change %+.1f%%  (%s; CPU: %s)\n' "$field" "$ma" "$mb" \
  "$(awk -v x="$ma" -v y="$mb" -v f="$field" 'BEGIN { r = y / x; if (f == "ms_per_step") r = x / y; print 100 * (r - 1) }')" \
  "$*" "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
