"""Word similarity: Spearman correlation between cosine similarities and human ratings.

Pairs whose words have no vector are handled by a named policy (``oov``):

* ``"drop"`` (as in Faruqui & Dyer's wordvectors.org scripts): only pairs with both vectors are scored.
* ``"zero"``: every pair is scored; a pair with a missing word gets similarity 0.
* ``"mean"``: every pair is scored; a missing word is represented by the mean vector of the model's
  *whole vocabulary* (``vocabulary_mean``), as word-embeddings-benchmarks' ``evaluate_similarity``
  does (``mean_vector = np.mean(w.vectors, axis=0)``), not by the mean of the words found in the pair
  list. ``vocabulary_mean`` is one (d,) vector, or a pair of them (first words, second words) for a
  crosslingual list whose two columns come from two vocabularies. With a per-pair ``found`` mask of
  shape (n,) it is not known which word is missing, so *both* words of an unfound pair take the mean;
  a per-word mask of shape (n, 2) replaces only the missing word and should be preferred.

Spearman's rho uses average ranks for ties (what ``scipy.stats.spearmanr`` computes). When fewer than
two pairs are scored, or the similarities or ratings are constant, the correlation is undefined;
it is reported as 0.0 with ``degenerate=True`` rather than NaN, so records stay numeric and a
collapsed model scores as "no correlation".
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ._common import MetricInputError

OOVPolicy = Literal["drop", "mean", "zero"]


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank, as float64: ``scipy.stats.rankdata(values)``
    for finite input, value for value (ranks are whole or half numbers, so exact), without importing
    scipy.stats (a second of start-up)."""
    values = np.asarray(values).ravel()
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    dense = np.empty(len(values), dtype=np.intp)
    dense[order] = np.cumsum(starts)
    bounds = np.concatenate((np.flatnonzero(starts), [len(values)]))
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    return float((x @ y) / np.sqrt((x @ x) * (y @ y)))


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def _fill_vectors(vocabulary_mean: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``vocabulary_mean`` as (first-word fill, second-word fill), each a finite (dim,) float64 vector."""
    if vocabulary_mean is None:
        raise MetricInputError("oov='mean' needs vocabulary_mean: the mean vector of the model's whole vocabulary")
    if isinstance(vocabulary_mean, (tuple, list)) and len(vocabulary_mean) == 2:
        first, second = (np.asarray(v, dtype=np.float64) for v in vocabulary_mean)
    else:
        first = second = np.asarray(vocabulary_mean, dtype=np.float64)
    for fill in (first, second):
        if fill.shape != (dim,) or not np.isfinite(fill).all():
            raise MetricInputError(f"vocabulary_mean must be finite ({dim},) vectors, got shape {fill.shape}")
    return first, second


def word_similarity(
    vectors1: Any,
    vectors2: Any,
    gold: Any,
    found: Any,
    *,
    oov: OOVPolicy = "drop",
    vocabulary_mean: Any = None,
    return_similarities: bool = False,
) -> dict[str, Any]:
    """Spearman (and Pearson) correlation of pair cosines with ``gold`` ratings.

    ``vectors1``/``vectors2`` are (n, d) with one row per pair (rows of missing words are ignored and
    may hold anything), ``gold`` is (n,), ``found`` is a boolean (n,) per-pair or (n, 2) per-word mask.
    Returns ``spearman, pearson, coverage`` (pairs with both vectors / all pairs), ``n_pairs,
    n_found, n_scored, oov_policy, degenerate``; with ``return_similarities`` also ``similarities``:
    the (n,) cosine of every pair (NaN where the pair is not scored), the per-item output that
    bootstrap intervals and common-subset scores are computed from.
    """
    if oov not in ("drop", "mean", "zero"):
        raise MetricInputError(f"oov must be 'drop', 'mean' or 'zero', got {oov!r}")
    v1 = np.asarray(vectors1, dtype=np.float64)
    v2 = np.asarray(vectors2, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    found = np.asarray(found, dtype=bool)
    n = gold.shape[0] if gold.ndim == 1 else -1
    if n < 0 or v1.ndim != 2 or v2.ndim != 2 or v1.shape != v2.shape or v1.shape[0] != n:
        raise MetricInputError(
            f"expected vectors1/vectors2 of shape (n, d) and gold of shape (n,), got {v1.shape}, {v2.shape}, {gold.shape}"
        )
    if found.shape not in ((n,), (n, 2)):
        raise MetricInputError(f"found must have shape ({n},) or ({n}, 2), got {found.shape}")
    if not np.isfinite(gold).all():
        raise MetricInputError("gold ratings contain NaN or infinite values")
    word_found = np.stack([found, found], axis=1) if found.ndim == 1 else found
    pair_found = word_found.all(axis=1)
    if not (np.isfinite(v1[word_found[:, 0]]).all() and np.isfinite(v2[word_found[:, 1]]).all()):
        raise MetricInputError("vectors of found words contain NaN or infinite values")

    if oov == "drop":
        scored = pair_found
        sims = _cosine_rows(v1[scored], v2[scored])
    else:
        scored = np.ones(n, dtype=bool)
        if oov == "zero":
            sims = np.zeros(n)
            sims[pair_found] = _cosine_rows(v1[pair_found], v2[pair_found])
        else:
            fill1, fill2 = _fill_vectors(vocabulary_mean, v1.shape[1])
            left = np.where(word_found[:, :1], v1, fill1)
            right = np.where(word_found[:, 1:], v2, fill2)
            sims = _cosine_rows(left, right)
    scored_gold = gold[scored]

    degenerate = len(sims) < 2 or np.ptp(sims) == 0 or np.ptp(scored_gold) == 0
    if degenerate:
        spearman = pearson = 0.0
    else:
        spearman = _pearson(average_ranks(sims), average_ranks(scored_gold))
        pearson = _pearson(sims, scored_gold)
    result = {
        "spearman": spearman,
        "pearson": pearson,
        "coverage": float(pair_found.mean()) if n else 0.0,
        "n_pairs": int(n),
        "n_found": int(pair_found.sum()),
        "n_scored": int(scored.sum()),
        "oov_policy": oov,
        "degenerate": bool(degenerate),
    }
    if return_similarities:
        every = np.full(n, np.nan)
        every[scored] = sims
        result["similarities"] = every
    return result
