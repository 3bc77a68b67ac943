#!/usr/bin/env bash
# `peprime fidelity` on the generated corpus: the finetune inner rule replaying the fine-tuning
# job's AdamW for its window (steps 0..k-1) simulates that fine-tuning by the issue-29 criterion
# (norm ratio 0.5-2 and a clearly positive cosine, PE and head alike), while an SGD inner loop at
# a tiny rate does not (its ratio is far below 0.5); the per-task file has a row per task and
# group; without maml.replay_from it is a usage error (exit 2) that says what to set.
#   fidelity.sh PEPRIME_BIN WORKDIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
B="$1"; W="$2"
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W"; cd "$W"
cat > job.ini <<'INI'
[model]
layers = 2
hidden = 32
heads = 2
ff = 64
max_seq_len = 24
tokenizer_vocab = 300
dropout = 0.0
attention_dropout = 0.0
[pe]
method = adapter
[data]
corpus = generated
languages = aa,bb
pretrain_languages = aa,bb
max_sentences = 200
[maml]
inner_steps = 3
support_size = 8
query_size = 8
pe_init = episode
[optim]
steps = 30
batch_size = 8
INI
printf '[optim]\nlr = 1e-2\nwarmup = 10\nsteps = 100\nclip = 1.0\nweight_decay = 0.01\n' > ft.ini
"$B" pretrain --config job.ini --out base > pretrain.log 2>&1 || { cat pretrain.log; fail "pretrain failed"; }
"$B" fidelity --config job.ini --init base/base.h5 --out replay --tasks 12 --set maml.inner_optim=finetune \
  --set maml.replay_from=ft.ini > replay.log 2>&1 || { cat replay.log; fail "fidelity (finetune rule) failed"; }
cat replay.log | grep -A4 '^group'
[ "$(wc -l < replay/fidelity.csv)" -eq 37 ] || fail "fidelity.csv should have 12 tasks x 3 groups + a header"
for g in pe head; do
  grep -q "^$g,12,.*,yes$" replay/fidelity_summary.csv || fail "the finetune rule does not simulate fine-tuning's $g updates"
done
"$B" fidelity --config job.ini --init base/base.h5 --out sgd --tasks 12 --set maml.inner_lr=1e-4 \
  --set maml.replay_from=ft.ini > sgd.log 2>&1 || { cat sgd.log; fail "fidelity (sgd) failed"; }
grep -A4 '^group' sgd.log
/usr/bin/python3 - sgd/fidelity_summary.csv <<'PY' || fail "an SGD inner loop at rate 1e-4 should move the PE modules far less than fine-tuning"
import csv, sys
rows = {r["group"]: r for r in csv.DictReader(open(sys.argv[1]))}
assert float(rows["pe"]["ratio_median"]) < 0.5 and rows["pe"]["simulates"] == "no", rows["pe"]
PY
set +e
"$B" fidelity --config job.ini --init base/base.h5 --out bad > bad.log 2>&1
st=$?
set -e
[ "$st" -eq 2 ] || { cat bad.log; fail "fidelity without maml.replay_from exited $st, want 2"; }
grep -q "set maml.replay_from" bad.log || { cat bad.log; fail "the error does not say what to set"; }
echo "fidelity checks passed"
