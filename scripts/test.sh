#!/usr/bin/env bash
# README command 2: set everything up and run the whole test suite (ctest), including the
# MPI, PyTorch-parity, checkpoint and Slurm tests; then the unit, checkpoint, MPI, prime and
# pipeline tests again under AddressSanitizer + UndefinedBehaviorSanitizer with leak detection;
# then every libFuzzer harness of tests/fuzz for PEP_FUZZ_SECONDS (default 30) each.
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
  pep_log "starting a two-node Slurm on localhost for the Slurm tests (the second node in a network namespace)"
  if PEP_SLURM_NODES=${PEP_SLURM_NODES:-2} "$PEP_ROOT/.ci/slurm-up.sh"; then slurm_started=1
  else pep_log "Slurm did not start: the Slurm tests will fail"; fi
  slurm_opts=(-DPEP_SLURM_TESTS=ON -DPEP_SLURM_STAGE_TESTS=ON)
fi
pep_log "building (warnings are errors)"
pep_build "$PEP_ROOT/build" -DPEP_WERROR=ON "${slurm_opts[@]}"

status=0
pep_log "running ctest"
(cd "$PEP_ROOT/build" && ctest --output-on-failure --timeout 1500 -j 2) || status=1

pep_log "sanitizer build (ASan + UBSan, leaks on): unit, checkpoint, MPI, prime and pipeline tests"
# -O1: the level ASan's documentation recommends (faster than -O0, stacks still exact)
pep_build "$PEP_ROOT/build-asan" -DPEP_WERROR=ON -DPEP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
  -DPEP_TORCH_TESTS=OFF
# Leaks of Open MPI and HDF5 (made at init, or by HDF5 on a damaged file) are suppressed by
# tests/lsan.supp, which names only their frames; slow unwinding lets it see frames inside them,
# and keeping MPI's components loaded keeps those frames named. intercept_tls_get_addr=0: GCC 12's
# LeakSanitizer, tracking dynamic TLS through __tls_get_addr, kept a stale block (DTLS 12 at
# 0x3b5b-0x400004c5d) in MPI-launched processes and its tracer crashed on it at exit ("Tracer
# caught signal 11: addr=0x3b60 ... LeakSanitizer has encountered a fatal error"; on a Zen 5
# machine every `mpiexec -n 1 peprime prime` of pipeline_prime_mpi, 2026-12-02); without the
# interception the leak check still scans stacks, static TLS and globals. Not run here: checkpoint_crash
# (SIGKILL timing: the Debug+ASan writer is too slow to commit between its kills) and the
# integration tests that read the real data (tokenizer parity, the experiment driver).
san_ctest() { # san_ctest [ctest args]: ctest in build-asan with the sanitizer environment
  (cd "$PEP_ROOT/build-asan" &&
    ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:intercept_tls_get_addr=0 \
    LSAN_OPTIONS="suppressions=$PEP_ROOT/tests/lsan.supp:print_suppressions=0" \
    UBSAN_OPTIONS=print_stacktrace=1 OMPI_MCA_mca_base_component_disable_dlclose=1 PEP_TEST_TIME_SCALE=4 \
    ctest --output-on-failure "$@")
}
san_start=$SECONDS
if ! san_ctest -j 2 -L 'unit|mpi|integration' \
     -E '^(checkpoint_crash|tokenizer_spm_parity_all|pipeline_experiment_driver)$'; then
  # A failed test gets up to two more runs, said here (the tracer crash above was first taken for
  # a rare flake); a test that fails all three fails the suite. The reruns name the failed tests
  # (ctest's --rerun-failed goes by test number, and this pass's numbers are not the rerun's).
  failed=$(sed -n 's/^[0-9]*://p' "$PEP_ROOT/build-asan/Testing/Temporary/LastTestsFailed.log" 2>/dev/null | paste -sd'|')
  if [ -z "$failed" ]; then
    status=1
  else
    pep_log "sanitizer pass: rerunning the failed tests $failed (up to twice; see the first run's output above)"
    san_ctest -R "^($failed)\$" || { pep_log "sanitizer pass: second rerun"; san_ctest -R "^($failed)\$"; } || status=1
  fi
fi
pep_log "sanitizer tests took $((SECONDS - san_start)) s"

pep_log "fuzzing (libFuzzer, ASan + UBSan): every reader of user files, ${PEP_FUZZ_SECONDS:-30} s each"
if [ ! -f "$PEP_ROOT/build-fuzz/CMakeCache.txt" ]; then
  CC=clang-14 cmake -S "$PEP_ROOT" -B "$PEP_ROOT/build-fuzz" -DCMAKE_BUILD_TYPE=Release -DPEP_FUZZ=ON \
    -DPEP_WERROR=ON -DPEP_TORCH_TESTS=OFF >/dev/null
fi
cmake --build "$PEP_ROOT/build-fuzz" --target fuzz_all -j "$(nproc)" >/dev/null || status=1
"$PEP_ROOT/tests/fuzz/run.sh" "$PEP_ROOT/build-fuzz" "${PEP_FUZZ_SECONDS:-30}" || status=1
exit $status
