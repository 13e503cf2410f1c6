#!/usr/bin/env bash
# tse_wsj0-2mix-extr: TseNet (paper configuration) on WSJ0-2mix-extr (mix / s1 target / aux enrollment).
#   ./run.sh --corpus PATH [--mode max|min] [--stage N] [--stop-stage N] [--work DIR] [key=value ...]
# PATH holds wav8k/<mode>/{tr,cv,tt}/{mix,s1,aux} (made by github.com/xuchenglin28/speaker_extraction).
# Stages: 0 check the corpus and write the lists, 1 train the 400-dim i-vector extractor (UBM 512, T matrix) on
# training targets and enrollments, 2 train TseNet, 3 evaluate on tt (SI-SDRi, SDRi, PESQ, STOI + spectrograms).
# key=value arguments override conf.yml (e.g. trainer.devices=2 data.batch_size=4).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
stage=0
stop_stage=3
work="$here"
corpus=""
mode=max
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus) corpus="$(cd "$2" && pwd)"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *=*) overrides+=("$1"); shift ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done
[ -n "$corpus" ] || { echo "run.sh: give --corpus PATH (see --help)" >&2; exit 1; }
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python=python3
conf="$here/conf.yml"
base="$corpus/wav8k/$mode"
overrides=("data.train.root=$base/tr" "data.valid.root=$base/cv" "data.test.root=$base/tt"
           ${overrides[@]+"${overrides[@]}"})
mkdir -p "$work"
cd "$work"

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "== stage 0: check WSJ0-2mix-extr and write the lists"
  "$python" "$here/local/prepare_data.py" "$corpus" --mode "$mode" --out data
fi
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: i-vector extractor (400-dim) on training targets and enrollments"
  "$python" -m sepaudio ivector train --wavs data/ivector_train.txt --out exp/ivector.pt --components 512 \
    --rank 400 --max-utterances 8000
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: train TseNet"
  "$python" -m sepaudio train "$conf" "${overrides[@]}"
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: evaluate on tt"
  "$python" -m sepaudio evaluate "$conf" "${overrides[@]}"
fi
