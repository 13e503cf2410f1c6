#!/usr/bin/env bash
# sep_mini: Conv-TasNet and MiTAS side by side on the mini speech corpus (blind two-speaker separation, no
# download); the stages are sep_libri2mix's with this recipe's conf.yml and local/prepare_data.py.
#   ./run.sh [--stage N] [--stop-stage N] [--models "conv_tasnet mitas"] [--work DIR] [key=value ...]
# Stages: 0 corpus, 1 train each model, 2 evaluate each on held-out speakers, 3 table (exp/RESULTS.md).
RECIPE_DIR="$(cd "$(dirname "$0")" && pwd)" exec "$(dirname "$0")/../sep_libri2mix/run.sh" "$@"
