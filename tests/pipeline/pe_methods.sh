#!/usr/bin/env bash
# Every PE method trains through `peprime finetune` on the generated corpus with the encoder
# frozen: the loss falls, and /model of adapted.h5 is bit-identical to the base model's.
#   pe_methods.sh PEPRIME_BIN WORKDIR
set -euo pipefail
B="$1"; W="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
cat > job.ini <<'INI'
[model]
layers = 2
hidden = 32
heads = 2
ff = 64
max_seq_len = 32
tokenizer_vocab = 300
[data]
corpus = generated
languages = aa
source = aa
targets = bb
pretrain_languages = aa,bb
max_sentences = 300
[pe]
prefix_length = 4
prefix_hidden = 16
lora_rank = 4
[optim]
lr = 5e-3
batch_size = 16
steps = 60
[run]
log_every = 20
INI
"$B" pretrain --config job.ini --out base --set optim.steps=20 >/dev/null
for variant in "adapter pfeiffer" "adapter houlsby" "prefix false" "prefix true" "lora -"; do
  set -- $variant
  extra=(--set "pe.method=$1")
  [ "$1" = adapter ] && extra+=(--set "pe.placement=$2")
  [ "$1" = prefix ] && extra+=(--set "pe.prefix_reparam=$2")
  out="ft-$1-$2"
  "$B" finetune --config job.ini --init base/base.h5 --out "$out" "${extra[@]}" > "$out.log" 2>&1 ||
    { tail -5 "$out.log"; echo "finetune with $variant failed"; exit 1; }
  first=$(grep -m1 -o "loss [0-9.]*" "$out.log" | awk '{print $2}')
  last=$(grep -o "loss [0-9.]*" "$out.log" | tail -1 | awk '{print $2}')
  /usr/bin/python3 - "$W/base/base.h5" "$W/$out/adapted.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
same = all(np.array_equal(a["model"][k][()], b["model"][k][()]) for k in a["model"])
assert sorted(a["model"].keys()) == sorted(b["model"].keys())
print("  /model bit-identical to the base:", same, "| PE tensors:", len(b["pe"].keys()) if "pe" in b else 0)
sys.exit(0 if same else 1)
PY
  awk -v f="$first" -v l="$last" -v v="$variant" 'BEGIN { printf "%s: loss %s -> %s\n", v, f, l; exit !(l < f) }'
done
echo "all PE methods train with a frozen encoder"
