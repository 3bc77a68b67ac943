#!/usr/bin/env bash
# Gradient accumulation (optim.accumulate, docs/training.md): optim.batch_size stays the
# effective batch and each rank's share of it is split into micro-batches, so a run gives the
# weights, /log/loss and /log/grad_norm of the unaccumulated run to float rounding
# (tests/pipeline/accumulate.py, h5py):
#   * pretrain (masked LM: the loss is a mean over masked subwords, ranks weighted by them) on
#     1 rank with accumulate 1 / 3 and on 2 ranks with 1 / 2;
#   * finetune (a mean over labelled first pieces per rank, ranks weighted by them) with
#     dropout on, on 1 rank with accumulate 1 / 2 / 3 / 8 (one sentence per micro-batch) and on
#     2 ranks with 1 / 2, with AdamW and with plain SGD without clipping (where a wrong
#     gradient scale moves the weights, not only grad_norm);
#   * optim.accumulate larger than optim.batch_size is a usage error (exit 2) naming both keys.
#   accumulate.sh PEPRIME_BIN WORKDIR [MPIEXEC]
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
C="$HERE/accumulate.py"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
step() { echo "== $*"; }
cat > job.ini <<INI
include = $HERE/tiny-model.ini
[model]
dropout = 0.1
attention_dropout = 0.1
[data]
corpus = generated
languages = aa,bb
source = aa
targets = bb
max_sentences = 200
[optim]
lr = 1e-3
warmup = 2
steps = 6
batch_size = 8
[run]
log_every = 3
INI
"$B" tokenizer train --data generated --languages aa,bb --vocab 300 --out "$W/spm.model" \
  --sentences-per-language 200 >/dev/null 2>&1
S=(--set "model.tokenizer=$W/spm.model")
run() { local np=$1 stage=$2 out=$3; shift 3; "$MPIEXEC" -n "$np" --bind-to none "$B" "$stage" --config job.ini --out "$out" "${S[@]}" "$@" >"$out.log" 2>&1 || { tail -20 "$out.log"; exit 1; }; }

step "pretrain: accumulate 3 on 1 rank, 2 on 2 ranks"
for np in 1 2; do
  run "$np" pretrain "pre$np-1"
  a=$((np == 1 ? 3 : 2))
  run "$np" pretrain "pre$np-$a" --set optim.accumulate=$a
  grep -q "gradient accumulation" "pre$np-$a.log" || { echo "no accumulation line in pre$np-$a.log"; exit 1; }
  "$PY" "$C" "pre$np-1/base.h5" "pre$np-$a/base.h5"
done

step "finetune (AdamW, then SGD without clipping): accumulate 2, 3, 8 on 1 rank, 2 on 2 ranks"
SGD=(--set optim.name=sgd --set optim.clip=0 --set optim.lr=0.5)
for opt in adamw sgd; do
  X=(); [ "$opt" = sgd ] && X=("${SGD[@]}")
  run 1 finetune "ft$opt-1-1" --init pre1-1/base.h5 "${X[@]}"
  for a in 2 3 8; do
    run 1 finetune "ft$opt-1-$a" --init pre1-1/base.h5 --set optim.accumulate=$a "${X[@]}"
    "$PY" "$C" "ft$opt-1-1/adapted.h5" "ft$opt-1-$a/adapted.h5" --groups pe,head
  done
  run 2 finetune "ft$opt-2-1" --init pre1-1/base.h5 "${X[@]}"
  run 2 finetune "ft$opt-2-2" --init pre1-1/base.h5 --set optim.accumulate=2 "${X[@]}"
  "$PY" "$C" "ft$opt-2-1/adapted.h5" "ft$opt-2-2/adapted.h5" --groups pe,head
done

step "optim.accumulate > optim.batch_size is a usage error"
set +e
"$B" finetune --config job.ini --out bad "${S[@]}" --init pre1-1/base.h5 --set optim.accumulate=9 >bad.log 2>&1
st=$?
set -e
[ "$st" = 2 ] && grep -q "optim.accumulate = 9" bad.log && grep -q "optim.batch_size = 8" bad.log ||
  { echo "expected exit 2 naming both keys, got $st:"; cat bad.log; exit 1; }
echo "accumulate: ok"
