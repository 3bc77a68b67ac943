#!/usr/bin/env bash
# `peprime strip`: the copy has the input's weights, root attributes and log, and no optimizer
# or task states; it is smaller, verifies, and serves as --init exactly as the original does
# (continued pretraining from either gives the same model); bad input is a clear error that
# leaves no file behind.
#   strip.sh PEPRIME_BIN WORKDIR
set -euo pipefail
source "$(dirname "$0")/../pipeline/lib.sh"
B="$1"; W="$2"; PY=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W"; cd "$W"
tiny_job_ini job.ini
"$B" pretrain --config job.ini --out run >pretrain.log 2>&1 || { cat pretrain.log; fail "pretrain failed"; }
"$B" strip run/base.h5 -o base-stripped.h5 >strip.log 2>&1 || { cat strip.log; fail "strip failed"; }
grep -q "no optimizer state" strip.log || fail "strip did not say what it wrote: $(cat strip.log)"
[ "$(stat -c %s base-stripped.h5)" -lt "$(stat -c %s run/base.h5)" ] || fail "the stripped copy is not smaller"
"$B" inspect --verify base-stripped.h5 >inspect.log 2>&1 || { cat inspect.log; fail "inspect --verify rejects the copy"; }

"$PY" - run/base.h5 base-stripped.h5 <<'PY' || fail "the copy differs from the input"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert "optimizer" in a and "optimizer" not in b and "tasks" not in b, (list(a), list(b))
def tensors(f):
    out = {}
    for g in ("model", "pe", "head"):
        if g in f:
            f[g].visititems(lambda n, o: out.__setitem__(g + "/" + n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
ta, tb = tensors(a), tensors(b)
assert ta.keys() == tb.keys() and len(ta) > 5, (sorted(ta), sorted(tb))
for k in ta:
    assert ta[k].dtype == tb[k].dtype and np.array_equal(ta[k], tb[k]), k
for k in a.attrs:
    if k in ("created", "world_size", "git_revision"):
        continue
    assert k in b.attrs, "attribute %s missing" % k
    assert np.array_equal(np.asarray(a.attrs[k]), np.asarray(b.attrs[k])), "attribute %s differs" % k
for n in a["log"]:
    assert np.array_equal(a["log"][n][()], b["log"][n][()]), "log " + n
print("copy ok:", len(ta), "tensors,", len(a["log"]), "log series")
PY

# as --init: continued pretraining from the original and from the copy give the same model
cp run/spm.model .
for f in run/base.h5 base-stripped.h5; do
  o=cont-$(basename "$f" .h5)
  "$B" pretrain --config job.ini --init "$f" --set model.tokenizer="$W/spm.model" --set optim.steps=2 --out "$o" \
    >"$o.log" 2>&1 || { cat "$o.log"; fail "pretrain --init $f failed"; }
done
"$PY" - cont-base/base.h5 cont-base-stripped/base.h5 <<'PY' || fail "continuing from the copy differs"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
n = 0
def cmp(name, o):
    global n
    if isinstance(o, h5py.Dataset):
        assert np.array_equal(o[()], b["model"][name][()]), name
        n += 1
a["model"].visititems(cmp)
print("continued runs equal:", n, "tensors")
PY

# bad input: a clear error, exit 2 for usage, and no output left behind
rc=0; "$B" strip base-stripped.h5 -o base-stripped.h5 >same.log 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "is the input itself" same.log || fail "-o IN: status $rc, $(cat same.log)"
rc=0; "$B" strip missing.h5 -o out.h5 >missing.log 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "missing.h5" missing.log && [ ! -e out.h5 ] || fail "missing input: status $rc, $(cat missing.log)"
head -c 200000 run/base.h5 >trunc.h5
rc=0; "$B" strip trunc.h5 -o out.h5 >trunc.log 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "trunc.h5" trunc.log && [ ! -e out.h5 ] && [ ! -e out.h5.tmp ] ||
  fail "damaged input: status $rc, $(cat trunc.log)"
rc=0; "$B" strip run/base.h5 >noout.log 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "needs IN.h5 and -o OUT.h5" noout.log || fail "no -o: status $rc, $(cat noout.log)"
echo "strip: all checks passed"
