#!/usr/bin/env bash
# esc50_esresnet: ESResNet with attention on ESC-50, official 5-fold cross-validation. Resume: ./run.sh --stage N
# (recipes/us8k_esresnet/run.sh runs this same script for UrbanSound8K's 10 folds.)
#   0 check the corpus layout
#   1 train one model per fold (train on the other folds)  -> exp/fold<k>/model.pt
#   2 evaluate each fold's model on its held-out fold      -> exp/fold<k>/eval/, exp/cv_summary.json
set -euo pipefail
cd "${RECIPE_DIR:-$(dirname "$0")}"
corpus=${CORPUS:-esc50}
all_folds=${ALL_FOLDS:-"1 2 3 4 5"}
root=${ROOT:-${ESC50:-/data/ESC-50}}
stage=0
stop_stage=2
folds=$all_folds
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --folds) folds=$2; shift 2 ;;
    *) echo "usage: $0 [--stage N] [--stop-stage N] [--root CORPUS_ROOT] [--folds '1 2 ...']" >&2; exit 1 ;;
  esac
done
others() {  # the folds other than $1, as a YAML list
  echo "[$(for f in $all_folds; do [ "$f" != "$1" ] && printf '%s,' "$f"; done | sed 's/,$//')]"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  local/prepare.sh "$root"
fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for k in $folds; do
    sepaudio train conf.yml exp_dir=exp/fold$k data.train.root=$root data.valid.root=$root \
      "data.train.folds=$(others $k)" "data.valid.folds=[$k]"
  done
fi
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for k in $folds; do
    python -m sepaudio.classify evaluate exp/fold$k/model.pt --dataset $corpus \
      --dataset-args "{\"root\": \"$root\", \"folds\": [$k]}" -o exp/fold$k/eval
  done
  python -m sepaudio.classify cv-summary exp/fold*/eval/metrics.json -o exp/cv_summary.json
fi
