# Shared set-up for the README commands (sourced, not run): installs what is missing on
# Debian/Ubuntu when run as root, configures and builds out of tree. Idempotent.
set -euo pipefail

PEP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PEP_ROOT

# Debian packages the build, the tests and the reference oracle need (clang-14 +
# libclang-rt-14-dev: the libFuzzer harnesses of tests/fuzz; iproute2: ip + tc for the
# network-namespace exchange test, tests/net).
PEP_APT_PACKAGES=(build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
  libopenblas-dev libhwloc-dev hwloc libcmocka-dev libxxhash-dev qemu-user
  sentencepiece python3 python3-numpy python3-h5py python3-matplotlib python3-torch python3-sentencepiece python3-xxhash
  clang-14 libclang-rt-14-dev iproute2)

pep_log() { printf '[peprime setup] %s\n' "$*"; }

pep_install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    pep_log "missing packages: ${missing[*]}"
    pep_log "install them with: sudo apt-get install -y ${missing[*]}   (then run this command again)"
    exit 1
  fi
  pep_log "installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pep_build DIR [cmake args...]: configure (once) and build.
pep_build() {
  local dir="$1"; shift
  cmake -S "$PEP_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

# pep_mpi_env: MPI as root (containers, CI). The OpenBLAS kernels need nothing here: each
# computing peprime process chooses them for its CPU (jobs/main.c, src/core/blas_info.c).
pep_mpi_env() {
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
}

# Where the shared data lives: $PEPRIME_DATA, else ../shared/data beside the repository.
pep_data_root() {
  if [ -n "${PEPRIME_DATA:-}" ]; then echo "$PEPRIME_DATA"
  elif [ -d "$PEP_ROOT/../shared/data" ]; then (cd "$PEP_ROOT/../shared/data" && pwd)
  else echo ""; fi
}
