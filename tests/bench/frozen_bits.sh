#!/usr/bin/env bash
# Does this build give a frozen binary's single-process results bit for bit? (experiment v3 runs a
# frozen copy; docs/results.md "Frozen binary".) Pretrains a tiny base on the real data with the
# frozen binary, then runs each setting's prime -> finetune -> evaluate with both binaries and
# compares every /model, /pe, /head and /tasks tensor (compare_h5.py --exact) and results.csv.
#   tests/bench/frozen_bits.sh FROZEN_BIN NEW_BIN WORKDIR
set -euo pipefail
usage="usage: frozen_bits.sh FROZEN_BIN NEW_BIN WORKDIR"
[ $# -eq 3 ] || { echo "$usage" >&2; exit 2; }
for b in "$1" "$2"; do [ -x "$b" ] || { echo "frozen_bits: $b is not an executable peprime; $usage" >&2; exit 2; }; done
# absolute paths: the runs below work inside WORKDIR
OLD=$(realpath "$1") NEW=$(realpath "$2") W=$(realpath -m "$3")
trap 'echo "frozen_bits: a run failed (line $LINENO); its log is in $W" >&2' ERR
HERE="$(cd "$(dirname "$0")/.." && pwd)"
CMP="$HERE/pipeline/compare_h5.py"
CFG="$HERE/../jobs/configs/ci-tiny.ini"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
cat > ft.ini <<'INI'
[optim]
lr = 1e-2
warmup = 3
steps = 20
clip = 0.5
weight_decay = 0.01
INI
"$OLD" pretrain --config "$CFG" --set optim.steps=20 --set run.threads=1 --out pre > pre.log 2>&1
bad=0
while read -r name sets; do
  for which in old new; do
    bin=$OLD; [ "$which" = new ] && bin=$NEW
    # shellcheck disable=SC2086
    "$bin" prime --config "$CFG" --init pre/base.h5 --set optim.steps=6 --set run.threads=1 $sets \
      --set maml.replay_from="$W/ft.ini" --out "$name-$which/p" > "$name-$which.log" 2>&1
    "$bin" finetune --config "$CFG" --init "$name-$which/p/primed.h5" --set optim.steps=12 --set optim.eval_every=4 \
      --set run.threads=1 --out "$name-$which/f" >> "$name-$which.log" 2>&1
    "$bin" evaluate --config "$CFG" --model "$name-$which/f/adapted.h5" --set run.threads=1 --out "$name-$which/e" \
      >> "$name-$which.log" 2>&1
  done
  p=$(/usr/bin/python3 "$CMP" "$name-old/p/primed.h5" "$name-new/p/primed.h5" --exact | tail -1 || true)
  t=$(/usr/bin/python3 "$CMP" "$name-old/p/primed.h5" "$name-new/p/primed.h5" --groups tasks --exact | tail -1 || true)
  f=$(/usr/bin/python3 "$CMP" "$name-old/f/adapted.h5" "$name-new/f/adapted.h5" --groups pe,head --exact | tail -1 || true)
  e=$(cmp -s "$name-old/e/results.csv" "$name-new/e/results.csv" && echo "results.csv equal" || echo "results.csv DIFFER")
  echo "$name: primed: $p | tasks: $t | adapted pe+head: $f | $e"
  case "$p$t$f$e" in *"0 tensors differ"*"0 tensors differ"*"0 tensors differ"*equal) ;; *) bad=1 ;; esac
done <<'LIST'
sgd1 --set maml.inner_steps=3
sgd2 --set maml.order=2 --set maml.inner_steps=2
adam1 --set maml.inner_optim=adam --set maml.inner_steps=3 --set maml.inner_lr=0.01 --set maml.pe_init=episode
all2 --set maml.order=2 --set maml.inner_set=all --set maml.inner_lr=0.01
prefix1 --set pe.method=prefix --set maml.inner_steps=3 --set maml.pe_init=episode
ft1 --set maml.inner_optim=finetune --set maml.replay_start=2 --set maml.inner_steps=3 --set maml.pe_init=episode
fthead --set maml.inner_optim=finetune --set maml.inner_pe_optim=sgd --set maml.inner_pe_lr=0 --set maml.inner_steps=3 --set maml.pe_init=episode
mtm --set maml.method=multitask-matched --set maml.pe_init=episode
LIST
[ $bad -eq 0 ] && echo "every setting bit-identical" || { echo "SOME SETTINGS DIFFER"; exit 1; }
