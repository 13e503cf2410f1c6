#!/usr/bin/env bash
# sep_libri2mix: Conv-TasNet and MiTAS (paper configuration) on Libri2Mix / Libri3Mix. sep_mini and sep_wsj0-2mix
# run these stages too, with their own conf.yml and local/ (RECIPE_DIR).
#   ./run.sh --corpus DIR [--stage N] [--stop-stage N] [--models "conv_tasnet mitas"] [--work DIR] [key=value ...]
# Stages: 0 prepare data (local/prepare_data.py), 1 train each model, 2 evaluate each on the test set, 3 table.
# Training resumes from its last checkpoint when run again. key=value arguments override conf.yml.
set -euo pipefail
here="${RECIPE_DIR:-$(cd "$(dirname "$0")" && pwd)}"  # the recipe whose conf.yml and local/ are used
repo="$(cd "$(dirname "$0")/../.." && pwd)"
stage=0
stop_stage=3
work="$here"
corpus=""
models="conv_tasnet mitas"
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *=*) overrides+=("$1"); shift ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python=python3
conf="$here/conf.yml"
mkdir -p "$work"
cd "$work"

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "== stage 0: prepare data"
  "$python" "$here/local/prepare_data.py" ${corpus:+--corpus "$corpus"}
fi
for m in $models; do
  if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
    echo "== stage 1: train $m"
    "$python" -m sepaudio train "$conf" "exp_dir=exp/$m" "model.name=$m" ${overrides[@]+"${overrides[@]}"}
  fi
  if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
    echo "== stage 2: evaluate $m"
    "$python" -m sepaudio evaluate "$conf" "exp_dir=exp/$m" "model.name=$m" ${overrides[@]+"${overrides[@]}"}
  fi
done
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: table"
  "$python" "$(dirname "$0")/local/table.py" $(for m in $models; do echo "exp/$m"; done) --out exp/RESULTS.md
fi
