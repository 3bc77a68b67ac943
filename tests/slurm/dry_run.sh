#!/bin/bash
# Checks the job graph that slurm/pipeline.sh --dry-run prints (no daemons needed) and the
# array-index -> (variant, seed) mapping of the stage scripts' --dry-run.
# Usage: dry_run.sh REPO_ROOT WORKDIR
set -uo pipefail
root=$1
work=$2
mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
cfg=$root/jobs/configs/ci-tiny.ini

"$root/slurm/pipeline.sh" --dry-run --config "$cfg" --seeds 1,2,3 --variants none,maml,multitask \
    --run R --sbatch "-p debug" >plan.txt 2>&1 || { cat plan.txt; fail "pipeline --dry-run failed"; }
sed 's/\\//g' plan.txt >plan.plain
cat plan.plain
[[ $(grep -c '^[a-z]*_id=<job[0-9]>: sbatch ' plan.plain) -eq 5 ]] || fail "expected 5 sbatch commands"
line() { grep "^$1_id=" plan.plain; }
line pretrain | grep -q -- '-p debug .*slurm/pretrain.sh --config .*ci-tiny.ini --out R/pretrain' ||
    fail "pretrain command"
line prime | grep -q -- '--array=0-5 .*--dependency=afterok:<job1> .*prime.sh .*--variants maml,multitask --seeds 1,2,3 --init R/pretrain/base.h5 --out R/prime/{variant}-s{seed}' ||
    fail "prime: 2 primed variants x 3 seeds after pretrain"
line finetune | grep -q -- '--array=0-8 .*--dependency=afterok:<job1>:<job2> .*finetune.sh .*--variants none,maml,multitask --seeds 1,2,3 --base R/pretrain/base.h5 --init R/prime/{variant}-s{seed}/primed.h5' ||
    fail "finetune: 3 variants x 3 seeds after pretrain and prime"
line evaluate | grep -q -- '--array=0-8 .*--dependency=afterok:<job3> .*evaluate.sh .*--model R/finetune/{variant}-s{seed}/adapted.h5 --out R/evaluate/{variant}-s{seed}' ||
    fail "evaluate after finetune"
line report | grep -q -- '--dependency=afterok:<job4> .*pipeline.sh --collect R' || fail "report after evaluate"
grep -q 'kill-on-invalid-dep=yes' plan.plain || fail "no --kill-on-invalid-dep"

# --base skips pretraining; only 'none' skips priming
"$root/slurm/pipeline.sh" --dry-run --config "$cfg" --variants none --base /m/base.h5 --run R2 >plan2.txt 2>&1 ||
    { cat plan2.txt; fail "pipeline --dry-run --base failed"; }
! grep -qE '^(pretrain|prime)_id=' plan2.txt || fail "--base with variant none must submit neither pretrain nor prime"
"$root/slurm/pipeline.sh" --dry-run --config "$cfg" --variants maml,bogus >bad.txt 2>&1 &&
    fail "an unknown variant was accepted"
grep -q "unknown variant 'bogus'" bad.txt || fail "unknown variant message"

# array task -> (variant, seed): variants major, seeds minor
ft() { SLURM_ARRAY_TASK_ID=$1 PEP_LAUNCHER=direct PEPRIME_BIN=/nonexistent/peprime \
       "$root/slurm/finetune.sh" --dry-run --config "$cfg" --variants none,maml,multitask --seeds 1,2,3 \
       --base B.h5 --init 'P/{variant}-s{seed}/primed.h5' --out 'F/{variant}-s{seed}'; }
ft 4 | grep -q -- 'finetune --config .* --set run.seed=2 --init P/maml-s2/primed.h5 --resume auto --out F/maml-s2' ||
    fail "task 4 should be (maml, 2): $(ft 4)"
ft 1 | grep -q -- '--set run.seed=2 --init B.h5 --resume auto --out F/none-s2' ||
    fail "task 1 should be (none, 2) starting from the base model: $(ft 1)"
ft 9 >/dev/null 2>&1 && fail "task 9 of a 3x3 array was accepted"
SLURM_ARRAY_TASK_ID=1 PEP_LAUNCHER=direct "$root/slurm/prime.sh" --dry-run --config "$cfg" \
    --variants maml,maml-all --seeds 7 --out 'O/{variant}' |
    grep -q -- '--set run.seed=7 --set maml.method=maml --set maml.inner_set=all --resume auto --out O/maml-all' ||
    fail "prime variant maml-all overrides"
SLURM_ARRAY_TASK_ID=0 PEP_LAUNCHER=direct "$root/slurm/prime.sh" --dry-run --config "$cfg" \
    --variants none --out O >/dev/null 2>&1 && fail "prime accepted variant none"
# environment instead of arguments; srun command built from the allocation
SLURM_JOB_ID=1 SLURM_NTASKS=4 SLURM_CPUS_PER_TASK=3 PEP_CONFIG=$cfg PEP_SET="a.b=1;c.d=2" PEP_OUT=E \
    OPENBLAS_CORETYPE='' "$root/slurm/prime.sh" --dry-run >env.txt 2>&1 || { cat env.txt; fail "env-driven dry run"; }
grep -q -- '^srun --mpi=pmix --ntasks=4 --cpus-per-task=3 --kill-on-bad-exit=1 .*peprime prime --config .*ci-tiny.ini --set a.b=1 --set c.d=2 --resume auto --out E' env.txt ||
    { cat env.txt; fail "srun command from PEP_* and SLURM_* variables"; }
echo "ok: pipeline and stage --dry-run"
