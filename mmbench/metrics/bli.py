"""Bilingual lexicon induction, following MUSE ``src/evaluation/word_translation.py`` (Conneau et al. 2018).

Rows of both vocabularies are L2-normalised. A query is a source row with its set of gold target rows;
it counts as correct at k if *any* gold translation is among the k best targets, and precision@k
is the percentage of correct queries (MUSE averages over unique source words the same way).

* ``method="nn"``: cosine similarity.
* ``method="csls"``: ``2 cos(x, y) - r_T(x) - r_S(y)``, where ``r_T(x)`` is the mean cosine of ``x`` to
  its ``csls_k`` nearest neighbours in the *full* target vocabulary and ``r_S(y)`` that of ``y`` in
  the full source vocabulary (MUSE's ``get_nn_avg_dist``; its ``csls_knn_10`` is the default here).

MUSE ranks with ``topk``, which breaks exact ties arbitrarily; here a wrong target scoring exactly
like the best gold one ranks before it (pessimistic). Scores are computed in blocks of about
``chunk_size ** 2`` entries, so 200k x 200k vocabularies never materialise a full matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

from ._common import (
    MetricInputError,
    Scratch,
    as_matrix,
    common_dtype,
    normalize_rows,
    padded_index,
    ranks_in_place,
    recall_at,
    rows_per_block,
    unique_rows,
)

Method = Literal["nn", "csls"]


def mean_topk_similarity(
    queries: torch.Tensor, vocabulary: torch.Tensor, k: int, *, chunk_size: int = 4096
) -> torch.Tensor:
    """Mean of the ``k`` largest dot products of each query row with the vocabulary rows (CSLS's r).

    ``k`` is capped at the vocabulary size. Each block spans the whole vocabulary, so ``topk`` sees
    complete rows and no partial results need merging.
    """
    k = min(k, vocabulary.shape[0])
    out = queries.new_empty(queries.shape[0])
    step = rows_per_block(vocabulary.shape[0], chunk_size)
    scratch = Scratch()
    for start in range(0, queries.shape[0], step):
        block = queries[start : start + step]
        sims = scratch.matrix(block.shape[0], vocabulary.shape[0], queries.dtype, queries.device)
        torch.matmul(block, vocabulary.T, out=sims)
        out[start : start + step] = sims.topk(k, dim=1).values.mean(dim=1)
    return out


def _gold_sets(queries: Mapping[int, Iterable[int]], n_source: int, n_target: int) -> tuple[list[int], list[list[int]]]:
    sources, golds = [], []
    for source, targets in queries.items():
        gold = sorted({int(t) for t in targets})
        if not 0 <= int(source) < n_source:
            raise MetricInputError(f"queries: source row {source} outside the source vocabulary (0..{n_source - 1})")
        if not gold:
            raise MetricInputError(f"queries: source row {source} has no gold translation")
        if gold[0] < 0 or gold[-1] >= n_target:
            raise MetricInputError(
                f"queries: gold row of source {source} outside the target vocabulary (0..{n_target - 1})"
            )
        sources.append(int(source))
        golds.append(gold)
    return sources, golds


def bli_ranks(
    source_vectors: Any,
    target_vectors: Any,
    queries: Mapping[int, Iterable[int]],
    *,
    method: Method = "csls",
    csls_k: int = 10,
    chunk_size: int = 4096,
) -> np.ndarray:
    """0-based rank of the best-ranked gold translation of each query (in ``queries`` order), ties pessimistic."""
    if method not in ("nn", "csls"):
        raise MetricInputError(f"method must be 'nn' or 'csls', got {method!r}")
    if csls_k < 1:
        raise MetricInputError(f"csls_k must be positive, got {csls_k}")
    source = as_matrix(source_vectors, "source_vectors", allow_empty=True)
    target = as_matrix(target_vectors, "target_vectors", device=source.device, allow_empty=True)
    if source.shape[1] != target.shape[1]:
        raise MetricInputError(f"source vectors have {source.shape[1]} dims but target vectors have {target.shape[1]}")
    sources, golds = _gold_sets(queries, source.shape[0], target.shape[0])
    if not sources:
        return np.zeros(0, dtype=np.int64)
    dtype = common_dtype(source, target)
    source, target = normalize_rows(source.to(dtype)), normalize_rows(target.to(dtype))
    device = source.device
    query = source[torch.tensor(sources, device=device)]
    # Identical target vectors are scored once and copied, so they tie exactly (see ``unique_rows``).
    distinct, inverse = unique_rows(target)
    if method == "csls":
        r_target = mean_topk_similarity(query, target, csls_k, chunk_size=chunk_size)
        r_source = mean_topk_similarity(distinct, source, csls_k, chunk_size=chunk_size)

    ranks = torch.empty(len(sources), dtype=torch.long, device=device)
    step = rows_per_block(target.shape[0], chunk_size)
    raw_buffer, expanded_buffer = Scratch(), Scratch()
    for start in range(0, len(sources), step):
        stop = min(len(sources), start + step)
        scores = raw_buffer.matrix(stop - start, distinct.shape[0], dtype, device)
        torch.matmul(query[start:stop], distinct.T, out=scores)
        if method == "csls":
            # Same operation order as MUSE (scale, subtract r_T(x), subtract r_S(y)).
            scores.mul_(2).sub_(r_target[start:stop, None]).sub_(r_source[None, :])
        if inverse is not None:
            raw, scores = scores, expanded_buffer.matrix(stop - start, target.shape[0], dtype, device)
            torch.index_select(raw, 1, inverse, out=scores)
        gold_index, gold_valid = padded_index(golds[start:stop], device)
        ranks[start:stop] = ranks_in_place(scores, gold_index, "pessimistic", gold_valid)
    return ranks.cpu().numpy()


def bli_scores(
    source_vectors: Any,
    target_vectors: Any,
    queries: Mapping[int, Iterable[int]],
    *,
    method: Method = "csls",
    csls_k: int = 10,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 4096,
    n_source_total: int | None = None,
    return_ranks: bool = False,
) -> dict[str, Any]:
    """Precision@k (percent, keys ``p1, p5, p10`` for the default ``ks``), ``mrr``, ``n_queries``, ``coverage``.

    ``source_vectors`` (S, d) and ``target_vectors`` (T, d) are the full vocabularies; ``queries`` maps
    a source row to its gold target rows. ``mrr`` is the mean reciprocal rank (0-1) of the best-ranked
    gold translation over the whole target vocabulary. ``coverage = n_queries / n_source_total`` when
    the number of unique dictionary source words (including out-of-vocabulary ones) is given, else None.
    No queries gives zeros (not NaN) with ``n_queries = 0``.
    """
    ranks = bli_ranks(source_vectors, target_vectors, queries, method=method, csls_k=csls_k, chunk_size=chunk_size)
    result: dict[str, float | int | None] = {f"p{k}": recall_at(ranks, k) for k in ks}
    result["mrr"] = float(np.mean(1.0 / (ranks + 1))) if len(ranks) else 0.0
    result["n_queries"] = len(ranks)
    if n_source_total is None:
        result["coverage"] = None
    else:
        if n_source_total < len(ranks):
            raise MetricInputError(
                f"n_source_total ({n_source_total}) is smaller than the number of queries ({len(ranks)})"
            )
        result["coverage"] = len(ranks) / n_source_total if n_source_total else 0.0
    if return_ranks:  # per query (``queries`` order): the per-item output of a record
        result["ranks"] = np.asarray(ranks, dtype=np.int64)
    return result


def alignment_ratio(
    source_vectors: Any,
    target_vectors: Any,
    queries: Mapping[int, Iterable[int]],
    *,
    method: Method = "csls",
    csls_k: int = 10,
) -> float:
    """Share (0-1) of source words whose nearest target word is a gold translation (AME alignment ratio)."""
    result = bli_scores(source_vectors, target_vectors, queries, method=method, csls_k=csls_k, ks=(1,))
    return float(result["p1"]) / 100.0
