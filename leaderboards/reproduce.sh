#!/usr/bin/env bash
# Rebuild the committed leaderboards: every first-party model on the `default` and `seeds` suites,
# seeds 0-2, then the pages. Needs the benchmark data under $MMBENCH_DATA (cards whose data is not
# installed are skipped and named). Takes about 4 hours on 2 CPU cores (training included); reruns skip finished records.
set -euo pipefail
results=${RESULTS:-results}
seeds=(--seed 0 --seed 1 --seed 2)
models=(
  skipgram
  iesg iesg-l2
  ame ame-order ame-fme ame-noalign ame-mono ame-mono-de
  liwe liwe-noclmr liwe-en liwe-wordtable charcnn
  cnn-mean
  visual-bli-avgmax visual-bli-maxmax visual-bli-cnn-mean visual-bli-cnn-max visual-bli-knn visual-bli-knn-c
  imagevec imagevec-cooc imagevec-cooc-multi imagevec-unaware imagevec-m30k imagevec-m30k-cooc imagevec-300d
  imagevec-multi imagevec-multi-noimage imagevec-multi-nocontext imagevec-multi-noparallel
)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # small GRUs and gensim: one thread per run is fastest on 2 shared cores
for model in "${models[@]}"; do
  # One model per call: a model that fails to train is reported and the others still run.
  mmbench run --model "$model" --suite default --suite seeds "${seeds[@]}" --output-dir "$results" || true
done
# AME, FME and no-alignment, LIWE and its CLMR and word-table controls at Multi30k scale (co-occurrence: a
# free vector per training image): one epoch over 290,000 captions is ~11 min a seed on one core for AME,
# ~17 min for LIWE with CLMR.
for model in ame-cooc ame-fme-cooc ame-noalign-cooc liwe-cooc liwe-noclmr-cooc liwe-wordtable-cooc; do
  mmbench run --model "$model" --suite default --suite seeds "${seeds[@]}" --output-dir "$results" || true
done
mmbench leaderboard --results-dir "$results" --output-dir leaderboards
