#!/usr/bin/env bash
# portable_cpus: the portable build on CPUs older than this one. Runs peprime and the kernels'
# unit tests (finite-difference gradient checks of every layer, the optimizers, MAML) under
# qemu-x86_64's user-mode emulation of a Nehalem (SSE4.2: the x86-64 baseline clones of the
# PEP_DISPATCH loops) and a Haswell (AVX2 + FMA: the x86-64-v3 clones), and checks that
# `peprime --version` names the path each CPU takes. A native build dies there with SIGILL.
# replica_bits (replicated optimizer steps and the weight-init draws, hashed) must print the
# same bits on every CPU: ranks of one job on different nodes keep identical replicas.
#   portable_cpus.sh PEPRIME REPLICA_BITS TESTS_DIR TEST...
# Exits 77 (skipped) without qemu-x86_64 (Debian: qemu-user).
set -euo pipefail
bin=$1 replica=$2 dir=$3
shift 3
command -v qemu-x86_64 > /dev/null || { echo "portable_cpus: qemu-x86_64 not found (apt-get install qemu-user): skipped"; exit 77; }
# OpenBLAS must choose its kernels for the emulated CPU, not take this machine's
unset OPENBLAS_CORETYPE
export PEP_BLAS_REEXEC=0 OPENBLAS_NUM_THREADS=1
fail=0
here=$("$replica")
echo "portable_cpus: this CPU ($(sed -n 's/^cpu code: //p' < <("$bin" --version))): $(tr '\n' ' ' <<< "$here")"
for pair in "Nehalem:x86-64 (baseline)" "Haswell:x86-64-v3 (AVX2+FMA)"; do
  cpu=${pair%%:*} want=${pair#*:}
  got=$(qemu-x86_64 -cpu "$cpu" "$bin" --version 2> /dev/null | sed -n 's/^cpu code: //p')
  if [ "$got" = "$want" ]; then
    echo "portable_cpus: $cpu: peprime runs the $got loops"
  else
    echo "portable_cpus: $cpu: peprime --version says '$got', expected '$want'"
    fail=1
  fi
  there=$(qemu-x86_64 -cpu "$cpu" "$replica" 2> /dev/null) || true
  if [ "$there" = "$here" ]; then
    echo "portable_cpus: $cpu: replicated optimizer steps and init draws bit-identical to this CPU's"
  else
    echo "portable_cpus: $cpu: replica_bits differ from this CPU's (ranks on such nodes would drift apart):"
    diff <(echo "$here") <(echo "$there") || true
    fail=1
  fi
  for t in "$@"; do
    if out=$(qemu-x86_64 -cpu "$cpu" "$dir/$t" 2>&1); then
      echo "portable_cpus: $cpu: $t passed ($(grep -o 'PASSED.*' <<< "$out" | tail -1))"
    else
      echo "portable_cpus: $cpu: $t FAILED:"
      tail -20 <<< "$out"
      fail=1
    fi
  done
done
exit $fail
