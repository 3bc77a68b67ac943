#!/bin/bash
# Stage test: `sbatch --wait slurm/prime.sh` with 2 tasks on jobs/configs/ci-tiny.ini
# produces periodic checkpoints and primed.h5 that `peprime inspect`, h5ls and h5py read,
# written by a 2-rank world.
# Usage: stage_prime.sh REPO_ROOT PEPRIME_BIN WORKDIR
set -uo pipefail
# shellcheck source=tests/slurm/lib.sh
source "$1/tests/slurm/lib.sh"
stage_setup "$@"

# a tokenizer and a small pretrained base to prime (pretrain trains the tokenizer)
"$bin" pretrain --config "$root/jobs/configs/ci-tiny.ini" --out "$work/base" --set optim.steps=5 >pretrain.log 2>&1 ||
    { tail -5 pretrain.log; fail "pretrain of the base model failed"; }
t0=$(date +%s)
timeout 900 sbatch --wait --job-name=pep-test-prime --nodes=1 --ntasks=2 --ntasks-per-node=2 \
    --cpus-per-task=1 --time=00:20:00 --output="$work/%x-%j.out" \
    "$root/slurm/prime.sh" --config "$root/jobs/configs/ci-tiny.ini" --init "$work/base/base.h5" --out "$work/prime" >sbatch.txt 2>&1
rc=$?
echo "sbatch --wait: status $rc after $(($(date +%s) - t0)) s"
id=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' sbatch.txt)
log=$work/pep-test-prime-$id.out
[[ $rc -eq 0 ]] || { cat sbatch.txt; show_logs "$log"; fail "prime job failed (status $rc)"; }
grep -q '2 task(s) x 1 cpu(s)' "$log" || { show_logs "$log"; fail "job did not run 2 tasks"; }

shopt -s nullglob
ckpts=("$work"/prime/checkpoints/*.h5)
((${#ckpts[@]})) || { ls -lR "$work/prime"; fail "no checkpoint in $work/prime/checkpoints"; }
newest=$(ls -t "${ckpts[@]}" | head -1)
[[ -s "$work/prime/primed.h5" ]] || fail "no $work/prime/primed.h5"
for f in "$newest" "$work/prime/primed.h5"; do
    "$bin" inspect "$f" >inspect.txt 2>&1 || { cat inspect.txt; fail "peprime inspect $f failed"; }
    [[ -s inspect.txt ]] || fail "peprime inspect $f printed nothing"
    h5ls -r "$f" >h5ls.txt && grep -q '^/model/' h5ls.txt || fail "h5ls finds no /model group in $f"
    /usr/bin/python3 - "$f" <<'PY' || fail "h5py check of $f"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    ws = f.attrs.get("world_size")
    assert ws is None or int(ws) == 2, f"world_size {ws}, expected 2"
    n = sum(1 for _ in f["model"])
    assert n > 0, "empty /model"
    print(f"{sys.argv[1]}: {n} entries under /model, world_size {ws}")
PY
done
echo "ok: 2-task prime job wrote ${#ckpts[@]} checkpoint(s) and primed.h5"
