"""Visual bilingual lexicon induction: each word is a *set* of image feature vectors.

Word similarities (Bergsma & Van Durme 2011; Kiela, Vulić & Clark 2015), with cosine between images:

* ``avgmax``: mean over the source word's images of the best cosine to any target image.
* ``maxmax``: the best cosine over all (source image, target image) pairs.
* ``cnn-mean``: cosine of the two words' mean image vectors (means of the raw feature vectors).
* ``cnn-max``: cosine of the two words' element-wise maximum image vectors (raw features).

``knn_translation_scores`` ranks target words by nearest-neighbour votes of the source images (KNN),
optionally after summarising each image set by k-means centroids (KNN-C). ``ranking_scores`` and
``scores_by_group`` (e.g. per part of speech, as in Hartmann & Søgaard 2018) turn an (S, T) score
matrix into MRR and precision@k with pessimistic ties.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from ._common import (
    MetricInputError,
    check_ties,
    expand_columns,
    normalize_rows,
    padded_index,
    ranks_in_place,
    recall_at,
    unique_rows,
)

WordMethod = Literal["avgmax", "maxmax", "cnn-mean", "cnn-max"]
EmptySet = Literal["error", "lowest"]


def _stack_sets(sets: Sequence[Any], name: str, empty_set: EmptySet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All images of all words as one float64 matrix, the word id of each row, and images per word."""
    if empty_set not in ("error", "lowest"):
        raise MetricInputError(f"empty_set must be 'error' or 'lowest', got {empty_set!r}")
    arrays = [np.asarray(s.detach().cpu() if isinstance(s, torch.Tensor) else s, dtype=np.float64) for s in sets]
    dims = {a.shape[1] for a in arrays if a.ndim == 2 and a.shape[0]}
    for i, a in enumerate(arrays):
        if a.ndim != 2 and a.size:
            raise MetricInputError(f"{name}[{i}]: expected an (images, dims) array, got shape {a.shape}")
        if a.size == 0 and empty_set == "error":
            raise MetricInputError(f"{name}[{i}]: word has no images (pass empty_set='lowest' to rank it last)")
        if not np.isfinite(a).all():
            raise MetricInputError(f"{name}[{i}]: contains NaN or infinite values")
    if len(dims) > 1:
        raise MetricInputError(f"{name}: image vectors have different dimensions {sorted(dims)}")
    dim = dims.pop() if dims else 0
    counts = torch.tensor([a.shape[0] if a.size else 0 for a in arrays], dtype=torch.long)
    images = [a.reshape(-1, dim) if a.size else np.zeros((0, dim)) for a in arrays]
    matrix = torch.from_numpy(np.concatenate(images) if images else np.zeros((0, dim)))
    owner = torch.repeat_interleave(torch.arange(len(arrays)), counts)
    return matrix, owner, counts


def _segment_reduce(values: torch.Tensor, owner: torch.Tensor, n_segments: int, reduce: str) -> torch.Tensor:
    """Reduce the columns of ``values`` (rows x items) per segment id -> (rows x segments); empty -> -inf."""
    out = values.new_full((values.shape[0], n_segments), float("-inf"))
    return out.scatter_reduce(1, owner.expand(values.shape[0], -1), values, reduce=reduce, include_self=False)


