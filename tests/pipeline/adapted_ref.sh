#!/usr/bin/env bash
# checkpoint.encoder: the default adapted.h5 holds PE + head only and names its base by path and
# SHA-256 (no /model group; far smaller than the self-contained copy), evaluate gives the same
# F1 from it as from the copy, and so does export-hf's model.safetensors; a moved base is found
# with evaluate --init / export-hf --base, and a different base is refused (exit 2) with a
# message naming both checksums; sha256sum agrees with the stored SHA-256.
#   adapted_ref.sh PEPRIME_BIN WORKDIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
B="$1"; W="$2"
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W"; cd "$W"
tiny_job_ini job.ini
cat >> job.ini <<'INI'
[data]
source = aa
targets = aa
[pe]
method = adapter
INI
"$B" pretrain --config job.ini --out base > pretrain.log 2>&1 || { cat pretrain.log; fail "pretrain failed"; }
for enc in reference copy; do
  "$B" finetune --config job.ini --init base/base.h5 --out "ft-$enc" --set checkpoint.encoder=$enc \
    --set optim.steps=4 --set optim.eval_every=2 > "ft-$enc.log" 2>&1 || { cat "ft-$enc.log"; fail "finetune ($enc) failed"; }
  "$B" evaluate --config job.ini --model "ft-$enc/adapted.h5" --out "ev-$enc" > "ev-$enc.log" 2>&1 || {
    cat "ev-$enc.log"; fail "evaluate ($enc) failed"; }
done
/usr/bin/python3 - <<'PY' || fail "the reference file is not what it should be"
import h5py, hashlib, os
r, c = h5py.File("ft-reference/adapted.h5", "r"), h5py.File("ft-copy/adapted.h5", "r")
assert "model" not in r and "model" in c, (list(r), list(c))
want = hashlib.sha256(open("base/base.h5", "rb").read()).hexdigest()
got = r.attrs["base_sha256"]
got = got.decode() if isinstance(got, bytes) else got
path = r.attrs["base_path"]
path = path.decode() if isinstance(path, bytes) else path
assert got == want, (got, want)
assert os.path.samefile(path, "base/base.h5"), path
for g in ("pe", "head"):
    for k in r[g]:
        assert (r[g][k][...] == c[g][k][...]).all(), (g, k)
print("adapted.h5: %d bytes by reference, %d self-contained" % (os.path.getsize("ft-reference/adapted.h5"),
                                                               os.path.getsize("ft-copy/adapted.h5")))
PY
cmp <(grep -v '"model"' ev-reference/results.json) <(grep -v '"model"' ev-copy/results.json) >/dev/null ||
  diff ev-reference/results.csv ev-copy/results.csv || fail "evaluate differs between the reference and the copy"
diff ev-reference/results.csv ev-copy/results.csv || fail "results.csv differs"
"$B" inspect ft-reference/adapted.h5 | grep -q "encoder        not in this file" || fail "inspect does not name the base"
# the base moved: found with --init; export-hf with --base gives the copy's weights
mv base moved
set +e
"$B" evaluate --config job.ini --model ft-reference/adapted.h5 --out ev-missing > missing.log 2>&1; st=$?
set -e
[ "$st" -eq 2 ] && grep -q "cannot be read: give the base checkpoint" missing.log || { cat missing.log; fail "a missing base: status $st"; }
"$B" evaluate --config job.ini --model ft-reference/adapted.h5 --init moved/base.h5 --out ev-moved > moved.log 2>&1 || {
  cat moved.log; fail "evaluate --init (moved base) failed"; }
diff ev-moved/results.csv ev-copy/results.csv || fail "the moved base gives other results"
"$B" export-hf --model ft-reference/adapted.h5 --base moved/base.h5 --spm moved/spm.model --out hf-ref > /dev/null 2>&1 || fail "export-hf --base failed"
"$B" export-hf --model ft-copy/adapted.h5 --spm moved/spm.model --out hf-copy > /dev/null 2>&1 || fail "export-hf (copy) failed"
cmp hf-ref/model.safetensors hf-copy/model.safetensors || fail "export-hf from the pair differs from the self-contained export"
# another base (a different pretraining): refused, naming both checksums
"$B" pretrain --config job.ini --out other --set run.seed=9 --set "model.tokenizer=$W/moved/spm.model" > other.log 2>&1 || fail "second pretrain failed"
set +e
"$B" evaluate --config job.ini --model ft-reference/adapted.h5 --init other/base.h5 --out ev-other > other-ev.log 2>&1; st=$?
set -e
[ "$st" -eq 2 ] && grep -q "was fine-tuned on a base with SHA-256" other-ev.log || { cat other-ev.log; fail "another base: status $st"; }
echo "adapted-by-reference checks passed"
