#!/usr/bin/env bash
# Regenerate the images' hash-locked requirements from pyproject.toml (run from the repository root):
#   bash services/requirements/compile.sh
# Each lock pins every package an image installs, with the sha256 of every file PyPI has for that
# version; the Dockerfiles install them with `pip install --require-hashes --no-deps` before copying
# the sources. The GPU images' locks resolve against the base image's torch (base.env) and leave out
# the torch family itself (torch, triton, the CUDA wheels), which stays the base image's build.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=/dev/null
source services/requirements/base.env
UV=${UV:-uv}
out=services/requirements
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==${TORCH_VERSION}" > "$constraints"

compile() {  # name, extras..., then the packages to leave out
  local name=$1; shift
  local extras=() names=() skip=()
  while [[ $# -gt 0 && $1 != -- ]]; do extras+=(--extra "$1"); names+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  for p in "$@"; do skip+=(--no-emit-package "$p"); done
  "$UV" pip compile pyproject.toml "$out/build.in" "${extras[@]}" --constraint "$constraints" --universal \
    --python-version "$PYTHON_FLOOR" --generate-hashes --no-header --quiet "${skip[@]}" -o "$out/$name.lock.tmp"
  {
    echo "# Hash-locked requirements of the $name image: bash services/requirements/compile.sh (do not edit)."
    echo "# extras: ${names[*]}; left to the base image: ${*:-nothing}."
    cat "$out/$name.lock.tmp"
  } > "$out/$name.lock"
  rm "$out/$name.lock.tmp"
}

torch_family() {  # the torch family as resolved for these extras: torch, triton, nvidia-*, cuda-*
  "$UV" pip compile pyproject.toml "$@" --constraint "$constraints" --universal \
    --python-version "$PYTHON_FLOOR" --no-header --no-annotate --quiet |
    sed -nE 's/^(torch|torchvision|torchaudio|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)==.*/\1/p' | sort -u
}

mapfile -t gen_skip < <(torch_family --extra generator --extra hopper)
compile generator generator hopper -- "${gen_skip[@]}"
mapfile -t eval_skip < <(torch_family --extra evaluator)
compile evaluator evaluator -- "${eval_skip[@]}"
compile orchestrator orchestrator
