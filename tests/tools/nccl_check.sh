#!/usr/bin/env bash
# ctest cuda.nccl_collectives: runs tests/dist/nccl_check.cpp under mpirun with one rank per GPU (at
# most 2; 1 rank when there is no GPU, so that the check prints why it skips). Exit 77 = skipped.
# Usage: nccl_check.sh NCCL_CHECK_BINARY
set -uo pipefail
bin=$1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
gpus=$( (nvidia-smi -L 2> /dev/null || true) | grep -c '^GPU')
ranks=$(( gpus >= 2 ? 2 : 1 ))
command -v mpirun > /dev/null || { echo "nccl_check: skipped: no mpirun"; exit 77; }
mpirun --oversubscribe -np "$ranks" "$bin"
