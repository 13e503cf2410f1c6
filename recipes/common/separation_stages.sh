# Stages 1-3 of the blind separation recipes (sep_mini, sep_libri2mix, sep_wsj0-2mix), sourced by their run.sh
# after stage 0: 1 train each of $models, 2 evaluate each on the test set, 3 results table (exp/RESULTS.md).
for m in $models; do
  if begin_stage 1 "train $m"; then
    "$python" -m sepaudio train "$recipe/conf.yml" "exp_dir=exp/$m" "model.name=$m" "${overrides[@]}"
  fi
  if begin_stage 2 "evaluate $m on the test set"; then
    "$python" -m sepaudio evaluate "$recipe/conf.yml" "exp_dir=exp/$m" "model.name=$m" "${overrides[@]}"
  fi
done
if begin_stage 3 "results table"; then
  "$python" "$common/table.py" $(for m in $models; do echo "exp/$m/eval_test"; done) --out exp/RESULTS.md
fi
