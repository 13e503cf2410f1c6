#!/usr/bin/env bash
# us8k_esresnet: ESResNet with attention on UrbanSound8K, the official 10 folds (never random splits: clips of one
# recording share a fold).
#   recipes/us8k_esresnet/run.sh --corpus <UrbanSound8K> [options] [key=value ...]
# Stages: 0 check the corpus layout, 1 train one model per fold on the other folds (exp/fold<k>/), 2 evaluate each on
# its held-out fold, 3 table of the folds with mean +- std (exp/RESULTS.md). key=value arguments override conf.yml.
stage=0                   # N: first stage to run
stop_stage=3              # N: last stage to run
corpus=                   # DIR: the UrbanSound8K folder, holding audio/fold<k>/ and metadata/UrbanSound8K.csv
folds="1 2 3 4 5 6 7 8 9 10"  # LIST: the folds to hold out, one model each
. "$(dirname "$0")/../common/parse_options.sh"
dataset=urbansound8k
all_folds="1 2 3 4 5 6 7 8 9 10"
. "$common/cross_validation_stages.sh"  # stages 0-3: check, train and evaluate each fold, table
