#!/usr/bin/env bash
# Every PE method trains through `peprime finetune` on the generated corpus with the encoder
# frozen: the loss falls, and /model of adapted.h5 is bit-identical to the base model's.
#   pe_methods.sh PEPRIME_BIN WORKDIR
set -euo pipefail
B="$1"; W="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
cat > job.ini <<INI
include = $HERE/tiny-model.ini
[model]
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
  # a self-contained adapted.h5 (checkpoint.encoder = copy), so its /model can be compared with the base
  "$B" finetune --config job.ini --init base/base.h5 --out "$out" "${extra[@]}" --set checkpoint.encoder=copy > "$out.log" 2>&1 ||
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

# pe.init: fresh (above), meta (the primed /pe + /head) and task:<lang> (a /tasks state)
"$B" prime --config job.ini --init base/base.h5 --out primed --set optim.steps=3 --set maml.meta_batch=2 \
  --set maml.support_size=4 --set maml.query_size=4 >/dev/null
for init in meta task:aa; do
  "$B" finetune --config job.ini --init primed/primed.h5 --out "ft-init-${init/:/-}" --set "pe.init=$init" \
    --set optim.steps=5 > init.log 2>&1 || { tail -3 init.log; echo "pe.init=$init failed"; exit 1; }
  grep -q "PE init $init" init.log || { echo "pe.init=$init not reported"; exit 1; }
done
if "$B" finetune --config job.ini --init primed/primed.h5 --out ft-bad --set pe.init=task:zz --set optim.steps=5 \
     > bad.log 2>&1; then echo "pe.init=task:zz should fail"; exit 1; fi
grep -q "no task state for language 'zz'" bad.log || { cat bad.log | tail -2; echo "unclear error"; exit 1; }
echo "pe.init fresh, meta and task:<lang> work; a missing task is a clear error"
