#!/usr/bin/env bash
# tse_mini: TseNet target speaker extraction on the mini speech corpus, end to end on a CPU in minutes.
#   ./run.sh [--stage N] [--stop-stage N] [--work DIR] [key=value ...]
# Stages: 0 corpus + lists, 1 train the i-vector extractor, 2 i-vector EER on held-out speakers, 3 train TseNet,
# 4 evaluate on held-out and on training speakers (SI-SDRi, SDRi, PESQ, STOI + spectrograms), 5 example wavs through
# 'sepaudio extract' with each speaker's enrollment in turn (the conditioning check), 6 results table.
# Interrupted training resumes from its checkpoint.
# key=value arguments override conf.yml for training and evaluation (e.g. trainer.max_epochs=2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
stage=0
stop_stage=6
work="$here"
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *=*) overrides+=("$1"); shift ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python=python3
# One BLAS thread per process: the data worker computes i-vectors beside the training process, and on a loaded
# machine spinning OpenMP threads cost far more than they give. Set OMP_NUM_THREADS to change it.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
conf="$here/conf.yml"
# The LDA dimension is the i-vector size TseNet takes (model.args.ivector_dim in conf.yml).
ivector_opts=(--components 64 --rank 100 --lda-dim 10 --tv-iterations 5)
mkdir -p "$work"
cd "$work"
timed() { local name="$1" start=$SECONDS; shift; "$@"; echo "$name $(( SECONDS - start ))" >> exp/timings.txt; }
mkdir -p exp

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "== stage 0: mini speech corpus (32 speakers; 28 train, 4 held out)"
  : > exp/timings.txt
  timed corpus "$python" "$here/local/prepare_data.py" --root data/mini --lists data/lists --speakers 32 \
    --heldout 4 --utterances 14
fi
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: i-vector extractor (UBM, total variability, LDA) on the training speakers"
  timed ivector_train "$python" -m sepaudio ivector train --wavs data/lists/ivector_train.txt --out exp/ivector.pt \
    "${ivector_opts[@]}"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: i-vector EER (cosine scoring) on the held-out speakers"
  timed ivector_eer "$python" -m sepaudio ivector extract --model exp/ivector.pt --wavs data/lists/ivector_heldout.txt \
    --out exp/ivectors_heldout
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: train TseNet"
  timed tsenet_train "$python" -m sepaudio train "$conf" ${overrides[@]+"${overrides[@]}"}
fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "== stage 4: evaluate on held-out speakers (test) and on new mixtures of the training speakers (valid)"
  for split in test valid; do
    timed "evaluate_$split" "$python" -m sepaudio evaluate "$conf" --split "$split" ${overrides[@]+"${overrides[@]}"}
  done
fi
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  echo "== stage 5: example wavs through 'sepaudio extract', enrolled by each speaker in turn"
  timed examples "$python" "$here/local/examples.py" --model exp/tsenet/model.pt --ivector-model exp/ivector.pt \
    --root data/mini --speakers spk28 spk29 spk30 spk31 --out exp/examples
fi
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  echo "== stage 6: results"
  "$python" "$here/local/report.py" --exp exp --out exp/RESULTS.md
fi
