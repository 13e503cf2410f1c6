#!/usr/bin/env bash
# esc50_esresnet: ESResNet with attention on ESC-50, the official 5-fold cross-validation.
#   recipes/esc50_esresnet/run.sh --corpus <ESC-50> [options] [key=value ...]
# Stages: 0 check the corpus layout, 1 train one model per fold on the other folds (exp/fold<k>/), 2 evaluate each on
# its held-out fold, 3 table of the folds with mean +- std (exp/RESULTS.md). key=value arguments override conf.yml.
stage=0                   # N: first stage to run
stop_stage=3              # N: last stage to run
corpus=                   # DIR: the ESC-50 folder, holding audio/ and meta/esc50.csv (github.com/karolpiczak/ESC-50)
folds="1 2 3 4 5"         # LIST: the folds to hold out, one model each
. "$(dirname "$0")/../common/parse_options.sh"
dataset=esc50
all_folds="1 2 3 4 5"
. "$common/cross_validation_stages.sh"  # stages 0-3: check, train and evaluate each fold, table
