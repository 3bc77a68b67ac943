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
[[ $(grep -c '^[a-z_]*_id=<job[0-9]>: sbatch ' plan.plain) -eq 7 ]] || fail "expected 7 sbatch commands"
line() { grep "^$1_id=" plan.plain; }
line pretrain | grep -q -- ' -p debug .*slurm/pretrain.sh --config .*ci-tiny.ini --env-file R/jobs.env --out R/pretrain' ||
    fail "pretrain command"
line prime | grep -q -- '--array=0-5 .*--dependency=afterok:<job1> .*prime.sh .*--variants maml,multitask --seeds 1,2,3 --init R/pretrain/base.h5 --out R/prime/{variant}-s{seed}' ||
    fail "prime: 2 primed variants x 3 seeds after pretrain"
# each primed cell's fine-tuning waits for its own priming task (same array index)
line finetune | grep -q -- '--array=0-5 .*--dependency=aftercorr:<job2> .*finetune.sh .*--variants maml,multitask --seeds 1,2,3 --init R/prime/{variant}-s{seed}/primed.h5 --out R/finetune/{variant}-s{seed}' ||
    fail "finetune of the primed cells: task i after prime task i"
line evaluate | grep -q -- '--array=0-5 .*--dependency=aftercorr:<job3> .*evaluate.sh .*--variants maml,multitask .*--model R/finetune/{variant}-s{seed}/adapted.h5 --out R/evaluate/{variant}-s{seed}' ||
    fail "evaluate of the primed cells: task i after finetune task i"
line finetune_none | grep -q -- '--array=0-2 .*--dependency=afterok:<job1> .*finetune.sh .*--variants none --seeds 1,2,3 --base R/pretrain/base.h5 --out R/finetune/{variant}-s{seed}' ||
    fail "finetune of variant none: after pretrain only"
line evaluate_none | grep -q -- '--array=0-2 .*--dependency=aftercorr:<job5> .*evaluate.sh .*--variants none ' ||
    fail "evaluate of variant none"
line report | grep -q -- '--dependency=afterok:<job4>:<job6> .*pipeline.sh --collect R --variants none,maml,multitask' ||
    fail "report after both evaluate arrays"
grep -q 'kill-on-invalid-dep=yes' plan.plain || fail "no --kill-on-invalid-dep"

# --base skips pretraining; only 'none' skips priming
"$root/slurm/pipeline.sh" --dry-run --config "$cfg" --variants none --base /m/base.h5 --run R2 >plan2.txt 2>&1 ||
    { cat plan2.txt; fail "pipeline --dry-run --base failed"; }
! grep -qE '^(pretrain|prime)_id=' plan2.txt || fail "--base with variant none must submit neither pretrain nor prime"
"$root/slurm/pipeline.sh" --dry-run --config "$cfg" --variants maml,bogus >bad.txt 2>&1 &&
    fail "an unknown variant was accepted"
grep -q "unknown variant 'bogus'" bad.txt || fail "unknown variant message"

# per-stage sbatch options after the common ones; array throttle; staging passed to every stage
"$root/slurm/pipeline.sh" --dry-run --config "$cfg" --seeds 1,2 --variants none,maml --run R4 \
    --sbatch "-p debug --time=1:00:00" --sbatch-prime "-N 8 --time=2-00:00:00" --sbatch-finetune "-N 1" \
    --max-running 3 --stage-data >plan4.txt 2>&1 || { cat plan4.txt; fail "pipeline --dry-run with per-stage options failed"; }
sed 's/\\//g' plan4.txt >plan4.plain
grep '^prime_id=' plan4.plain | grep -q -- '--array=0-1%3 .* -p debug --time=1:00:00 -N 8 --time=2-00:00:00 .*prime.sh .*--stage-data' ||
    fail "prime: throttle, common then prime's own options, --stage-data"
grep '^finetune_id=' plan4.plain | grep -q -- '--array=0-1%3 .* -p debug --time=1:00:00 -N 1 .*finetune.sh' || fail "finetune's own options"
grep -E '^(pretrain|evaluate|evaluate_none|report)_id=' plan4.plain | grep -q -- '-N ' && fail "a stage got another stage's options"
grep '^evaluate_none_id=' plan4.plain | grep -q -- '--array=0-1%3 .*--stage-data' || fail "evaluate none: throttle and staging"
for bad in "--max-running 0" "--max-running x" "--site-env /nonexistent/site.env"; do
    # shellcheck disable=SC2086
    "$root/slurm/pipeline.sh" --dry-run --config "$cfg" $bad >bad3.txt 2>&1 && fail "accepted $bad"
    grep -q 'pipeline: ERROR' bad3.txt || fail "no error message for $bad"
done

# a stage sources its environment file first (PEPRIME_BIN from it) and, with --stage-data,
# points data.root at the node-local copy
printf 'export PEPRIME_BIN=/site/bin/peprime\n' >site.env
PEP_LAUNCHER=direct PEP_SCRATCH=/local/scratch SLURM_JOB_ID=42 "$root/slurm/prime.sh" --dry-run --config "$cfg" \
    --env-file site.env --stage-data --out O >site.txt 2>&1 || { cat site.txt; fail "stage with --env-file --stage-data"; }
grep -q -- '^/site/bin/peprime prime .*--set data.root=/local/scratch/peprime-data-42 --resume auto --out O' site.txt ||
    { cat site.txt; fail "environment file's PEPRIME_BIN and the staged data.root"; }
