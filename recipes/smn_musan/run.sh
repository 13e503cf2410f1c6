#!/usr/bin/env bash
# smn_musan: SwishNet slim / wide on MUSAN speech / music / noise at 0.5, 1 and 2 s clips, a MobileNet v1 teacher on
# log-mel, and the distilled wide SwishNet (0.9 soft + 0.1 hard), as in the SwishNet paper.
#   recipes/smn_musan/run.sh --corpus <musan> [options] [key=value ...]
# Stages: 0 split 65/10/25 per class and remove silence (data/musan/{train,valid,test}.csv); then for each clip
# length: 1 train SwishNet slim and wide, 2 train the MobileNet teacher, 3 distil it into SwishNet wide, 4 evaluate
# the four on the test clips (exp/RESULTS_<clip>s.md). key=value arguments override conf.yml in every run.
stage=0                   # N: first stage to run
stop_stage=4              # N: last stage to run
corpus=                   # DIR: the unpacked MUSAN folder, holding music/, speech/, noise/ (openslr.org/17)
clips="0.5 1.0 2.0"       # LIST: clip lengths in seconds, one set of models each
. "$(dirname "$0")/../common/parse_options.sh"
conf=$recipe/conf.yml

if begin_stage 0 "split MUSAN, remove silence (data/musan)"; then
  require corpus
  "$python" -m sepaudio prepare musan "$corpus" -o data/musan
fi
for clip in $clips; do
  c=("data.train.clip_seconds=$clip" "data.valid.clip_seconds=$clip" "data.test.clip_seconds=$clip" "${overrides[@]}")
  slim=("exp_dir=exp/swishnet_slim_${clip}s" model.name=swishnet_slim "${c[@]}")
  wide=("exp_dir=exp/swishnet_wide_${clip}s" model.name=swishnet_wide "${c[@]}")
  teacher=("exp_dir=exp/mobilenet_${clip}s" model.name=spectrogram_classifier "model.args={backbone: mobilenet_v1_100, \
    labels: [speech, music, noise], sample_rate: 16000, frontend: logmel, frontend_args: {n_mels: 64}}" "${c[@]}")
  distilled=("exp_dir=exp/swishnet_wide_distilled_${clip}s" model.name=swishnet_wide loss.name=distillation
    "loss.args={teacher: exp/mobilenet_${clip}s/model.pt, soft: 0.9, temperature: 2.0}" "${c[@]}")
  if begin_stage 1 "train SwishNet slim and wide on $clip s clips"; then
    "$python" -m sepaudio train "$conf" "${slim[@]}"
    "$python" -m sepaudio train "$conf" "${wide[@]}"
  fi
  if begin_stage 2 "train the MobileNet v1 teacher (log-mel) on $clip s clips"; then
    "$python" -m sepaudio train "$conf" "${teacher[@]}"
  fi
  if begin_stage 3 "distil the teacher into SwishNet wide on $clip s clips"; then
    "$python" -m sepaudio train "$conf" "${distilled[@]}"
  fi
  if begin_stage 4 "evaluate the four on $clip s test clips"; then
    "$python" -m sepaudio evaluate "$conf" "${slim[@]}"
    "$python" -m sepaudio evaluate "$conf" "${wide[@]}"
    "$python" -m sepaudio evaluate "$conf" "${teacher[@]}"
    "$python" -m sepaudio evaluate "$conf" "${distilled[@]}"
    "$python" "$common/table.py" --out "exp/RESULTS_${clip}s.md" \
      exp/{swishnet_slim,swishnet_wide,swishnet_wide_distilled,mobilenet}_${clip}s/eval_test
  fi
done
