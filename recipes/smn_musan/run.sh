#!/usr/bin/env bash
# smn_musan: SwishNet slim / wide on MUSAN at 0.5, 1 and 2 s clips, a MobileNet teacher on log-mel, and the
# distilled wide SwishNet (0.9 soft + 0.1 hard), as in the SwishNet paper. Resume with `./run.sh --stage N`.
#   0 prepare: split 65/10/25, remove silence            -> exp/data/musan/{train,valid,test}.csv
#   1 train SwishNet slim and wide for each clip length   -> exp/swishnet_{slim,wide}_<clip>s/model.pt
#   2 train the MobileNet v1 teacher (log-mel)            -> exp/mobilenet_<clip>s/model.pt
#   3 distil MobileNet -> SwishNet wide                   -> exp/swishnet_wide_distilled_<clip>s/model.pt
#   4 clip accuracy tables per clip length                -> exp/eval_<clip>s/results.md
set -euo pipefail
cd "$(dirname "$0")"
stage=0
stop_stage=4
musan=${MUSAN:-/data/musan}
clips="0.5 1.0 2.0"
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --musan) musan=$2; shift 2 ;;
    *) echo "usage: $0 [--stage N] [--stop-stage N] [--musan MUSAN_ROOT]" >&2; exit 1 ;;
  esac
done
lists=exp/data/musan
mobilenet_args="{backbone: mobilenet_v1_100, labels: [speech, music, noise], sample_rate: 16000,
  frontend: logmel, frontend_args: {n_mels: 64}}"
clip_args() {  # clip length overrides of the train and valid sets
  echo "data.train.clip_seconds=$1" "data.valid.clip_seconds=$1"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  local/prepare.sh "$musan" $lists
fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for clip in $clips; do
    for width in slim wide; do
      sepaudio train conf.yml exp_dir=exp/swishnet_${width}_${clip}s model.name=swishnet_$width $(clip_args $clip)
    done
  done
fi
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for clip in $clips; do
    sepaudio train conf.yml exp_dir=exp/mobilenet_${clip}s model.name=spectrogram_classifier \
      "model.args=$mobilenet_args" $(clip_args $clip)
  done
fi
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  for clip in $clips; do
    sepaudio train conf.yml exp_dir=exp/swishnet_wide_distilled_${clip}s model.name=swishnet_wide \
      loss.name=distillation "loss.args={teacher: exp/mobilenet_${clip}s/model.pt, soft: 0.9, temperature: 2.0}" \
      $(clip_args $clip)
  done
fi
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for clip in $clips; do
    python -m sepaudio.classify evaluate exp/swishnet_slim_${clip}s/model.pt exp/swishnet_wide_${clip}s/model.pt \
      exp/swishnet_wide_distilled_${clip}s/model.pt exp/mobilenet_${clip}s/model.pt --dataset musan \
      --dataset-args "{\"manifests\": \"$lists\", \"split\": \"test\", \"clip_seconds\": $clip, \"overlap\": 0.0, \"rms_db\": -25.0}" \
      -o exp/eval_${clip}s
  done
fi
