# Stage 0 of sep_libri2mix and tse_libri2mix, sourced by their run.sh: check the LibriMix copy and write data/
# through the recipe's local/prepare_data.py with the corpus choices --train-set, --sample-rate, --mode and
# --mixture; the model and every data split are set to the chosen sample rate.
rate=${sample_rate%k}000
overrides=("model.args.sample_rate=$rate" "data.train.sample_rate=$rate" "data.valid.sample_rate=$rate"
           "data.test.sample_rate=$rate" "${overrides[@]}")
if begin_stage 0 "check LibriMix ($train_set, wav$sample_rate/$mode, $mixture), write data/"; then
  require corpus
  "$python" "$recipe/local/prepare_data.py" "$corpus" --train-set "$train_set" --sample-rate "$sample_rate" \
    --mode "$mode" --mixture "$mixture" --out data
fi
