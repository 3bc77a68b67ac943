#!/usr/bin/env bash
# The experiment driver and its report on the smallest real job (ci-tiny sizes, WikiAnn):
#   1. a first run (arm none only) completes and is reported;
#   2. the full run (none + maml) skips the finished cells and runs only the new ones;
#   3. a cell whose fine-tuned model is damaged fails at evaluate; the driver goes on, names
#      it in failed/, exits non-zero, and the report lists it and exits 1 without crashing;
#   4. the report names runs that were never started.
# usage: experiment.sh PEPRIME_BIN WORKDIR
set -euo pipefail
bin=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
rm -rf "$work"
mkdir -p "$work"
run=$work/run
export PEPRIME_BIN=$bin
fail() { echo "FAIL: $*" >&2; exit 1; }
data=${PEPRIME_DATA:-$root/../shared/data}
[[ -d "$data/ner/wikiann/en" ]] || { echo "SKIP: no WikiAnn data under $data (set PEPRIME_DATA)"; exit 77; }
drive() { bash "$root/scripts/experiment.sh" --exp "$here/experiment-tiny" --run "$run" --seeds 1,2 \
          --pe adapter,prefix --jobs 2 "$@"; }

echo "== 1. arm none only"
drive --arms none >"$work/first.log" 2>&1 || { cat "$work/first.log"; fail "first run failed"; }
for c in adapter-none-s1 adapter-none-s2 prefix-none-s1 prefix-none-s2; do
    [[ -s "$run/evaluate/$c/results.json" ]] || fail "no results for $c"
done
grep -q "4 of 4 runs complete" "$run/report/results.md" || fail "report does not say 4 of 4 complete"
n_before=$(grep -c ',finetune,' "$run/timings.csv")
[[ $n_before -eq 4 ]] || fail "expected 4 finetune rows in timings.csv, found $n_before"

echo "== 2. none + maml: the none cells are not redone"
drive --arms none,maml >"$work/second.log" 2>&1 || { cat "$work/second.log"; fail "second run failed"; }
n_after=$(grep -c ',finetune,' "$run/timings.csv")
[[ $n_after -eq 8 ]] || fail "expected 8 finetune rows after the second run (4 new), found $n_after"
[[ $(grep -c ',prime,' "$run/timings.csv") -eq 4 ]] || fail "expected 4 prime rows"
grep -q "8 of 8 runs complete" "$run/report/results.md" || fail "report does not say 8 of 8 complete"
grep -q "| \*\*average\*\* |" "$run/report/results.md" || fail "no average row in the table"
grep -q "^| adapter | MAML | " "$run/report/results.md" || fail "no paired gain row for adapter MAML"
for p in meta_loss finetune_loss f1_per_language task_cosine; do
    [[ -s "$run/report/$p.png" ]] || fail "plot $p.png missing"
done
# every F1 in the long table is a percentage
awk -F, 'NR>1 && ($5 < 0 || $5 > 100) {bad=1} END {exit bad}' "$run/report/results_long.csv" ||
    fail "F1 outside [0, 100] in results_long.csv"

echo "== 3. a damaged model: evaluate fails, the rest is reported"
rm -f "$run/evaluate/adapter-maml-s2/results.json"
head -c 1000 "$run/finetune/adapter-maml-s2/adapted.h5" >"$work/trunc.h5"
mv "$work/trunc.h5" "$run/finetune/adapter-maml-s2/adapted.h5"
if drive --arms none,maml >"$work/third.log" 2>&1; then fail "driver exited 0 with a failed cell"; fi
grep -q "FAILED adapter-maml-s2: evaluate" "$work/third.log" || { cat "$work/third.log"; fail "failure not announced"; }
[[ -f "$run/failed/adapter-maml-s2" ]] || fail "failed/adapter-maml-s2 not written"
grep -q "7 of 8 runs complete" "$run/report/results.md" || fail "report does not say 7 of 8 complete"
grep -q "adapter-maml-s2\`: failed — stage evaluate" "$run/report/results.md" || fail "report does not list the failed cell"

echo "== 4. the report names runs never started"
rc=0
"$py" "$root/analysis/report.py" "$run" --seeds 1,2,3 --out "$work/report3" >"$work/report3.log" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || { cat "$work/report3.log"; fail "report exit status $rc, expected 1"; }
grep -q "prefix-maml-s3\`: missing — prime not run" "$work/report3/results.md" || fail "missing seed-3 run not listed"
rc=0
"$py" "$root/analysis/report.py" "$work/nowhere" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "report on a missing directory: exit $rc, expected 2"
echo "experiment driver and report: all checks passed"
