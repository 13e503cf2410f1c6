#!/usr/bin/env bash
# sep_wsj0-2mix: Conv-TasNet and MiTAS (paper configuration) on WSJ0-2mix (or WSJ0-3mix with model.args.n_src=3).
#   recipes/sep_wsj0-2mix/run.sh --corpus <wsj0-mix>/2speakers/wav8k/min [options] [key=value ...]
# Stages: 0 check the corpus and link it as data/wsj0-2mix, 1 train each model, 2 evaluate each on tt, 3 results
# table (exp/RESULTS.md). Training resumes from its last checkpoint when run again.
stage=0                   # N: first stage to run
stop_stage=3              # N: last stage to run
corpus=                   # DIR: the generated corpus at one rate and mode, holding {tr,cv,tt}/{mix,s1,s2}
models="conv_tasnet mitas"  # LIST: models to train and compare
. "$(dirname "$0")/../common/parse_options.sh"

if begin_stage 0 "check WSJ0-2mix, link data/wsj0-2mix"; then
  require corpus
  "$python" "$recipe/local/prepare_data.py" "$corpus" --link data/wsj0-2mix
fi
. "$common/separation_stages.sh"     # stages 1-3: train, evaluate, results table