def word_similarity_matrix(
    source_sets: Sequence[Any],
    target_sets: Sequence[Any],
    method: WordMethod = "avgmax",
    *,
    empty_set: EmptySet = "error",
) -> np.ndarray:
    """(S, T) similarity of every source word with every target word under ``method``.

    A word without images raises by default; ``empty_set="lowest"`` gives it similarity ``-inf``
    (ranked last, tied with the other empty words).
    """
    if method not in ("avgmax", "maxmax", "cnn-mean", "cnn-max"):
        raise MetricInputError(f"method must be avgmax, maxmax, cnn-mean or cnn-max, got {method!r}")
    source, source_owner, source_counts = _stack_sets(source_sets, "source_sets", empty_set)
    target, target_owner, target_counts = _stack_sets(target_sets, "target_sets", empty_set)
    if source.shape[1] != target.shape[1] and source.shape[0] and target.shape[0]:
        raise MetricInputError(f"source images have {source.shape[1]} dims but target images have {target.shape[1]}")
    n_source, n_target = len(source_sets), len(target_sets)
    if method in ("cnn-mean", "cnn-max"):
        reduce = "mean" if method == "cnn-mean" else "amax"

        def aggregate(images: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
            out = images.new_zeros((n, images.shape[1]))
            index = owner[:, None].expand(-1, images.shape[1])
            return out.scatter_reduce(0, index, images, reduce=reduce, include_self=False)

        # Words with identical aggregates must tie exactly (see ``unique_rows``).
        distinct, inverse = unique_rows(normalize_rows(aggregate(target, target_owner, n_target)))
        sims = expand_columns(normalize_rows(aggregate(source, source_owner, n_source)) @ distinct.T, inverse)
    else:
        # Blocks of source images keep the (images x images) cosines to about 2**24 entries.
        source = normalize_rows(source)
        distinct, inverse = unique_rows(normalize_rows(target))
        sims = source.new_full((n_source, n_target), float("-inf") if method == "maxmax" else 0.0)
        step = max(1, (1 << 24) // max(1, target.shape[0]))
        for start in range(0, source.shape[0], step):
            cosines = expand_columns(source[start : start + step] @ distinct.T, inverse)
            best = _segment_reduce(cosines, target_owner, n_target, "amax")
            rows = source_owner[start : start + step]
            if method == "avgmax":
                sims.index_add_(0, rows, best)
            else:
                sims.scatter_reduce_(0, rows[:, None].expand(-1, n_target), best, reduce="amax")
        if method == "avgmax":
            sims /= source_counts.clamp(min=1)[:, None].to(sims.dtype)
    sims = sims.clone()
    sims[source_counts == 0, :] = float("-inf")
    sims[:, target_counts == 0] = float("-inf")
    return sims.numpy()


def kmeans_centroids(vectors: np.ndarray, n_clusters: int, *, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding from ``np.random.default_rng(seed)``; deterministic.

    ``n_clusters`` is capped at the number of vectors; an emptied cluster keeps its previous centroid.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    n_clusters = min(n_clusters, len(vectors))
    rng = np.random.default_rng(seed)
    centroids = [vectors[rng.integers(len(vectors))]]
    for _ in range(1, n_clusters):
        dist = np.min([((vectors - c) ** 2).sum(1) for c in centroids], axis=0)
        if dist.sum() <= 0:  # fewer distinct points than clusters: stop adding duplicates
            break
        centroids.append(vectors[rng.choice(len(vectors), p=dist / dist.sum())])
    centres = np.array(centroids)
    for _ in range(iterations):
        assign = ((vectors[:, None, :] - centres[None, :, :]) ** 2).sum(-1).argmin(1)
        updated = np.array(
            [vectors[assign == c].mean(0) if (assign == c).any() else centres[c] for c in range(len(centres))]
        )
        converged = np.array_equal(updated, centres)
        centres = updated
        if converged:
            break
    return centres


def knn_translation_scores(
    source_sets: Sequence[Any],
    target_sets: Sequence[Any],
    *,
    k: int = 10,
    clusters: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """(S, T) KNN translation scores: higher ranks first.

    Every source image (KNN) or k-means centroid of a word's images (KNN-C: ``clusters`` centroids per
    word, on L2-normalised vectors, ``kmeans_centroids`` with ``seed``) finds its ``k`` nearest target
    images by cosine, and each neighbour votes for its word. Words are ordered by votes, ties by the
    smaller mean cosine distance of their votes. Encoded as ``votes + (1 - mean_distance / 2) / 2``
    (the tie-break lies in [0, 0.5], so it never outweighs a vote); unvoted words score 0.
    """
    if k < 1:
        raise MetricInputError(f"k must be positive, got {k}")
    source, source_owner, _ = _stack_sets(source_sets, "source_sets", "error")
    target, target_owner, _ = _stack_sets(target_sets, "target_sets", "error")
    source, target = normalize_rows(source), normalize_rows(target)
    if clusters is not None:
        if clusters < 1:
            raise MetricInputError(f"clusters must be positive, got {clusters}")
        parts, owners = [], []
        for word in range(len(source_sets)):
            centres = kmeans_centroids(source[source_owner == word].numpy(), clusters, seed=seed)
            parts.append(normalize_rows(torch.from_numpy(centres)))
            owners.append(torch.full((len(centres),), word, dtype=torch.long))
        source, source_owner = torch.cat(parts), torch.cat(owners)
    k = min(k, target.shape[0])
    step = max(1, (1 << 24) // max(1, target.shape[0]))
    # A stable sort makes equally near target images vote in index order (topk's choice is unspecified).
    distinct, inverse = unique_rows(target)
    nearest = [
        expand_columns(source[start : start + step] @ distinct.T, inverse).sort(dim=1, descending=True, stable=True)
        for start in range(0, source.shape[0], step)
    ]
    sims = torch.cat([n.values[:, :k] for n in nearest])
    neighbours = torch.cat([n.indices[:, :k] for n in nearest])
    n_source, n_target = len(source_sets), len(target_sets)
    flat = (source_owner[:, None] * n_target + target_owner[neighbours]).reshape(-1)
    votes = torch.zeros(n_source * n_target, dtype=torch.float64).index_add_(
        0, flat, torch.ones_like(flat, dtype=torch.float64)
    )
    distance = torch.zeros_like(votes).index_add_(0, flat, (1 - sims).reshape(-1))
    mean_distance = torch.where(votes > 0, distance / votes.clamp(min=1), torch.zeros_like(votes))
    scores = torch.where(votes > 0, votes + (1 - mean_distance / 2) / 2, torch.zeros_like(votes))
    return scores.reshape(n_source, n_target).numpy()


def image_dispersion(image_set: Any) -> float:
    """Mean pairwise cosine distance ``1 - cos`` over unordered image pairs (Kiela et al. 2014).

    A single image has dispersion 0.0; an empty set raises.
    """
    images = np.asarray(image_set, dtype=np.float64)
    if images.ndim != 2 or images.shape[0] == 0:
        raise MetricInputError(
            f"image_dispersion needs an (images, dims) array with at least one image, got {images.shape}"
        )
    if images.shape[0] == 1:
        return 0.0
    # NumPy, not torch: callers score hundreds of tiny sets, where torch's thread hand-offs dominate.
    unit = images / np.maximum(np.linalg.norm(images, axis=1, keepdims=True), 1e-12)
    upper = np.triu_indices(images.shape[0], k=1)
    return float((1 - (unit @ unit.T)[upper]).mean())


def _gold_lists(gold: Sequence[int | Iterable[int]], n_rows: int, n_cols: int) -> list[list[int]]:
    if len(gold) != n_rows:
        raise MetricInputError(f"gold has {len(gold)} entries for {n_rows} source words")
    lists = []
    for row, entry in enumerate(gold):
        targets = [int(entry)] if isinstance(entry, (int, np.integer)) else sorted({int(t) for t in entry})
        if not targets or targets[0] < 0 or targets[-1] >= n_cols:
            raise MetricInputError(f"gold[{row}] = {entry!r}: needs target indices in 0..{n_cols - 1}")
        lists.append(targets)
    return lists


MrrVariant = Literal["best-gold", "per-pair"]


def ranking_scores(
    similarity: Any,
    gold: Sequence[int | Iterable[int]],
    ks: Sequence[int] = (1, 10),
    *,
    ties: Literal["pessimistic", "optimistic"] = "pessimistic",
    mrr: MrrVariant = "best-gold",
    return_ranks: bool = False,
) -> dict[str, Any]:
    """MRR (0-1) and precision@k (percent, keys ``p{k}``) of each source row's gold target column.

    ``gold[i]`` is the gold column of row ``i`` (or a collection of them: the best-ranked counts for
    P@k). ``mrr="best-gold"`` averages ``1 / (rank + 1)`` of each row's best-ranked gold over rows;
    ``mrr="per-pair"`` (the MMID reference, Hewitt et al. 2018) averages it over (row, gold) pairs, each
    gold ranked by itself among *all* other columns (other golds included). No rows gives zeros with
    ``n_queries = 0``. ``return_ranks`` adds ``ranks``: the 0-based best-gold rank of every row.
    """
    if mrr not in ("best-gold", "per-pair"):
        raise MetricInputError(f"mrr must be 'best-gold' or 'per-pair', got {mrr!r}")
    sims = torch.as_tensor(np.asarray(similarity, dtype=np.float64))
    if sims.ndim != 2:
        raise MetricInputError(f"similarity must be a 2-D (source x target) matrix, got shape {tuple(sims.shape)}")
    if torch.isnan(sims).any():
        raise MetricInputError("similarity contains NaN")
    check_ties(ties)
    gold_lists = _gold_lists(gold, *sims.shape)
    if gold_lists:
        index, valid = padded_index(gold_lists, sims.device)
        ranks = ranks_in_place(sims.clone(), index, ties, valid).numpy()
    else:
        ranks = np.zeros(0, dtype=np.int64)
    reciprocal = 1.0 / (ranks + 1)
    if mrr == "per-pair" and gold_lists:
        rows = [row for row, targets in enumerate(gold_lists) for _ in targets]
        single = torch.tensor([[t] for targets in gold_lists for t in targets], dtype=torch.long)
        reciprocal = 1.0 / (ranks_in_place(sims[rows].clone(), single, ties).numpy() + 1)
    result: dict[str, Any] = {"mrr": float(np.mean(reciprocal)) if len(reciprocal) else 0.0}
    result.update({f"p{k}": recall_at(ranks, k) for k in ks})
    result["n_queries"] = len(ranks)
    if return_ranks:
        result["ranks"] = np.asarray(ranks, dtype=np.int64)
    return result


def scores_by_group(
    similarity: Any,
    gold: Sequence[int | Iterable[int]],
    groups: Sequence[Hashable],
    ks: Sequence[int] = (1, 10),
) -> dict[Hashable, dict[str, float | int]]:
    """``ranking_scores`` per group of source rows (e.g. part of speech); ranks stay over all targets."""
    sims = np.asarray(similarity, dtype=np.float64)
    if len(groups) != sims.shape[0] or len(gold) != sims.shape[0]:
        raise MetricInputError(
            f"groups ({len(groups)}) and gold ({len(gold)}) need one entry per source row ({sims.shape[0]})"
        )
    labels = np.asarray(groups, dtype=object)
    return {
        group: ranking_scores(sims[labels == group], [gold[i] for i in np.flatnonzero(labels == group)], ks)
        for group in dict.fromkeys(groups)
    }
