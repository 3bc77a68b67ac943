#!/usr/bin/env bash
# The figures peprime logs and stores, against an independent oracle (log_figures.py, which
# re-draws every step's sentences without peprime code) on a hand-made corpus:
#   * /log/tokens of pretrain, finetune and prime: the real ids of the sentences each step
#     processed (a padded B * T count fails);
#   * /log/tokens_per_s = tokens / step time within 10% (step time from /log/wall_time);
#   * /tasks/<lang> of a 2- and a 4-rank prime equal a 1-rank run's: the episode the oracle
#     says is the language's last task, its own losses (not a sum over the ranks that drew
#     the language) and its state; once with one language, so it is drawn on every rank; and
#     on 4 ranks in task groups of 2 and 4 (maml.group_size), where each rank holds a share.
#   log_figures.sh PEPRIME_BIN WORKDIR MPIEXEC
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
O="$HERE/log_figures.py"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
step() { echo "== $*"; }
$PY "$O" corpus data
spm_train --input=data/text.txt --model_prefix=spm --vocab_size=250 --hard_vocab_limit=false --num_threads=1 \
  --minloglevel=2 >spm_train.log 2>&1
cat > job.ini <<INI
[model]
layers = 2
hidden = 64
heads = 2
ff = 128
max_seq_len = 64
tokenizer = $W/spm.model
[data]
root = $W/data
languages = aa,bb,cc
pretrain_languages = aa,bb,cc
source = aa
targets = bb
[maml]
meta_batch = 4
support_size = 4
query_size = 4
[optim]
steps = 30
batch_size = 8
[checkpoint]
every = 0
[run]
log_every = 10
INI
run() { local np=$1 stage=$2 out=$3; shift 3; "$MPIEXEC" -n "$np" --bind-to none "$B" "$stage" --config job.ini --out "$out" "$@" >"$out.log" 2>&1 || { tail -20 "$out.log"; exit 1; }; }
T=(--root data --seed 1)

step "pretrain, 2 ranks: tokens per step and tokens/s"
run 2 pretrain pre
$PY "$O" tokens pre/base.h5 --stage pretrain --spm spm.model --langs aa,bb,cc --batch 8 "${T[@]}"
$PY "$O" rate pre/base.h5

step "finetune, 2 ranks: tokens per step and tokens/s (the last step also evaluates: skipped)"
run 2 finetune ft --init pre/base.h5
$PY "$O" tokens ft/adapted.h5 --stage finetune --spm spm.model --langs aa --batch 8 "${T[@]}"
$PY "$O" rate ft/adapted.h5 --skip-last

step "prime, 1, 2 and 4 ranks: tokens, tokens/s, and /tasks equal across rank counts"
P=(--init pre/base.h5 --set optim.steps=3)
TP=(--meta-batch 4 --support 4 --query 4 "${T[@]}")
run 1 prime p1 "${P[@]}"; run 2 prime p2 "${P[@]}"; run 4 prime p4 "${P[@]}"
$PY "$O" tokens p2/primed.h5 --stage prime --spm spm.model --langs aa,bb,cc "${TP[@]}"
$PY "$O" rate p2/primed.h5
$PY "$O" tasks p1/primed.h5 p2/primed.h5 --langs aa,bb,cc "${TP[@]}"
$PY "$O" tasks p1/primed.h5 p4/primed.h5 --langs aa,bb,cc "${TP[@]}"

step "prime on 4 ranks in task groups of 2 and 4: tokens summed over the shares, /tasks the whole tasks'"
run 4 prime g2 "${P[@]}" --set maml.group_size=2; run 4 prime g4 "${P[@]}" --set maml.group_size=4
$PY "$O" tokens g2/primed.h5 --stage prime --spm spm.model --langs aa,bb,cc "${TP[@]}"
$PY "$O" tasks p1/primed.h5 g2/primed.h5 --langs aa,bb,cc "${TP[@]}"
$PY "$O" tasks p1/primed.h5 g4/primed.h5 --langs aa,bb,cc "${TP[@]}"

step "prime with one language: drawn by all 4 tasks, on both of 2 ranks"
run 1 prime q1 "${P[@]}" --set data.languages=aa; run 2 prime q2 "${P[@]}" --set data.languages=aa
$PY "$O" tasks q1/primed.h5 q2/primed.h5 --langs aa "${TP[@]}"
step "finetune on two source languages: the dev F1 of 2 ranks equals 1 rank's (counts summed once)"
F=(--init pre/base.h5 --set data.source=aa,bb --set optim.steps=4)
run 1 finetune f1 "${F[@]}"; run 2 finetune f2 "${F[@]}"
$PY - f1/adapted.h5 f2/adapted.h5 <<'PY'
import sys, h5py
a, b = (h5py.File(p, "r")["log/dev_f1"][-1] for p in sys.argv[1:3])
print("dev F1 on aa+bb: 1 rank %.6f, 2 ranks %.6f" % (a, b))
sys.exit(0 if abs(a - b) < 1e-9 else "the 2-rank dev F1 differs: evaluation counts summed more than once")
PY

step "evaluate a model whose path holds a quote and a backslash: results.json stays valid JSON"
mkdir -p 'we"ird\dir'; cp ft/adapted.h5 'we"ird\dir/adapted.h5'
run 2 evaluate ev --model "$W/we\"ird\\dir/adapted.h5"
$PY - ev/results.json "$W/we\"ird\\dir/adapted.h5" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["run"]["model"] == sys.argv[2], (d["run"]["model"], sys.argv[2])
print("results.json parses; run.model =", d["run"]["model"])
PY
echo "all logged and stored figures agree with the oracle"
