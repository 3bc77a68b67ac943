#!/usr/bin/env bash
# scripts/experiment.sh: the priming experiments of docs/results.md — one shared tokenizer and
# base model, then every cell (PE method x priming arm x seed): prime -> finetune -> evaluate,
# then the analysis (tables and plots) of analysis/report.py.
#
# Experiment v2 (a job folder with a grid.conf, e.g. jobs/experiments/wikiann-v2):
#   scripts/experiment.sh --exp jobs/experiments/wikiann-v2 --run runs/v2 [--seeds ..] [--arms ..]
#                         [--pe ..] [--bases 2000,16000] [--jobs N] [--threads T] [--collect | --calibrate]
#                         [--bases-from DIR] [--results-from CSV]
# pretrains once, keeps the checkpoints at grid.conf's `bases` steps as RUN/bases/base-step<N>.h5
# (`peprime strip` copies, weights without optimizer state; SHA-256 in RUN/bases/SHA256SUMS and
# RUN/bases.csv), then runs the cells of
# grid.conf — every arm of `strong.arms` x `strong.pe` on the last base, `weak.arms` x
# `weak.pe` on the others, `seeds` each; --arms/--pe/--bases restrict them, --seeds replaces
# them — into RUN/b<N>/{prime,finetune,evaluate}/<pe>-<arm>-s<seed>, seed-major, strongest base
# first. An arm's priming job file is EXP/arms/<arm>.ini; arm none has no priming; arm mlm is
# EXP/mlm.ini, continued masked LM from the base, one run per base and seed shared by the PE
# methods (RUN/b<N>/prime/mlm-s<seed>). An arm's fine-tuning job file is
# EXP/arms/<arm>.finetune.ini when present, else EXP/finetune.ini. After every finished cell
# RUN/results_long.csv (base,pe,arm,seed,language,f1 with f1 in %) is rebuilt from all finished
# cells, so it is complete after any interruption, and RUN/dev_f1.csv (base,pe,arm,seed,dev_f1:
# English dev F1 in % of each cell's kept model) beside it; --collect only rebuilds them.
# --calibrate: pretraining (if not done) and the inner-rate calibration only, locally.
# --bases-from DIR: the bases of an earlier stretch of work instead of pretraining — a copy of
# its RUN/bases (stripped base-step<N>.h5, spm.model, SHA256SUMS, calibration/), e.g. the one
# committed under docs/results/bases; every file is checked against SHA256SUMS first.
# --results-from CSV: the results_long.csv of earlier stretches of work (e.g. the committed
# docs/results/results_long.csv): its cells count as finished and are not run again, and its
# rows are kept in RUN/results_long.csv (a copy is kept as RUN/results_earlier.csv, so later
# runs and --collect keep them without the option). A cell finished in RUN itself wins. With
# --slurm the job arrays still cover whole seeds: give --seeds the ones not finished yet.
# --slurm: submits the pretraining job when the bases are missing (run the same command again
# once it has finished), else per base and arm slurm/pipeline.sh job arrays (the calibrated
# arms only once RUN/calibration/inner_lr exists: run --calibrate locally first, minutes);
# run --collect after the jobs.
#
#   scripts/experiment.sh [--exp DIR] [--run DIR] [--seeds 1,2,3]
#                         [--arms none,maml,maml-all,multitask] [--pe adapter,prefix]
#                         [--jobs N] [--threads T] [--set section.key=value]... [--no-report]
#   scripts/experiment.sh --slurm [the same options] [--sbatch "SBATCH ARGS"] [--dry-run]
#
# --exp      job folder with pretrain.ini prime.ini finetune.ini evaluate.ini
#            (default jobs/experiments/wikiann-small)
# --run      results directory (default runs/experiment); the layout is slurm/pipeline.sh's:
#            pretrain/base.h5, prime/<cell>/primed.h5, finetune/<cell>/adapted.h5,
#            evaluate/<cell>/results.{json,csv}, with <cell> = <pe>-<arm>-s<seed>
# --jobs     cells run at the same time on this machine (default: cores / threads)
# --threads  BLAS threads per cell (default 1); pretraining uses jobs x threads
# --slurm    submit the same stages as Slurm job arrays through slurm/pipeline.sh instead
#
# Resuming: run the same command again. Finished stages (their final file exists) are
# skipped, interrupted ones continue from their newest checkpoint, failed cells are retried.
# Each stage's log is RUN/logs/<stage>-<cell>.log; RUN/timings.csv records wall times and
# RUN/failed/<cell> names the stage and log of a cell that failed (the others go on).
# PEPRIME_BIN=path: run that binary and skip the package check and the build.
source "$(dirname "$0")/common.sh"

