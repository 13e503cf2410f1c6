#!/usr/bin/env bash
# us8k_esresnet: ESResNet with attention on UrbanSound8K, the official 10 folds (never random splits: clips of
# one recording share a fold). Same stages and options as ../esc50_esresnet/run.sh, with this folder's conf.yml:
#   0 check the corpus layout; 1 train one model per fold; 2 evaluate each fold, mean accuracy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RECIPE_DIR=$here CORPUS=urbansound8k ALL_FOLDS="1 2 3 4 5 6 7 8 9 10" ROOT=${US8K:-/data/UrbanSound8K} \
  exec "$here/../esc50_esresnet/run.sh" "$@"
