#!/usr/bin/env bash
# The experiment-v2 driver (scripts/experiment.sh with a grid.conf) on the smallest real job
# (ci-tiny sizes, WikiAnn): the bases are kept by step with their checksums, every cell of the
# grid runs (continued MLM shared by the PE methods, per-episode priming, multitask-matched,
# an SGD arm at the inner rate the driver calibrates against the Adam arm),
# results_long.csv has one row per (base, pe, arm, seed, language) with F1 in %, a rerun
# redoes nothing, --collect rebuilds the CSV, --bases-from starts a new run from kept bases
# (checksums checked, no pretraining, the same F1), --results-from skips the cells an earlier
# stretch finished and keeps their rows, and an unknown arm is refused.
# usage: experiment_grid.sh PEPRIME_BIN WORKDIR
set -euo pipefail
bin=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rm -rf "$work"
mkdir -p "$work"
run=$work/run
export PEPRIME_BIN=$bin
fail() { echo "FAIL: $*" >&2; exit 1; }
drive() { bash "$root/scripts/experiment.sh" --exp "$here/experiment-grid" --run "$run" --jobs 2 --no-report "$@"; }

echo "== 1. the whole grid"
drive >"$work/first.log" 2>&1 || { cat "$work/first.log"; fail "grid run failed"; }
for b in 10 20; do
    f=$run/bases/base-step$b.h5
    [[ -s "$f" ]] || fail "base $b not kept as $f"
    /usr/bin/python3 - "$f" "$(printf '%s/pretrain/checkpoints/pretrain-step%08d.h5' "$run" "$b")" <<'PY' ||
import sys, h5py, numpy as np
base, ck = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert "optimizer" not in base and "optimizer" in ck, "the base should be the checkpoint without its optimizer state"
assert base.attrs["step"] == ck.attrs["step"]
def cmp(name, o):
    if isinstance(o, h5py.Dataset):
        assert np.array_equal(o[()], ck["model"][name][()]), name
base["model"].visititems(cmp)
PY
        fail "base $b is not the stripped step-$b checkpoint"
done
(cd "$run/bases" && sha256sum -c --quiet SHA256SUMS) || fail "SHA256SUMS does not match the bases"
grep -q "^20,bases/base-step20.h5,$(sha256sum "$run/bases/base-step20.h5" | cut -c1-64)$" "$run/bases.csv" ||
    fail "bases.csv lacks the checksum of base 20"
[[ -s "$run/b20/prime/mlm-s1/base.h5" ]] || fail "the continued-MLM run is missing"
grep -q "continuing from the base" "$run/logs/pretrain-b20-adapter-mlm-s1.log" || fail "mlm did not start from the base"
# the primed files keep each language's inner-loop start beside its state
/usr/bin/python3 - "$run/b20/prime/adapter-maml-s1/primed.h5" <<'PY' || fail "no /tasks/<lang>.start in primed.h5"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    keys = set(f["tasks"].keys())
    assert any(k.endswith(".start") for k in keys) and all(k + ".start" in keys for k in keys if not k.endswith(".start")), keys
PY
head -1 "$run/results_long.csv" | grep -qx "base,pe,arm,seed,language,f1" || fail "results_long.csv header"
# 9 cells (5 + 2 prefix on base 20, 2 on base 10) x 2 targets
[[ $(($(wc -l <"$run/results_long.csv") - 1)) -eq 18 ]] || { cat "$run/results_long.csv"; fail "expected 18 rows"; }
grep -q "^20,prefix,mlm,1,hi," "$run/results_long.csv" || fail "no prefix mlm row"
! grep -q "^20,prefix,maml" "$run/results_long.csv" || fail "strong.first_pe_only arms ran with prefixes"
# the continued MLM ran once for both PE methods
[[ $(grep -c '^b20/[a-z]*-mlm-s1,pretrain,' "$run/timings.csv") -eq 1 ]] || fail "continued MLM ran more than once"
# the SGD arm ran at the calibrated rate, one of the candidates, not its job file's 99
lr=$(cat "$run/calibration/inner_lr")
[[ "$lr" == 0.01 || "$lr" == 0.1 ]] || fail "calibrated rate '$lr'"
[[ $(wc -l <"$run/calibration/calibration.csv") -eq 3 ]] || fail "calibration.csv should have 2 rates"
# its losses are the mean of each run's /log/meta_loss: what the last progress line (log_every =
# steps) printed to 4 decimals, within that rounding
while IFS=, read -r r l lref; do
  [[ $r == rate ]] && continue
  for x in "ref $lref" "sgd-$r $l"; do
    set -- $x
    printed=$(grep -o "prime step \([0-9]*\)/\1  loss [0-9.]*" "$run/logs/prime-calibration-$1.log" | tail -n 1 | awk '{print $NF}')
    awk -v a="$2" -v b="$printed" 'BEGIN {exit !(b != "" && a - b < 6e-5 && b - a < 6e-5)}' ||
      fail "calibration $1: $2 in calibration.csv, the log printed '$printed'"
  done