die() { printf 'experiment: ERROR: %s\n' "$*" >&2; exit 2; }
say() { printf '[%s] experiment: %s\n' "$(date '+%F %T')" "$*"; }
split() { local -a a; IFS=, read -r -a a <<<"$1"; printf '%s\n' "${a[@]}"; }

exp=$PEP_ROOT/jobs/experiments/wikiann-small run=$PEP_ROOT/runs/experiment
seeds=1,2,3 arms=none,maml,maml-all,multitask pes=adapter,prefix
jobs="" threads=1 slurm=0 report=1 dry=0 sbatch_extra="" bases_opt="" bases_from="" results_from="" collect_only=0 calibrate_only=0
seeds_set=0 arms_set=0 pes_set=0
sets=()
while (($#)); do
  case "$1" in
    --exp | --run | --seeds | --arms | --pe | --jobs | --threads | --set | --sbatch | --bases | --bases-from | --results-from)
      (($# >= 2)) || die "option $1 needs a value" ;;
  esac
  case "$1" in
    --exp) exp=$2; shift 2 ;;
    --run) run=$2; shift 2 ;;
    --seeds) seeds=$2; seeds_set=1; shift 2 ;;
    --arms) arms=$2; arms_set=1; shift 2 ;;
    --pe) pes=$2; pes_set=1; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --sbatch) sbatch_extra=$2; shift 2 ;;
    --slurm) slurm=1; shift ;;
    --bases) bases_opt=$2; shift 2 ;;
    --bases-from) bases_from=$2; shift 2 ;;
    --results-from) results_from=$2; shift 2 ;;
    --collect) collect_only=1; shift ;;
    --calibrate) calibrate_only=1; shift ;;
    --no-report) report=0; shift ;;
    --dry-run) dry=1; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

exp=$(cd "$exp" 2>/dev/null && pwd) || die "job folder '$exp' not found (--exp)"
for st in pretrain prime finetune evaluate; do
  [[ -f "$exp/$st.ini" ]] || die "$exp has no $st.ini (an experiment folder holds one job file per stage)"
done
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads '$threads' is not a positive number"
cores=$(nproc)
jobs=${jobs:-$((cores / threads > 0 ? cores / threads : 1))}
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs '$jobs' is not a positive number"
grid=0
[[ -f "$exp/grid.conf" ]] && grid=1
# exp_arm_ok ARM: an arm this job folder defines (v2: arms/<arm>.ini, mlm.ini, none)
exp_arm_ok() { [[ "$1" == none || ("$1" == mlm && -f "$exp/mlm.ini") || ("$1" =~ ^[a-z][a-z0-9-]*$ && -f "$exp/arms/$1.ini") ]]; }
if ((grid)); then
  ((arms_set == 0)) || for a in $(split "$arms"); do exp_arm_ok "$a" ||
    die "unknown arm '$a': $exp has no arms/$a.ini (arms: none$([[ -f $exp/mlm.ini ]] && echo ", mlm")$(for f in "$exp"/arms/*.ini; do b=${f##*/}; [[ $b == *.finetune.ini ]] || printf ', %s' "${b%.ini}"; done))"; done
else
  for a in $(split "$arms"); do case "$a" in none | maml | maml-all | multitask) ;;
    *) die "unknown arm '$a' (choices: none, maml, maml-all, multitask)" ;; esac; done
fi
for p in $(split "$pes"); do case "$p" in adapter | prefix | lora) ;;
  *) die "unknown PE method '$p' (choices: adapter, prefix, lora)" ;; esac; done
for s in $(split "$seeds"); do [[ "$s" =~ ^[0-9]+$ ]] || die "seed '$s' is not a number"; done

data=$(pep_data_root)
[[ -n "$data" && -d "$data/ner/wikiann/en" ]] ||
  die "no WikiAnn data: set PEPRIME_DATA to the folder holding ner/wikiann/<lang>/ (see README)"
export PEPRIME_DATA=$data
mkdir -p "$run" || die "cannot create the results directory '$run'"
run=$(cd "$run" && pwd)
export PEP_SKIP_DONE=1

