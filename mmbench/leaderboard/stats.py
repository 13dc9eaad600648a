"""Item-level statistics from records' per-item outputs (``details.items``): pure NumPy, no file access.

A record's score is recomputed from its items under *weights*: one row of weights per bootstrap resample,
one column per item (how often the resample drew it; 0 = left out). Weights make every resample of every
model use the same draws (paired), and they make a subset (the common items, the covered items) a mask
instead of a copy. ``resample_counts`` draws the weights; ``item_scores`` scores them; ``bootstrap`` and
``paired_test`` turn the resampled scores into a 95 % interval and a p-value.

Scores that can be recomputed (``score_from_items``): ``spearman``/``pearson`` (columns ``similarity``,
``gold``), precision@k ``p<k>`` and ``mrr`` (best-gold ``rank``), retrieval ``i2t_r<k>``/``t2i_r<k>``/
``a2b_r<k>``/``b2a_r<k>``/``rsum`` and ``accuracy`` (``correct``). Anything else gives None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

N_RESAMPLES = 1000
ALPHA = 0.05  # two-sided: 95 % intervals, "differs from the best" at p < 0.05
CHUNK = 100  # resamples scored at once (keeps (resamples x items) matrices small)
_PRECISION = re.compile(r"^p(\d+)$")
_RECALL = re.compile(r"^(i2t|t2i|a2b|b2a)_r(\d+)$")
_DIRECTIONS = {"i2t": ("i2t", "t2i"), "a2b": ("a2b", "b2a")}


@dataclass
class Items:
    """Decoded per-item outputs of one record: float columns (NaN = not scored)."""

    unit: str
    n: int
    columns: dict[str, np.ndarray]
    per_item: dict[str, int] = field(default_factory=dict)

    def covered(self) -> np.ndarray:
        """Items the model covered (has vectors for): the ``covered`` column, else the scored ones."""
        if "covered" in self.columns:
            return self.columns["covered"] == 1
        for name in ("similarity", "rank"):
            if name in self.columns:
                return np.isfinite(self.columns[name])
        return np.ones(self.n, dtype=bool)


def decode_items(items: dict) -> Items:
    """``details.items`` (already checked by ``mmbench.results.items_problem``) as arrays."""
    columns = {name: np.array([np.nan if part == "-" else float(part) for part in text.split(" ")] if text else [],
                              dtype=np.float64) for name, text in items["columns"].items()}
    return Items(items.get("unit", ""), int(items["n"]), columns, dict(items.get("per_item") or {}))


def resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n)`` int counts: resample ``b`` draws item ``i`` ``counts[b, i]`` times (n draws)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples) if n else np.zeros((n_resamples, 0), int)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1)
    return np.divide(weights @ values, total, out=np.full(len(weights), np.nan), where=total > 0)


def weighted_average_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(B, n)`` average ranks of ``values`` in each weighted sample (an item drawn c times fills c
    consecutive positions; ties share their mean position): ``scipy.stats.rankdata`` of the expanded sample."""
    if values.size == 0:
        return np.zeros(weights.shape, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    group_of_sorted = np.cumsum(np.concatenate(([True], ordered[1:] != ordered[:-1]))) - 1
    group_counts = np.add.reduceat(weights[:, order], starts, axis=1) if len(starts) else weights[:, :0]
    before = np.cumsum(group_counts, axis=1) - group_counts
    group_rank = before + (group_counts + 1) / 2
    ranks = np.empty_like(weights, dtype=np.float64)
    ranks[:, order] = group_rank[:, group_of_sorted]
    return ranks


def _weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pearson correlation per row of weights; x and y are (n,) or (B, n). 0 where undefined."""
    total = weights.sum(axis=1, keepdims=True)
    safe = np.where(total > 0, total, 1)
    mx = (weights * x).sum(axis=1, keepdims=True) / safe
    my = (weights * y).sum(axis=1, keepdims=True) / safe
    dx, dy = x - mx, y - my
    cov = (weights * dx * dy).sum(axis=1)
    var = (weights * dx * dx).sum(axis=1) * (weights * dy * dy).sum(axis=1)
    return np.divide(cov, np.sqrt(var), out=np.zeros(len(weights)), where=var > 1e-24)


def item_scores(name: str, items: Items, weights: np.ndarray, mask: np.ndarray | None = None,
                penalise_missing: bool = False) -> np.ndarray | None:
    """Score ``name`` under each row of ``weights`` ``(B, n)``, over the items in ``mask`` (default: all
    scored items). ``penalise_missing``: unscored items count as failures (rank never within k, MRR 0) or
    similarity 0 (word similarity's OOV-penalised score). None when ``name`` cannot be recomputed."""
    weights = np.asarray(weights, dtype=np.float64)
    if mask is not None:
        weights = weights * mask
    columns = items.columns
    if name in ("spearman", "pearson") and {"similarity", "gold"} <= set(columns):
        x, y = columns["similarity"], columns["gold"]
        if penalise_missing:
            x = np.where(np.isfinite(x), x, 0.0)
        # Only items that can carry weight enter the (resamples x items) work: a low-coverage model's
        # unscored pairs (and items outside the mask) would only add zero columns.
        keep = np.isfinite(x) & (weights.any(axis=0) if mask is None else np.asarray(mask, dtype=bool))
        x, y, w = x[keep], y[keep], weights[:, keep]
        if name == "pearson":
            return _weighted_pearson(x, y, w)
        # Work in x-sorted item order: x's ranks need no scatter, and without ties in x (the usual case
        # for cosines) an item drawn c times after ``before`` draws has rank before + (c + 1) / 2.
        order = np.argsort(x, kind="mergesort")
        x, y, w = x[order], y[order], w[:, order]
        if len(x) > 1 and (x[1:] != x[:-1]).all():
            x_ranks = np.cumsum(w, axis=1) - (w - 1) / 2
        else:
            x_ranks = weighted_average_ranks(x, w)
        return _weighted_pearson(x_ranks, weighted_average_ranks(y, w), w)
    precision = _PRECISION.match(name)
    if (precision or name == "mrr") and "rank" in columns:
        rank = columns["rank"]
        finite = np.isfinite(rank)
        if name == "mrr":
            values = np.where(finite, 1 / (np.where(finite, rank, 0) + 1), 0.0)
        else:
            values = (finite & (np.where(finite, rank, np.inf) < int(precision.group(1)))).astype(np.float64)
        counted = np.ones_like(finite) if penalise_missing else finite
        value = _weighted_mean(values, weights * counted)
        return value if name == "mrr" else 100 * value
    if name == "accuracy" and "correct" in columns:
        return 100 * _weighted_mean(columns["correct"], weights)
    recall = _RECALL.match(name)
    if recall and f"{recall.group(1)}_rank" in columns:
        return _recall(items, recall.group(1), int(recall.group(2)), weights)
    if name == "rsum":
        for first, second in _DIRECTIONS.values():
            if f"{first}_rank" in columns and f"{second}_rank" in columns:
                return sum(_recall(items, d, k, weights) for d in (first, second) for k in (1, 5, 10))
    return None


def _recall(items: Items, direction: str, k: int, weights: np.ndarray) -> np.ndarray:
    column = f"{direction}_rank"
    repeat = items.per_item.get(column, 1)
    expanded = np.repeat(weights, repeat, axis=1) if repeat > 1 else weights  # a caption goes with its image
    return 100 * _weighted_mean((items.columns[column] < k).astype(np.float64), expanded)


def score_from_items(name: str, items: Items, mask: np.ndarray | None = None,
                     penalise_missing: bool = False) -> float | None:
    """The score on all items (or those in ``mask``): the point estimate the bootstrap resamples."""
    values = item_scores(name, items, np.ones((1, items.n)), mask, penalise_missing)
    return None if values is None else float(values[0])


def resampled(name: str, seeds: list[Items], counts: np.ndarray, seed_picks: np.ndarray,
              mask: np.ndarray | None = None, penalise_missing: bool = False) -> np.ndarray | None:
    """``(B,)`` seed-combined resampled scores: resample ``b`` scores the items drawn by ``counts[b]`` for
    each seed of ``seed_picks[b]`` (seeds drawn with replacement) and averages them (a two-level bootstrap:
    items, then seeds)."""
    per_seed = []
    for items in seeds:
        parts = []
        for start in range(0, len(counts), CHUNK):
            part = item_scores(name, items, counts[start:start + CHUNK], mask, penalise_missing)
            if part is None:
                return None
            parts.append(part)
        per_seed.append(np.concatenate(parts))
    table = np.stack(per_seed)  # (seeds, B)
    return table[seed_picks, np.arange(len(counts))[:, None]].mean(axis=1)


def seed_picks(n_seeds: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(B, n_seeds)`` seed indices drawn with replacement (all zeros for one seed)."""
    if n_seeds == 1:
        return np.zeros((n_resamples, 1), dtype=np.int64)
    return np.random.default_rng(seed).integers(0, n_seeds, size=(n_resamples, n_seeds))


def percentile_interval(values: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    """The ``1 - alpha`` percentile interval of bootstrap values (NumPy's default linear interpolation)."""
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def paired_p_value(best: np.ndarray, other: np.ndarray) -> float:
    """Two-sided paired-bootstrap p-value of "``other`` scores the same as ``best``".

    ``best`` and ``other`` are resampled scores over the *same* draws; the p-value is twice the smaller
    share of resamples on either side of zero difference, with the +1 correction of Davison & Hinkley
    (a p-value is never 0 from finitely many resamples), capped at 1.
    """
    difference = np.asarray(best) - np.asarray(other)
    n = len(difference)
    below, above = int((difference <= 0).sum()), int((difference >= 0).sum())
    return float(min(1.0, 2 * (min(below, above) + 1) / (n + 1)))
