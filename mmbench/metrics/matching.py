"""Image<->word matching: rank one gold candidate among sampled negatives (1 + 99 by default).

Each query is scored by cosine against a candidate list drawn from ``np.random.default_rng(seed)``
in query order: first one gold candidate (``rng.choice`` over the sorted gold set, so with several
gold candidates one is drawn per query), then ``n_negatives`` distinct candidates, without
replacement, from those *not* in the query's gold set. ``n_negatives=None`` uses every non-gold
candidate (a full ranking against one drawn gold). Precision@k is the percentage of queries whose
gold candidate ranks within the first k; a negative scoring exactly like it ranks first (ties are
pessimistic by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from ._common import (
    MetricInputError,
    Scratch,
    Ties,
    as_matrix,
    check_ties,
    common_dtype,
    normalize_rows,
    ranks_in_place,
    recall_at,
    rows_per_block,
    unique_rows,
)


def _gold_set(entry: int | Iterable[int]) -> list[int]:
    return [int(entry)] if isinstance(entry, (int, np.integer)) else sorted({int(g) for g in entry})


def sample_candidates(
    gold: Sequence[int | Iterable[int]], n_candidates: int, *, n_negatives: int | None = 99, seed: int = 0
) -> np.ndarray:
    """(queries, 1 + negatives) candidate indices, column 0 the drawn gold candidate (see module doc)."""
    rng = np.random.default_rng(seed)
    rows = []
    every = np.arange(n_candidates)
    for q, entry in enumerate(gold):
        golds = _gold_set(entry)
        if not golds or golds[0] < 0 or golds[-1] >= n_candidates:
            raise MetricInputError(f"gold[{q}] = {entry!r}: needs candidate indices in 0..{n_candidates - 1}")
        negatives_pool = np.delete(every, golds)  # = setdiff1d(every, golds): golds are sorted, distinct, in range
        wanted = len(negatives_pool) if n_negatives is None else n_negatives
        if wanted > len(negatives_pool):
            raise MetricInputError(
                f"query {q}: {n_negatives} negatives requested but only {len(negatives_pool)} non-gold candidates exist"
            )
        chosen_gold = int(rng.choice(golds))
        rows.append(np.concatenate([[chosen_gold], rng.choice(negatives_pool, size=wanted, replace=False)]))
    if len({len(r) for r in rows}) > 1:
        raise MetricInputError("n_negatives=None needs the same number of gold candidates for every query")
    return np.stack(rows).astype(np.int64) if rows else np.zeros((0, 1 + (n_negatives or 0)), dtype=np.int64)


def matching_scores(
    query_vectors: Any,
    candidate_vectors: Any,
    gold: Sequence[int | Iterable[int]],
    *,
    n_negatives: int | None = 99,
    seed: int = 0,
    ks: Sequence[int] = (1, 5, 10),
    ties: Ties = "pessimistic",
) -> dict[str, float | int]:
    """Precision@k (percent, keys ``p{k}``), ``mrr`` (0-1), ``n_queries`` and ``n_candidates`` per query.

    ``gold[i]`` is the gold candidate row of query ``i`` or a set of them. No queries gives zeros.
    """
    check_ties(ties)
    queries = as_matrix(query_vectors, "query_vectors", allow_empty=True)
    candidates = as_matrix(candidate_vectors, "candidate_vectors", device=queries.device)
    if len(gold) != queries.shape[0]:
        raise MetricInputError(f"gold has {len(gold)} entries for {queries.shape[0]} queries")
    if queries.shape[1] != candidates.shape[1]:
        raise MetricInputError(f"queries have {queries.shape[1]} dims but candidates have {candidates.shape[1]}")
    lists = sample_candidates(gold, candidates.shape[0], n_negatives=n_negatives, seed=seed)
    dtype = common_dtype(queries, candidates)
    queries, candidates = normalize_rows(queries.to(dtype)), normalize_rows(candidates.to(dtype))
    # Score each query against every distinct candidate, then pick its list: identical candidate
    # vectors get bit-identical scores, so exact ties stay exact (see ``unique_rows``).
    distinct, inverse = unique_rows(candidates)
    index = torch.from_numpy(lists).to(queries.device)
    if inverse is not None:
        index = inverse[index]
    step = rows_per_block(distinct.shape[0], 4096)
    scratch = Scratch()
    ranks = []
    for start in range(0, len(lists), step):
        block = queries[start : start + step]
        sims = scratch.matrix(block.shape[0], distinct.shape[0], dtype, queries.device)
        scores = torch.matmul(block, distinct.T, out=sims).gather(1, index[start : start + step])
        first = torch.zeros((scores.shape[0], 1), dtype=torch.long, device=scores.device)
        ranks.append(ranks_in_place(scores, first, ties).cpu())
    rank_array = torch.cat(ranks).numpy() if ranks else np.zeros(0, dtype=np.int64)
    result: dict[str, float | int] = {f"p{k}": recall_at(rank_array, k) for k in ks}
    result["mrr"] = float(np.mean(1.0 / (rank_array + 1))) if len(rank_array) else 0.0
    result["n_queries"] = len(rank_array)
    result["n_candidates"] = int(lists.shape[1])
    return result