# experiment v2 (grid.conf): its cell list, cell runner, bases and long CSV
((grid)) && source "$PEP_ROOT/scripts/experiment_grid.sh"
if [[ -n "$bases_from" ]]; then
  ((grid)) || die "--bases-from needs a job folder with a grid.conf (experiment v2)"
  ((dry)) || grid_bases_from "$bases_from"
fi
if [[ -n "$results_from" ]]; then
  ((grid)) || die "--results-from needs a job folder with a grid.conf (experiment v2)"
  grid_results_from "$results_from"
fi
((grid && (slurm || collect_only))) && { grid_main; exit $?; }
((collect_only)) && die "--collect needs a job folder with a grid.conf (experiment v2)"

if ((slurm)); then
  # Slurm: the same job files and layout as job arrays; finished stages are skipped by the
  # array tasks themselves (PEP_SKIP_DONE is exported with the jobs).
  args=(--pretrain-config "$exp/pretrain.ini" --prime-config "$exp/prime.ini"
        --finetune-config "$exp/finetune.ini" --evaluate-config "$exp/evaluate.ini"
        --run "$run" --variants "$arms" --seeds "$seeds" --pe-methods "$pes" "${sets[@]}")
  [[ -s "$run/pretrain/base.h5" ]] && args+=(--base "$run/pretrain/base.h5")
  [[ -n "$sbatch_extra" ]] && args+=(--sbatch "$sbatch_extra")
  ((dry)) && args+=(--dry-run)
  exec bash "$PEP_ROOT/slurm/pipeline.sh" "${args[@]}"
fi

[[ -n "${PEPRIME_BIN:-}" ]] || pep_install_packages "${PEP_APT_PACKAGES[@]}"
# PEPRIME_BIN: use that binary as it is (the tests do); otherwise build the tree's own
if [[ -z "${PEPRIME_BIN:-}" ]] && ((!dry)); then pep_build "$PEP_ROOT/build" >/dev/null; fi
pep_mpi_env
export PEP_LAUNCHER=direct PEP_REQUEUE=0
# one driver per results directory: a second one would run the same cells twice
exec 9>"$run/.lock"
flock -n 9 || die "another scripts/experiment.sh is working on $run (it holds $run/.lock); wait for it or stop it"
mkdir -p "$run/logs" "$run/failed"
[[ -f "$run/timings.csv" ]] || echo "cell,stage,seconds,status,finished" >"$run/timings.csv"

