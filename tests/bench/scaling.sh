#!/usr/bin/env bash
# Weak and strong scaling of `peprime prime` for 1 and 2 ranks (one BLAS thread per rank) on
# the tiny shape (L=4 C=256 NH=4 FF=1024), generated corpus, first-order MAML, k = 1.
#   tests/bench/scaling.sh [PEPRIME_BIN] [WORKDIR] [STEPS]
# Prints ms per meta-step, the allreduce share and the efficiencies as a Markdown table.
set -euo pipefail
B="${1:-$(dirname "$0")/../../build/peprime}"; W="${2:-/tmp/peprime-scaling}"; STEPS="${3:-12}"
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
one() { # ranks meta_batch -> "ms share"
  mpiexec -n "$1" --bind-to core "$B" prime --config job.ini --out "run$1-$2" --set model.tokenizer="$W/spm.model" \
    --set maml.meta_batch="$2" --set optim.steps="$STEPS" 2>&1 | \
    sed -n 's/.*(\([0-9.]*\) ms per meta-step, allreduce \([0-9.]*\)% .*/\1 \2/p'
}
read w1 a1 < <(one 1 4); read w2 a2 < <(one 2 8); read s2 b2 < <(one 2 4)
echo "| run | ranks | meta-batch | ms / meta-step | allreduce share | efficiency |"
echo "|---|---|---|---|---|---|"
echo "| baseline | 1 | 4 | $w1 | $a1% | 1.00 |"
echo "| weak (4 tasks per rank) | 2 | 8 | $w2 | $a2% | $(awk -v a="$w1" -v b="$w2" 'BEGIN{printf "%.2f", a/b}') |"
echo "| strong (meta-batch 4) | 2 | 4 | $s2 | $b2% | $(awk -v a="$w1" -v b="$s2" 'BEGIN{printf "%.2f", a/(2*b)}') |"
