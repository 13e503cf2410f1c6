#!/usr/bin/env bash
# smn_mini: speech / music / noise on a generated corpus (no download). SwishNet (MFCC) and MobileNet v1 0.25
# (log-mel) side by side, then segmentation of a 5-minute recording, then SwishNet distilled from the MobileNet.
# Runs on 2 CPU cores in a few minutes, inside the project environment (`make test` builds .venv; then
# `source .venv/bin/activate`). Resume from a stage with `./run.sh --stage N`.
#   0 generate the corpus (exp/data/smn_mini) and a test timeline
#   1 train SwishNet slim            -> exp/swishnet_slim/model.pt
#   2 train MobileNet v1 0.25        -> exp/mobilenet_v1_025/model.pt
#   3 clip accuracy table + confusion matrices -> exp/eval/results.md
#   4 segment the timeline with both models, frame accuracy -> exp/segment/
#   5 distillation: MobileNet teacher -> SwishNet student (0.9 soft + 0.1 hard) -> exp/swishnet_distilled/
set -euo pipefail
cd "$(dirname "$0")"
stage=0
stop_stage=5
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) echo "usage: $0 [--stage N] [--stop-stage N]" >&2; exit 1 ;;
  esac
done
# One thread per process: on a shared or busy machine, OpenMP threads competing for cores slow training
# down many times over; two threads gain little on these tiny models.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
data=exp/data/smn_mini
labels='[speech, music, noise]'
mobilenet_args="{backbone: mobilenet_v1_025, labels: $labels, sample_rate: 16000, frontend: logmel,
  frontend_args: {n_mels: 64}}"
test_set="{\"root\": \"$data\", \"split\": \"test\", \"clip_seconds\": 1.0, \"overlap\": 0.0}"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  python -m sepaudio.classify prepare smn_mini $data --timeline-seconds 300
fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  sepaudio train conf.yml
fi
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  sepaudio train conf.yml exp_dir=exp/mobilenet_v1_025 model.name=spectrogram_classifier "model.args=$mobilenet_args" \
    trainer.max_epochs=8
fi
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  python -m sepaudio.classify evaluate exp/swishnet_slim/model.pt exp/mobilenet_v1_025/model.pt \
    --dataset smn_mini --dataset-args "$test_set" -o exp/eval
fi
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for run in swishnet_slim mobilenet_v1_025; do
    sepaudio segment --model exp/$run/model.pt $data/timeline.wav -o exp/segment/$run --plot
  done
  python -m sepaudio.classify frame-accuracy $data/timeline.csv exp/segment/*/timeline.csv \
    -o exp/segment/frame_accuracy.json
fi
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  sepaudio train conf.yml exp_dir=exp/swishnet_distilled loss.name=distillation \
    "loss.args={teacher: exp/mobilenet_v1_025/model.pt, soft: 0.9, temperature: 2.0}"
  python -m sepaudio.classify evaluate exp/swishnet_slim/model.pt exp/swishnet_distilled/model.pt \
    exp/mobilenet_v1_025/model.pt --dataset smn_mini --dataset-args "$test_set" -o exp/eval_distillation
fi