# stage CELL STAGE SCRIPT-ARGS...: one stage through its batch script; 0 = done or skipped
stage() {
  local cell=$1 st=$2 t0 rc=0 log conf=${STAGE_CONF:-$exp/$2.ini} flat=${1//\//-}
  shift 2
  log=$run/logs/$st-$flat.log
  t0=$(date +%s)
  if ((dry)); then
    bash "$PEP_ROOT/slurm/$st.sh" --config "$conf" "${sets[@]}" "$@" --dry-run
    return 0
  fi
  bash "$PEP_ROOT/slurm/$st.sh" --config "$conf" "${sets[@]}" "$@" >>"$log" 2>&1 || rc=$?
  local secs=$(($(date +%s) - t0)) status=ok
  grep -q 'PEP_SKIP_DONE=1' <(tail -n 2 "$log") && status=skipped
  ((rc == 0)) || status=failed:$rc
  [[ "$status" == skipped ]] || echo "$cell,$st,$secs,$status,$(date '+%F %T')" >>"$run/timings.csv"
  if ((rc != 0)); then
    printf 'stage %s exited with status %d after %d s; log %s\n' "$st" "$rc" "$secs" "$log" >"$run/failed/$flat"
    say "FAILED $cell: $st (status $rc); last lines of $log:"
    tail -n 5 "$log" | sed 's/^/    /'
  fi
  return "$rc"
}

# cell PE ARM SEED: prime (unless arm none) -> finetune -> evaluate
cell() {
  local pe=$1 arm=$2 seed=$3 c=$1-$2-s$3
  local sel=(--pe-methods "$pe" --variants "$arm" --seeds "$seed")
  rm -f "$run/failed/$c"
  if [[ "$arm" != none ]]; then
    stage "$c" prime "${sel[@]}" --init "$run/pretrain/base.h5" --out "$run/prime/$c" || return 0
  fi
  stage "$c" finetune "${sel[@]}" --base "$run/pretrain/base.h5" --init "$run/prime/$c/primed.h5" \
    --out "$run/finetune/$c" || return 0
  stage "$c" evaluate "${sel[@]}" --model "$run/finetune/$c/adapted.h5" --out "$run/evaluate/$c" || return 0
  ((dry)) || say "done $c: $(cat "$run/evaluate/$c/results.csv" 2>/dev/null | awk -F, 'NR>1{printf "%s ", $0}' | cut -c1-120)"
}

cells=() cellfn=cell
if ((grid)); then
  grid_cells # fills cells, sets cellfn
else
  for s in $(split "$seeds"); do # seed-major: an interrupted run still has whole seeds
    for p in $(split "$pes"); do
      for a in $(split "$arms"); do cells+=("$p $a $s"); done
    done
  done
  say "${#cells[@]} cells ($pes x $arms x seeds $seeds) from $exp into $run; $jobs at a time, $threads BLAS thread(s) each"
fi
T0=$(date +%s)

if ((grid)) && grid_bases_ready; then
  say "bases ready in $run/bases (SHA256SUMS checked): no pretraining"
else
  say "pretrain (tokenizer + masked LM) with $((jobs * threads)) threads"
  PEP_THREADS=$((jobs * threads)) stage base pretrain --out "$run/pretrain" ||
    die "pretraining failed; see $run/logs/pretrain-base.log"
  ((grid)) && grid_bases
fi
if ((calibrate_only)); then
  ((grid)) || die "--calibrate needs a job folder with a grid.conf (experiment v2)"
  lr=$(grid_inner_lr) || die "the calibration failed; see $run/logs/prime-calibration-*.log"
  say "inner SGD rate of the calibrated arms: $lr ($run/calibration/calibration.csv)"
  exit 0
fi

# xargs -P runs the cells, $jobs at a time, in the order of the list. Each cell is a fresh bash
# that reads this driver's functions and variables from RUN/.cellenv; the one in process slot k
# is pinned to its own cores when the cells fit the machine, so that two cells never share one
# (its binding is inherited by the stages it starts).
cellenv=$run/.cellenv
# shellcheck disable=SC2046
{ declare -p $(compgen -v | grep -E '^[a-z][a-z0-9_]*$'); declare -f; } >"$cellenv"
run_cells() {
  printf '%s\n' "${cells[@]}" | xargs -d '\n' -n 1 -P "$jobs" --process-slot-var=PEP_CELL_SLOT bash -c '
    set -euo pipefail
    source "$0"
    if ((jobs * threads <= cores)) && command -v taskset >/dev/null; then
      taskset -pc "$((PEP_CELL_SLOT * threads))-$((PEP_CELL_SLOT * threads + threads - 1))" $$ >/dev/null
    fi
    # shellcheck disable=SC2086
    PEP_THREADS=$threads $cellfn $1' "$cellenv"
}
# killtree PID: TERM to PID and everything it started (the stage scripts forward TERM to
# peprime, which writes a checkpoint and exits)
killtree() { local c; for c in $(pgrep -P "$1"); do killtree "$c"; done; kill -TERM "$1" 2>/dev/null || true; }
stop() {
  say "interrupted: stopping the cells (run the same command again to resume)"
  local x c cells_running
  # the cell list's shell and xargs first (they would report each cell's signal), then every cell's tree
  x=$(pgrep -P "$xpid" -x xargs || true)
  cells_running=$([[ -z "$x" ]] || pgrep -P "$x" || true)
  kill -TERM "$xpid" $x 2>/dev/null || true
  rm -f "$cellenv"
  for c in $cells_running; do killtree "$c"; done
  wait
  exit 130
}
run_cells &
xpid=$!
trap stop INT TERM
xrc=0
wait "$xpid" || xrc=$?
trap - INT TERM
rm -f "$cellenv"
# a cell records its own failed stages (RUN/failed/); a non-zero status here is a cell whose
# shell itself failed
((xrc == 0)) || say "a cell's shell ended with an error (xargs status $xrc; see above)"

nfail=$(find "$run/failed" -type f | wc -l)
say "all cells finished in $(( ($(date +%s) - T0) / 60 )) min; $nfail failed$( ((nfail)) && echo " (see $run/failed/)")"
((grid && !dry)) && grid_collect
if ((report && !dry)); then
  python3=/usr/bin/python3
  [[ -x $python3 ]] || python3=python3
  "$python3" "$PEP_ROOT/analysis/report.py" "$run" --exp "$exp" || say "the report had problems (see above)"
fi
((nfail == 0 && xrc == 0))
