#!/usr/bin/env bash
# Weak and strong scaling of `peprime prime` for 1 and 2 ranks (one BLAS thread per rank) on
# the tiny shape (L=4 C=256 NH=4 FF=1024), generated corpus, first-order MAML, k = 1, and
# (with `exchange`) the meta-gradient exchange overlapped with the backward or not on 1, 2 and
# 4 ranks (4 tasks per rank; 4 ranks oversubscribe a 2-core machine), 1 MiB buckets.
#   tests/bench/scaling.sh [PEPRIME_BIN] [WORKDIR] [STEPS] [exchange] [--set ...]
# Prints Markdown tables: ms per meta-step, the exchange share (time not hidden behind the
# backward, including waiting for the slower rank) and the efficiencies; with `exchange`, the
# exchange time left exposed per meta-step and the share of the blocking one the overlap hid.
set -euo pipefail
B="$(readlink -f "${1:-$(dirname "$0")/../../build/peprime}")"; W="${2:-/tmp/peprime-scaling}"; STEPS="${3:-12}"; MODE="${4:-}"
shift $(( $# < 4 ? $# : 4 ))
EXTRA=("$@")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$W"; cd "$W"
cat > job.ini <<'INI'
[model]
layers = 4
hidden = 256
heads = 4
ff = 1024
max_seq_len = 64
[data]
corpus = generated
languages = aa,bb,cc,dd
max_sentences = 500
[maml]
support_size = 8
query_size = 8
[run]
threads = 1
log_every = 1000
INI
[ -s spm.model ] || "$B" tokenizer train --data generated --languages aa,bb,cc,dd --vocab 2000 --out "$W/spm.model" --sentences-per-language 500 >/dev/null 2>&1
one() { # ranks meta_batch [--set ...] -> "ms share exposed_ms MB early buckets"
  local np=$1 mb=$2 bind=core; shift 2
  [ "$np" -gt 2 ] && bind=none
  local tag
  tag=$(echo "$*" | md5sum | cut -c1-8) # a fresh run directory per setting
  mpiexec -n "$np" --oversubscribe --bind-to $bind "$B" prime --config job.ini --out "run$np-$mb-$tag" --resume none \
    --set model.tokenizer="$W/spm.model" --set maml.meta_batch="$mb" --set optim.steps="$STEPS" "$@" "${EXTRA[@]}" 2>&1 | \
    sed -n -e 's/.*meta-steps in [0-9.]* s (\([0-9.]*\) ms per meta-step).*/\1/p' \
      -e 's/.*exchange \([0-9.]*\)% of the time, \([0-9.]*\) ms per meta-step exposed.*, \([0-9]*\) of \([0-9]*\) buckets started.*; \([0-9.]*\) MB per meta-step.*/\1 \2 \5 \3 \4/p' \
    | paste -sd' '
}
if [ "$MODE" = exchange ]; then
  X=(--set maml.exchange_bucket_mb=1)
  echo "| ranks | overlap | ms / meta-step | exchange exposed ms / meta-step | MB summed / meta-step | buckets started in the backward | hidden |"
  echo "|---|---|---|---|---|---|---|"
  for np in 1 2 4; do
    read mb sb xb vb eb bb < <(one "$np" $((4 * np)) "${X[@]}" --set maml.exchange_overlap=false)
    read mo so xo vo eo bo < <(one "$np" $((4 * np)) "${X[@]}" --set maml.exchange_overlap=true)
    echo "| $np | no | $mb | $xb | $vb | $eb of $bb | |"
    echo "| $np | yes | $mo | $xo | $vo | $eo of $bo | $(awk -v a="$xb" -v b="$xo" 'BEGIN{ if (a > 0) printf "%.0f%%", 100 * (1 - b / a); else print "-" }') |"
  done
  exit 0
fi
read w1 a1 _ < <(one 1 4); read w2 a2 _ < <(one 2 8); read s2 b2 _ < <(one 2 4)
echo "| run | ranks | meta-batch | ms / meta-step | exchange share | efficiency |"
echo "|---|---|---|---|---|---|"
echo "| baseline | 1 | 4 | $w1 | $a1% | 1.00 |"
echo "| weak (4 tasks per rank) | 2 | 8 | $w2 | $a2% | $(awk -v a="$w1" -v b="$w2" 'BEGIN{printf "%.2f", a/b}') |"
echo "| strong (meta-batch 4) | 2 | 4 | $s2 | $b2% | $(awk -v a="$w1" -v b="$s2" 'BEGIN{printf "%.2f", a/(2*b)}') |"
