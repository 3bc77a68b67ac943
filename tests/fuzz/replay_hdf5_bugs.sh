#!/usr/bin/env bash
# The damaged checkpoints on which HDF5 1.10.8 itself loops or crashes (tests/fuzz/hdf5_bugs/,
# docs/fuzzing.md), as sealed peprime checkpoints damaged after sealing (hdf5_bugs/sealed/, made
# by seal_damaged.py): `peprime inspect --verify` must reject each one within seconds with a
# format error naming the file, before HDF5 parses it — no hang, no signal. A control: the fuzz
# seed sealed intact (seal_damaged.py --intact) must still read, through the same 1 MiB user
# block, so the rejections are the digest's doing.
#   tests/fuzz/replay_hdf5_bugs.sh PEPRIME TMPDIR
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peprime="${1:?usage: replay_hdf5_bugs.sh PEPRIME TMPDIR}"
tmp="${2:?usage: replay_hdf5_bugs.sh PEPRIME TMPDIR}"
py=/usr/bin/python3
mkdir -p "$tmp"
status=0
for f in "$here"/hdf5_bugs/sealed/*.h5; do
  timeout 30 "$peprime" inspect --verify "$f" >"$tmp/out.txt" 2>&1
  rc=$?
  if [ $rc -eq 1 ] && grep -q "$f: damaged: its bytes no longer match the digest" "$tmp/out.txt"; then
    echo "ok    $(basename "$f"): $(tail -1 "$tmp/out.txt")"
  else
    echo "FAIL  $(basename "$f"): exit $rc (124: hung; > 128: signal)"; cat "$tmp/out.txt"; status=1
  fi
done
$py "$here/seal_damaged.py" --intact "$here/corpus/checkpoint/seed.h5" "$tmp/seed_sealed.h5" || status=1
if "$peprime" inspect --verify "$tmp/seed_sealed.h5" >"$tmp/out.txt" 2>&1; then
  echo "ok    the intact seed, sealed the same way, reads"
else
  echo "FAIL  the intact seed, sealed the same way, does not read:"; cat "$tmp/out.txt"; status=1
fi
exit $status
