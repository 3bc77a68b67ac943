#!/bin/bash
# slurm/pipeline.sh: submits pretrain -> prime -> finetune -> evaluate -> report as Slurm jobs
# chained with --dependency=afterok, with job arrays over seeds and priming variants.
#
#   slurm/pipeline.sh --config JOB.ini [--seeds 1,2,3] [--variants none,maml,maml-all,multitask]
#                     [--pe-methods adapter,prefix]
#                     [--base BASE.h5] [--run DIR] [--set section.key=value]...
#                     [--pretrain-config F] [--prime-config F] [--finetune-config F]
#                     [--evaluate-config F] [--prime-stage prime|pretrain] [--sbatch "ARGS"]
#                     [--sbatch-STAGE "ARGS"]... [--max-running N] [--site-env FILE] [--stage-data]
#                     [--dry-run]
#
# Variants: none = no priming (fine-tune from base.h5), maml, maml-all (MAML with
# maml.inner_set=all), multitask (the multi-task baseline). Each (variant, seed) pair is one
# array task of the prime (not for none), finetune and evaluate arrays; with --pe-methods each
# (PE method, variant, seed) triple is, and the cells are named <pe>-<variant>-s<seed>. --base skips
# pretraining (e.g. an imported XLM-R). --sbatch adds options to every sbatch call (e.g.
# "-p short --account=abc"); --sbatch-pretrain, --sbatch-prime, --sbatch-finetune,
# --sbatch-evaluate and --sbatch-report add options to one stage's jobs after it (resources:
# priming on many nodes, fine-tuning array tasks on one). Each cell's fine-tuning waits only for
# its own priming (--dependency=aftercorr), its evaluation only for its fine-tuning; the cells
# of variant none form their own arrays. --max-running N: at most N tasks of each array run at
# once (sbatch --array=...%N). --site-env FILE: sourced at the start of every job (module
# loads; sites that submit with --export=NONE): the pipeline writes RUN/jobs.env, which sets
# the PEP_*/PEPRIME_* variables of the submitting shell and then sources FILE, and every job
# sources it. --stage-data: each job first copies its languages' data to node-local scratch
# ($TMPDIR, or PEP_SCRATCH) once per node and reads it there. The last job merges every
# results.csv into RUN/results.csv (the F1 table). --dry-run prints the sbatch commands and
# submits nothing.
# --prime-stage pretrain: the "priming" array runs slurm/pretrain.sh (continued masked LM from
# --base, the equal-compute control of experiment v2) and fine-tuning starts from its base.h5.
# PEP_FREE_VARIANTS=1: variant names are free (the prime job file defines the arm; experiment v2).
# Run it from the directory the jobs should work in: logs go to ./logs, runs to ./runs.
# `pipeline.sh --collect RUN --variants V --seeds S [--pe-methods P]` is the report job's own
# entry point.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PEP_ROOT=${PEP_ROOT:-$(cd "$here/.." && pwd)}

die() { printf 'pipeline: ERROR: %s\n' "$*" >&2; exit 2; }
split() { local -a a; IFS=, read -r -a a <<<"$1"; printf '%s\n' "${a[@]}"; }

