# slurm/common.sh: the logic shared by the peprime batch scripts (sourced, never run):
# argument and environment handling, BLAS/MPI environment, the srun / mpirun launcher,
# signal forwarding and the requeue-on-preemption protocol. Entry point: pep_stage_main.
# The batch scripts run it under `set -euo pipefail`: a command whose failure is expected is
# tested (if, ||), optional variables are read as ${X:-}, and no function ends on `a && b`
# (a false `a` would be the function's status and stop the script).
#
# Protocol: the batch shell receives USR1 a few minutes before the time limit
# (#SBATCH --signal=B:USR1@300) and forwards it to the launcher, which forwards it to every
# rank. peprime finishes its step, writes a checkpoint and exits 75 (EX_TEMPFAIL). The batch
# shell then runs `scontrol requeue $SLURM_JOB_ID`; the requeued job starts the same script
# again, which always passes `--resume auto`, so it continues from the newest checkpoint in
# <out>/checkpoints/. A SIGTERM (scancel, or preemption by Slurm) is forwarded too, but
# never answered with a requeue: a cancelled job stays cancelled, and Slurm requeues
# preempted jobs itself when PreemptMode=REQUEUE.
# shellcheck shell=bash

PEP_EX_TEMPFAIL=75

pep_log() { printf '[%s] peprime-slurm: %s\n' "$(date '+%F %T')" "$*" >&2; }
pep_die() { pep_log "ERROR: $*"; exit 2; }

# pep_list_item LIST INDEX: the INDEX-th (0-based) item of a comma-separated list.
pep_list_item() { local -a a; IFS=, read -r -a a <<<"$1"; printf '%s' "${a[$2]}"; }
pep_list_count() { local -a a; IFS=, read -r -a a <<<"$1"; printf '%s' "${#a[@]}"; }

# pep_variant_sets VARIANT: the --set overrides that define a priming variant (none when
# PEP_FREE_VARIANTS=1: then the prime job file defines it).
pep_variant_sets() {
    # PEP_FREE_VARIANTS=1: the job file defines the arm (experiment v2's arms/<arm>.ini)
    [[ "${PEP_FREE_VARIANTS:-0}" == 1 && "$1" =~ ^[a-z][a-z0-9-]*$ ]] && return 0
    case "$1" in
        none) ;;
        maml) echo "maml.method=maml maml.inner_set=pe+head" ;;
        maml-all) echo "maml.method=maml maml.inner_set=all" ;;
        multitask) echo "maml.method=multitask" ;;
        *) pep_die "unknown priming variant '$1' (choices: none, maml, maml-all, multitask)" ;;
    esac
}

# pep_setup_env: BLAS threads and MPI-as-root permission. Respects values the user exported
# already, except the thread counts, which follow the allocation. The BLAS kernels are each
# rank's own choice for its CPU (peprime sets OPENBLAS_CORETYPE and restarts itself when it is
# unset), so a job spanning CPU kinds gets the right kernels on every node.
pep_setup_env() {
    local cpus=${SLURM_CPUS_PER_TASK:-1}
    export OPENBLAS_NUM_THREADS=${PEP_THREADS:-$cpus}
    export OMP_NUM_THREADS=${PEP_THREADS:-$cpus}
    if [[ $(id -u) -eq 0 ]]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
}

