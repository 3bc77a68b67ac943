#!/usr/bin/env bash
# The adapted states a prime writes (/tasks/<lang>) do not depend on maml.order: one meta-step
# with two inner steps and dropout off, order 1 and order 2, must store bit-identical /tasks
# (order 2 only adds Hessian passes after the inner loop); then `finetune --set
# pe.init=task:<lang>` starts from an order-2 state. Generated corpus, no shared data.
#   tasks_order.sh PEPRIME_BIN WORKDIR
set -euo pipefail
B="$1"; W="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
cat > job.ini <<INI
include = $HERE/tiny-model.ini
[model]
tokenizer_vocab = 300
dropout = 0.0
attention_dropout = 0.0
[data]
corpus = generated
languages = aa,bb
source = aa
targets = bb
pretrain_languages = aa,bb
max_sentences = 200
[maml]
inner_steps = 2
meta_batch = 4
support_size = 4
query_size = 4
[optim]
lr = 1e-3
batch_size = 8
steps = 1
[checkpoint]
every = 0
INI
"$B" pretrain --config job.ini --out base --set optim.steps=3 >/dev/null
for o in 1 2; do "$B" prime --config job.ini --init base/base.h5 --out "o$o" --set "maml.order=$o" >/dev/null; done
$PY -c "import h5py, sys; sys.exit(0 if len(h5py.File('o2/primed.h5', 'r')['tasks']) > 0 else 1)" \
  || { echo "no /tasks in the order-2 primed checkpoint"; exit 1; }
$PY "$HERE/compare_h5.py" o1/primed.h5 o2/primed.h5 --groups tasks --exact
lang=$($PY -c "import h5py; print(sorted(h5py.File('o2/primed.h5', 'r')['tasks'])[0])")
"$B" finetune --config job.ini --init o2/primed.h5 --out ft --set "pe.init=task:$lang" --set optim.steps=2 >/dev/null
echo "finetune started from /tasks/$lang of the order-2 prime"
