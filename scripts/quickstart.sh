#!/usr/bin/env bash
# README command 1: set everything up and run the main job on a default that works out of
# the box — the whole pipeline on a small model:
#   pretrain (tokenizer + masked LM) -> prime (MAML) -> finetune (adapters, English)
#   -> evaluate (zero-shot entity F1), once from the primed model and once without priming.
# Real WikiAnn data when $PEPRIME_DATA or ../shared/data is there, otherwise a clearly
# labelled generated corpus. Output: runs/quickstart/ (override with PEP_OUT=...).
#
#   scripts/quickstart.sh --v2-demo   instead: the setting experiment v2 found robust, from its
#       committed base (docs/results/bases): prefix-tuning, no priming vs MAML with an SGD inner
#       loop at the calibrated rate, seed 1, per target beside v2's 5-seed result (about 10 min on
#       2 cores; needs the real data). Output: runs/v2-demo/.
source "$(dirname "$0")/common.sh"
if [ "${1:-}" = "--v2-demo" ]; then
  out="${PEP_OUT:-$PEP_ROOT/runs/v2-demo}"
  "$PEP_ROOT/scripts/experiment.sh" --exp "$PEP_ROOT/jobs/experiments/wikiann-v2" --run "$out" \
    --bases-from "$PEP_ROOT/docs/results/bases" --bases 16000 --pe prefix --arms none,maml-sgd --seeds 1 --no-report
  exec /usr/bin/python3 "$PEP_ROOT/analysis/v2_demo.py" "$out/results_long.csv" "$PEP_ROOT/docs/results/results_long.csv"
fi
[ $# -eq 0 ] || { echo "usage: scripts/quickstart.sh [--v2-demo]" >&2; exit 2; }
pep_install_packages "${PEP_APT_PACKAGES[@]}"
pep_log "building"
pep_build "$PEP_ROOT/build" >/dev/null
pep_mpi_env
B="$PEP_ROOT/build/peprime"
C="$PEP_ROOT/jobs/configs"
OUT="$(mkdir -p "${PEP_OUT:-$PEP_ROOT/runs/quickstart}" && cd "${PEP_OUT:-$PEP_ROOT/runs/quickstart}" && pwd)"
data="$(pep_data_root)"
set_data=()
if [ -n "$data" ] && [ -d "$data/ner/wikiann/en" ]; then
  export PEPRIME_DATA="$data"
  pep_log "real WikiAnn data from $data"
else
  pep_log "NO REAL DATA FOUND (set PEPRIME_DATA): running on a GENERATED corpus; the F1 numbers below say nothing about real languages"
  set_data=(--set data.corpus=generated --set data.max_sentences=3000)
fi
common=("${set_data[@]}")
t0=$(date +%s)
pep_log "1/5 pretrain the base encoder (masked LM; it first trains the SentencePiece tokenizer)"
"$B" pretrain --config "$C/quickstart-pretrain.ini" --out "$OUT" "${common[@]}"
pep_log "2/5 prime it with MAML (inner loop: adapters + head; outer loop: the encoder)"
"$B" prime --config "$C/quickstart-prime.ini" --init "$OUT/base.h5" --out "$OUT/prime" "${common[@]}"
pep_log "3/5 fine-tune adapters on English: from the primed model, and from the unprimed base"
"$B" finetune --config "$C/quickstart-finetune.ini" --init "$OUT/prime/primed.h5" --out "$OUT/primed-ft" "${common[@]}"
"$B" finetune --config "$C/quickstart-finetune.ini" --init "$OUT/base.h5" --out "$OUT/base-ft" "${common[@]}"
pep_log "4/5 evaluate zero-shot on the target languages"
"$B" evaluate --config "$C/quickstart.ini" --model "$OUT/primed-ft/adapted.h5" --out "$OUT/primed-ft" "${common[@]}"
"$B" evaluate --config "$C/quickstart.ini" --model "$OUT/base-ft/adapted.h5" --out "$OUT/base-ft" "${common[@]}"
pep_log "5/5 summary ($(( $(date +%s) - t0 )) s)"
/usr/bin/python3 "$PEP_ROOT/analysis/compare_results.py" "no priming=$OUT/base-ft/results.json" "MAML priming=$OUT/primed-ft/results.json"
