#!/usr/bin/env bash
# README command 2: set everything up and run the whole test suite (ctest), including the
# MPI, PyTorch-parity, checkpoint and Slurm tests, then the unit tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
source "$(dirname "$0")/common.sh"
pep_install_packages "${PEP_APT_PACKAGES[@]}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
data="$(pep_data_root)"
[ -n "$data" ] && export PEPRIME_DATA="$data"

slurm_opts=()
slurm_started=0
cleanup() { [ "$slurm_started" = 1 ] && "$PEP_ROOT/.ci/slurm-down.sh" || true; }
trap cleanup EXIT
if [ "$(id -u)" -eq 0 ] && [ -x "$PEP_ROOT/.ci/slurm-up.sh" ] && [ "${PEP_SKIP_SLURM:-0}" != 1 ]; then
  pep_log "starting a one-node Slurm on localhost for the Slurm tests"
  if "$PEP_ROOT/.ci/slurm-up.sh"; then slurm_started=1
  else pep_log "Slurm did not start: the Slurm tests will fail"; fi
  slurm_opts=(-DPEP_SLURM_TESTS=ON -DPEP_SLURM_STAGE_TESTS=ON)
fi
pep_log "building (warnings are errors)"
pep_build "$PEP_ROOT/build" -DPEP_WERROR=ON "${slurm_opts[@]}"

status=0
pep_log "running ctest"
(cd "$PEP_ROOT/build" && ctest --output-on-failure --timeout 1500 -j 2) || status=1

pep_log "sanitizer build (ASan + UBSan): unit tests"
pep_build "$PEP_ROOT/build-asan" -DPEP_WERROR=ON -DPEP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DPEP_TORCH_TESTS=OFF
(cd "$PEP_ROOT/build-asan" && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -L unit -j 2) || status=1
exit $status
