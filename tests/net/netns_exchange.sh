#!/usr/bin/env bash
# The meta-gradient exchange over a real network stack: `peprime prime` with each rank in its own
# Linux network namespace, joined by veth pairs to a bridge (in a namespace of its own) and
# rate-limited by tc's token bucket filter, talking over Open MPI's TCP transport only
# (--mca btl tcp,self, addresses inside those namespaces only). Runs the four exchanges
# (overlapped or not, sparse or dense word-embedding rows), checks that they give the same
# primed model bit for bit and that the bytes really crossed the veth links, and prints ms per
# meta-step and the exchange time left exposed, as a Markdown table.
#
#   netns_exchange.sh PEPRIME_BIN WORKDIR MPIEXEC [--ranks N] [--rate RATE] [--steps S]
#                     [--shape test|tiny] [--bucket-mb MB] [--set section.key=value]...
#
# RATE is tc's (e.g. 1gbit, 200mbit; default 1gbit), applied to every link in both directions.
# --shape test: the pipeline tests' 2-layer width-32 model (fast, for ctest); tiny: the
# scaling benchmark's L=4 C=256 encoder (15 MB of meta-gradient per meta-step).
# Needs root and a kernel that lets it create network namespaces; otherwise it exits 77 (ctest:
# skipped) saying what failed. Everything it creates is named pepx<pid>* and removed on exit.
set -uo pipefail
B="$(readlink -f "$1")"; W="$2"; MPIEXEC="${3:-mpiexec}"; shift 3 || true
NP=2 RATE=1gbit STEPS=6 SHAPE=test BUCKET=1 SETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) NP=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --shape) SHAPE=$2; shift 2 ;;
    --bucket-mb) BUCKET=$2; shift 2 ;;
    --set) SETS+=(--set "$2"); shift 2 ;;
    *) echo "netns_exchange.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
skip() { echo "SKIP: $*"; exit 77; }

