#!/usr/bin/env bash
# Task groups (maml.group_size = G) with real mpiexec on the generated corpus: for P = 1, 2, 4
# ranks and G = 1, 2, 4 (G <= P; 4 ranks oversubscribe the machine) the primed model and the
# /tasks states equal the P = 1, G = 1 run to float rounding, for first- and second-order MAML
# (hidden dropout on: a rank's share draws the whole batch's masks), with AdamW + clipping and
# with plain SGD without clipping (the update from a common start compared, where a wrong scale
# in any reduction shows), with the inner set's I n O rows meta-learned (maml.pe_init = meta,
# outer set plm+pe), for per-group inner rules (the finetune rule; SGD rates per group at order 2),
# and for both multi-task methods. A checkpoint written with groups resumes
# without them; G above the meta-batch works (P = 2, one task, G = 2). A bad G is an error that stops every rank with exit status 2 (no hang), each run
# judged by run_check.sh.
#   prime_groups.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
CHECK="$HERE/../mpi/run_check.sh"
PY=/usr/bin/python3
. "$HERE/lib.sh"
step() { echo "== $*"; }
step "tokenizer + a small base model"
prime_setup "$B" "$W"
# run NP G OUT [--set ...]: every rank must exit 0 (mpiexec's status is the worst rank's)
run() {
  local np=$1 g=$2 out=$3; shift 3
  "$MPIEXEC" -n "$np" --oversubscribe --bind-to none "$B" prime --config job.ini --init base/base.h5 --out "$out" \
    "${S[@]}" --set optim.steps=8 --set maml.group_size="$g" "$@" >"$out.log" 2>&1 || {
    tail -20 "$out.log"; echo "FAIL: prime -n $np G=$g ($out) exited non-zero"; exit 1; }
}
CMP="$HERE/compare_h5.py"
# (P, G) pairs compared with the one-rank run
PAIRS="2:1 2:2 4:1 4:2 4:4"

