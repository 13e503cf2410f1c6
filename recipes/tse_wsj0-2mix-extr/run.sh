#!/usr/bin/env bash
# tse_wsj0-2mix-extr: TseNet (paper configuration) on WSJ0-2mix-extr (mix / s1 target / aux enrollment).
#   recipes/tse_wsj0-2mix-extr/run.sh --corpus <WSJ0-2mix-extr> [options] [key=value ...]
# Stages: 0 check the corpus and write the lists, 1 train the i-vector extractor (UBM, T matrix) on the training
# targets and enrollments, 2 train TseNet, 3 evaluate on tt (SI-SDRi, SDRi, PESQ, STOI + spectrograms).
stage=0                   # N: first stage to run
stop_stage=3              # N: last stage to run
corpus=                   # DIR: the WSJ0-2mix-extr folder, holding wav8k/<mode>/{tr,cv,tt}/{mix,s1,aux}
mode=max                  # max|min: mixtures as long as the longer source (as SpEx and TseNet report), or the shorter
components=512            # N: Gaussians of the i-vector extractor's UBM
ivector_dim=400           # N: i-vector dimension (the T matrix's rank), TseNet's model.args.ivector_dim
. "$(dirname "$0")/../common/parse_options.sh"
require corpus
rate=8000
base=$corpus/wav8k/$mode
overrides=("data.train.root=$base/tr" "data.valid.root=$base/cv" "data.test.root=$base/tt" "${overrides[@]}")

if begin_stage 0 "check WSJ0-2mix-extr, write the lists (data/)"; then
  "$python" "$recipe/local/prepare_data.py" "$corpus" --mode "$mode" --out data
fi
. "$common/extraction_stages.sh"     # stages 1-3: i-vectors, train TseNet, evaluate
