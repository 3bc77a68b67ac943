#!/bin/bash
# Stage test (needs the two-node Slurm of .ci/slurm-up.sh, PEP_SLURM_NODES=2): a prime job on
# 2 nodes x 2 tasks checkpoints on the preemption signal, is requeued and lands on 1 node
# (as when a node fails or is taken): Slurm keeps SLURM_NTASKS=4 from the submission, the
# batch script launches the 2 ranks the new allocation holds, they resume from the 4-rank
# checkpoint, and the primed model equals an uninterrupted 4-rank run's on 2 nodes
# (priming does not depend on the rank count).
# Usage: stage_requeue_nodes.sh REPO_ROOT PEPRIME_BIN WORKDIR
set -uo pipefail
# shellcheck source=tests/slurm/lib.sh
source "$1/tests/slurm/lib.sh"
stage_setup "$@"
nodes=$(sinfo -h -N -t idle,mix -o '%N' | sort -u | wc -l)
((nodes >= 2)) || { echo "SKIP: needs 2 idle Slurm nodes (start them with PEP_SLURM_NODES=2 .ci/slurm-up.sh); sinfo shows $nodes"; exit 77; }
cfg=$root/jobs/configs/ci-tiny.ini
res=(--nodes=2 --ntasks-per-node=2 --cpus-per-task=1 --time=00:20:00 --parsable)

"$bin" pretrain --config "$cfg" --out "$work/base" --set optim.steps=5 >pretrain.log 2>&1 ||
    { tail -5 pretrain.log; fail "pretrain of the base model failed"; }
long=(--set optim.steps=400 --set checkpoint.every=25)
t0=$(date +%s)
ref=$(sbatch "${res[@]}" --job-name=pep-test-ref --output="$work/%x-%j.out" \
      "$root/slurm/prime.sh" --config "$cfg" --init "$work/base/base.h5" --out "$work/ref" "${long[@]}") ||
    fail "sbatch (reference) failed"
# PEP_REQUEUE=0: the job checkpoints and exits 75 instead of requeueing itself, so that the
# test requeues it held and gives it 1 node before it starts again
job=$(PEP_REQUEUE=0 sbatch "${res[@]}" --job-name=pep-test-nodes --output="$work/%x-%j.out" \
      "$root/slurm/prime.sh" --config "$cfg" --init "$work/base/base.h5" --out "$work/moved" "${long[@]}") ||
    fail "sbatch (requeued) failed"
log=$work/pep-test-nodes-$job.out

usr1_after_checkpoint "$job" "$work/moved" "$log"
st=$(wait_job "$job" 600)
grep -q 'exited with status 75' "$log" || { show_logs "$log"; fail "peprime did not checkpoint and exit 75 after the signal ($st)"; }
grep -q 'restart 0 on .*: 4 task(s)' "$log" || { show_logs "$log"; fail "the first run did not have 4 tasks"; }
ckpt=$(find "$work/moved/checkpoints" -name '*.h5' | sort | tail -1)
echo "job $job: $st after the signal at 4 ranks on 2 nodes; newest checkpoint ${ckpt##*/}"

scontrol requeuehold "$job" || fail "scontrol requeuehold $job failed"
scontrol update JobId="$job" NumNodes=1-1 NumTasks=2 NumCPUs=2 MinCPUsNode=2 ||
    fail "scontrol update JobId=$job NumNodes=1-1 failed"
scontrol release "$job" || fail "scontrol release $job failed"
st_job=$(wait_job "$job" 1200)
st_ref=$(wait_job "$ref" 1200)
echo "reference $ref: $st_ref; requeued $job: $st_job, restarts $(job_field "$job" Restarts), $(($(date +%s) - t0)) s"
[[ "$st_ref" == COMPLETED ]] || { show_logs "$work/pep-test-ref-$ref.out"; fail "reference run $st_ref"; }
[[ "$st_job" == COMPLETED ]] || { show_logs "$log"; fail "requeued run $st_job"; }
grep -q 'fewer than SLURM_NTASKS=4 from the submission' "$log" ||
    { show_logs "$log"; fail "the batch script did not notice the smaller allocation"; }
grep -q 'restart 1 on .*: 2 task(s)' "$log" || { show_logs "$log"; fail "the requeued job did not run 2 ranks on 1 node"; }
grep -q "resumed from .*${ckpt##*/}" "$log" || { show_logs "$log"; fail "the requeued job did not resume from ${ckpt##*/}"; }
/usr/bin/python3 "$root/tests/slurm/compare_h5.py" "$work/ref/primed.h5" "$work/moved/primed.h5" \
    "${PEP_NODES_RTOL:-1e-5}" || fail "the run requeued onto 1 node differs from the uninterrupted 2-node run"
echo "ok: checkpoint at 4 ranks on 2 nodes, requeued onto 1 node with 2 ranks, resumed and matched the uninterrupted run"
