#!/usr/bin/env bash
# Regenerates the three tiny SentencePiece models of the spm_model seed corpus (also the models
# fuzz_tokenizer encodes with) from train.txt, written by hand for this purpose, with spm_train:
# a unigram model with a user-defined symbol and a small precompiled charsmap (rules.tsv: a few
# full-width letters and ligatures), a BPE model with the same charsmap, and a unigram model with
# byte fallback and no normaliser. Usage: tests/fuzz/spm/make_models.sh (writes ../corpus/spm_model).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../corpus/spm_model"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3 4; do cat "$here/train.txt"; done >"$tmp/train.txt"
common=(--input="$tmp/train.txt" --hard_vocab_limit=false --num_threads=1 --minloglevel=2)
spm_train "${common[@]}" --model_prefix="$tmp/unigram" --vocab_size=120 --user_defined_symbols='<ent>' \
  --normalization_rule_tsv="$here/rules.tsv" --character_coverage=1.0
spm_train "${common[@]}" --model_prefix="$tmp/bpe" --model_type=bpe --vocab_size=120 \
  --normalization_rule_tsv="$here/rules.tsv"
spm_train "${common[@]}" --model_prefix="$tmp/bytefb" --vocab_size=400 --byte_fallback=true \
  --character_coverage=0.98 --normalization_rule_name=identity --remove_extra_whitespaces=false
mkdir -p "$out"
cp "$tmp/unigram.model" "$tmp/bpe.model" "$tmp/bytefb.model" "$out/"
