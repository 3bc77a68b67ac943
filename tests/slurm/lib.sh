# tests/slurm/lib.sh: helpers shared by the Slurm stage tests (sourced): bounded waits on
# job states through scontrol (faster than sbatch --wait's 10 s polls), and failure output.
# shellcheck shell=bash

fail() { echo "FAIL: $*"; exit 1; }

# job_field ID FIELD: one field of `scontrol show job` (JobState, Restarts, ExitCode ...)
job_field() { scontrol show job -o "$1" 2>/dev/null | grep -o " $2=[^ ]*" | head -1 | cut -d= -f2; }

# wait_job ID SECONDS: waits until the job reaches a final state and prints it; fails after
# SECONDS. A requeued job passes through PENDING again and is waited for.
wait_job() {
    local id=$1 limit=$2 t0 st
    t0=$(date +%s)
    while :; do
        st=$(job_field "$id" JobState)
        case "$st" in
            COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
                echo "$st"
                return 0 ;;
            "") echo "UNKNOWN"; return 1 ;;
        esac
        if (($(date +%s) - t0 > limit)); then
            echo "TIMEOUT_WAITING($st)"
            scancel "$id" 2>/dev/null
            return 1
        fi
        sleep 1
    done
}

# show_logs FILES...: prints logs for the CI output when something went wrong
show_logs() { local f; for f in "$@"; do [[ -f "$f" ]] && { echo "---- $f"; tail -n 60 "$f"; }; done; }

# need_peprime BIN: the stage tests run the real binary
need_peprime() { [[ -x "$1" ]] || fail "peprime binary '$1' missing"; }

# need_data ROOT: the stage tests run ci-tiny jobs on the real WikiAnn data ($PEPRIME_DATA, else
# ../shared/data beside the repository); without it they say so and exit 77 (ctest: skipped)
need_data() {
    local data=${PEPRIME_DATA:-$1/../shared/data}
    [[ -d "$data/ner/wikiann/en" ]] || { echo "SKIP: no WikiAnn data under $data (set PEPRIME_DATA)"; exit 77; }
}

# stage_setup REPO_ROOT PEPRIME_BIN WORKDIR: a stage test's common start — sets root, bin and
# work, checks the binary and the data, makes WORKDIR afresh and enters it, exports PEPRIME_BIN /
# PEP_ROOT for the slurm/ scripts.
stage_setup() {
    root=$1 bin=$2 work=$3
    need_peprime "$bin"
    need_data "$root"
    rm -rf "$work" && mkdir -p "$work" && cd "$work" || fail "cannot create work directory $work"
    export PEPRIME_BIN=$bin PEP_ROOT=$root
}

# usr1_after_checkpoint JOB OUT LOG: sends the preemption signal (USR1 to the batch shell, as
# --signal=B:USR1@N does) once the job's first checkpoint exists in OUT/checkpoints, i.e.
# mid-run; fails when the job ends first or no checkpoint appears in 300 s.
usr1_after_checkpoint() {
    local job=$1 out=$2 log=$3 i
    local -a c=()
    shopt -s nullglob
    for ((i = 0; i < 600; i++)); do
        c=("$out"/checkpoints/*.h5)
        ((${#c[@]})) && break
        [[ "$(job_field "$job" JobState)" =~ ^(PENDING|RUNNING|CONFIGURING)$ ]] ||
            { show_logs "$log"; fail "job $job ended before its first checkpoint"; }
        sleep 0.5
    done
    ((${#c[@]})) || { scancel "$job"; show_logs "$log"; fail "job $job wrote no checkpoint in 300 s"; }
    scancel --signal=USR1 --batch "$job" || fail "scancel --signal=USR1 --batch $job failed"
    echo "sent USR1 to job $job (checkpoint ${c[0]##*/} present)"
}
