#!/usr/bin/env bash
# sep_mini: Conv-TasNet and MiTAS side by side on the mini speech corpus (blind two-speaker separation, no
# download), sized for a CPU.
#   recipes/sep_mini/run.sh [options] [key=value ...]
# Stages: 0 corpus (16 synthetic speakers), 1 train each model, 2 evaluate each on held-out speakers, 3 results
# table (exp/RESULTS.md). Training resumes from its last checkpoint when run again.
stage=0                   # N: first stage to run
stop_stage=3              # N: last stage to run
utterances=20             # N: utterances per speaker of the corpus
models="conv_tasnet mitas"  # LIST: models to train and compare
. "$(dirname "$0")/../common/parse_options.sh"

if begin_stage 0 "mini speech corpus (data/mini)"; then
  "$python" "$common/mini_corpus.py" --root data/mini --speakers 16 --utterances "$utterances"
fi
. "$common/separation_stages.sh"     # stages 1-3: train, evaluate, results table