# --collect: merge RUN/evaluate/[<pe>-]<variant>-s<seed>/results.csv into one table
collect() { # RUN VARIANTS SEEDS [PE_METHODS]
    local run=$1 p v s f header="" missing=0 out=$1/results.csv tmp prefix cols
    tmp=$(mktemp "$run/.results.XXXXXX")
    for p in $(split "${4:-_}"); do
    for v in $(split "$2"); do
        for s in $(split "$3"); do
            if [[ "$p" == _ ]]; then prefix=$v, cols=variant,seed; else prefix=$p,$v, cols=pe,variant,seed; fi
            f=$run/evaluate/${prefix//,/-}s$s/results.csv
            if [[ ! -s "$f" ]]; then
                printf 'pipeline: missing %s\n' "$f" >&2
                missing=1
                continue
            fi
            if [[ -z "$header" ]]; then
                header=$(head -1 "$f")
                printf '%s,%s\n' "$cols" "$header" >"$tmp"
            elif [[ "$(head -1 "$f")" != "$header" ]]; then
                printf 'pipeline: %s has a different header than the others\n' "$f" >&2
                missing=1
                continue
            fi
            tail -n +2 "$f" | sed "/^\$/d; s/^/$prefix$s,/" >>"$tmp"
        done
    done
    done
    if ((missing)) || [[ -z "$header" ]]; then
        rm -f "$tmp"
        die "results incomplete; see the evaluate logs in logs/"
    fi
    mv "$tmp" "$out"
    printf 'F1 table (%s):\n' "$out"
    if command -v column >/dev/null; then column -t -s, "$out"; else cat "$out"; fi
}

config="" run="" base="" seeds="" variants="none,maml" pes="" dry=0 sbatch_extra="" prime_stage=prime
max_running="" site_env="" stage_data=0
declare -A stage_config=() stage_sbatch=()
sets=()
while (($#)); do
    case "$1" in
        --collect | --config | --run | --base | --seeds | --variants | --pe-methods | --set | --sbatch | \
        --pretrain-config | --prime-config | --finetune-config | --evaluate-config | --prime-stage | \
        --sbatch-pretrain | --sbatch-prime | --sbatch-finetune | --sbatch-evaluate | --sbatch-report | \
        --max-running | --site-env)
            (($# >= 2)) || die "option $1 needs a value" ;;
    esac
    case "$1" in
        --collect) run=$2; collect_only=1; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --run) run=$2; shift 2 ;;
        --base) base=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --variants) variants=$2; shift 2 ;;
        --pe-methods) pes=$2; shift 2 ;;
        --set) sets+=(--set "$2"); shift 2 ;;
        --sbatch) sbatch_extra=$2; shift 2 ;;
        --prime-stage) prime_stage=$2; shift 2 ;;
        --sbatch-pretrain | --sbatch-prime | --sbatch-finetune | --sbatch-evaluate | --sbatch-report)
            stage_sbatch[${1#--sbatch-}]=$2; shift 2 ;;
        --max-running) max_running=$2; shift 2 ;;
        --site-env) site_env=$2; shift 2 ;;
        --stage-data) stage_data=1; shift ;;
        --pretrain-config | --prime-config | --finetune-config | --evaluate-config)
            k=${1#--}; stage_config[${k%-config}]=$2; shift 2 ;;
        --dry-run) dry=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
seeds=${seeds:-1}

for v in $(split "$variants"); do
    case "$v" in none | maml | maml-all | multitask) ;;
        *) [[ "${PEP_FREE_VARIANTS:-0}" == 1 && "$v" =~ ^[a-z][a-z0-9-]*$ ]] ||
            die "unknown variant '$v' (choices: none, maml, maml-all, multitask)" ;;
    esac
done
case "$prime_stage" in prime) primed_file=primed.h5 ;; pretrain) primed_file=base.h5 ;;
    *) die "--prime-stage '$prime_stage' (choices: prime, pretrain)" ;; esac
for s in $(split "$seeds"); do
    [[ "$s" =~ ^[0-9]+$ ]] || die "seed '$s' is not a number"
done
[[ -z "$max_running" || "$max_running" =~ ^[1-9][0-9]*$ ]] ||
    die "--max-running '$max_running' is not a positive number of array tasks"
if [[ -n "$site_env" ]]; then
    [[ -f "$site_env" && -r "$site_env" ]] || die "--site-env '$site_env' not found or unreadable"
    site_env=$(cd "$(dirname "$site_env")" && pwd)/$(basename "$site_env")
fi
if [[ -n "${collect_only:-}" ]]; then
    collect "$run" "$variants" "$seeds" "$pes"
    exit 0
fi

