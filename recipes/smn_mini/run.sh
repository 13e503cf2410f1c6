#!/usr/bin/env bash
# smn_mini: speech / music / noise on a generated corpus (no download). SwishNet (MFCC) and MobileNet v1 0.25
# (log-mel) side by side, then segmentation of a long recording, then SwishNet distilled from the MobileNet.
#   recipes/smn_mini/run.sh [options] [key=value ...]
# Stages: 0 generate the corpus and a test recording with its timeline (data/smn_mini), 1 train SwishNet slim,
# 2 train MobileNet v1 0.25, 3 evaluate both on the test clips (exp/RESULTS.md), 4 segment the recording with both,
# frame accuracy (exp/segment/), 5 distil MobileNet into SwishNet (0.9 soft + 0.1 hard) and evaluate all three,
# 6 (with --stop-stage 6) rare class: SwishNet on an imbalanced training split (noise at 2 % of the clips,
# conf_imbalanced.yml), as is and class-balanced (balance: sampler, selected by validation macro F1), --rare-seeds
# seeds each (exp/imbalanced/RESULTS.md).
# key=value arguments override conf.yml in every training and evaluation (e.g. trainer.max_epochs=2).
stage=0                   # N: first stage to run
stop_stage=5              # N: last stage to run (6: also the rare-class stage)
file_seconds=4            # N: length of every file of the corpus (30 / 8 / 12 files per class and split)
timeline_seconds=300      # N: length of the test recording segmented in stage 4
rare_seeds=3              # N: seeds of each setting in stage 6
. "$(dirname "$0")/../common/parse_options.sh"
# One thread per process: on a shared machine, OpenMP threads competing for cores slow these tiny models down.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
conf=$recipe/conf.yml
data=data/smn_mini
mobilenet=(exp_dir=exp/mobilenet_v1_025 model.name=spectrogram_classifier trainer.max_epochs=8
  "model.args={backbone: mobilenet_v1_025, labels: [speech, music, noise], sample_rate: 16000, frontend: logmel, \
  frontend_args: {n_mels: 64}}")
distilled=(exp_dir=exp/swishnet_distilled loss.name=distillation
  "loss.args={teacher: exp/mobilenet_v1_025/model.pt, soft: 0.9, temperature: 2.0}")

if begin_stage 0 "generate the corpus and a ${timeline_seconds}-second test recording ($data)"; then
  "$python" -m sepaudio prepare smn_mini -o "$data" --seconds "$file_seconds" --timeline-seconds "$timeline_seconds"
fi
if begin_stage 1 "train SwishNet slim"; then
  "$python" -m sepaudio train "$conf" "${overrides[@]}"
fi
if begin_stage 2 "train MobileNet v1 0.25 (log-mel)"; then
  "$python" -m sepaudio train "$conf" "${mobilenet[@]}" "${overrides[@]}"
fi
if begin_stage 3 "evaluate both on the test clips"; then
  "$python" -m sepaudio evaluate "$conf" "${overrides[@]}"
  "$python" -m sepaudio evaluate "$conf" "${mobilenet[@]}" "${overrides[@]}"
  "$python" "$common/table.py" exp/{swishnet_slim,mobilenet_v1_025}/eval_test --out exp/RESULTS.md
fi
if begin_stage 4 "segment the test recording with both, frame accuracy"; then
  for run in swishnet_slim mobilenet_v1_025; do
    "$python" -m sepaudio segment --model "exp/$run/model.pt" "$data/timeline.wav" -o "exp/segment/$run" --plot
  done
  "$python" "$recipe/local/frame_accuracy.py" -o exp/segment/frame_accuracy.json "$data/timeline.csv" \
    exp/segment/{swishnet_slim,mobilenet_v1_025}/timeline.csv
fi
if begin_stage 5 "distil MobileNet into SwishNet slim, evaluate all three"; then
  "$python" -m sepaudio train "$conf" "${distilled[@]}" "${overrides[@]}"
  "$python" -m sepaudio evaluate "$conf" "${distilled[@]}" "${overrides[@]}"
  "$python" "$common/table.py" --out exp/RESULTS.md exp/{swishnet_slim,swishnet_distilled,mobilenet_v1_025}/eval_test
fi
if begin_stage 6 "rare class: imbalanced training split, as is and class-balanced, $rare_seeds seeds"; then
  imbalanced=$recipe/conf_imbalanced.yml
  balanced=(data.train.balance=sampler trainer.monitor=val_macro_f1)
  for seed in $(seq 0 $((rare_seeds - 1))); do
    "$python" -m sepaudio train "$imbalanced" exp_dir=exp/imbalanced/none/seed$seed seed=$seed "${overrides[@]}"
    "$python" -m sepaudio evaluate "$imbalanced" exp_dir=exp/imbalanced/none/seed$seed "${overrides[@]}"
    "$python" -m sepaudio train "$imbalanced" exp_dir=exp/imbalanced/sampler/seed$seed seed=$seed "${balanced[@]}" \
      "${overrides[@]}"
    "$python" -m sepaudio evaluate "$imbalanced" exp_dir=exp/imbalanced/sampler/seed$seed "${overrides[@]}"
  done
  runs() { local d=() s; for s in $(seq 0 $((rare_seeds - 1))); do d+=("exp/imbalanced/$1/seed$s/eval_test"); done
    (IFS=,; echo "${d[*]}"); }
  "$python" "$recipe/local/rare_table.py" --out exp/imbalanced/RESULTS.md --mix speech=49,music=49,noise=2 \
    "none=$(runs none)" \
    "balance: sampler + val_macro_f1=$(runs sampler)"
fi
