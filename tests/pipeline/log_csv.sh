#!/usr/bin/env bash
# <out>/log.csv of pretrain, finetune and prime (docs/logs.md) against their checkpoints' /log
# (tests/pipeline/log_csv.py, h5py), resumes, and analysis/plot_log.py:
#   * each stage's header, one row per step, every cell equal to its /log series, the lr column
#     equal to the schedule (cosine with a floor, linear) the config names;
#   * finetune on 2 ranks resumed from its step-4 checkpoint after the run had finished: rows 1..4
#     kept as they were (same file), the earlier attempt's rows 5..10 and a line a kill left
#     unfinished cut, 5..10 written once; resumed with log.csv deleted, or holding another
#     stage's columns: written anew from the checkpoint's /log; a fresh start empties it;
#   * plot_log.py draws a PNG from one and from several files, and rejects a file without the
#     columns.
#   log_csv.sh PEPRIME_BIN WORKDIR [MPIEXEC]
set -euo pipefail
B="$1"; W="$2"; MPIEXEC="${3:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
C="$HERE/log_csv.py"
PLOT="$HERE/../../analysis/plot_log.py"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
step() { echo "== $*"; }
cat > job.ini <<INI
include = $HERE/tiny-model.ini
[data]
corpus = generated
languages = aa,bb,cc
source = aa
targets = bb
max_sentences = 200
[maml]
meta_batch = 4
support_size = 4
query_size = 4
[optim]
lr = 1e-3
warmup = 2
steps = 10
batch_size = 8
eval_every = 5
[checkpoint]
every = 4
keep = 10
[run]
log_every = 5
INI
"$B" tokenizer train --data generated --languages aa,bb,cc --vocab 300 --out "$W/spm.model" \
  --sentences-per-language 200 >/dev/null 2>&1
S=(--set "model.tokenizer=$W/spm.model")
run() { local np=$1 stage=$2 out=$3; shift 3; "$MPIEXEC" -n "$np" --bind-to none "$B" "$stage" --config job.ini --out "$out" "${S[@]}" "$@" >"$out.log" 2>&1 || { tail -20 "$out.log"; exit 1; }; }
png() { "$PY" -c "import sys; d=open(sys.argv[1],'rb').read(); sys.exit(not (d[:8]==b'\x89PNG\r\n\x1a\n' and len(d)>10000))" "$1" || { echo "$1 is not a PNG of a plot"; exit 1; }; }

step "pretrain (1 rank, cosine schedule with a floor)"
run 1 pretrain pre --set optim.schedule=cosine --set optim.min_lr_ratio=0.1
"$PY" "$C" check pre/log.csv pre/base.h5 --stage pretrain

step "finetune (2 ranks, linear schedule, dev F1 at steps 5 and 10)"
run 2 finetune ft --init pre/base.h5
"$PY" "$C" check ft/log.csv ft/adapted.h5 --stage finetune

step "prime (2 ranks, cosine)"
run 2 prime pr --init pre/base.h5 --set optim.steps=6 --set optim.schedule=cosine
"$PY" "$C" check pr/log.csv pr/primed.h5 --stage prime

step "finetune resumed at step 4 after an attempt that got to step 10 and then left half a line"
cp ft/log.csv first.csv
printf '11,1.9' >> ft/log.csv
run 2 finetune ft --init pre/base.h5 --resume ft/checkpoints/finetune-step00000004.h5
"$PY" "$C" check ft/log.csv ft/adapted.h5 --stage finetune
"$PY" "$C" same-rows first.csv ft/log.csv --upto 4
if grep -q "written anew" ft.log; then echo "the resume rewrote log.csv instead of cutting it"; exit 1; fi

step "resumed at step 8 with log.csv deleted, then holding pretrain's columns: written anew from /log"
rm ft/log.csv
run 2 finetune ft --init pre/base.h5 --resume ft/checkpoints/finetune-step00000008.h5
grep -q "written anew" ft.log || { echo "no 'written anew' line"; exit 1; }
"$PY" "$C" check ft/log.csv ft/adapted.h5 --stage finetune
cp pre/log.csv ft/log.csv
run 2 finetune ft --init pre/base.h5 --resume ft/checkpoints/finetune-step00000008.h5
"$PY" "$C" check ft/log.csv ft/adapted.h5 --stage finetune

step "a fresh start over an existing log.csv empties it first"
run 1 pretrain pre --set optim.steps=3
"$PY" "$C" check pre/log.csv pre/base.h5 --stage pretrain

step "plot_log.py"
"$PY" "$PLOT" ft/log.csv -o ft.png >/dev/null; png ft.png
"$PY" "$PLOT" pr/log.csv >/dev/null; png pr/curves.png
"$PY" "$PLOT" pre/log.csv ft/log.csv pr/log.csv -o all.png --smooth 3 >/dev/null; png all.png
printf 'a,b\n1,2\n' > bad.csv
if "$PY" "$PLOT" bad.csv -o bad.png 2>/dev/null; then echo "plot_log.py accepted a file without step, loss, lr"; exit 1; fi
echo "log_csv: ok"