# matrix NAME TOL_PARAMS TOL_TASKS [--set ...]: the reference and every (P, G) pair, compared
matrix() {
  local name=$1 tol=$2 ttol=$3; shift 3
  run 1 1 "$name-1-1" "$@"
  for pg in $PAIRS; do
    local p=${pg%:*} g=${pg#*:}
    run "$p" "$g" "$name-$p-$g" "$@"
    echo "-- $name: P=$p G=$g vs P=1 G=1"
    $PY "$CMP" "$name-1-1/primed.h5" "$name-$p-$g/primed.h5" --tol "$tol"
    $PY "$CMP" "$name-1-1/primed.h5" "$name-$p-$g/primed.h5" --groups tasks --tol "$ttol"
  done
}
# sgd NAME TOL [--set ...]: the same with plain SGD, no clipping: the updates from a common start
SGD=(--set optim.name=sgd --set optim.clip=0 --set optim.schedule=constant --set optim.warmup=0
     --set checkpoint.every=0)
sgd() {
  local name=$1 tol=$2; shift 2
  run 1 1 "$name-start" "${SGD[@]}" --set optim.lr=0 "$@"
  run 1 1 "$name-1-1" "${SGD[@]}" --set optim.lr=0.5 "$@"
  for pg in $PAIRS; do
    local p=${pg%:*} g=${pg#*:}
    run "$p" "$g" "$name-$p-$g" "${SGD[@]}" --set optim.lr=0.5 "$@"
    echo "-- $name: P=$p G=$g vs P=1 G=1 (updates)"
    $PY "$CMP" "$name-1-1/primed.h5" "$name-$p-$g/primed.h5" --base "$name-start/primed.h5" --tol "$tol"
    $PY "$CMP" "$name-1-1/primed.h5" "$name-$p-$g/primed.h5" --groups tasks --tol "$tol"
  done
}

step "AdamW with clipping, order 1 and order 2"
matrix adam1 1e-6 1e-5
# order 2's finite-difference HVPs divide rounding by 2e (e = fd_eps / |v|): any change in the
# order of a sum, more ranks without groups too, moves the result by ~2e-6 here (5e-8 with
# fd_eps = 0.1), so order 2 gets 1e-5
matrix adam2 1e-5 1e-5 --set maml.order=2
grep -q "task groups of 2 ranks: [0-9.]* MB summed inside" adam1-4-2.log || { echo "FAIL: no group exchange report"; exit 1; }
grep -q "(2 task groups of 2)" adam1-4-2.log || { echo "FAIL: no group layout in the start line"; exit 1; }

step "plain SGD, no clipping, order 1 and order 2"
sgd sgd1 1e-4
sgd sgd2 1e-4 --set maml.order=2

step "meta-learned PE + head (outer set plm+pe): the group-summed rows counted once"
PAIRS="2:2 4:4" sgd meta 1e-4 --set maml.outer_set=plm+pe --set maml.pe_init=meta --set maml.order=2

step "inner loop on every parameter (maml.inner_set = all): the group-summed rows include word embeddings"
PAIRS="2:2" sgd all 1e-4 --set maml.inner_set=all

step "per-group inner rules: the finetune rule (replayed AdamW, clip, weight decay), and SGD rates per group at order 2"
# the fine-tuning job file the finetune rule replays (found beside job.ini)
printf '[optim]\nlr = 0.01\nwarmup = 4\nsteps = 20\nclip = 0.5\nweight_decay = 0.01\n' > ft.ini
PAIRS="2:1 2:2 4:4" matrix replay 1e-6 1e-5 --set maml.inner_optim=finetune --set maml.replay_from=ft.ini \
  --set maml.replay_start=2 --set maml.inner_steps=3 --set maml.pe_init=episode
grep -q "inner rules pe finetune (adamw lr 0.0075 at steps 2..4), head finetune" replay-1-1.log || {
  echo "FAIL: the start line does not name the replayed rule"; exit 1; }
PAIRS="2:2 4:2" sgd rates2 1e-4 --set maml.order=2 --set maml.inner_pe_lr=2.0 --set maml.inner_head_lr=0.1

step "one task per meta-step: groups larger than the meta-batch put idle ranks to work"
PAIRS="2:2 4:4 4:2" matrix one 1e-6 1e-5 --set maml.meta_batch=1
grep -q "2 task groups for a meta-batch of 1 tasks: 1 group stays idle" one-4-2.log || {
  echo "FAIL: no warning about an idle group"; exit 1; }

step "multi-task priming (both methods)"
PAIRS="4:2 4:4" matrix mt 1e-6 1e-5 --set maml.method=multitask
PAIRS="2:2" matrix mtm 1e-6 1e-5 --set maml.method=multitask-matched

step "a checkpoint of 4 ranks in groups of 2 resumes on 1 rank without groups"
run 1 1 resume --resume "$W/adam1-4-2/checkpoints/prime-step00000004.h5"
$PY "$CMP" adam1-1-1/primed.h5 resume/primed.h5 --tol 1e-6
# the resumed file's /tasks (its .start entries only for languages drawn after the resume)
$PY "$CMP" resume/primed.h5 adam1-1-1/primed.h5 --groups tasks --tol 1e-5
"$B" inspect adam1-4-2/primed.h5 | grep -q "tasks" || { echo "FAIL: no /tasks in the grouped checkpoint"; exit 1; }

step "a bad group size stops every rank with a clear error (no hang)"
bad() {
  local np=$1 want=$2; shift 2
  "$CHECK" --expect fail --status 2 --max-seconds 60 --want "$want" --reject "meta-step" -- \
    "$MPIEXEC" -n "$np" --oversubscribe --bind-to none "$B" prime --config job.ini --init base/base.h5 \
    --out bad "${S[@]}" "$@"
}
bad 2 "maml.group_size = 3 does not divide the 2 ranks" --set maml.group_size=3
bad 4 "maml.group_size = 4 is larger than maml.support_size = 4 or maml.query_size = 3" --set maml.group_size=4 \
  --set maml.query_size=3
bad 4 "maml.group_size = 4 is larger than maml.support_size = 3" --set maml.group_size=4 --set maml.support_size=3
bad 2 "'maml.group_size' = 0 is out of range" --set maml.group_size=0
echo "all task-group checks passed"
