#!/usr/bin/env bash
# `peprime bench` runs every benchmark once at the tiny shape and prints its JSON row (also on
# real WikiAnn batches: real tokens, pad fraction > 0, a --dump the PyTorch side can replay),
# and rejects bad arguments with exit 2 and a message naming the argument.
#   bench_cli.sh PEPRIME_BIN [cli|data]
# cli (the default): the tiny shape on synthetic batches and the bad arguments; data: the real
# WikiAnn batches ($PEPRIME_DATA, else ../shared/data); exits 77 (ctest: skipped) without them.
set -euo pipefail
B="$1"; PART="${2:-cli}"
export OPENBLAS_NUM_THREADS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
check_bad() { # expected-message args...
    local want="$1"; shift
    set +e; msg=$("$B" "$@" 2>&1); rc=$?; set -e
    [ "$rc" = 2 ] || fail "'$*' exited $rc, expected 2: $msg"
    grep -q -- "$want" <<<"$msg" || fail "'$*': message lacks '$want': $msg"
}

cli_part() {
    for pe in adapter prefix lora; do
        out=$("$B" bench encoder --shape tiny --mode pe --pe "$pe" --steps 1 --warmup 0)
        grep -q "\"pe\":\"$pe\"" <<<"$out" || fail "bench encoder --pe $pe printed no JSON row: $out"
    done
    out=$("$B" bench sgemm --shape tiny --n 64 --reps 1)
    grep -q '"mode":"full"' <<<"$out" && grep -q '"mode":"pe"' <<<"$out" || fail "bench sgemm rows missing: $out"
    awk -F'"floor_ms_per_step":' 'NF > 1 { split($2, a, ","); if (a[1] + 0 <= 0) exit 1 }' <<<"$out" \
        || fail "bench sgemm: non-positive floor: $out"
    out=$("$B" bench outer --shape tiny --threads 2 --steps 1 --warmup 0)
    grep -q '"bench":"outer".*"threads":2' <<<"$out" || fail "bench outer: no 2-thread JSON row: $out"
    check_bad "--threads must be 1..1024" bench outer --threads 0
    check_bad "--pe must be adapter, prefix, lora or none, got 'foo'" bench encoder --pe foo
    check_bad "--steps must be positive" bench encoder --steps 0
    check_bad "unknown benchmark shape 'huge'" bench sgemm --shape huge
    check_bad "--n must be 16..16384" bench sgemm --n 3
    check_bad "unknown benchmark 'nope'" bench nope
    check_bad "needs --tokenizer FILE" bench encoder --data en
    check_bad "go with --data LANG" bench maml --tokenizer x.model
}

data_part() {
    local data="${PEPRIME_DATA:-$(dirname "$0")/../../../shared/data}"
    [ -f "$data/ner/wikiann/en/train.txt" ] || { echo "SKIP: no WikiAnn data under $data (set PEPRIME_DATA)"; exit 77; }
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    "$B" tokenizer train --data "$data" --languages en --vocab 2000 --out "$tmp/spm.model" >/dev/null
    out=$("$B" bench encoder --shape tiny --mode pe --data en --tokenizer "$tmp/spm.model" --batch 8 --steps 2 \
          --warmup 0 --dump "$tmp/b.txt")
    awk -F'"pad_fraction":' 'NF > 1 { split($2, a, ","); if (!(a[1] > 0 && a[1] < 1)) exit 1 }' <<<"$out" \
        || fail "bench encoder --data: pad_fraction not in (0, 1): $out"
    [ "$(grep -c '^batch ' "$tmp/b.txt")" = 2 ] || fail "bench encoder --dump: expected 2 batches in $tmp/b.txt"
    out=$("$B" bench maml --shape tiny --data en --tokenizer "$tmp/spm.model" --steps 1 --warmup 0)
    grep -q '"data":"en","update":true,"support":8,"query":8' <<<"$out" || fail "bench maml --data: $out"
    out=$("$B" bench maml --shape tiny --data en --tokenizer "$tmp/spm.model" --steps 1 --warmup 0 --no-update)
    grep -q '"update":false' <<<"$out" || fail "bench maml --no-update: $out"
    set +e; msg=$("$B" bench encoder --data en2 --tokenizer "$tmp/spm.model" 2>&1); rc=$?; set -e
    [ "$rc" != 0 ] && grep -q "no train split for language 'en2'" <<<"$msg" || fail "bench --data en2 ($rc): $msg"
}

case "$PART" in
    cli) cli_part ;;
    data) data_part ;;
    *) echo "bench_cli: unknown part '$PART' (cli or data)" >&2; exit 2 ;;
esac
echo "bench_cli $PART: ok"
