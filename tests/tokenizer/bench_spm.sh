#!/bin/bash
# Speed of peprime's C SentencePiece encoder against spm_encode on the same text.
# usage: bench_spm.sh PEPRIME MODEL TEXT
# Prints sentences/s and MB/s for: spm_encode (file in, ids out), `peprime tokenizer
# encode` (the same I/O), and `peprime tokenizer bench` (encoding only, text in memory).
set -euo pipefail
peprime=$1 model=$2 text=$3
lines=$(wc -l < "$text")
bytes=$(wc -c < "$text")
rate() { # label seconds
    awk -v l="$1" -v t="$2" -v n="$lines" -v b="$bytes" \
        'BEGIN { printf "%-34s %8.3f s  %10.0f sentences/s  %7.2f MB/s\n", l, t, n / t, b / 1e6 / t }'
}
secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'; }
echo "text: $text ($lines lines, $bytes bytes), model: $model"
t_spm=$(secs spm_encode --model="$model" --output_format=id --input="$text")
rate "spm_encode --output_format=id" "$t_spm"
t_pep=$(secs bash -c "'$peprime' tokenizer encode --model '$model' < '$text'")
rate "peprime tokenizer encode" "$t_pep"
"$peprime" tokenizer bench --model "$model" --input "$text"
awk -v a="$t_spm" -v b="$t_pep" 'BEGIN { printf "peprime encode is %.2fx the speed of spm_encode\n", a / b }'
