#!/bin/bash
#SBATCH --job-name=pep-pretrain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=2
#SBATCH --time=12:00:00
#SBATCH --output=logs/%x-%j.out
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
# slurm/pretrain.sh: batch script for `peprime pretrain` (masked-LM pretraining -> base.h5).
#   sbatch slurm/pretrain.sh --config JOB.ini [--set section.key=value]... [--out DIR]
# Job file, overrides and output also come from PEP_CONFIG, PEP_SET, PEP_OUT. Hyperparameters
# live in the job file, never here. Resources: override on the sbatch command line
# (sbatch -N 2 --ntasks-per-node=8 -c 4 --time=1-00:00:00 slurm/pretrain.sh ...). See docs/cluster.md.
set -euo pipefail
# Inside a job $0 is Slurm's spool copy: find the repository from the submitted path.
if [[ -n "${PEP_ROOT:-}" ]]; then
    _pep_dir=$PEP_ROOT/slurm
elif [[ -n "${SLURM_JOB_ID:-}" && "$0" == */slurm_script ]]; then
    _pep_dir=$(dirname "$(scontrol show job -o "$SLURM_JOB_ID" | sed -n 's/.* Command=\([^ ]*\).*/\1/p')")
    [[ -f "$_pep_dir/common.sh" ]] || _pep_dir=${SLURM_SUBMIT_DIR:-.}/slurm
else
    _pep_dir=$(dirname "$0")
fi
# shellcheck source=slurm/common.sh
source "$_pep_dir/common.sh" || { echo "pretrain.sh: cannot read $_pep_dir/common.sh; set PEP_ROOT to the repository" >&2; exit 2; }
PEP_ROOT=${PEP_ROOT:-$(cd "$_pep_dir/.." && pwd)}
export PEP_ROOT
pep_stage_main pretrain "$@"
