#!/bin/bash
# Trains a unigram model with `peprime tokenizer train` (spm_train) on 10 languages of the
# WikiANN data (en,de,ru,ar,hi,zh,ja,ko,el,sw), then checks that `peprime tokenizer encode`
# gives exactly the ids of `spm_encode --output_format=id` for every sentence of every
# language and split (all languages, train/dev/test). Prints mismatches (sentence and both
# id lists) and the counts; exits non-zero on any mismatch. Also checks the per-word NER
# alignment (`peprime tokenizer align`) against align_oracle.py on every dev sentence.
# Without the data it says so and exits 77 (ctest: skipped).
# usage: check_spm_all.sh PEPRIME DATA_ROOT WORKDIR
set -euo pipefail
peprime=$1 data=$2 work=$3
if [ ! -d "$data/ner/wikiann" ]; then
    echo "SKIP: no WikiAnn data at $data/ner/wikiann (set PEPRIME_DATA)"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$peprime" tokenizer train --data "$data" --languages en,de,ru,ar,hi,zh,ja,ko,el,sw \
    --vocab 8000 --sentences-per-language 3000 --seed 1 --out spm.model
total=0 bad=0
for split in train dev test; do
    "$peprime" tokenizer text --data "$data" --languages all --split "$split" > "$split.txt"
    spm_encode --model=spm.model --output_format=id < "$split.txt" > "$split.ref"
    "$peprime" tokenizer encode --model spm.model < "$split.txt" > "$split.ids"
    n=$(wc -l < "$split.txt")
    nr=$(wc -l < "$split.ref")
    ni=$(wc -l < "$split.ids")
    if [ "$n" != "$nr" ] || [ "$n" != "$ni" ]; then
        echo "$split: line counts differ: text $n, spm_encode $nr, peprime $ni"
        exit 1
    fi
    if cmp -s "$split.ref" "$split.ids"; then
        d=0
    else
        d=$(paste -d $'\001' "$split.ref" "$split.ids" | awk -F '\001' '$1 != $2' | wc -l)
        paste -d $'\001' "$split.txt" "$split.ref" "$split.ids" |
            awk -F '\001' -v s="$split" '$2 != $3 && shown < 20 {
                shown++; printf "MISMATCH %s line %d: %s\n  spm_encode: %s\n  peprime:    %s\n", s, NR, $1, $2, $3 }'
    fi
    echo "$split: $((n - d)) / $n sentences identical"
    total=$((total + n)); bad=$((bad + d))
done
# The NER alignment (pep_ner_align) against XTREME's per-word rule computed with
# SentencePiece's Python binding, on every dev sentence, T = 32 so that cuts happen.
oracle=$(dirname "$0")/align_oracle.py
/usr/bin/python3 "$oracle" spm.model 32 < dev.txt > dev.align.ref
"$peprime" tokenizer align --model spm.model --max-len 32 < dev.txt > dev.align
n=$(wc -l < dev.txt)
d=$(paste -d $'\001' dev.align.ref dev.align | awk -F '\001' '$1 != $2' | wc -l)
paste -d $'\001' dev.txt dev.align.ref dev.align |
    awk -F '\001' '$2 != $3 && shown < 20 {
        shown++; printf "ALIGN MISMATCH dev line %d: %s\n  oracle:  %s\n  peprime: %s\n", NR, $1, $2, $3 }'
cuts=$(awk -F '\t' '$3 > 0' dev.align | wc -l)
echo "dev alignment (T = 32): $((n - d)) / $n sentences identical ($cuts with words cut)"
total=$((total + n)); bad=$((bad + d))

echo "all checks: $((total - bad)) / $total sentences identical, $bad mismatches"
echo "$((total - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
