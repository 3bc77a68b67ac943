# tests/pipeline/lib.sh: the common start of the multi-rank prime tests (sourced by
# prime_mpi.sh and faults.sh) and the smallest pretraining job (start_line.sh,
# tests/checkpoint/strip.sh).
# shellcheck shell=bash

# prime_setup PEPRIME_BIN WORKDIR: MPI-as-root and one-thread exports, a fresh WORKDIR
# (entered), job.ini (generated corpus, three priming languages, a 2-layer width-32 model,
# 12 meta-steps, a checkpoint every 4), a tokenizer (spm.model) and base/base.h5 (5 MLM
# steps). Sets S, the --set that points every stage at the tokenizer.
prime_setup() {
  local bin=$1 work=$2
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
  rm -rf "$work"; mkdir -p "$work"; cd "$work" || exit 1
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  cat > job.ini <<INI
include = $here/tiny-model.ini
[model]
dropout = 0.1
attention_dropout = 0.0
[data]
corpus = generated
languages = aa,bb,cc
max_sentences = 300
[maml]
meta_batch = 4
support_size = 4
query_size = 4
[optim]
lr = 1e-3
steps = 12
[checkpoint]
every = 4
keep = 10
[run]
log_every = 4
INI
  "$bin" tokenizer train --data generated --languages aa,bb,cc --vocab 300 --out "$work/spm.model" \
    --sentences-per-language 300 >/dev/null 2>&1
  S=(--set "model.tokenizer=$work/spm.model")
  "$bin" pretrain --config job.ini --out base "${S[@]}" --set optim.steps=5 --set optim.batch_size=8 >/dev/null
}

# tiny_job_ini FILE: the smallest pretraining job — one layer of width 16 on the generated
# corpus (language aa, 50 sentences; pretrain trains its 200-piece tokenizer), 3 steps of 4.
tiny_job_ini() {
  cat > "$1" <<'INI'
[model]
layers = 1
hidden = 16
heads = 2
ff = 32
max_seq_len = 16
tokenizer_vocab = 200
[data]
corpus = generated
languages = aa
pretrain_languages = aa
max_sentences = 50
[optim]
steps = 3
batch_size = 4
INI
}
