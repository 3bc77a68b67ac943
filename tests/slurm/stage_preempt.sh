#!/bin/bash
# Stage test: a prime job sent the preemption signal (USR1 to the batch shell, as
# --signal=B:USR1@300 does before the time limit) mid-run checkpoints, requeues itself,
# resumes and ends with the same parameters as an uninterrupted run of the same job.
# Usage: stage_preempt.sh REPO_ROOT PEPRIME_BIN WORKDIR
set -uo pipefail
# shellcheck source=tests/slurm/lib.sh
source "$1/tests/slurm/lib.sh"
stage_setup "$@"
cfg=$root/jobs/configs/ci-tiny.ini
res=(--nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --time=00:20:00 --parsable)

# a tokenizer and a small pretrained base to prime (pretrain trains the tokenizer)
"$bin" pretrain --config "$cfg" --out "$work/base" --set optim.steps=5 >pretrain.log 2>&1 ||
    { tail -5 pretrain.log; fail "pretrain of the base model failed"; }
# long enough that the signal always lands mid-run, however fast the machine
long=(--set optim.steps=1000 --set checkpoint.every=25)
t0=$(date +%s)
ref=$(sbatch "${res[@]}" --job-name=pep-test-ref --output="$work/%x-%j.out" \
      "$root/slurm/prime.sh" --config "$cfg" --init "$work/base/base.h5" --out "$work/ref" "${long[@]}") || fail "sbatch (reference) failed"
job=$(sbatch "${res[@]}" --job-name=pep-test-preempt --output="$work/%x-%j.out" \
      "$root/slurm/prime.sh" --config "$cfg" --init "$work/base/base.h5" --out "$work/pre" "${long[@]}") || fail "sbatch (preempted) failed"
log=$work/pep-test-preempt-$job.out

usr1_after_checkpoint "$job" "$work/pre" "$log"

st_job=$(wait_job "$job" 1200)
st_ref=$(wait_job "$ref" 1200)
echo "reference $ref: $st_ref; preempted $job: $st_job, restarts $(job_field "$job" Restarts), $(($(date +%s) - t0)) s"
[[ "$st_ref" == COMPLETED ]] || { show_logs "$work/pep-test-ref-$ref.out"; fail "reference run $st_ref"; }
[[ "$st_job" == COMPLETED ]] || { show_logs "$log"; fail "preempted run $st_job"; }
(($(job_field "$job" Restarts) >= 1)) || { show_logs "$log"; fail "job $job was never requeued (finished before the signal? raise optim.steps)"; }
grep -q 'received SIGUSR1' "$log" || { show_logs "$log"; fail "batch shell never saw USR1"; }
grep -q 'exited with status 75' "$log" || { show_logs "$log"; fail "peprime did not exit 75 after the signal"; }
grep -q 'restart 1 on' "$log" || { show_logs "$log"; fail "no restarted run in the log"; }

for f in "$work/ref/primed.h5" "$work/pre/primed.h5"; do
    "$bin" inspect "$f" >/dev/null 2>&1 || fail "peprime inspect $f failed"
done
/usr/bin/python3 "$root/tests/slurm/compare_h5.py" "$work/ref/primed.h5" "$work/pre/primed.h5" \
    "${PEP_PREEMPT_RTOL:-1e-6}" || fail "interrupted and uninterrupted runs differ"
echo "ok: preempted job requeued, resumed and matched the uninterrupted run"
