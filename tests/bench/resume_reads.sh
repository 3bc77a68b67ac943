#!/usr/bin/env bash
# Bytes read from checkpoint files by a 4-rank resume, all ranks together, counted by strace
# (every read / pread64 of every rank on a file named *.h5, so it works on any peprime binary)
# and, where the binary has it, by the reader's own counter (PEP_IO_STATS). Generated corpus,
# a LAYERS x HIDDEN encoder (heads = HIDDEN / 64, ff = 4 HIDDEN, 32 subwords a sentence):
#   prime     4 ranks, 2 meta-steps, a checkpoint after each; the step-2 checkpoint and
#             primed.h5 removed (as a kill during step 2 leaves them), then --resume auto;
#   finetune  4 ranks from that primed.h5, the same, then --resume auto.
#   tests/bench/resume_reads.sh PEPRIME_BIN WORKDIR [LAYERS] [HIDDEN] [MPIEXEC]
# Prints, per stage, the sizes of the resumed checkpoint and of --init, the bytes read and their
# ratio to the resumed checkpoint's size (docs/scaling.md, "Reading checkpoints at a resume").
set -euo pipefail
B="$(readlink -f "$1")"; W="$2"; L="${3:-4}"; C="${4:-768}"; MPIEXEC="${5:-mpiexec}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
rm -rf "$W"; mkdir -p "$W"; cd "$W"
cat > job.ini <<INI
[model]
layers = $L
hidden = $C
heads = $((C / 64))
ff = $((4 * C))
max_seq_len = 32
[data]
corpus = generated
languages = aa,bb,cc
source = aa
targets = bb
max_sentences = 100
[maml]
meta_batch = 4
support_size = 4
query_size = 4
[optim]
steps = 2
batch_size = 8
eval_every = 0
[checkpoint]
every = 1
keep = 10
[run]
threads = 1
log_every = 1
INI
"$B" tokenizer train --data generated --languages aa,bb,cc --vocab 300 --out "$W/spm.model" \
  --sentences-per-language 100 >/dev/null 2>&1
S=(--set "model.tokenizer=$W/spm.model")
"$B" pretrain --config job.ini --out base "${S[@]}" --set optim.steps=1 >pretrain.log 2>&1 ||
  { tail -5 pretrain.log; exit 1; }
size() { stat -c %s "$1"; }
# traced STAGE OUT ARGS...: a 4-rank run of STAGE under strace, one log per rank in OUT/trace.<rank>
traced() {
  local stage=$1 out=$2; shift 2
  PEP_IO_STATS="$W/$out/io_stats.txt" "$MPIEXEC" -n 4 --bind-to none -x PEP_IO_STATS sh -c \
    'exec strace -f -y -qq -e trace=read,pread64,readv,preadv,preadv2 -o "$0/trace.$OMPI_COMM_WORLD_RANK" "$@"' \
    "$W/$out" "$B" "$stage" "$@"
}
measure() { # measure STAGE OUT INIT ARGS...: run, interrupt after step 1, resume traced, report
  local stage=$1 out=$2 init=$3; shift 3
  "$MPIEXEC" -n 4 --bind-to none "$B" "$stage" --config job.ini --init "$init" --out "$out" "${S[@]}" "$@" \
    >"$out.log" 2>&1 || { tail -5 "$out.log"; exit 1; }
  [ "$stage" = prime ] && cp "$out/primed.h5" primed-ref.h5
  rm -f "$out/checkpoints/$stage-step00000002.h5" "$out"/*.h5 "$out/io_stats.txt"
  local ck="$out/checkpoints/$stage-step00000001.h5"
  traced "$stage" "$out" --config job.ini --init "$W/$init" --out "$out" "${S[@]}" --resume auto "$@" \
    >"$out.resume.log" 2>&1 || { tail -5 "$out.resume.log"; exit 1; }
  grep -q "resumed from" "$out.resume.log" || { echo "$stage did not resume"; exit 1; }
  local total counter=""
  total=$($PY "$HERE/strace_reads.py" "$out"/trace.* | tee "$out.reads.txt" | sed -n 's/^total //p')
  [ -s "$out/io_stats.txt" ] && counter=$(awk '{ s += $NF } END { print s }' "$out/io_stats.txt")
  $PY - "$stage" "$(size "$ck")" "$(size "$init")" "$total" "$counter" <<'PY'
import sys
stage, ck, init, total, counter = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
c = f", reader's counter {int(counter) / 1e6:.1f} MB" if counter else ""
print(f"| {stage} | {ck / 1e6:.1f} MB | {init / 1e6:.1f} MB | {total / 1e6:.1f} MB | {total / ck:.2f}x{c} |")
PY
}
echo "| resumed stage | checkpoint | --init | read by the 4 ranks (strace) | / checkpoint |"
echo "|---|---|---|---|---|"
measure prime p base/base.h5
measure finetune f primed-ref.h5 --set pe.init=meta
