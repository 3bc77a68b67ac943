# scripts/experiment_grid.sh: experiment v2's part of scripts/experiment.sh (sourced by it,
# never run): the cells of EXP/grid.conf over several bases, the bases kept from one
# pretraining run with their checksums, and RUN/results_long.csv. Uses experiment.sh's
# variables (exp, run, seeds, arms, pes, the *_set flags, bases_opt, sets, dry, slurm) and its
# stage/say/die/split functions.
# shellcheck shell=bash

# grid.conf is this driver's own file, not a peprime job file: flat `key = value` lines (lists
# comma-separated, spaces ignored) and `#` comments, no sections and no `include`, and keys that
# are no config keys, so `peprime config` (which refuses unknown keys) cannot read it.
# grid_read parses it once, strictly: a line that is not `key = value` with one of these keys,
# or a key given twice, stops the driver naming the file and line.
grid_keys=" bases seeds strong.arms strong.pe strong.first_pe_only weak.arms weak.pe calibrate.arms calibrate.reference calibrate.rates calibrate.steps "
declare -A grid_conf=()
grid_read() {
  local f=$1 line key n=0
  while IFS= read -r line || [[ -n "$line" ]]; do
    n=$((n + 1))
    line=${line%%#*}
    if [[ "$line" =~ ^[[:space:]]*$ ]]; then continue; fi
    [[ "$line" =~ ^[[:space:]]*([a-z_.]+)[[:space:]]*=(.*)$ ]] ||
      die "$f:$n: not a 'key = value' line (grid.conf has no sections and no include): '$line'"
    key=${BASH_REMATCH[1]}
    [[ "$grid_keys" == *" $key "* ]] || die "$f:$n: unknown key '$key' (grid.conf's keys:${grid_keys% })"
    [[ -z "${grid_conf[$key]+set}" ]] || die "$f:$n: '$key' is given twice"
    grid_conf[$key]=${BASH_REMATCH[2]//[[:space:]]/}
  done <"$f"
}
# grid_get KEY: the value of a grid.conf key; empty when absent
grid_get() { printf '%s' "${grid_conf[$1]:-}"; }
grid_read "$exp/grid.conf"
# grid_log_stat CHECKPOINT SERIES mean|max: the mean or the largest value of the checkpoint's
# /log/SERIES (h5dump, full precision); empty when the file or the series is missing
grid_log_stat() {
  h5dump -A 0 -y -w 0 -m '%.9g' -d "/log/$2" "$1" 2>/dev/null |
    awk -v stat="$3" '/^ *DATA \{/ {d = 1; next} d && /}/ {d = 0}
         d {gsub(/,/, " "); for (i = 1; i <= NF; i++) {s += $i; if (!n || $i > m) m = $i; n++}}
         END {if (n) printf "%.6g\n", stat == "max" ? m : s / n}'
}
# in_list ITEM LIST: ITEM is an item of the comma-separated LIST (no pipe: pipefail-safe)
in_list() { [[ ",$2," == *",$1,"* ]]; }
# keep LIST FILTER: the items of LIST that are in FILTER (FILTER empty: all)
keep() {
  local x
  for x in $(split "$1"); do
    [[ -z "$2" ]] || in_list "$x" "$2" || continue
    printf '%s\n' "$x"
  done | paste -sd, -
}

g_bases=$(grid_get bases)
[[ "$g_bases" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "$exp/grid.conf: 'bases' must list pretraining steps, got '$g_bases'"
g_strong=${g_bases##*,}
((seeds_set)) || seeds=$(grid_get seeds)
[[ "$seeds" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "seeds '$seeds' (grid.conf or --seeds) is not a list of numbers"
if [[ -n "$bases_opt" ]]; then
  for b in $(split "$bases_opt"); do in_list "$b" "$g_bases" || die "--bases: $b is not one of grid.conf's bases ($g_bases)"; done
fi
for key in strong.arms weak.arms; do
  for a in $(split "$(grid_get "$key")"); do exp_arm_ok "$a" || die "$exp/grid.conf: $key names arm '$a', but there is no arms/$a.ini"; done
done
# conf_get FILE SECTION.KEY: a key of a job file as peprime resolves it (includes and defaults
# applied): `peprime config --config FILE`, not a pattern over the file's own lines
grid_bin=${PEPRIME_BIN:-$PEP_ROOT/build/peprime}
[[ -x "$grid_bin" ]] || pep_build "$PEP_ROOT/build" >/dev/null
conf_get() {
  local text
  text=$("$grid_bin" config --config "$1") || die "cannot read $1 ('peprime config --config $1' failed)"
  awk -v s="${2%%.*}" -v k="${2#*.}" '/^\[/ {sec = substr($0, 2, length($0) - 2); next}
    sec == s && $1 == k {sub(/^[^=]*=[ \t]*/, ""); print; exit}' <<<"$text"
}
pretrain_steps=$(conf_get "$exp/pretrain.ini" optim.steps)
ckpt_every=$(conf_get "$exp/pretrain.ini" checkpoint.every)
for b in $(split "$g_bases"); do
  ((b <= pretrain_steps)) || die "grid.conf base $b is beyond pretrain.ini's steps = $pretrain_steps"
  ((b == pretrain_steps || (ckpt_every > 0 && b % ckpt_every == 0))) ||
    die "grid.conf base $b is not a checkpoint step of pretrain.ini (checkpoint.every = $ckpt_every)"
done

# the arms and PE methods of base B (grid.conf, restricted by --arms/--pe)
grid_arms() { if [[ "$1" == "$g_strong" ]]; then keep "$(grid_get strong.arms)" "$( ((arms_set)) && echo "$arms")"; else keep "$(grid_get weak.arms)" "$( ((arms_set)) && echo "$arms")"; fi; }
grid_pes() { if [[ "$1" == "$g_strong" ]]; then keep "$(grid_get strong.pe)" "$( ((pes_set)) && echo "$pes")"; else keep "$(grid_get weak.pe)" "$( ((pes_set)) && echo "$pes")"; fi; }
grid_base_list() { keep "$g_bases" "$bases_opt"; }
# the PE methods of ARM on base B: grid_pes, only the first of them for grid.conf's
# `strong.first_pe_only` arms on the strongest base
grid_pes_for() {
  local p
  p=$(grid_pes "$1")
  if [[ "$1" == "$g_strong" ]] && in_list "$2" "$(grid_get strong.first_pe_only)"; then
    keep "$(grid_get strong.pe | cut -d, -f1)" "$p"
  else
    echo "$p"
  fi
}
base_file() { echo "$run/bases/base-step$1.h5"; }

grid_cells() {
  local s b p a
  cellfn=grid_cell
  for s in $(split "$seeds"); do # seed-major: an interrupted grid still has whole seeds
    for b in $(split "$(grid_base_list)" | sort -rn); do # strongest base first
      for p in $(split "$(grid_pes "$b")"); do
        for a in $(split "$(grid_arms "$b")"); do
          in_list "$p" "$(grid_pes_for "$b" "$a")" && cells+=("$b $p $a $s")
        done
      done
    done
  done
  say "${#cells[@]} cells (bases $(grid_base_list); seeds $seeds; grid.conf of $exp) into $run; $jobs at a time, $threads BLAS thread(s) each"
}

# grid_bases: RUN/bases/base-step<N>.h5, the pretraining checkpoints at grid.conf's steps
# without their optimizer state (`peprime strip`: a third of the size, what a later stretch of
# work needs), the tokenizer beside them, SHA256SUMS and bases.csv
grid_bases() {
  ((dry)) && return 0
  mkdir -p "$run/bases"
  local b src dst
  for b in $(split "$g_bases"); do
    dst=$(base_file "$b")
    [[ -s "$dst" ]] && continue
    src=$(printf '%s/pretrain/checkpoints/pretrain-step%08d.h5' "$run" "$b")
    [[ -s "$src" ]] || die "base $b: $src is missing (was it rotated away? pretrain.ini must keep every checkpoint: checkpoint.keep >= steps / every)"
    "${PEPRIME_BIN:-$PEP_ROOT/build/peprime}" strip "$src" -o "$dst" >/dev/null || die "cannot keep $src as $dst (peprime strip failed)"
  done
  [[ -s "$run/bases/spm.model" ]] || ln -f "$run/pretrain/spm.model" "$run/bases/spm.model" 2>/dev/null ||
    cp "$run/pretrain/spm.model" "$run/bases/spm.model" || die "cannot copy the tokenizer into $run/bases"
  (cd "$run/bases" && sha256sum base-step*.h5 spm.model >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
  grid_bases_csv
}

# grid_bases_csv: RUN/bases.csv (base, file, sha256) from RUN/bases/SHA256SUMS
grid_bases_csv() {
  local b
  {
    echo "base,file,sha256"
    for b in $(split "$g_bases"); do
      printf '%s,bases/base-step%s.h5,%s\n' "$b" "$b" "$(awk -v f="base-step$b.h5" '$2 == f {print $1}' "$run/bases/SHA256SUMS")"
    done
  } >"$run/bases.csv"
  say "bases: $(paste -sd' ' "$run/bases.csv" | cut -c1-200) (RUN/bases/SHA256SUMS)"
}

# grid_bases_ready: every base of grid.conf and the tokenizer are in RUN/bases and match
# RUN/bases/SHA256SUMS (then pretraining is not needed)
grid_bases_ready() {
  local b
  [[ -s "$run/bases/SHA256SUMS" && -s "$run/bases/spm.model" ]] || return 1
  local want=" spm.model"
  for b in $(split "$g_bases"); do [[ -s "$(base_file "$b")" ]] || return 1; want+="| base-step$b.h5"; done
  # the files this grid uses: SHA256SUMS may list more bases (a grid over a subset of v2's)
  (cd "$run/bases" && grep -E "^[0-9a-f]{64} [ *]?(${want// /})\$" SHA256SUMS | sha256sum --quiet -c -) >/dev/null 2>&1
}

# grid_bases_from DIR: the bases of an earlier stretch of work — a copy of its RUN/bases
# (base-step<N>.h5, spm.model, SHA256SUMS, and calibration/inner_lr + calibration.csv once
# calibrated), e.g. docs/results/bases — into RUN/bases after checking every checksum
grid_bases_from() {
  local d=$1 b f
  [[ -s "$d/SHA256SUMS" ]] || die "--bases-from $d: no SHA256SUMS there (a copy of an earlier run's RUN/bases is expected)"
  for b in $(split "$g_bases"); do
    [[ -s "$d/base-step$b.h5" ]] || die "--bases-from $d: base-step$b.h5 (grid.conf base $b) is missing"
  done
  [[ -s "$d/spm.model" ]] || die "--bases-from $d: spm.model is missing"
  (cd "$d" && sha256sum --quiet -c SHA256SUMS) ||
    die "--bases-from $d: a file does not match its line in SHA256SUMS (damaged or replaced); restore it from git"
  mkdir -p "$run/bases"
  for f in SHA256SUMS spm.model $(for b in $(split "$g_bases"); do echo "base-step$b.h5"; done); do
    if [[ -e "$run/bases/$f" ]]; then
      cmp -s "$d/$f" "$run/bases/$f" && continue
      die "--bases-from $d: $run/bases/$f exists and differs: this run has other bases; use another --run"
    fi
    ln -f "$d/$f" "$run/bases/$f" 2>/dev/null || cp "$d/$f" "$run/bases/$f" || die "cannot copy $d/$f into $run/bases"
  done
  if [[ -s "$d/calibration/inner_lr" && ! -s "$run/calibration/inner_lr" ]]; then
    mkdir -p "$run/calibration"
    cp "$d/calibration/inner_lr" "$d/calibration/calibration.csv" "$run/calibration/" 2>/dev/null ||
      cp "$d/calibration/inner_lr" "$run/calibration/"
  fi
  grid_bases_csv
}

# grid_results_from CSV: the results_long.csv of earlier stretches of work (e.g. the committed
# docs/results/results_long.csv) as RUN/results_earlier.csv, after checking its form: its cells
# are not run again and grid_collect keeps its rows (--dry-run: read where it is, nothing copied)
earlier_csv=$run/results_earlier.csv
grid_results_from() {
  local f=$1 bad
  [[ -s "$f" ]] || die "--results-from $f: file not found or empty"
  [[ "$(head -n 1 "$f" | tr -d '\r')" == "base,pe,arm,seed,language,f1" ]] ||
    die "--results-from $f: the header must be base,pe,arm,seed,language,f1 (a results_long.csv of scripts/experiment.sh)"
  bad=$(awk -F, 'NR > 1 && !(NF == 6 && $1 ~ /^[1-9][0-9]*$/ && $2 ~ /^[a-z]+$/ && $3 ~ /^[a-z][a-z0-9-]*$/ &&
                   $4 ~ /^[0-9]+$/ && $5 != "" && $6 ~ /^[0-9.]+$/ && $6 + 0 <= 100) {print NR ": " $0; exit}' "$f")
  [[ -z "$bad" ]] || die "--results-from $f: line $bad is not base,pe,arm,seed,language,f1 with F1 in [0, 100]"
  if ((dry)); then
    earlier_csv=$f
  else
    cp "$f" "$run/.results_earlier.csv.tmp" && mv "$run/.results_earlier.csv.tmp" "$run/results_earlier.csv" ||
      die "cannot copy $f into $run/results_earlier.csv"
  fi
  say "earlier results: $(awk -F, 'NR > 1 {c[$1 "/" $2 "-" $3 "-s" $4]} END {print length(c)}' "$f") finished cells in $f ($( ((dry)) && echo "dry run: read in place" || echo "kept as RUN/results_earlier.csv"); they are not run again)"
}
# grid_done_earlier BASE PE ARM SEED: the cell is in RUN/results_earlier.csv
grid_done_earlier() {
  [[ -s "$earlier_csv" ]] && awk -F, -v k="$1,$2,$3,$4" 'NR > 1 && $1 "," $2 "," $3 "," $4 == k {f = 1; exit} END {exit !f}' "$earlier_csv"
}

# grid_inner_lr: the inner SGD rate of grid.conf's `calibrate.arms`, chosen once on the
# strongest base (adapters, seed 1) and kept in RUN/calibration/inner_lr. With the encoder
# frozen (optim.lr = 0) the reference arm (`calibrate.reference`: the Adam inner loop that
# simulates fine-tuning) and every candidate rate of `calibrate.rates` (SGD, as
# arms/<first calibrate arm>.ini) run `calibrate.steps` meta-steps of the same episodes; the
# rate whose mean query loss after adaptation is closest to the reference's wins. Prints it.
grid_inner_lr() {
  local cal=$run/calibration
  mkdir -p "$cal"
  (
    flock 6
    [[ -s "$cal/inner_lr" ]] && exit 0
    local ref steps rates arm1 base r loss best="" bestd=""
    ref=$(grid_get calibrate.reference) steps=$(grid_get calibrate.steps) rates=$(grid_get calibrate.rates)
    arm1=$(grid_get calibrate.arms | cut -d, -f1)
    base=$(base_file "$g_strong")
    local sel=(--set pe.method=adapter --set run.seed=1 --set optim.lr=0 --set "optim.steps=$steps"
               --set "run.log_every=$steps" --init "$base")
    STAGE_CONF=$exp/arms/$ref.ini stage calibration/ref prime "${sel[@]}" --out "$cal/ref" || exit 1
    # the mean meta-loss over all the steps: the run's /log/meta_loss (one row per meta-step)
    meanloss() { grid_log_stat "$cal/$1/primed.h5" meta_loss mean; }
    local lref
    lref=$(meanloss ref)
    [[ -n "$lref" ]] || { say "calibration: no /log/meta_loss in $cal/ref/primed.h5"; exit 1; }
    echo "rate,query_loss_after_adaptation,reference_loss" >"$cal/calibration.csv"
    for r in $(split "$rates"); do
      STAGE_CONF=$exp/arms/$arm1.ini stage "calibration/sgd-$r" prime "${sel[@]}" --set "maml.inner_lr=$r" \
        --out "$cal/sgd-$r" || continue
      loss=$(meanloss "sgd-$r")
      [[ -n "$loss" ]] || continue
      echo "$r,$loss,$lref" >>"$cal/calibration.csv"
      local d
      d=$(awk -v a="$loss" -v b="$lref" 'BEGIN {d = a - b; if (d < 0) d = -d; if (a != a) d = 1e30; print d}')
      if [[ -z "$bestd" ]] || awk -v a="$d" -v b="$bestd" 'BEGIN {exit !(a < b)}'; then best=$r bestd=$d; fi
    done
    [[ -n "$best" ]] || { say "calibration: no candidate rate finished (see $cal/calibration.csv)"; exit 1; }
    echo "$best" >"$cal/inner_lr"
    say "calibration: inner SGD rate $best (query loss after adaptation closest to $ref's $lref; $cal/calibration.csv)"
  ) 6>"$cal/.lock" >&2 || return 1 # stdout carries the rate only
  cat "$cal/inner_lr"
}

# grid_cell BASE PE ARM SEED: [prime | continued MLM] -> finetune -> evaluate, then the long CSV
grid_cell() {
  local b=$1 pe=$2 arm=$3 seed=$4
  local rd=$run/b$b c=$2-$3-s$4 base
  local id=b$b/$c
  base=$(base_file "$b")
  local sel=(--set "pe.method=$pe" --set "run.seed=$seed")
  if [[ ! -s "$rd/evaluate/$c/results.csv" ]] && grid_done_earlier "$b" "$pe" "$arm" "$seed"; then
    say "skip $id: finished in an earlier stretch (RUN/results_earlier.csv)"
    return 0
  fi
  rm -f "$run/failed/b$b-$c"
  local init=$rd/prime/$c/primed.h5 ft=$exp/finetune.ini
  if [[ "$arm" == mlm ]]; then
    # continued masked LM does not depend on the PE method: one run per (base, seed), shared
    # by the PE methods' cells (a lock keeps two workers from running it twice)
    mkdir -p "$rd/prime"
    init=$rd/prime/mlm-s$seed/base.h5
    (
      flock 7
      STAGE_CONF=$exp/mlm.ini stage "$id" pretrain --set "run.seed=$seed" --init "$base" --out "$rd/prime/mlm-s$seed"
    ) 7>"$rd/prime/.mlm-s$seed.lock" || return 0
  elif [[ "$arm" != none ]]; then
    local cal=()
    if in_list "$arm" "$(grid_get calibrate.arms)"; then
      local lr
      lr=$( ((dry)) && echo CALIBRATED || grid_inner_lr) || { say "FAILED $id: the inner-rate calibration failed"; return 0; }
      cal=(--set "maml.inner_lr=$lr")
    fi
    STAGE_CONF=$exp/arms/$arm.ini stage "$id" prime "${sel[@]}" "${cal[@]}" --init "$base" --out "$rd/prime/$c" || return 0
  fi
  [[ "$arm" == none ]] && init=$base
  [[ -f "$exp/arms/$arm.finetune.ini" ]] && ft=$exp/arms/$arm.finetune.ini
  STAGE_CONF=$ft stage "$id" finetune "${sel[@]}" --init "$init" --out "$rd/finetune/$c" || return 0
  stage "$id" evaluate --set "pe.method=$pe" --model "$rd/finetune/$c/adapted.h5" --out "$rd/evaluate/$c" || return 0
  ((dry)) && return 0
  grid_collect
  say "done $id: $(awk -F, 'NR > 1 && $1 != "micro" && $1 != "macro" {printf "%s %.1f  ", $1, 100 * $4}' "$rd/evaluate/$c/results.csv")"
}

# grid_collect: RUN/results_long.csv from every finished cell, and the rows of
# RUN/results_earlier.csv's cells that did not finish here (atomic, under a lock)
grid_collect() {
  (
    flock 8
    local tmp=$run/.results_long.csv.tmp f rel b cell pe arm seed dev
    echo "base,pe,arm,seed,language,f1" >"$tmp"
    for f in "$run"/b*/evaluate/*/results.csv; do
      [[ -s "$f" && -s "${f%.csv}.json" ]] || continue
      rel=${f#"$run"/b}
      b=${rel%%/*}
      cell=${rel#*/evaluate/}
      cell=${cell%/results.csv}
      [[ "$cell" =~ ^([a-z]+)-([a-z][a-z0-9-]*)-s([0-9]+)$ ]] || continue
      pe=${BASH_REMATCH[1]} arm=${BASH_REMATCH[2]} seed=${BASH_REMATCH[3]}
      awk -F, -v p="$b,$pe,$arm,$seed" 'NR > 1 && $1 != "micro" && $1 != "macro" && $1 != "" {printf "%s,%s,%.4f\n", p, $1, 100 * $4}' "$f"
    done >"$tmp.here"
    # the earlier stretches' rows of the cells that did not finish here
    if [[ -s "$earlier_csv" ]]; then
      awk -F, -v here="$tmp.here" 'BEGIN {while ((getline l < here) > 0) {split(l, a, ","); h[a[1] "," a[2] "," a[3] "," a[4]]}}
                                   FNR > 1 && !(($1 "," $2 "," $3 "," $4) in h)' "$earlier_csv" >>"$tmp.here"
    fi
    sort -t, -k1,1n -k2,2 -k3,3 -k4,4n -k5,5 "$tmp.here" >>"$tmp"
    rm -f "$tmp.here"
    mv "$tmp" "$run/results_long.csv"
    # English dev F1 of each finished cell's kept model (the largest /log/dev_f1 of its
    # adapted.h5), so that it is committed beside the rows and outlives the run folder
    echo "base,pe,arm,seed,dev_f1" >"$tmp"
    for f in "$run"/b*/finetune/*/adapted.h5; do
      rel=${f#"$run"/b}
      b=${rel%%/*}
      cell=${rel#*/finetune/}
      cell=${cell%/adapted.h5}
      [[ -s "$run/b$b/evaluate/$cell/results.csv" && "$cell" =~ ^([a-z]+)-([a-z][a-z0-9-]*)-s([0-9]+)$ ]] || continue
      dev=$(grid_log_stat "$f" dev_f1 max)
      if [[ -n "$dev" ]]; then
        awk -v p="$b,${BASH_REMATCH[1]},${BASH_REMATCH[2]},${BASH_REMATCH[3]}" -v d="$dev" 'BEGIN {printf "%s,%.4f\n", p, 100 * d}'
      fi
    done | sort -t, -k1,1n -k2,2 -k3,3 -k4,4n >>"$tmp"
    mv "$tmp" "$run/dev_f1.csv"
  ) 8>"$run/.results_long.lock"
}

# --slurm / --collect: the entry point when experiment.sh does not run the cells itself
grid_main() {
  if ((collect_only)); then
    grid_collect
    say "wrote $run/results_long.csv ($(($(wc -l <"$run/results_long.csv") - 1)) rows)"
    return 0
  fi
  # Slurm: the bases must exist (pretraining is one long job: submit it, then run this again)
  local b missing=0
  for b in $(split "$(grid_base_list)"); do [[ -s "$(base_file "$b")" ]] || missing=1; done
  if ((missing)); then
    if [[ -s "$run/pretrain/base.h5" ]]; then
      grid_bases
    else
      local args=(--config "$exp/pretrain.ini" "${sets[@]}" --out "$run/pretrain")
      ((dry)) && args+=(--dry-run)
      local -a extra
      read -r -a extra <<<"$sbatch_extra"
      if ((dry)); then bash "$PEP_ROOT/slurm/pretrain.sh" "${args[@]}"; else sbatch "${extra[@]}" "$PEP_ROOT/slurm/pretrain.sh" "${args[@]}"; fi
      say "pretraining submitted; when it has finished, run the same command again to submit the cells"
      return 0
    fi
  fi
  local a pes_b arm_cfg
  for b in $(split "$(grid_base_list)"); do
    for a in $(split "$(grid_arms "$b")"); do
      pes_b=$(grid_pes_for "$b" "$a")
      [[ -n "$pes_b" ]] || continue
      local args=(--base "$(base_file "$b")" --run "$run/b$b" --variants "$a" --seeds "$seeds" --pe-methods "$pes_b"
                  --pretrain-config "$exp/pretrain.ini" --evaluate-config "$exp/evaluate.ini" "${sets[@]}")
      arm_cfg=$exp/arms/$a.ini
      [[ "$a" == mlm ]] && arm_cfg=$exp/mlm.ini && args+=(--prime-stage pretrain)
      [[ "$a" == none ]] && arm_cfg=$exp/prime.ini
      if in_list "$a" "$(grid_get calibrate.arms)"; then
        if [[ ! -s "$run/calibration/inner_lr" ]]; then
          say "arm $a not submitted: its inner SGD rate is not calibrated yet; run scripts/experiment.sh --exp $exp --run $run --calibrate (locally), then this command again"
          continue
        fi
        args+=(--set "maml.inner_lr=$(cat "$run/calibration/inner_lr")")
      fi
      args+=(--prime-config "$arm_cfg" --finetune-config "$exp/finetune.ini")
      [[ -f "$exp/arms/$a.finetune.ini" ]] && args[${#args[@]} - 1]=$exp/arms/$a.finetune.ini
      [[ -n "$sbatch_extra" ]] && args+=(--sbatch "$sbatch_extra")
      ((dry)) && args+=(--dry-run)
      PEP_FREE_VARIANTS=1 bash "$PEP_ROOT/slurm/pipeline.sh" "${args[@]}" || die "submitting base $b arm $a failed"
    done
  done
  say "submitted; when the jobs have finished: scripts/experiment.sh --exp $exp --run $run --collect"
}
