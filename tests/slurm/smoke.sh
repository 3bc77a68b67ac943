#!/bin/bash
# Smoke test of the localhost Slurm: a 2-task MPI job through `srun --mpi=pmix`, once
# interactively and once inside `sbatch --wait`, each bounded by a timeout.
# Usage: smoke.sh MPI_HELLO_BINARY WORKDIR
set -uo pipefail
hello=$1
work=$2
mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }

check() { # OUTPUT_FILE WHAT: two ranks of one size-2 job, distinct pids, sum 1+2
    local f=$1 what=$2
    [[ $(grep -c '^mpi_hello ' "$f") -eq 2 ]] || { cat "$f"; fail "$what: expected 2 rank lines"; }
    grep -q '^mpi_hello rank=0 size=2 sum=3 ' "$f" || { cat "$f"; fail "$what: no rank 0 of 2 with sum 3"; }
    grep -q '^mpi_hello rank=1 size=2 sum=3 ' "$f" || { cat "$f"; fail "$what: no rank 1 of 2 with sum 3"; }
    [[ $(grep '^mpi_hello ' "$f" | sed 's/.* pid=//' | sort -u | wc -l) -eq 2 ]] ||
        fail "$what: both ranks report the same pid"
    echo "ok: $what"
}

sinfo -h -o '%t' | grep -qE 'idle|mix|alloc' || fail "no usable node in sinfo (run .ci/slurm-up.sh)"

timeout 60 srun --ntasks=2 --cpus-per-task=1 --mpi=pmix --time=00:02:00 "$hello" >srun.out 2>srun.err ||
    { cat srun.err; fail "srun --mpi=pmix exited with $?"; }
check srun.out "srun -n 2 --mpi=pmix"

cat >batch.sh <<EOS
#!/bin/bash
srun --mpi=pmix --ntasks=2 --cpus-per-task=1 "$hello"
EOS
rm -f batch.out
timeout 120 sbatch --wait --job-name=pep-smoke --ntasks=2 --cpus-per-task=1 --time=00:02:00 \
    --output="$work/batch.out" batch.sh >sbatch.out 2>&1 || { cat sbatch.out batch.out; fail "sbatch --wait failed or timed out"; }
check batch.out "sbatch --wait with srun --mpi=pmix inside"
