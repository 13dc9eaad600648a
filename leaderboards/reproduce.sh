#!/usr/bin/env bash
# Rebuild the committed leaderboards: every first-party model on the `default` and `seeds` suites,
# seeds 0-2, then the pages. Needs the benchmark data under $MMBENCH_DATA (cards whose data is not
# installed are skipped and named). Takes about 1.2 hours on 2 CPU cores; reruns skip finished records.
set -euo pipefail
results=${RESULTS:-results}
seeds=(--seed 0 --seed 1 --seed 2)
models=(
  skipgram
  cnn-mean
  visual-bli-avgmax visual-bli-maxmax visual-bli-cnn-mean visual-bli-cnn-max visual-bli-knn visual-bli-knn-c
  imagevec imagevec-cooc imagevec-cooc-multi imagevec-unaware imagevec-m30k imagevec-m30k-cooc imagevec-300d
)
for model in "${models[@]}"; do
  # One model per call: a model that fails to train is reported and the others still run.
  mmbench run --model "$model" --suite default --suite seeds "${seeds[@]}" --output-dir "$results" || true
done
mmbench leaderboard --results-dir "$results" --output-dir leaderboards