# pep_alloc_tasks: the tasks the allocation of this start holds, the sum of
# SLURM_TASKS_PER_NODE ("2(x3),1" = 7); empty outside Slurm.
pep_alloc_tasks() {
    local spec=${SLURM_TASKS_PER_NODE:-} part n=0 re='^([0-9]+)(\(x([0-9]+)\))?$'
    [[ -n "$spec" ]] || return 0
    for part in ${spec//,/ }; do
        [[ "$part" =~ $re ]] || return 0
        n=$((n + BASH_REMATCH[1] * ${BASH_REMATCH[3]:-1}))
    done
    printf '%s' "$n"
}

# pep_ntasks: the ranks to launch. SLURM_NTASKS is fixed at submission, so a job requeued
# onto fewer nodes than it first had would ask for more tasks than its allocation holds
# (srun: "More processors requested than permitted"); then the allocation's count is used.
pep_ntasks() {
    local ntasks=${SLURM_NTASKS:-${PEP_NTASKS:-1}} alloc
    alloc=$(pep_alloc_tasks)
    if [[ -n "$alloc" ]] && ((alloc < ntasks)); then
        pep_log "this allocation holds $alloc task(s) (SLURM_TASKS_PER_NODE=$SLURM_TASKS_PER_NODE on ${SLURM_NNODES:-?} node(s)), fewer than SLURM_NTASKS=$ntasks from the submission (requeued onto fewer nodes?): launching $alloc ranks"
        ntasks=$alloc
    fi
    printf '%s' "$ntasks"
}

# pep_launcher_cmd: fills the array PEP_LAUNCH with the launcher prefix for PEP_LAUNCHER.
pep_launcher_cmd() {
    local ntasks cpus=${SLURM_CPUS_PER_TASK:-1}
    ntasks=$(pep_ntasks)
    case "${PEP_LAUNCHER:-srun}" in
        srun)
            [[ -n "${SLURM_JOB_ID:-}" || -n "${_pep_dry:-}" ]] ||
                pep_die "srun needs a Slurm allocation: submit with sbatch, or set PEP_LAUNCHER=mpirun|direct"
            # cpus-per-task is passed explicitly: since Slurm 22.05 srun no longer inherits it
            # from sbatch. PMIx is the only PMI that works with Debian's Open MPI. --export=ALL:
            # the ranks get the batch shell's environment (BLAS settings, the site hook's
            # modules) even when the job was submitted with --export=NONE.
            # shellcheck disable=SC2206
            PEP_LAUNCH=(srun --export=ALL --mpi="${PEP_SRUN_MPI:-pmix}" --ntasks="$ntasks"
                        --cpus-per-task="$cpus" --kill-on-bad-exit=1 ${PEP_SRUN_ARGS:-})
            ;;
        mpirun)
            # mpirun takes hosts and slots from the allocation; -x carries the BLAS settings
            # to ranks on other nodes. peprime binds its own threads, so mpirun does not.
            # shellcheck disable=SC2206
            PEP_LAUNCH=(mpirun -np "$ntasks" ${PEP_MPIRUN_ARGS:---bind-to none}
                        -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS)
            if [[ -n "${OPENBLAS_CORETYPE:-}" ]]; then PEP_LAUNCH+=(-x OPENBLAS_CORETYPE); fi
            ;;
        direct) PEP_LAUNCH=() ;;
        *) pep_die "PEP_LAUNCHER='${PEP_LAUNCHER}' (choices: srun, mpirun, direct)" ;;
    esac
}

# Signal handling while the launcher runs in the background.
_pep_child=""
_pep_trapped=0
_pep_got_usr1=0
_pep_got_term=0
_pep_forward() { # SIGNAL
    _pep_trapped=1
    case "$1" in USR1) _pep_got_usr1=1 ;; TERM) _pep_got_term=1 ;; esac
    pep_log "received SIG$1; forwarding it to the ranks (pid ${_pep_child:-none})"
    # the launcher may have exited already: then there is nothing to forward to
    if [[ -n "$_pep_child" ]]; then kill -"$1" "$_pep_child" 2>/dev/null || true; fi
    return 0
}

# pep_run CMD...: runs CMD in the background, forwards USR1/TERM/INT to it and returns its
# exit status once it has really exited (a trapped signal interrupts `wait`, which then returns
# 128 + the signal; under set -e a failing `wait` is tested, so it never ends the script).
pep_run() {
    trap '_pep_forward USR1' USR1
    trap '_pep_forward TERM' TERM
    trap '_pep_forward INT' INT
    "$@" &
    _pep_child=$!
    local rc
    while :; do
        _pep_trapped=0
        rc=0
        wait "$_pep_child" || rc=$?
        ((_pep_trapped)) || break
    done
    _pep_child=""
    return "$rc"
}

