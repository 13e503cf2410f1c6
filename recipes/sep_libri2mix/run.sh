#!/usr/bin/env bash
# sep_libri2mix: Conv-TasNet and MiTAS (paper configuration) on Libri2Mix, or Libri3Mix with model.args.n_src=3.
#   recipes/sep_libri2mix/run.sh --corpus <Libri2Mix> [options] [key=value ...]
# Stages: 0 check the corpus and write data/{train,valid,test}.csv, 1 train each model, 2 evaluate each on the
# test set, 3 results table (exp/RESULTS.md). Training resumes from its last checkpoint when run again.
stage=0                   # N: first stage to run
stop_stage=3              # N: last stage to run
corpus=                   # DIR: the Libri2Mix (or Libri3Mix) folder, holding wav8k/ and wav16k/
train_set=train-360       # train-360|train-100: LibriSpeech subset of the training mixtures
sample_rate=8k            # 8k|16k: the corpus's wav8k/ or wav16k/
mode=min                  # min|max: mixtures as long as the shorter source, or the longer
mixture=mix_clean         # mix_clean|mix_both|mix_single: two utterances, the same + noise, one + noise
models="conv_tasnet mitas"  # LIST: models to train and compare
. "$(dirname "$0")/../common/parse_options.sh"
. "$common/librimix_stage0.sh"       # stage 0: check LibriMix, write data/
. "$common/separation_stages.sh"     # stages 1-3: train, evaluate, results table
