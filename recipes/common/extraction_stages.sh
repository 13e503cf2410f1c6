# Stages 1-3 of tse_libri2mix and tse_wsj0-2mix-extr, sourced by their run.sh after stage 0 (which writes
# data/ivector_train.txt and the lists conf.yml names): 1 i-vector extractor on the training speakers, 2 train
# TseNet conditioned on $ivector_dim-dim i-vectors, 3 evaluate on the test set (SI-SDRi, SDRi, PESQ, STOI).
overrides=("model.args.ivector_dim=$ivector_dim" "${overrides[@]}")
if begin_stage 1 "i-vector extractor ($components Gaussians, $ivector_dim-dim) on the training speakers"; then
  "$python" -m sepaudio ivector train --list data/ivector_train.txt -o exp/ivector.pt --sample-rate "$rate" \
    --components "$components" --rank "$ivector_dim" --max-utterances 8000
fi
if begin_stage 2 "train TseNet"; then
  "$python" -m sepaudio train "$recipe/conf.yml" "${overrides[@]}"
fi
if begin_stage 3 "evaluate on the test set"; then
  "$python" -m sepaudio evaluate "$recipe/conf.yml" "${overrides[@]}"
fi