[[ -n "$config" || ${#stage_config[@]} -eq 4 ]] ||
    die "no job file: pass --config JOB.ini (used by every stage) or one per stage"
for st in pretrain prime finetune evaluate; do
    stage_config[$st]=${stage_config[$st]:-$config}
    if [[ "$st" == pretrain && -n "$base" ]]; then continue; fi
    [[ -f "${stage_config[$st]}" ]] || die "$st job file '${stage_config[$st]}' not found"
done
run=${run:-runs/pipeline-$(date +%Y%m%d-%H%M%S)}
nseeds=$(split "$seeds" | wc -l)
npes=1
if [[ -n "$pes" ]]; then
    for p in $(split "$pes"); do
        case "$p" in adapter | prefix | lora) ;;
            *) die "unknown PE method '$p' (choices: adapter, prefix, lora)" ;;
        esac
    done
    npes=$(split "$pes" | wc -l)
fi
primed=$(split "$variants" | grep -vx none | paste -sd, - || true)
nall=$(($(split "$variants" | wc -l) * nseeds * npes))
nprimed=0
[[ -n "$primed" ]] && nprimed=$(($(split "$primed" | wc -l) * nseeds * npes))

# submit VAR STAGE SBATCH-OPTIONS... [-- SCRIPT ARGS...]: submits (or prints) one job and stores
# its id in VAR. Options come in this order: ours, --sbatch, --sbatch-STAGE (the last wins).
n_fake=0
pretrain_id="" prime_id="" finetune_id="" finetune_none_id="" evaluate_id="" evaluate_none_id="" report_id=""
submit() {
    local var=$1 st=$2 id
    shift 2
    local -a opts=() extra mine cmd
    while (($#)) && [[ "$1" != -- ]]; do
        [[ -n "$1" ]] && opts+=("$1")
        shift
    done
    (($#)) && shift
    read -r -a extra <<<"$sbatch_extra"
    read -r -a mine <<<"${stage_sbatch[$st]:-}"
    # a failed stage cancels the jobs that wait for it instead of leaving them pending forever
    cmd=(sbatch --parsable --kill-on-invalid-dep=yes "${opts[@]}" "${extra[@]}" "${mine[@]}" "$@")
    if ((dry)); then
        n_fake=$((n_fake + 1))
        id="<job$n_fake>"
        printf '%s=%s: ' "$var" "$id"
        printf '%q ' "${cmd[@]}"
        printf '\n'
    else
        id=$("${cmd[@]}") || die "sbatch failed: ${cmd[*]}"
        id=${id%%;*}
    fi
    printf -v "$var" '%s' "$id"
}
dep() { # TYPE ids... (empty ones ignored) -> --dependency=TYPE:a:b, or nothing
    local type=$1 ids=() i
    shift
    for i in "$@"; do [[ -n "$i" ]] && ids+=("$i"); done
    ((${#ids[@]})) && printf -- '--dependency=%s:%s' "$type" "$(IFS=:; echo "${ids[*]}")"
    return 0
}
array() { printf -- '--array=0-%d%s' $(($1 - 1)) "${max_running:+%$max_running}"; }

# RUN/jobs.env: what every job sources first, so that nothing depends on sbatch exporting the
# submitting shell's environment (sites that submit with --export=NONE)
env_file=$run/jobs.env
if ((!dry)); then
    mkdir -p logs "$run" || die "cannot create logs/ or $run"
    env_file=$(cd "$run" && pwd)/jobs.env
    {
        printf '# %s: written by slurm/pipeline.sh on %s; every job of the pipeline sources it first\n' \
            "$env_file" "$(date '+%F %T')"
        for v in PEP_ROOT PEPRIME_BIN PEPRIME_DATA PEP_FREE_VARIANTS PEP_SKIP_DONE PEP_LAUNCHER PEP_SRUN_MPI \
            PEP_SRUN_ARGS PEP_MPIRUN_ARGS PEP_THREADS PEP_REQUEUE PEP_MAX_REQUEUES PEP_SCRATCH; do
            if [[ -n "${!v:-}" ]]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
        done
        if [[ -n "$site_env" ]]; then printf 'source %q\n' "$site_env"; fi
    } >"$env_file" || die "cannot write $env_file"
fi
arr_out=--output=logs/%x-%A_%a.out
cell='{variant}-s{seed}'
common=(--env-file "$env_file")
((stage_data)) && common+=(--stage-data)
pe_args=()
if [[ -n "$pes" ]]; then
    cell='{pe}-{variant}-s{seed}'
    pe_args=(--pe-methods "$pes")
fi
nnone=0
split "$variants" | grep -qx none && nnone=$((nseeds * npes))

if [[ -z "$base" ]]; then
    submit pretrain_id pretrain -- "$PEP_ROOT/slurm/pretrain.sh" --config "${stage_config[pretrain]}" \
        "${common[@]}" "${sets[@]}" --out "$run/pretrain"
    base=$run/pretrain/base.h5
fi

if ((nprimed)); then
    submit prime_id prime "$(array "$nprimed")" "$arr_out" "$(dep afterok "$pretrain_id")" -- \
        "$PEP_ROOT/slurm/$prime_stage.sh" --config "${stage_config[prime]}" "${common[@]}" "${sets[@]}" \
        --variants "$primed" --seeds "$seeds" "${pe_args[@]}" --init "$base" --out "$run/prime/$cell"
    # the primed cells' arrays have the prime array's indices: task i waits for priming task i
    submit finetune_id finetune "$(array "$nprimed")" "$arr_out" "$(dep aftercorr "$prime_id")" -- \
        "$PEP_ROOT/slurm/finetune.sh" --config "${stage_config[finetune]}" "${common[@]}" "${sets[@]}" \
        --variants "$primed" --seeds "$seeds" "${pe_args[@]}" \
        --init "$run/prime/$cell/$primed_file" --out "$run/finetune/$cell"
    submit evaluate_id evaluate "$(array "$nprimed")" "$arr_out" "$(dep aftercorr "$finetune_id")" -- \
        "$PEP_ROOT/slurm/evaluate.sh" --config "${stage_config[evaluate]}" "${common[@]}" "${sets[@]}" \
        --variants "$primed" --seeds "$seeds" "${pe_args[@]}" \
        --model "$run/finetune/$cell/adapted.h5" --out "$run/evaluate/$cell"
fi
if ((nnone)); then
    submit finetune_none_id finetune "$(array "$nnone")" "$arr_out" "$(dep afterok "$pretrain_id")" -- \
        "$PEP_ROOT/slurm/finetune.sh" --config "${stage_config[finetune]}" "${common[@]}" "${sets[@]}" \
        --variants none --seeds "$seeds" "${pe_args[@]}" --base "$base" --out "$run/finetune/$cell"
    submit evaluate_none_id evaluate "$(array "$nnone")" "$arr_out" "$(dep aftercorr "$finetune_none_id")" -- \
        "$PEP_ROOT/slurm/evaluate.sh" --config "${stage_config[evaluate]}" "${common[@]}" "${sets[@]}" \
        --variants none --seeds "$seeds" "${pe_args[@]}" \
        --model "$run/finetune/$cell/adapted.h5" --out "$run/evaluate/$cell"
fi

submit report_id report "$(dep afterok "$evaluate_id" "$evaluate_none_id")" --job-name=pep-report \
    --output=logs/%x-%j.out --nodes=1 --ntasks=1 --cpus-per-task=1 --time=00:10:00 \
    --wrap="bash $(printf '%q' "$PEP_ROOT/slurm/pipeline.sh") --collect $(printf '%q' "$run") --variants $variants --seeds $seeds${pes:+ --pe-methods $pes}"

shown=${cell//\{/<}
shown=${shown//\}/>}
printf 'pipeline: run directory %s  (variants %s; seeds %s%s)\n' "$run" "$variants" "$seeds" "${pes:+; PE methods $pes}"
printf '  pretrain  %s\n' "${pretrain_id:-skipped (base $base)}"
if ((nprimed)); then
    printf '  prime     %s  array of %d: %s\n' "$prime_id" "$nprimed" "$run/prime/$shown/$primed_file"
    printf '  finetune  %s  array of %d, task i after priming task i: %s\n' "$finetune_id" "$nprimed" "$run/finetune/$shown/adapted.h5"
    printf '  evaluate  %s  array of %d, task i after fine-tuning task i: %s\n' "$evaluate_id" "$nprimed" "$run/evaluate/$shown/results.{json,csv}"
else
    printf '  prime     skipped (no primed variant)\n'
fi
if ((nnone)); then
    printf '  finetune  %s  array of %d (variant none, from %s)\n' "$finetune_none_id" "$nnone" "$base"
    printf '  evaluate  %s  array of %d (variant none)\n' "$evaluate_none_id" "$nnone"
fi
printf '  report    %s  F1 table: %s (also printed in logs/pep-report-%s.out)\n' "$report_id" "$run/results.csv" "$report_id"
printf '  jobs.env  %s (sourced first by every job%s)\n' "$env_file" "${site_env:+; it sources $site_env}"
if [[ -n "$max_running" ]]; then printf '  at most %s task(s) of each array at once\n' "$max_running"; fi
if ((stage_data)); then printf '  data staged to node-local scratch (%s) by every job\n' "${PEP_SCRATCH:-\$TMPDIR}"; fi
printf '  logs      logs/<job-name>-<id>.out (arrays: logs/<job-name>-<id>_<index>.out); squeue -u $USER\n'
