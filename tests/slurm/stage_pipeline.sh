#!/bin/bash
# Stage test: slurm/pipeline.sh submits pretrain -> prime -> finetune -> evaluate -> report
# (variants none and maml, one seed) the way a site with --export=NONE submits: nothing
# reaches the jobs but RUN/jobs.env and the site hook it sources. Each primed cell's
# fine-tuning waits for its own priming (aftercorr), the arrays are throttled, every stage
# copies its data to node-local scratch first and removes it after; the report job leaves an
# F1 table with a row per variant and every F1 a number in [0, 100].
# Usage: stage_pipeline.sh REPO_ROOT PEPRIME_BIN WORKDIR
set -uo pipefail
# shellcheck source=tests/slurm/lib.sh
source "$1/tests/slurm/lib.sh"
stage_setup "$@"

# the site hook: what `module load` would do, plus a trace that every job sourced it
printf 'export PATH=/usr/local/bin:/usr/bin:/bin\necho "site hook sourced by job $SLURM_JOB_ID" >&2\n' >site.env
export PEPRIME_DATA=${PEPRIME_DATA:-$root/../shared/data}
# priming spans both nodes when the two-node Slurm runs (PEP_SLURM_NODES=2): the data is
# staged into each node's own /tmp (the second node's is /var/tmp/peprime-n2-tmp here)
nodes=$(sinfo -h -N -t idle,mix -o '%N' | sort -u | wc -l)
((nodes >= 2)) && nodes=2
unset TMPDIR PEP_SCRATCH
t0=$(date +%s)
"$root/slurm/pipeline.sh" --config "$root/jobs/configs/ci-tiny.ini" --seeds 1 --variants none,maml \
    --run "$work/run" --sbatch "--export=NONE --ntasks-per-node=2 --cpus-per-task=1 --time=00:20:00" \
    --sbatch-prime "--nodes=$nodes --ntasks-per-node=1" \
    --sbatch-finetune "--ntasks=1" --sbatch-evaluate "--ntasks=1" --max-running 1 \
    --site-env site.env --stage-data >plan.txt 2>&1 ||
    { cat plan.txt; fail "pipeline.sh failed"; }
cat plan.txt
report=$(sed -n 's/^  report *\([0-9][0-9]*\) .*/\1/p' plan.txt)
[[ -n "$report" ]] || fail "no report job id in the pipeline output"
ids=$(sed -n 's/^  \(prime\|finetune\|evaluate\) *\([0-9][0-9]*\) .*/\1 \2/p' plan.txt)
# what Slurm holds: aftercorr for the primed cells' fine-tuning, the throttle, per-stage tasks
while read -r st id; do
    info=$(scontrol show job -o "$id" 2>/dev/null | head -1)
    case "$st" in
        finetune | evaluate)
            grep -q ' NumTasks=1 ' <<<"$info" || fail "$st job $id did not get its own --ntasks=1: $info" ;;
    esac
done <<<"$ids"
ft=$(awk '$1 == "finetune" { print $2; exit }' <<<"$ids")
scontrol show job -o "$ft" | grep -qE "Dependency=aftercorr:[0-9]+" ||
    fail "fine-tuning of the primed cell $ft does not depend with aftercorr: $(scontrol show job -o "$ft")"
scontrol show job -o "$ft" | grep -q 'ArrayTaskThrottle=1' || fail "array $ft is not throttled to 1"
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
# every stage job sourced the hook, staged its languages and removed the copy
n_logs=$(find logs -name 'pep-*.out' ! -name 'pep-report-*' | wc -l)
n_hook=$(grep -l 'site hook sourced by job' logs/pep-*.out | wc -l)
n_staged=$(grep -l 'staged ner/wikiann/' logs/pep-*.out | wc -l)
((n_logs == 6 && n_hook == 6 && n_staged == 6)) ||
    { show_logs logs/*.out; fail "of $n_logs stage logs (6 expected) $n_hook sourced the site hook and $n_staged staged data"; }
grep -h 'data.root=' logs/pep-prime-*.out | grep -q -- "--set data.root=/tmp/peprime-data-" ||
    fail "priming did not read the staged copy"
grep -q "staged .* on $nodes node(s)" logs/pep-prime-*.out || { show_logs logs/pep-prime-*.out; fail "priming did not stage on $nodes node(s)"; }
shopt -s nullglob
left=()
for id in $(sed -n 's/^  [a-z]* *\([0-9][0-9]*\) .*/\1/p' plan.txt); do
    left+=(/tmp/peprime-data-"$id"* /var/tmp/peprime-n2-tmp/peprime-data-"$id"*)
done
((${#left[@]} == 0)) || fail "staged data left behind: ${left[*]}"
echo "ok: pipeline (--export=NONE, site hook, aftercorr, throttle, data staged on $nodes node(s)) finished with an F1 table of $(($(wc -l <"$table") - 1)) rows"