PEP_LAUNCHER=direct "$root/slurm/prime.sh" --dry-run --config "$cfg" --env-file missing.env --out O >site2.txt 2>&1 &&
    fail "a missing environment file was accepted"
grep -q "environment file 'missing.env' not found" site2.txt || { cat site2.txt; fail "missing environment file message"; }

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
grep -q -- '^srun --export=ALL --mpi=pmix --ntasks=4 --cpus-per-task=3 --kill-on-bad-exit=1 .*peprime prime --config .*ci-tiny.ini --set a.b=1 --set c.d=2 --resume auto --out E' env.txt ||
    { cat env.txt; fail "srun command from PEP_* and SLURM_* variables"; }
# a job requeued onto fewer nodes: Slurm keeps SLURM_NTASKS=8 from the submission, the
# allocation holds 2 tasks on each of 3 nodes: 6 ranks are launched, and the change is logged
SLURM_JOB_ID=1 SLURM_NTASKS=8 SLURM_TASKS_PER_NODE='2(x3)' SLURM_NNODES=3 PEP_CONFIG=$cfg PEP_OUT=E \
    OPENBLAS_CORETYPE='' "$root/slurm/prime.sh" --dry-run >shrunk.txt 2>&1 || { cat shrunk.txt; fail "dry run after a shrink"; }
grep -q -- '^srun --export=ALL --mpi=pmix --ntasks=6 ' shrunk.txt || { cat shrunk.txt; fail "6 ranks on 3 nodes x 2 tasks"; }
grep -q 'holds 6 task(s) .* fewer than SLURM_NTASKS=8' shrunk.txt || { cat shrunk.txt; fail "the shrink is not logged"; }
SLURM_JOB_ID=1 SLURM_NTASKS=2 SLURM_TASKS_PER_NODE='4' PEP_CONFIG=$cfg PEP_OUT=E \
    OPENBLAS_CORETYPE='' "$root/slurm/prime.sh" --dry-run 2>&1 | grep -q -- '^srun .* --ntasks=2 ' ||
    fail "--ntasks=2 with 4 tasks per node allowed keeps 2 ranks"
# --pe-methods: a third array dimension, PE method major; cells <pe>-<variant>-s<seed>
"$root/slurm/pipeline.sh" --dry-run --config "$cfg" --seeds 1,2 --variants none,maml --pe-methods adapter,prefix \
    --run R3 >plan3.txt 2>&1 || { cat plan3.txt; fail "pipeline --dry-run --pe-methods failed"; }
sed 's/\\//g' plan3.txt >plan3.plain
grep '^prime_id=' plan3.plain | grep -q -- '--array=0-3 .*--variants maml --seeds 1,2 --pe-methods adapter,prefix .*--out R3/prime/{pe}-{variant}-s{seed}' ||
    fail "prime array over 2 PE methods x 1 primed variant x 2 seeds"
grep '^finetune_id=' plan3.plain | grep -q -- '--array=0-3 .*--variants maml --seeds 1,2 --pe-methods adapter,prefix' ||
    fail "finetune array of the primed cells: 2 x 1 x 2"
grep '^finetune_none_id=' plan3.plain | grep -q -- '--array=0-3 .*--variants none --seeds 1,2 --pe-methods adapter,prefix' ||
    fail "finetune array of variant none: 2 x 1 x 2"
grep '^report_id=' plan3.plain | grep -q -- '--collect R3 --variants none,maml --seeds 1,2 --pe-methods adapter,prefix' ||
    fail "report collects over PE methods"
"$root/slurm/pipeline.sh" --dry-run --config "$cfg" --pe-methods adapter,bogus >bad2.txt 2>&1 &&
    fail "an unknown PE method was accepted"
grep -q "unknown PE method 'bogus'" bad2.txt || fail "unknown PE method message"
ftp() { SLURM_ARRAY_TASK_ID=$1 PEP_LAUNCHER=direct PEPRIME_BIN=/nonexistent/peprime \
        "$root/slurm/finetune.sh" --dry-run --config "$cfg" --pe-methods adapter,prefix --variants none,maml \
        --seeds 1,2,3 --base B.h5 --init 'P/{pe}-{variant}-s{seed}/primed.h5' --out 'F/{pe}-{variant}-s{seed}'; }
ftp 7 | grep -q -- '--set pe.method=prefix --set run.seed=2 --init B.h5 --resume auto --out F/prefix-none-s2' ||
    fail "task 7 should be (prefix, none, 2): $(ftp 7)"
ftp 5 | grep -q -- '--set pe.method=adapter --set run.seed=3 --init P/adapter-maml-s3/primed.h5 .*--out F/adapter-maml-s3' ||
    fail "task 5 should be (adapter, maml, 3): $(ftp 5)"
ftp 12 >/dev/null 2>&1 && fail "task 12 of a 2x2x3 array was accepted"
# PEP_SKIP_DONE=1: a stage whose final file exists exits 0 without running peprime
mkdir -p done && : >done/dummy && printf x >done/adapted.h5
PEP_SKIP_DONE=1 PEP_LAUNCHER=direct PEPRIME_BIN=/bin/false "$root/slurm/finetune.sh" --config "$cfg" \
    --out done >skip.txt 2>&1 || { cat skip.txt; fail "PEP_SKIP_DONE=1 did not skip a finished finetune"; }
grep -q 'adapted.h5 exists; skipping' skip.txt || fail "skip message"
echo "ok: pipeline and stage --dry-run"
