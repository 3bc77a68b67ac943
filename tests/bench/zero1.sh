#!/usr/bin/env bash
# The sharded (ZeRO-1) outer step measured (issue 30 item 2): `peprime prime` at the XLM-R base
# shape (L=12 C=768 NH=12 FF=3072 V=250002 T<=128) on P = 1, 2 ranks and at a 4-layer x 768 shape
# (V=64000) on P = 1, 2, 4, one task per rank (meta-batch = P, support = query = 8 sentences of the
# generated corpus), first order, k = 1, AdamW, one BLAS thread per rank, no checkpoints but the
# final one. Each setting runs REPS times, interleaved: OLD (a binary from before the change:
# every rank sums and steps everything), NEW with maml.outer_shard = false (the same replicated
# step, with the new report's split) and NEW sharded. Prints one Markdown table of medians:
#   ms per meta-step: the median of log.csv's step times after the first (every binary),
#   tasks / exposed exchange / outer step (update + allgather): NEW's report, rank 0, after the first,
#   moments per rank (8 bytes x the floats a rank keeps moments for),
#   peak RSS per rank: /usr/bin/time's maximum resident set of each rank (the largest, MiB).
#   tests/bench/zero1.sh NEW_BIN OLD_BIN WORKDIR [REPS] [STEPS] [SHAPES]
#   tests/bench/zero1.sh --table ROWS.txt...     the table of earlier runs' rows.txt files
# SHAPES: "base l4" (default) or one of them. The base shape needs ~6 GB per rank replicated.
# WHICH (environment): the steps to run, default "old replicated sharded"; also
# sharded-ordered (the sharded step with maml.exchange_sum = ordered: no MPI reduce buffers).
set -euo pipefail
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
table() { # rows.txt files -> Markdown table of medians (and the number of runs)
  echo "| shape | P | step | runs | ms / meta-step | tasks | exposed exchange | outer step | update | allgather | moments MB / rank | peak RSS MiB / rank (max) | update CPU ms (slowest rank) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$@" | awk '{ print $1, $2, $3 }' | awk '!seen[$0]++' | while read -r shape np which; do
    printf "| %s | %s | %s | %s |" "$shape" "$np" "$which" "$(cat "$@" | awk -v s="$shape" -v n="$np" -v w="$which" '$1 == s && $2 == n && $3 == w' | wc -l)"
    for col in 4 5 6 7 8 9 10 12 11; do
      v=$(cat "$@" | awk -v s="$shape" -v n="$np" -v w="$which" -v c="$col" '$1 == s && $2 == n && $3 == w { print $c }' | { grep -v nan || true; } | median)
      printf " %s |" "$v"
    done
    echo
  done
}
if [ "${1:-}" = --table ]; then shift; table "$@"; exit 0; fi
NEW=$(readlink -f "$1"); OLD=$(readlink -f "$2"); W=$3; REPS=${4:-3}; STEPS=${5:-5}; SHAPES=${6:-"base l4"}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$W"; cd "$W"
[ -s spm.model ] || "$NEW" tokenizer train --data generated --languages aa,bb,cc,dd --vocab 2000 --out "$W/spm.model" \
  --sentences-per-language 500 >/dev/null 2>&1
shape_ini() { # SHAPE -> job-SHAPE.ini
  local L V
  case $1 in base) L=12 V=250002 ;; l4) L=4 V=64000 ;; *) echo "unknown shape $1" >&2; exit 2 ;; esac
  cat > "job-$1.ini" <<INI
[model]
layers = $L
hidden = 768
heads = 12
ff = 3072
max_seq_len = 128
vocab = $V
[data]
corpus = generated
languages = aa,bb,cc,dd
max_sentences = 500
[maml]
support_size = 8
query_size = 8
[checkpoint]
every = 0
[run]
threads = 1
log_every = 1000
INI
}
# one SHAPE NP WHICH REP -> appends "shape np which ms tasks exposed outer update gather moments_mb cpu_ms rss_max" to rows.txt
one() {
  local shape=$1 np=$2 which=$3 rep=$4 bin=$NEW bind=core
  local out="run-$shape-$np-$which-$rep"
  local extra=()
  [ "$which" = old ] && bin=$OLD
  [ "$which" = replicated ] && extra=(--set maml.outer_shard=false)
  [ "$which" = sharded-ordered ] && extra=(--set maml.exchange_sum=ordered)
  [ "$np" -gt 2 ] && bind=none
  rm -rf "$out" "$out".rss.*
  # each rank's maximum resident set into its own file (ranks' stderr lines can interleave)
  mpiexec -n "$np" --oversubscribe --bind-to $bind sh -c '/usr/bin/time -f %M -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"' \
    "$out" "$bin" prime --config "job-$shape.ini" \
    --out "$out" --resume none --set model.tokenizer="$W/spm.model" --set maml.meta_batch="$np" \
    --set optim.steps="$STEPS" "${extra[@]}" > "$out.log" 2>&1 || { tail -5 "$out.log"; echo "FAIL: $out" >&2; exit 1; }
  local ms rss split
  ms=$(awk -F, 'NR > 2 && prev != "" { print 1000 * ($6 - prev) } { prev = $6 }' "$out/log.csv" | median)
  rss=$(cat "$out".rss.* | sort -n | tail -1)
  split=$(sed -n 's/.*tasks \([0-9.]*\) ms, exposed exchange \([0-9.]*\) ms, outer step \([0-9.]*\) ms (update \([0-9.]*\) + allgather \([0-9.]*\);.*the most of any rank \([0-9.]*\)).*, \([0-9]*\) of \([0-9]*\) floats per rank.*/\1 \2 \3 \4 \5 \6 \7 \8/p' "$out.log")
  local tasks=nan exposed outer update gather cpu=nan mine all moments
  exposed=$(sed -n 's/.*exchange [0-9.]*% of the time, \([0-9.]*\) ms per meta-step exposed.*/\1/p' "$out.log")
  outer=nan update=nan gather=nan
  all=$(sed -n 's/.*outer set [a-z+]* (\([0-9]*\) floats).*/\1/p' "$out.log" | head -1)
  mine=$all
  if [ -n "$split" ]; then read -r tasks exposed outer update gather cpu mine all <<< "$split"; fi
  moments=$(awk -v m="$mine" 'BEGIN { printf "%.0f", 8 * m / 1e6 }')
  echo "$shape $np $which $ms $tasks $exposed $outer $update $gather $moments $cpu $(awk -v k="$rss" 'BEGIN { printf "%.0f", k / 1024 }')" >> rows.txt
}
: > rows.txt
for shape in $SHAPES; do
  shape_ini "$shape"
  nps="1 2 4"; [ "$shape" = base ] && nps="1 2"
  for rep in $(seq 1 "$REPS"); do
    for np in $nps; do
      for which in ${WHICH:-old replicated sharded}; do
        [ "$np" = 1 ] && [ "$which" = replicated ] && continue # one slice is everything: the same step
        one "$shape" "$np" "$which" "$rep"
      done
    done
  done
done
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $(date -u +%Y-%m-%dT%H:%MZ), $REPS repeats, $STEPS meta-steps"
echo
table rows.txt