# pep_source_env FILE: sources a site hook or the environment file slurm/pipeline.sh writes
# (module loads, paths; what a site that submits with --export=NONE needs in every job).
pep_source_env() {
    [[ -f "$1" && -r "$1" ]] || pep_die "environment file '$1' not found or unreadable (--env-file / PEP_ENV_FILE)"
    pep_log "sourcing $1"
    # shellcheck disable=SC1090
    source "$1" || pep_die "environment file '$1' failed (status $?)"
}

# pep_per_node CMD...: runs CMD once on every node of the allocation, through the launcher
# the stage uses (srun: one task per node; mpirun: one process per node; direct: here).
pep_per_node() {
    local nodes=${SLURM_NNODES:-1}
    case "${PEP_LAUNCHER:-srun}" in
        srun) srun --export=ALL --mpi=none --nodes="$nodes" --ntasks="$nodes" --ntasks-per-node=1 --cpus-per-task=1 \
                   --kill-on-bad-exit=1 "$@" ;;
        mpirun) mpirun --map-by ppr:1:node --bind-to none "$@" ;;
        *) "$@" ;;
    esac
}

# pep_stage_data BIN CONFIG SETS...: copies the data the stage reads to node-local scratch
# (PEP_SCRATCH, else $TMPDIR, else /tmp) once per node, sets _pep_staged to the copy (the
# ranks get data.root=<copy>) and removes the copy when the batch shell exits. What is
# copied: <root>/ner/<corpus>/<lang>/ for the job's languages (data.languages, source,
# targets, pretrain_languages); with a relative data.path, its folder up to the first {.
pep_stage_data() {
    local bin=$1 config=$2
    shift 2
    local -a cargs=(config --config "$config")
    local s
    for s in "$@"; do cargs+=(--set "$s"); done
    local resolved
    resolved=$("$bin" "${cargs[@]}") || pep_die "staging data: '$bin config --config $config' failed"
    # the [data] section of the resolved job file: key = value lines
    local root="" corpus="" path="" langs="" key val
    while IFS='=' read -r key val; do
        key=${key// /} val=${val# }
        case "$key" in
            root) root=$val ;;
            corpus) corpus=$val ;;
            path) path=$val ;;
            languages | source | targets | pretrain_languages) if [[ -n "$val" ]]; then langs+=${langs:+,}$val; fi ;;
        esac
    done < <(awk '/^\[/ { d = ($0 == "[data]"); next } d' <<<"$resolved")
    root=${root:-${PEPRIME_DATA:-../shared/data}}
    [[ -d "$root" ]] || pep_die "staging data: data root '$root' is not a directory (data.root or PEPRIME_DATA)"
    root=$(cd "$root" && pwd)
    local -a dirs=()
    if [[ "$path" == /* ]]; then
        pep_die "staging data: data.path '$path' is absolute, so a copy cannot replace it; make it relative to data.root or leave out --stage-data"
    elif [[ -n "$path" ]]; then
        local d=${path%%\{*}
        d=${d%/*}
        dirs=("${d:-.}")
    else
        local l
        for l in $(tr ',' '\n' <<<"$langs" | sort -u); do
            [[ -d "$root/ner/$corpus/$l" ]] ||
                pep_die "staging data: '$root/ner/$corpus/$l' does not exist (language '$l' of the job file)"
            dirs+=("ner/$corpus/$l")
        done
    fi
    local dst=${PEP_SCRATCH:-${TMPDIR:-/tmp}}/peprime-data-${SLURM_JOB_ID:-$$}
    local t0=$SECONDS
    _pep_staged=$dst
    trap 'pep_unstage' EXIT
    # shellcheck disable=SC2016  # expanded by the copying shell on each node
    pep_per_node "$BASH" -c 'set -e; src=$1 dst=$2; shift 2; for d in "$@"; do mkdir -p "$dst/$d"; cp -a "$src/$d/." "$dst/$d/"; done' \
        _ "$root" "$dst" "${dirs[@]}" ||
        pep_die "staging data: copying ${dirs[*]} from $root to $dst on every node failed (full or missing scratch? set PEP_SCRATCH)"
    pep_log "staged ${dirs[*]} ($(du -sh "$dst" 2>/dev/null | cut -f1)) from $root to $dst on ${SLURM_NNODES:-1} node(s) in $((SECONDS - t0)) s"
}
_pep_staged=""
pep_unstage() {
    [[ -n "$_pep_staged" ]] || return 0
    # shellcheck disable=SC2016
    pep_per_node "$BASH" -c 'rm -rf -- "$1"' _ "$_pep_staged" >/dev/null 2>&1 ||
        pep_log "could not remove the staged data $_pep_staged on every node"
    _pep_staged=""
}

# pep_stage_main STAGE ARGS...: the whole life of one batch script.
# Options: --config F  --set K=V (repeatable)  --init F  --model F  --out D  --resume X
#          --variants LIST --seeds LIST --pe-methods LIST (job arrays over PE method x
#          variant x seed, PE method major; {pe}, {variant} and {seed} are replaced in
#          --out/--init/--model; a PE method sets pe.method for the stage)
#          --base F (finetune init for variant 'none')  --dry-run
#          --env-file F (sourced first: module loads, PEPRIME_BIN ...; slurm/pipeline.sh passes
#          the one it writes)  --stage-data (copy the job's data to node-local scratch first)
#          -- ARGS (passed to peprime unchanged)
# Environment: PEP_CONFIG PEP_SET PEP_INIT PEP_MODEL PEP_OUT PEP_RESUME PEP_VARIANTS PEP_SEEDS
#          PEP_PE_METHODS PEP_BASE PEP_ENV_FILE PEP_STAGE_DATA PEP_SCRATCH PEP_SKIP_DONE (1: exit 0 at once when the stage's final output
#          -- base.h5, primed.h5, adapted.h5, results.json -- is already in --out; experiment
#          drivers use it to resume without redoing finished runs) PEP_LAUNCHER PEPRIME_BIN PEP_THREADS PEP_REQUEUE PEP_MAX_REQUEUES
pep_stage_main() {
    local stage=$1
    shift
    # the seconds between Slurm's warning signal and the kill, for the stage's check that a
    # checkpoint fits in them: the batch script's own #SBATCH --signal=...@N unless given
    if [[ -z "${PEP_SIGNAL_LEAD_S:-}" && -r "$0" ]]; then
        PEP_SIGNAL_LEAD_S=$(sed -n 's/^#SBATCH[[:space:]]*--signal=[^@]*@\([0-9][0-9]*\).*/\1/p' "$0" | tail -n 1)
        if [[ -n "$PEP_SIGNAL_LEAD_S" ]]; then export PEP_SIGNAL_LEAD_S; fi
    fi
    local config=${PEP_CONFIG:-} init=${PEP_INIT:-} model=${PEP_MODEL:-} out=${PEP_OUT:-}
    local resume=${PEP_RESUME:-auto} variants=${PEP_VARIANTS:-} seeds=${PEP_SEEDS:-}
    local pes=${PEP_PE_METHODS:-} base=${PEP_BASE:-} dry=0
    local env_file=${PEP_ENV_FILE:-} stage_data=${PEP_STAGE_DATA:-0}
    local -a sets=() extra=()
    local s
    # PEP_SET: overrides separated by spaces or semicolons
    local -a pep_set=()
    IFS=' ;' read -r -a pep_set <<<"${PEP_SET:-}"
    for s in "${pep_set[@]}"; do if [[ -n "$s" ]]; then sets+=("$s"); fi; done
    while (($#)); do
        case "$1" in
            --config | --set | --init | --model | --out | --resume | --variants | --seeds | \
                --pe-methods | --base | --env-file)
                (($# >= 2)) || pep_die "$stage: option $1 needs a value" ;;
        esac
        case "$1" in
            --config) config=$2; shift 2 ;;
            --set) sets+=("$2"); shift 2 ;;
            --init) init=$2; shift 2 ;;
            --model) model=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            --resume) resume=$2; shift 2 ;;
            --variants) variants=$2; shift 2 ;;
            --seeds) seeds=$2; shift 2 ;;
            --pe-methods) pes=$2; shift 2 ;;
            --base) base=$2; shift 2 ;;
            --env-file) env_file=$2; shift 2 ;;
            --stage-data) stage_data=1; shift ;;
            --dry-run) dry=1; shift ;;
            --) shift; extra+=("$@"); break ;;
            -h | --help)
                sed -n '/^# pep_stage_main/,/^pep_stage_main/p' "${BASH_SOURCE[0]}" | sed '$d'
                exit 0 ;;
            *) pep_die "$stage: unknown option '$1' (see --help; pass peprime options after --)" ;;
        esac
    done
    # the site's environment before anything else: it may load the modules peprime needs
    if [[ -n "$env_file" ]]; then pep_source_env "$env_file"; fi
    [[ -n "$config" ]] || pep_die "$stage: no job file: pass --config FILE or set PEP_CONFIG"
    [[ -f "$config" ]] || pep_die "$stage: job file '$config' not found (cwd $(pwd))"

    # job arrays: task index -> (PE method, variant, seed), PE method major, then variant
    local pe="" variant="" seed="" idx=${SLURM_ARRAY_TASK_ID:-0}
    if [[ -n "$pes$variants$seeds" ]]; then
        local np nv ns
        np=$(pep_list_count "${pes:-_}")
        nv=$(pep_list_count "${variants:-_}")
        ns=$(pep_list_count "${seeds:-_}")
        ((idx < np * nv * ns)) ||
            pep_die "$stage: array index $idx out of range: ${np} PE method(s) x ${nv} variant(s) x ${ns} seed(s)"
        if [[ -n "$pes" ]]; then pe=$(pep_list_item "$pes" $((idx / (nv * ns)))); fi
        idx=$((idx % (nv * ns)))
        if [[ -n "$variants" ]]; then variant=$(pep_list_item "$variants" $((idx / ns))); fi
        if [[ -n "$seeds" ]]; then seed=$(pep_list_item "$seeds" $((idx % ns))); fi
        if [[ -n "$pe" ]]; then
            [[ "$pe" =~ ^[a-z]+$ ]] || pep_die "$stage: PE method '$pe' is not a name (adapter, prefix, lora)"
            sets+=("pe.method=$pe")
        fi
        if [[ -n "$seed" ]]; then
            [[ "$seed" =~ ^[0-9]+$ ]] || pep_die "$stage: seed '$seed' is not a number"
            [[ "$stage" == evaluate ]] || sets+=("run.seed=$seed")
        fi
        if [[ -n "$variant" ]]; then
            local vs
            vs=$(pep_variant_sets "$variant")
            if [[ "$stage" == prime ]]; then
                [[ "$variant" != none ]] ||
                    pep_die "prime: variant 'none' means no priming; leave it out of the prime array"
                for s in $vs; do sets+=("$s"); done
            fi
            if [[ "$stage" == finetune && "$variant" == none ]]; then
                [[ -n "$base" ]] || pep_die "finetune: variant 'none' needs --base BASE.h5"
                init=$base
            fi
        fi
        local key
        for key in out init model; do
            local val=${!key}
            val=${val//\{pe\}/$pe}; val=${val//\{variant\}/$variant}; val=${val//\{seed\}/$seed}
            printf -v "$key" '%s' "$val"
        done
    fi
    if [[ -z "$out" ]]; then
        local id=${SLURM_JOB_ID:-$$}
        if [[ -n "${SLURM_ARRAY_JOB_ID:-}" ]]; then id=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID:-0}; fi
        out=runs/$stage-$id
    fi

    # a finished stage needs nothing, not even the binary (checked before it is asked anything)
    if ((!dry)) && [[ "${PEP_SKIP_DONE:-0}" == 1 ]]; then
        local done_file=""
        case "$stage" in
            pretrain) done_file=$out/base.h5 ;;
            prime) done_file=$out/primed.h5 ;;
            finetune) done_file=$out/adapted.h5 ;;
            evaluate) done_file=$out/results.json ;;
        esac
        if [[ -s "$done_file" ]]; then
            pep_log "stage $stage: $done_file exists; skipping (PEP_SKIP_DONE=1)"
            exit 0
        fi
    fi

    local bin=${PEPRIME_BIN:-$PEP_ROOT/build/peprime}
    [[ -x "$bin" ]] || ((dry)) ||
        pep_die "$stage: peprime binary '$bin' not found or not executable; build it (cmake --build build) or set PEPRIME_BIN"
    pep_setup_env
    if ((dry)); then _pep_dry=1; fi
    pep_launcher_cmd
    if ((stage_data)); then
        if ((dry)); then
            _pep_staged=${PEP_SCRATCH:-${TMPDIR:-/tmp}}/peprime-data-${SLURM_JOB_ID:-$$}
        else
            pep_stage_data "$bin" "$config" "${sets[@]}"
        fi
        sets+=("data.root=$_pep_staged")
    fi

    local -a args=("$stage" --config "$config")
    for s in "${sets[@]}"; do args+=(--set "$s"); done
    case "$stage" in
        evaluate)
            [[ -n "$model" ]] || pep_die "evaluate: no model: pass --model ADAPTED.h5 or set PEP_MODEL"
            args+=(--model "$model") ;;
        *)
            if [[ -n "$init" ]]; then args+=(--init "$init"); fi
            args+=(--resume "$resume") ;;
    esac
    args+=(--out "$out" "${extra[@]}")
    local -a cmd=("${PEP_LAUNCH[@]}" "$bin" "${args[@]}")
    if ((dry)); then
        printf '%q ' "${cmd[@]}"
        printf '\n'
        return 0
    fi

    mkdir -p "$out" || pep_die "$stage: cannot create output directory '$out'"
    pep_log "stage $stage: job ${SLURM_JOB_ID:-none}${SLURM_ARRAY_JOB_ID:+ (array ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID})}" \
        "restart ${SLURM_RESTART_COUNT:-0} on ${SLURM_JOB_NODELIST:-$(hostname -s)}:" \
        "$(pep_ntasks 2>/dev/null) task(s) x ${SLURM_CPUS_PER_TASK:-1} cpu(s)," \
        "OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-chosen per rank}" \
        "${pe:+pe=$pe }${variant:+variant=$variant }${seed:+seed=$seed }out=$out"
    pep_log "running: ${cmd[*]}"

    local rc=0
    pep_run "${cmd[@]}" || rc=$?
    pep_log "peprime $stage exited with status $rc"

    local died_of_usr1=0
    if ((_pep_got_usr1 && rc == 128 + 10)); then died_of_usr1=1; fi
    if ((rc == PEP_EX_TEMPFAIL || died_of_usr1)); then
        if ((_pep_got_term)); then
            pep_log "checkpoint written after SIGTERM; not requeueing (cancelled, or Slurm requeues preempted jobs itself)"
            exit "$rc"
        fi
        if [[ "${PEP_REQUEUE:-1}" == 0 || -z "${SLURM_JOB_ID:-}" ]]; then
            pep_log "checkpoint written; requeue disabled or not in Slurm: resume with --resume auto"
            exit "$rc"
        fi
        local restarts=${SLURM_RESTART_COUNT:-0} max=${PEP_MAX_REQUEUES:-100}
        if ((restarts >= max)); then
            pep_log "ERROR: already requeued $restarts times (PEP_MAX_REQUEUES=$max); giving up"
            exit "$rc"
        fi
        pep_log "checkpoint written; requeueing job $SLURM_JOB_ID (restart $((restarts + 1)))"
        if scontrol requeue "$SLURM_JOB_ID"; then
            exit 0
        fi
        pep_log "ERROR: scontrol requeue $SLURM_JOB_ID failed; resubmit the same command (it resumes from $out/checkpoints)"
        exit "$rc"
    fi
    if ((rc == 0)); then
        pep_log "stage $stage finished; output in $out"
    fi
    exit "$rc"
}
