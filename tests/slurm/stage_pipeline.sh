#!/bin/bash
# Stage test: slurm/pipeline.sh submits pretrain -> prime -> finetune -> evaluate -> report
# with dependencies (variants none and maml, one seed) and the report job leaves an F1 table
# with a row set per variant and every F1 a number in [0, 100].
# Usage: stage_pipeline.sh REPO_ROOT PEPRIME_BIN WORKDIR
set -uo pipefail
# shellcheck source=tests/slurm/lib.sh
source "$1/tests/slurm/lib.sh"
stage_setup "$@"

t0=$(date +%s)
"$root/slurm/pipeline.sh" --config "$root/jobs/configs/ci-tiny.ini" --seeds 1 --variants none,maml \
    --run "$work/run" --sbatch "--ntasks-per-node=2 --cpus-per-task=1 --time=00:20:00" >plan.txt 2>&1 ||
    { cat plan.txt; fail "pipeline.sh failed"; }
cat plan.txt
report=$(sed -n 's/^  report *\([0-9][0-9]*\) .*/\1/p' plan.txt)
[[ -n "$report" ]] || fail "no report job id in the pipeline output"
st=$(wait_job "$report" 1500)
echo "report job $report: $st after $(($(date +%s) - t0)) s"
if [[ "$st" != COMPLETED ]]; then
    squeue
    show_logs logs/*.out
    fail "pipeline did not complete (report job $st)"
fi
table=$work/run/results.csv
[[ -s "$table" ]] || fail "no F1 table $table"
cat "$table"
for v in none maml; do
    [[ -s "$work/run/evaluate/$v-s1/results.json" ]] || fail "no results.json for variant $v"
    grep -q "^$v,1," "$table" || fail "no row for variant $v in $table"
done
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if (tolower($i) ~ /f1/) c = i
                   if (!c) { print "no F1 column in the header"; exit 1 }; next }
         { n++; if ($c !~ /^[0-9.eE+-]+$/ || $c < 0 || $c > 100) { print "bad F1 " $c " in row " NR; exit 1 } }
         END { if (n < 2) { print "fewer than 2 rows"; exit 1 } }' "$table" || fail "F1 table check"
echo "ok: pipeline finished with an F1 table of $(($(wc -l <"$table") - 1)) rows"