# --- the namespaces: rank i in pepx<pid>r<i> (veth x<pid>a<i>, 10.213.7.<i+1>/24), a bridge in pepx<pid>h
TAG="pepx$$"
HUB="${TAG}h"
cleanup() {
  for i in $(seq 0 $((NP - 1))); do ip netns del "${TAG}r$i" 2>/dev/null; done
  ip netns del "$HUB" 2>/dev/null
  return 0
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root (uid $(id -u))"
command -v ip >/dev/null && command -v tc >/dev/null || skip "the ip and tc commands (package iproute2) are missing"
err=$(ip netns add "$HUB" 2>&1) || skip "this kernel or container does not permit network namespaces: 'ip netns add' said: $err"
err=$(ip -n "$HUB" link add "${TAG}br" type bridge 2>&1) || skip "cannot create a bridge in a namespace: $err"
ip -n "$HUB" link set "${TAG}br" up
for i in $(seq 0 $((NP - 1))); do
  ns="${TAG}r$i" a="x$$a$i" b="x$$b$i"
  ip netns add "$ns" || skip "cannot create namespace $ns"
  err=$(ip link add "$a" type veth peer name "$b" 2>&1) || skip "cannot create a veth pair: $err"
  ip link set "$a" netns "$ns" && ip link set "$b" netns "$HUB" || skip "cannot move veth ends into namespaces"
  ip -n "$HUB" link set "$b" master "${TAG}br" && ip -n "$HUB" link set "$b" up
  ip -n "$ns" addr add "10.213.7.$((i + 1))/24" dev "$a" && ip -n "$ns" link set "$a" up && ip -n "$ns" link set lo up \
    || skip "cannot configure $a in $ns"
  # both directions of the link: out of the rank (a) and into it (b, the bridge's port)
  err=$(ip netns exec "$ns" tc qdisc add dev "$a" root tbf rate "$RATE" burst 256kb latency 100ms 2>&1) \
    || skip "tc cannot rate-limit a veth (tbf): $err"
  ip netns exec "$HUB" tc qdisc add dev "$b" root tbf rate "$RATE" burst 256kb latency 100ms || skip "tc on the bridge port failed"
done

# --- the job: tokenizer + base model as the pipeline tests make them (outside the namespaces)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
. "$HERE/../pipeline/lib.sh"
prime_setup "$B" "$W" >/dev/null
INIT=base/base.h5
if [ "$SHAPE" = tiny ]; then
  printf '[model]\nlayers = 4\nhidden = 256\nheads = 4\nff = 1024\nmax_seq_len = 64\n' >> job.ini
  "$B" pretrain --config job.ini --out base-tiny "${S[@]}" --set optim.steps=2 --set optim.batch_size=8 --resume none \
    >/dev/null || { echo "FAIL: pretraining the tiny shape"; exit 1; }
  INIT=base-tiny/base.h5
fi

# rank 0 runs mpiexec's PMIx server too: it listens on rank 0's veth address, which the other
# namespaces reach over the bridge (its loopback default is not reachable from them)
prime() { # out [--set ...]
  local out=$1; shift
  local cmd=(prime --config job.ini --init "$INIT" --out "$out" "${S[@]}" --set optim.steps="$STEPS"
             --set checkpoint.every=0 --set maml.exchange_bucket_mb="$BUCKET" --set run.log_every=1000 "${SETS[@]}" "$@")
  local app=(-n 1 "$B" "${cmd[@]}")
  for i in $(seq 1 $((NP - 1))); do app+=(: -n 1 ip netns exec "${TAG}r$i" "$B" "${cmd[@]}"); done
  timeout 600 ip netns exec "${TAG}r0" env PMIX_MCA_ptl_tcp_remote_connections=1 PMIX_MCA_ptl_tcp_if_include="x$$a0" \
    "$MPIEXEC" --bind-to none --mca btl tcp,self --mca btl_tcp_if_include 10.213.7.0/24 --mca oob_tcp_if_include "x$$a0" \
    "${app[@]}" > "$out.log" 2>&1
}
tx() { ip -n "$HUB" -s link show "x$$b0" | awk '/RX:/ { getline; print $1 }'; } # bytes rank 0 sent
fails=0
echo "| ranks | link | overlap | sparse | ms / meta-step | exchange exposed ms / meta-step | MB summed / meta-step | MB on rank 0's link |"
echo "|---|---|---|---|---|---|---|---|"
for mode in "true true" "false true" "true false" "false false"; do
  set -- $mode
  out="net-ov$1-sp$2"
  before=$(tx)
  if ! prime "$out" --set maml.exchange_overlap="$1" --set maml.exchange_sparse="$2"; then
    cat "$out.log"; echo "FAIL: the run across namespaces failed (overlap $1, sparse $2)"; exit 1
  fi
  sent=$(( $(tx) - before ))
  ms=$(sed -n 's/.*meta-steps in [0-9.]* s (\([0-9.]*\) ms per meta-step).*/\1/p' "$out.log")
  xs=$(sed -n 's/.*exchange [0-9.]*% of the time, \([0-9.]*\) ms per meta-step exposed.*/\1/p' "$out.log")
  mbs=$(sed -n 's/.* \([0-9.]*\) MB per meta-step summed of.*/\1/p' "$out.log")
  echo "| $NP | $RATE | $1 | $2 | $ms | $xs | $mbs | $(awk -v b="$sent" 'BEGIN{printf "%.1f", b/1e6}') |"
  # the meta-gradients crossed the link: at least the summed payload per step went out of rank 0
  awk -v b="$sent" -v m="$mbs" -v s="$STEPS" 'BEGIN { exit !(b >= m * 1e6 * s * 0.5) }' \
    || { echo "FAIL: only $sent bytes left rank 0's namespace for $STEPS steps of $mbs MB"; fails=1; }
done
for o in net-ovfalse-sptrue net-ovtrue-spfalse net-ovfalse-spfalse; do
  $PY "$HERE/../pipeline/compare_h5.py" net-ovtrue-sptrue/primed.h5 "$o/primed.h5" --exact >/dev/null \
    || { echo "FAIL: $o differs from the overlapped sparse run"; fails=1; }
done
[ "$fails" -eq 0 ] || exit 1
echo "network exchange: all checks passed on $NP ranks across namespaces ($RATE links)"
