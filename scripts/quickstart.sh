#!/usr/bin/env bash
# README command 1: set everything up and run the main job on a default that works out of
# the box — the whole pipeline on a small model:
#   tokenizer -> pretrain (masked LM) -> prime (MAML) -> finetune (adapters, English)
#   -> evaluate (zero-shot entity F1), once from the primed model and once without priming.
# Real WikiAnn data when $PEPRIME_DATA or ../shared/data is there, otherwise a clearly
# labelled generated corpus. Output: runs/quickstart/ (override with PEP_OUT=...).
source "$(dirname "$0")/common.sh"
pep_install_packages "${PEP_APT_PACKAGES[@]}"
pep_log "building"
pep_build "$PEP_ROOT/build" >/dev/null
pep_blas_env
B="$PEP_ROOT/build/peprime"
C="$PEP_ROOT/jobs/configs"
OUT="$(mkdir -p "${PEP_OUT:-$PEP_ROOT/runs/quickstart}" && cd "${PEP_OUT:-$PEP_ROOT/runs/quickstart}" && pwd)"
TOK="$OUT/spm.model"
data="$(pep_data_root)"
set_data=()
if [ -n "$data" ] && [ -d "$data/ner/wikiann/en" ]; then
  export PEPRIME_DATA="$data"
  pep_log "real WikiAnn data from $data"
  tok_data="$data"
else
  pep_log "NO REAL DATA FOUND (set PEPRIME_DATA): running on a GENERATED corpus; the F1 numbers below say nothing about real languages"
  set_data=(--set data.corpus=generated --set data.max_sentences=3000)
  tok_data=generated
fi
common=(--set "model.tokenizer=$TOK" "${set_data[@]}")
t0=$(date +%s)
pep_log "1/6 tokenizer (SentencePiece unigram, 8000 pieces, 8 languages)"
"$B" tokenizer train --data "$tok_data" --languages en,de,es,ru,fr,hi,sw,tr --vocab 8000 --out "$TOK" \
  --sentences-per-language 5000 2>&1 | grep -v "^trainer_interface\|^unigram_model\|^normalizer\|^  \|^}\|^trainer_spec\|^normalizer_spec\|^denormalizer_spec" || true
[ -s "$TOK" ] || { pep_log "tokenizer training failed"; exit 1; }
pep_log "2/6 pretrain the base encoder (masked LM)"
"$B" pretrain --config "$C/quickstart-pretrain.ini" --out "$OUT" "${common[@]}"
pep_log "3/6 prime it with MAML (inner loop: adapters + head; outer loop: the encoder)"
"$B" prime --config "$C/quickstart-prime.ini" --init "$OUT/base.h5" --out "$OUT/prime" "${common[@]}"
pep_log "4/6 fine-tune adapters on English: from the primed model, and from the unprimed base"
"$B" finetune --config "$C/quickstart-finetune.ini" --init "$OUT/prime/primed.h5" --out "$OUT/primed-ft" "${common[@]}"
"$B" finetune --config "$C/quickstart-finetune.ini" --init "$OUT/base.h5" --out "$OUT/base-ft" "${common[@]}"
pep_log "5/6 evaluate zero-shot on the target languages"
"$B" evaluate --config "$C/quickstart.ini" --model "$OUT/primed-ft/adapted.h5" --out "$OUT/primed-ft" "${common[@]}"
"$B" evaluate --config "$C/quickstart.ini" --model "$OUT/base-ft/adapted.h5" --out "$OUT/base-ft" "${common[@]}"
pep_log "6/6 summary ($(( $(date +%s) - t0 )) s)"
/usr/bin/python3 "$PEP_ROOT/analysis/compare_results.py" "no priming=$OUT/base-ft/results.json" "MAML priming=$OUT/primed-ft/results.json"
