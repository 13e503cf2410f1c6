#!/usr/bin/env bash
# tse_mini: TseNet target speaker extraction on the mini speech corpus, end to end on a CPU in minutes.
#   recipes/tse_mini/run.sh [options] [key=value ...]
# Stages: 0 corpus + lists (--speakers voices, the last --heldout of them never trained on), 1 train the i-vector
# extractor, 2 i-vector EER on held-out speakers, 3 train TseNet, 4 fit the model's confidence threshold on
# validation mixtures, evaluate on held-out and on training speakers (SI-SDRi, SDRi, PESQ, STOI, speaker confusion
# + spectrograms), 5 the conditioning check: every pair of held-out speakers through 'sepaudio extract' with each
# one's enrollment in turn, 6 results table (RESULTS.md in the model's exp_dir, exp/tsenet). Interrupted training resumes from its checkpoint.
stage=0                   # N: first stage to run
stop_stage=6              # N: last stage to run
speakers=128              # N: speakers (voices) of the corpus
heldout=8                 # N: of them, held out of training (the last in order): the test speakers
utterances=10             # N: utterances per speaker of the corpus
components=64             # N: Gaussians of the i-vector extractor's UBM
rank=100                  # N: rank of its total variability matrix
lda_dim=10                # N: i-vector dimension after LDA, TseNet's model.args.ivector_dim
conf=conf.yml             # conf.yml|conf_causal.yml|conf_encoder.yml|conf_slicenet.yml: TseNet's config (causal: it streams; encoder: learned speaker encoder; slicenet: SliceNet masker)
. "$(dirname "$0")/../common/parse_options.sh"
# One BLAS thread per process: the data worker computes i-vectors beside the training process, and on a loaded
# machine spinning OpenMP threads cost far more than they give. Set OMP_NUM_THREADS to change it.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
conf=$recipe/$conf
ivector_args=(--ivector-model exp/ivector.pt)  # i-vector conditioning; a learned speaker encoder needs none
if grep -q '^ *conditioning: *encoder' "$conf"; then
  ivector_args=()
else
  overrides=("model.args.ivector_dim=$lda_dim" "${overrides[@]}")
fi
model_dir=$(sed -n 's/^exp_dir: *//p' "$conf")  # the run's exp_dir (exp/tsenet), or the user's exp_dir=...
for _o in "${overrides[@]}"; do [[ $_o != exp_dir=* ]] || model_dir=${_o#exp_dir=}; done
timed() { local name=$1 start=$SECONDS; shift; "$@"; echo "$name $(( SECONDS - start ))" >> exp/timings.txt; }
mkdir -p exp

if begin_stage 0 "mini speech corpus ($speakers speakers, $heldout held out) and speaker / wav lists"; then
  : > exp/timings.txt
  timed corpus "$python" "$common/mini_corpus.py" --root data/mini --speakers "$speakers" \
    --utterances "$utterances" --lists data/lists --heldout "$heldout"
fi
if begin_stage 1 "i-vector extractor (UBM, total variability, LDA) on the training speakers"; then
  timed ivector_train "$python" -m sepaudio ivector train --list data/lists/ivector_train.txt -o exp/ivector.pt \
    --components "$components" --rank "$rank" --lda-dim "$lda_dim" --tv-iterations 5
fi
if begin_stage 2 "i-vector EER (cosine scoring) on the held-out speakers"; then
  timed ivector_eer "$python" -m sepaudio ivector extract --model exp/ivector.pt \
    --list data/lists/ivector_heldout.txt -o exp/ivectors_heldout
fi
if begin_stage 3 "train TseNet"; then
  timed tsenet_train "$python" -m sepaudio train "$conf" "${overrides[@]}"
fi
if begin_stage 4 "confidence threshold; evaluate on held-out (test) and training speakers (valid)"; then
  for split in test valid; do
    # the test evaluation first fits the model's confidence threshold on valid (extract warns below it)
    timed "evaluate_$split" "$python" -m sepaudio evaluate "$conf" "${overrides[@]}" --split "$split" \
      $([ "$split" = test ] && echo --calibrate valid)
  done
fi
if begin_stage 5 "conditioning check: every pair of held-out speakers, extracted with each one's enrollment"; then
  timed examples "$python" "$recipe/local/examples.py" --model "$model_dir/model.pt" "${ivector_args[@]}" \
    --root data/mini --speakers data/lists/heldout_speakers.txt --out "$model_dir/examples"
fi
if begin_stage 6 "results table"; then
  "$python" "$recipe/local/confusion_by_pitch.py" "$conf" "$model_dir/eval_test" "${overrides[@]}" \
    --out "$model_dir/eval_test/confusion_by_pitch.md" > /dev/null
  "$python" "$recipe/local/report.py" --exp exp --model-dir "$model_dir" --out "$model_dir/RESULTS.md"
fi