done <"$run/calibration/calibration.csv"
grep -q "maml.inner_lr=$lr" "$run/logs/prime-b20-adapter-maml-sgd-s1.log" || fail "maml-sgd did not get the calibrated rate"
for want in "20,adapter,mlm,1,hi," "20,adapter,mt-matched,1,sw," "10,adapter,maml,1,hi,"; do
    grep -q "^$want" "$run/results_long.csv" || fail "no row $want"
done
awk -F, 'NR > 1 && ($6 < 0 || $6 > 100) {bad = 1} END {exit bad}' "$run/results_long.csv" || fail "F1 outside [0, 100]"
# RUN/dev_f1.csv: one row per finished cell, the largest /log/dev_f1 of its adapted.h5 in %
head -1 "$run/dev_f1.csv" | grep -qx "base,pe,arm,seed,dev_f1" || fail "dev_f1.csv header"
[[ $(($(wc -l <"$run/dev_f1.csv") - 1)) -eq 9 ]] || { cat "$run/dev_f1.csv"; fail "dev_f1.csv: expected 9 cells"; }
/usr/bin/python3 - "$run" <<'PY' || fail "dev_f1.csv does not hold each adapted.h5's best dev F1"
import csv, sys, h5py
run = sys.argv[1]
for r in csv.DictReader(open(run + "/dev_f1.csv")):
    with h5py.File("%s/b%s/finetune/%s-%s-s%s/adapted.h5" % (run, r["base"], r["pe"], r["arm"], r["seed"]), "r") as f:
        want = 100.0 * float(f["log/dev_f1"][:].max())
    assert abs(float(r["dev_f1"]) - want) < 6e-5, (r, want)
PY

echo "== 2. a rerun redoes nothing; --calibrate reports the kept rate; --collect rebuilds the CSV"
n=$(wc -l <"$run/timings.csv")
cp "$run/results_long.csv" "$work/before.csv"
drive >"$work/second.log" 2>&1 || { cat "$work/second.log"; fail "rerun failed"; }
[[ $(wc -l <"$run/timings.csv") -eq $n ]] || fail "the rerun ran stages again"
drive --calibrate >"$work/calibrate.log" 2>&1 || { cat "$work/calibrate.log"; fail "--calibrate failed"; }
grep -q "inner SGD rate of the calibrated arms: $lr " "$work/calibrate.log" || { cat "$work/calibrate.log"; fail "--calibrate does not report the rate"; }
[[ $(wc -l <"$run/timings.csv") -eq $n ]] || fail "--calibrate ran stages again"
cp "$run/dev_f1.csv" "$work/dev_before.csv"
rm "$run/results_long.csv" "$run/dev_f1.csv"
drive --collect >"$work/collect.log" 2>&1 || { cat "$work/collect.log"; fail "--collect failed"; }
cmp -s "$work/before.csv" "$run/results_long.csv" || fail "--collect gives a different CSV"
cmp -s "$work/dev_before.csv" "$run/dev_f1.csv" || fail "--collect gives a different dev_f1.csv"

echo "== 3. the report reads the grid"
/usr/bin/python3 "$root/analysis/report.py" "$run" --out "$work/report" >"$work/report.log" 2>&1 ||
    { cat "$work/report.log"; fail "report failed"; }
grep -q "## Base 20, adapter" "$work/report/results_v2.md" || fail "no base-20 table"

echo "== 4. --bases-from: a later stretch of work starts from the kept bases, no pretraining"
kept=$work/kept-bases
cp -r "$run/bases" "$kept"
mkdir -p "$kept/calibration" && cp "$run/calibration/inner_lr" "$run/calibration/calibration.csv" "$kept/calibration/"
run2=$work/run2
bash "$root/scripts/experiment.sh" --exp "$here/experiment-grid" --run "$run2" --jobs 2 --no-report --bases-from "$kept" \
    --bases 10 --arms none,maml >"$work/from.log" 2>&1 || { cat "$work/from.log"; fail "--bases-from run failed"; }
