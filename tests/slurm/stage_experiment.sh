#!/bin/bash
# Stage test: scripts/experiment.sh --slurm submits the experiment's cells (PE method x arm x
# seed) as job arrays through slurm/pipeline.sh; the report job merges a table with a pe
# column; analysis/report.py reads the run; a resubmission skips every finished stage
# (PEP_SKIP_DONE) and still completes.
# Usage: stage_experiment.sh REPO_ROOT PEPRIME_BIN WORKDIR
set -uo pipefail
# shellcheck source=tests/slurm/lib.sh
source "$1/tests/slurm/lib.sh"
stage_setup "$@"
run=$work/run

submit() { # LOG: runs the driver, returns the report job id on stdout
    bash "$root/scripts/experiment.sh" --slurm --exp "$root/tests/pipeline/experiment-tiny" --run "$run" \
        --seeds 1 --arms none,maml --pe adapter,prefix \
        --sbatch "--ntasks-per-node=1 --cpus-per-task=1 --time=00:20:00" >"$1" 2>&1 ||
        { cat "$1"; fail "experiment.sh --slurm failed"; }
    sed -n 's/^  report *\([0-9][0-9]*\) .*/\1/p' "$1"
}
wait_ok() { # JOB WHAT
    local st t0
    t0=$(date +%s)
    st=$(wait_job "$1" 1500)
    echo "$2: report job $1 $st after $(($(date +%s) - t0)) s"
    [[ "$st" == COMPLETED ]] || { squeue; show_logs logs/*.out; fail "$2 did not complete (report job $st)"; }
}

report=$(submit first.txt)
[[ -n "$report" ]] || { cat first.txt; fail "no report job id"; }
wait_ok "$report" "first submission"
table=$run/results.csv
head -1 "$table" | grep -q '^pe,variant,seed,language,' || { cat "$table"; fail "results.csv has no pe column"; }
for c in adapter,none prefix,none adapter,maml prefix,maml; do
    grep -q "^$c,1,macro," "$table" || fail "no macro row for $c in $table"
done
/usr/bin/python3 "$root/analysis/report.py" "$run" >report.txt 2>&1 || { cat report.txt; fail "report.py failed"; }
grep -q "4 of 4 runs complete" "$run/report/results.md" || fail "report does not say 4 of 4"

report=$(submit second.txt)
wait_ok "$report" "resubmission"
n=$(grep -l 'exists; skipping (PEP_SKIP_DONE=1)' logs/*.out | wc -l)
# pretrain is not resubmitted (--base); 2 prime + 4 finetune + 4 evaluate tasks skip
[[ $n -ge 10 ]] || { grep -c skipping logs/*.out; fail "expected 10 skipped stages on resubmission, found $n"; }
echo "ok: experiment through Slurm, report, and a resubmission that skipped $n finished stages"
