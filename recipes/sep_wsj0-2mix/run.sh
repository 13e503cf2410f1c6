#!/usr/bin/env bash
# sep_wsj0-2mix: Conv-TasNet and MiTAS (paper configuration) on WSJ0-2mix; the stages are sep_libri2mix's
# with this recipe's conf.yml and local/prepare_data.py (stage 0 checks the corpus and links data/wsj0-2mix).
#   ./run.sh --corpus <wsj0-mix>/2speakers/wav8k/min [--stage N] [--stop-stage N] [--models "..."] [key=value ...]
RECIPE_DIR="$(cd "$(dirname "$0")" && pwd)" exec "$(dirname "$0")/../sep_libri2mix/run.sh" "$@"