grep -q "bases ready in .* no pretraining" "$work/from.log" || fail "--bases-from did not skip pretraining"
[[ ! -e "$run2/pretrain" ]] || fail "--bases-from ran pretraining"
cmp -s "$run/bases.csv" "$run2/bases.csv" || fail "bases.csv differs between the runs"
cmp -s "$run/calibration/inner_lr" "$run2/calibration/inner_lr" || fail "the calibrated rate was not restored"
# the same cells from the same bases give the same F1
diff <(grep '^10,' "$run/results_long.csv") <(tail -n +2 "$run2/results_long.csv") || fail "cells from the kept bases differ"

echo "== 4b. --results-from: a later stretch on a fresh machine skips the committed cells"
# the earlier stretches' rows without base 10's maml cell: only that cell runs again
grep -v '^10,adapter,maml,' "$run/results_long.csv" >"$work/earlier.csv"
run4=$work/run4
bash "$root/scripts/experiment.sh" --exp "$here/experiment-grid" --run "$run4" --jobs 2 --no-report --bases-from "$kept" \
    --results-from "$work/earlier.csv" >"$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "--results-from run failed"; }
grep -q "skip b20/adapter-maml-s1: finished in an earlier stretch" "$work/resume.log" || { cat "$work/resume.log"; fail "no skip message"; }
[[ "$(tail -n +2 "$run4/timings.csv" | cut -d, -f1 | sort -u)" == "b10/adapter-maml-s1" ]] ||
    { cat "$run4/timings.csv"; fail "--results-from ran other cells than the missing one"; }
cmp -s "$run/results_long.csv" "$run4/results_long.csv" || { diff "$run/results_long.csv" "$run4/results_long.csv"; fail "merged CSV differs"; }
rm "$run4/results_long.csv"
bash "$root/scripts/experiment.sh" --exp "$here/experiment-grid" --run "$run4" --collect >"$work/collect4.log" 2>&1 ||
    { cat "$work/collect4.log"; fail "--collect after --results-from failed"; }
cmp -s "$run/results_long.csv" "$run4/results_long.csv" || fail "--collect forgot the earlier rows"
# --dry-run reads the file in place: it lists the same 8 skips and copies nothing
bash "$root/scripts/experiment.sh" --exp "$here/experiment-grid" --run "$work/run5" --no-report --bases-from "$kept" \
    --results-from "$work/earlier.csv" --dry-run >"$work/dry.log" 2>&1 || { cat "$work/dry.log"; fail "--dry-run failed"; }
[[ $(grep -c "experiment: skip " "$work/dry.log") -eq 8 && ! -e "$work/run5/results_earlier.csv" ]] ||
    { cat "$work/dry.log"; fail "--dry-run with --results-from"; }
# a file that is not a results_long.csv is refused, naming the line
printf 'base,pe,arm,seed,language,f1\n20,adapter,maml,1,hi,250\n' >"$work/badearlier.csv"
if bash "$root/scripts/experiment.sh" --exp "$here/experiment-grid" --run "$run4" --no-report \
    --results-from "$work/badearlier.csv" >"$work/badearlier.log" 2>&1; then fail "an F1 of 250 was accepted"; fi
grep -q "line 2: 20,adapter,maml,1,hi,250 is not" "$work/badearlier.log" || { cat "$work/badearlier.log"; fail "no clear message for a bad --results-from"; }

# a damaged kept base is refused before anything runs
printf 'x' >>"$kept/base-step10.h5"
if bash "$root/scripts/experiment.sh" --exp "$here/experiment-grid" --run "$work/run3" --no-report --bases-from "$kept" \
    >"$work/damaged.log" 2>&1; then fail "a damaged kept base was accepted"; fi
grep -q "does not match its line in SHA256SUMS" "$work/damaged.log" || { cat "$work/damaged.log"; fail "no clear message for a damaged base"; }

echo "== 5. an unknown arm is refused"
if drive --arms maml,nosuch >"$work/bad.log" 2>&1; then fail "unknown arm accepted"; fi
grep -q "unknown arm 'nosuch'" "$work/bad.log" || { cat "$work/bad.log"; fail "no clear message for an unknown arm"; }
echo "experiment_grid: ok"
