#!/usr/bin/env bash
# tse_libri2mix: TseNet (paper configuration) on Libri2Mix, enrolled by another utterance of the target speaker.
#   recipes/tse_libri2mix/run.sh --corpus <Libri2Mix> [options] [key=value ...]
# Stages: 0 check the corpus and write the lists, 1 train the i-vector extractor (UBM, T matrix) on the training
# sources, 2 train TseNet, 3 evaluate on the test set (SI-SDRi, SDRi, PESQ, STOI + spectrograms).
stage=0                   # N: first stage to run
stop_stage=3              # N: last stage to run
corpus=                   # DIR: the Libri2Mix folder, holding wav8k/ and wav16k/ (made by github.com/JorisCos/LibriMix)
train_set=train-360       # train-360|train-100: LibriSpeech subset of the training mixtures
sample_rate=8k            # 8k|16k: the corpus's wav8k/ or wav16k/
mode=min                  # min|max: mixtures as long as the shorter source, or the longer
mixture=mix_clean         # mix_clean|mix_both|mix_single: two utterances, the same + noise, one + noise
components=512            # N: Gaussians of the i-vector extractor's UBM
ivector_dim=400           # N: i-vector dimension (the T matrix's rank), TseNet's model.args.ivector_dim
. "$(dirname "$0")/../common/parse_options.sh"
. "$common/librimix_stage0.sh"       # stage 0: check LibriMix, write data/
. "$common/extraction_stages.sh"     # stages 1-3: i-vectors, train TseNet, evaluate
