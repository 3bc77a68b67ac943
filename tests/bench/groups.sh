#!/usr/bin/env bash
# Task groups: time per meta-step and bytes summed inside a group for maml.group_size = 1 vs 2
# at P = 2 ranks (and P = 4, oversubscribed on a 2-core machine), one BLAS thread per rank, on
# real WikiAnn (data.languages de,es,fr,ru) with two shapes: ci-tiny (L=2 C=64) and the
# scaling shape (L=4 C=256 NH=4 FF=1024), first-order MAML, k = 1, support = query = 8,
# randomly initialised encoder (timing only).
#   tests/bench/groups.sh [PEPRIME_BIN] [WORKDIR] [STEPS]   (STEPS meta-steps at the scaling shape, 10x at ci-tiny)
# Prints a Markdown table: ms per meta-step, the meta-gradient exchange's share, the MB summed
# inside rank 0's group per meta-step and the share of time in those sums.
set -euo pipefail
B="$(realpath "${1:-$(dirname "$0")/../../build/peprime}")"; W="${2:-/tmp/peprime-groups}"; STEPS="${3:-20}"
CFG="$(realpath "$(dirname "$0")/../../jobs/configs/ci-tiny.ini")"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
DATA="${PEPRIME_DATA:-$(realpath "$(dirname "$0")/../../../shared/data")}"
mkdir -p "$W"; cd "$W"
[ -s spm.model ] || "$B" tokenizer train --data "$DATA" --languages de,es,fr,ru --vocab 2000 --out "$W/spm.model" \
  >/dev/null 2>&1
COMMON=(--set model.tokenizer="$W/spm.model" --set data.root="$DATA" --set data.languages=de,es,fr,ru
        --set data.max_sentences=2000 --set maml.support_size=8 --set maml.query_size=8 --set optim.steps="$STEPS"
        --set checkpoint.every=0 --set run.threads=1 --set run.log_every=1000)
BIG=(--set model.layers=4 --set model.hidden=256 --set model.heads=4 --set model.ff=1024 --set model.max_seq_len=64)
# one NP SHAPE M G -> a table row
one() {
  local np=$1 shape=$2 m=$3 g=$4 extra=(--set optim.steps=$((STEPS * 10))) bind=(--bind-to core)
  [ "$shape" = scaling ] && extra=("${BIG[@]}")
  [ "$np" -gt 2 ] && bind=(--oversubscribe --bind-to none)
  local log="run-$np-$shape-$m-$g.log"
  mpiexec -n "$np" "${bind[@]}" "$B" prime --config "$CFG" --out "run-$np-$shape-$m-$g" "${COMMON[@]}" "${extra[@]}" \
    --set maml.meta_batch="$m" --set maml.group_size="$g" >"$log" 2>&1 || { tail -5 "$log"; exit 1; }
  local ms share mb gs
  ms=$(sed -n 's/.*(\([0-9.]*\) ms per meta-step).*/\1/p' "$log")
  share=$(sed -n 's/^prime: exchange \([0-9.]*\)% of the time.*/\1/p' "$log")
  read -r mb gs < <(sed -n 's/.*: \([0-9.]*\) MB summed inside rank 0.s group per meta-step, \([0-9.]*\)% .*/\1 \2/p' "$log") || true
  echo "| $shape | $np | $m | $g | $ms | $share% | ${mb:-0} | ${gs:-0}% |"
}
echo "| shape | ranks | meta-batch | G | ms / meta-step | meta-gradient exchange | MB summed in a group / meta-step | group sums |"
echo "|---|---|---|---|---|---|---|---|"
for shape in ci-tiny scaling; do
  one 1 "$shape" 1 1
  for m in 1 2; do one 2 "$shape" "$m" 1; one 2 "$shape" "$m" 2; done
  one 4 "$shape" 2 1; one 4 "$shape" 2 2
done
