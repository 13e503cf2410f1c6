# The stages of the cross-validation recipes (esc50_esresnet, us8k_esresnet), sourced by their run.sh after
# `dataset` (its sepaudio name) and `all_folds`: 0 check the corpus, 1 train one model per fold in --folds on the
# other folds, 2 evaluate it on its held-out fold, 3 table of the folds with mean +- std (exp/RESULTS.md).
require corpus
others() {  # others K: the folds other than K, as a YAML list
  echo "[$(for f in $all_folds; do [ "$f" = "$1" ] || printf '%s,' "$f"; done | sed 's/,$//')]"
}

if begin_stage 0 "check the corpus ($corpus)"; then
  "$python" -m sepaudio prepare "$dataset" "$corpus"
fi
for k in $folds; do
  fold=("exp_dir=exp/fold$k" "data.train.root=$corpus" "data.valid.root=$corpus" "data.test.root=$corpus"
        "data.train.folds=$(others "$k")" "data.valid.folds=[$k]" "data.test.folds=[$k]" "${overrides[@]}")
  if begin_stage 1 "train on the folds other than $k"; then
    "$python" -m sepaudio train "$recipe/conf.yml" "${fold[@]}"
  fi
  if begin_stage 2 "evaluate on fold $k"; then
    "$python" -m sepaudio evaluate "$recipe/conf.yml" "${fold[@]}"
  fi
done
if begin_stage 3 "cross-validation table"; then
  "$python" "$common/table.py" --cross-validation --out exp/RESULTS.md \
    $(for k in $folds; do echo "exp/fold$k/eval_test"; done)
fi
