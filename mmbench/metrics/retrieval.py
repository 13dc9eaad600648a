"""Image<->caption retrieval scores with the VSE++ protocol (Faghri et al. 2018, ``evaluation.py``).

Images are (N, d), captions (N*k, d) with captions ``k*i .. k*i+k-1`` describing image ``i``.

* Image->text: the rank of image ``i`` is the best (smallest) 0-based rank of any of its k captions
  among all N*k captions.
* Text->image: the rank of caption ``j`` is the 0-based rank of its image among the N images.
* ``R@K`` is the percentage of queries with rank < K; ``medr = floor(median(ranks)) + 1``;
  ``meanr = mean(ranks) + 1``; ``rsum`` is the sum of the six R@K values.

VSE++ ranks with ``argsort``, which breaks exact ties arbitrarily; here ties are a named policy.
Cosine and dot scores are computed once per image x caption pair, in tiles of ``block_size`` images x
their ``block_size * k`` captions that serve both directions, so scoring costs about one matrix
product and memory stays bounded for 5K x 25K (``_fused_ranks``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

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
    unique_rows,
)

Similarity = Literal["cosine", "dot", "order"]

# Scores compared at once by the fused scorer on a CPU (1 MB of float32: the 0/1 strip stays in cache;
# with 1 or 2 threads, 51 x 5120 strips cost 7-9 % of the tile's product, whole tiles 15 %).
_STRIP_ELEMENTS = 1 << 18
# Elements of the (rows x cols x dims) intermediate the order similarity may hold at once.
_ORDER_ELEMENTS = 1 << 24


def _order_scores(captions: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Order-embedding similarity ``-||max(0, c - i)||^2`` (Vendrov et al. 2016), captions x images.

    VSE++'s ``order_sim`` takes the square root; that is monotone, so the ranks are the same.
    """
    out = captions.new_empty((captions.shape[0], images.shape[0]))
    dims = max(1, captions.shape[1])
    step = max(1, _ORDER_ELEMENTS // (dims * max(1, images.shape[0])))
    for start in range(0, captions.shape[0], step):
        block = captions[start : start + step]
        violation = (block[:, None, :] - images[None, :, :]).clamp_(min=0)
        out[start : start + step] = -violation.pow_(2).sum(dim=2)
    return out


def _scores(
    images: torch.Tensor, captions: torch.Tensor, similarity: Similarity, *, caption_rows: bool, out: torch.Tensor
) -> torch.Tensor:
    """Similarity of every image with every caption, as (images x captions) or (captions x images)."""
    if similarity == "order":
        by_caption = _order_scores(captions, images)
        return out.copy_(by_caption if caption_rows else by_caption.T)
    return torch.matmul(captions, images.T, out=out) if caption_rows else torch.matmul(images, captions.T, out=out)


def _block_ranks(
    queries: torch.Tensor,
    items: torch.Tensor,
    correct: Callable[[torch.Tensor], torch.Tensor],
    *,
    similarity: Similarity,
    queries_are_captions: bool,
    ties: Ties,
    block_size: int,
) -> torch.Tensor:
    """Ranks of ``block_size`` queries at a time against all items; ``correct(rows)`` gives their columns."""
    # Identical items are scored once and copied: a product may round the same dot product
    # differently in different columns, which would turn exact ties into wins or losses.
    distinct, inverse = unique_rows(items)
    raw_buffer, expanded_buffer = Scratch(), Scratch()
    ranks = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    for start in range(0, queries.shape[0], block_size):
        stop = min(queries.shape[0], start + block_size)
        rows = torch.arange(start, stop, device=queries.device)
        raw = raw_buffer.matrix(len(rows), distinct.shape[0], queries.dtype, queries.device)
        if queries_are_captions:
            raw = _scores(distinct, queries[start:stop], similarity, caption_rows=True, out=raw)
        else:
            raw = _scores(queries[start:stop], distinct, similarity, caption_rows=False, out=raw)
        scores = raw
        if inverse is not None:
            scores = expanded_buffer.matrix(len(rows), items.shape[0], queries.dtype, queries.device)
            torch.index_select(raw, 1, inverse, out=scores)
        ranks[start:stop] = ranks_in_place(scores, correct(rows), ties)
    return ranks


def _prepared(
    images: Any, captions: Any, captions_per_image: int, similarity: Similarity, ties: Ties, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked, same-dtype (and for cosine, unit-row) image and caption matrices."""
    check_ties(ties)
    if similarity not in ("cosine", "dot", "order"):
        raise MetricInputError(f"similarity must be 'cosine', 'dot' or 'order', got {similarity!r}")
    if captions_per_image < 1 or block_size < 1:
        raise MetricInputError("captions_per_image and block_size must be positive")
    image_t = as_matrix(images, "images")
    caption_t = as_matrix(captions, "captions", device=image_t.device)
    k, n = captions_per_image, image_t.shape[0]
    if caption_t.shape[0] != n * k:
        raise MetricInputError(f"captions: expected {n} images x {k} captions = {n * k} rows, got {caption_t.shape[0]}")
    if caption_t.shape[1] != image_t.shape[1]:
        raise MetricInputError(f"images have {image_t.shape[1]} dims but captions have {caption_t.shape[1]}")
    dtype = common_dtype(image_t, caption_t)
    image_t, caption_t = image_t.to(dtype), caption_t.to(dtype)
    if similarity == "cosine":
        image_t, caption_t = normalize_rows(image_t), normalize_rows(caption_t)
    return image_t, caption_t


def _per_direction_ranks(
    image_t: torch.Tensor, caption_t: torch.Tensor, k: int, similarity: Similarity, ties: Ties, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One product per direction (``block_size`` query rows against all distinct items at a time).

    Used where the fused scorer cannot promise the same ranks: duplicate rows (scored once and
    copied, see ``unique_rows``) and the order similarity. Also the reference the fused path is
    tested against rank for rank.
    """
    # Each direction gets its own pass, so a correct score and the scores it is compared with
    # always come from the same product.
    offsets = torch.arange(k, device=image_t.device)
    i2t = _block_ranks(
        image_t,
        caption_t,
        lambda rows: rows[:, None] * k + offsets[None, :],
        similarity=similarity,
        queries_are_captions=False,
        ties=ties,
        block_size=block_size,
    )
    t2i = _block_ranks(
        caption_t,
        image_t,
        lambda rows: (rows // k)[:, None],
        similarity=similarity,
        queries_are_captions=True,
        ties=ties,
        block_size=block_size,
    )
    return i2t, t2i


def _fused_ranks(
    image_t: torch.Tensor, caption_t: torch.Tensor, k: int, ties: Ties, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both directions from one pass over (``block_size`` images x their ``block_size * k`` captions) tiles.

    Each score tile is computed once. The diagonal tiles (image block b x the captions of block b)
    hold every correct pair, so they are scored first and give the gold score of every image (its
    best caption) and of every caption (its image). Every other tile is then scored once, and the
    same tile gives the image->text counts (wrong captions per row at or above the row's gold) and
    the text->image counts (wrong images per column at or above the column's gold). Counts are
    summed as floats (exact: a tile is far narrower than 2**24) into float64 totals.
    Memory: one tile and one strip of 0/1 flags, whatever n.
    """
    n, device, dtype = image_t.shape[0], image_t.device, image_t.dtype
    compare = torch.ge if ties == "pessimistic" else torch.gt
    count_dtype = torch.float64 if block_size * k >= 1 << 24 else None
    bounds = [(start, min(n, start + block_size)) for start in range(0, n, block_size)]
    i2t = torch.zeros(n, dtype=torch.float64, device=device)
    t2i = torch.zeros(n * k, dtype=torch.float64, device=device)
    image_gold = torch.empty(n, dtype=dtype, device=device)
    caption_gold = torch.empty(n * k, dtype=dtype, device=device)
    score_buffer, indicator_buffer = Scratch(), Scratch()

    def tile(rows: tuple[int, int], cols: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        scores = score_buffer.matrix(rows[1] - rows[0], (cols[1] - cols[0]) * k, dtype, device)
        torch.matmul(image_t[rows[0] : rows[1]], caption_t[cols[0] * k : cols[1] * k].T, out=scores)
        strip = max(1, _STRIP_ELEMENTS // scores.shape[1]) if device.type == "cpu" else scores.shape[0]
        indicator = indicator_buffer.matrix(min(strip, scores.shape[0]), scores.shape[1], dtype, device)
        return scores, indicator

    def count(scores: torch.Tensor, indicator: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> None:
        # Compared a few cache-sized row strips at a time: on a CPU the 0/1 strip is summed while it is
        # still in cache (a whole 1024 x 5120 tile made the comparisons ~4x slower).
        strip = indicator.shape[0]
        column_gold = caption_gold[None, cols[0] * k : cols[1] * k]
        column_counts = t2i[cols[0] * k : cols[1] * k]
        for start in range(0, scores.shape[0], strip):
            part = scores[start : start + strip]
            flags = indicator[: part.shape[0]]
            first = rows[0] + start
            compare(part, image_gold[first : first + part.shape[0], None], out=flags)
            i2t[first : first + part.shape[0]] += flags.sum(dim=1, dtype=count_dtype)
            compare(part, column_gold, out=flags)
            column_counts += flags.sum(dim=0, dtype=count_dtype)

    for block in bounds:
        scores, indicator = tile(block, block)
        size = block[1] - block[0]
        local = torch.arange(size, device=device)
        correct = scores.gather(1, local[:, None] * k + torch.arange(k, device=device)[None, :])  # (size, k)
        best = correct.amax(dim=1)
        image_gold[block[0] : block[1]] = best
        caption_gold[block[0] * k : block[1] * k] = correct.reshape(-1)
        count(scores, indicator, block, block)
        if ties == "pessimistic":
            # The correct items counted above are not "wrong items before it".
            i2t[block[0] : block[1]] -= (correct >= best[:, None]).sum(dim=1)
            t2i[block[0] * k : block[1] * k] -= 1
    for rows in bounds:
        for cols in bounds:
            if rows != cols:
                count(*tile(rows, cols), rows, cols)
    return i2t.long(), t2i.long()


def retrieval_ranks(
    images: Any,
    captions: Any,
    *,
    captions_per_image: int = 5,
    similarity: Similarity = "cosine",
    ties: Ties = "pessimistic",
    block_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """0-based ranks ``(i2t (N,), t2i (N*k,))`` as defined in the module docstring.

    Cosine and dot similarities are scored by the fused tile pass (each image x caption score
    computed once, memory O(block_size**2 * k)); inputs with duplicate images or duplicate captions,
    and the order similarity, take the per-direction path, which scores identical rows once.
    """
    image_t, caption_t = _prepared(images, captions, captions_per_image, similarity, ties, block_size)
    k = captions_per_image
    if similarity != "order" and unique_rows(image_t)[1] is None and unique_rows(caption_t)[1] is None:
        i2t, t2i = _fused_ranks(image_t, caption_t, k, ties, block_size)
    else:
        i2t, t2i = _per_direction_ranks(image_t, caption_t, k, similarity, ties, block_size)
    return i2t.cpu().numpy(), t2i.cpu().numpy()


def _reference_ranks(
    images: Any,
    captions: Any,
    *,
    captions_per_image: int = 5,
    similarity: Similarity = "cosine",
    ties: Ties = "pessimistic",
    block_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """``retrieval_ranks`` by the per-direction path only (the implementation before the fused scorer)."""
    image_t, caption_t = _prepared(images, captions, captions_per_image, similarity, ties, block_size)
    i2t, t2i = _per_direction_ranks(image_t, caption_t, captions_per_image, similarity, ties, block_size)
    return i2t.cpu().numpy(), t2i.cpu().numpy()


def rank_summary(ranks: np.ndarray, prefix: str) -> dict[str, float]:
    """R@1/5/10 (percent), medr (floor of the median 0-based rank, + 1) and meanr of one direction's ranks."""
    return {
        f"{prefix}_r1": recall_at(ranks, 1),
        f"{prefix}_r5": recall_at(ranks, 5),
        f"{prefix}_r10": recall_at(ranks, 10),
        f"{prefix}_medr": float(np.floor(np.median(ranks)) + 1),
        f"{prefix}_meanr": float(ranks.mean() + 1),
    }


def retrieval_scores(
    images: Any,
    captions: Any,
    *,
    captions_per_image: int = 5,
    similarity: Similarity = "cosine",
    ties: Ties = "pessimistic",
    block_size: int = 1024,
    return_ranks: bool = False,
) -> dict[str, Any]:
    """VSE++ retrieval metrics: ``i2t_/t2i_`` ``r1, r5, r10`` (percent), ``medr``, ``meanr``, and ``rsum``.

    ``similarity``: ``"cosine"`` (rows normalised; an all-zero row has similarity 0), ``"dot"``, or
    ``"order"`` (``-||max(0, caption - image)||^2``). ``ties="pessimistic"`` ranks a wrong item with a
    score equal to the correct one before it (all-equal scores give R@1 = 0); ``"optimistic"`` after it.
    Numpy arrays and CPU/CUDA tensors are accepted; tensors are scored on their device.
    ``return_ranks`` adds ``ranks``: the 0-based ``(i2t (N,), t2i (N*k,))`` ranks (per-item outputs).

    >>> import numpy as np
    >>> round(retrieval_scores(np.eye(2), np.eye(2).repeat(5, axis=0))["rsum"])
    600
    """
    i2t, t2i = retrieval_ranks(
        images,
        captions,
        captions_per_image=captions_per_image,
        similarity=similarity,
        ties=ties,
        block_size=block_size,
    )
    result = {**rank_summary(i2t, "i2t"), **rank_summary(t2i, "t2i")}
    result["rsum"] = sum(result[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10))
    if return_ranks:
        result["ranks"] = (i2t, t2i)
    return result


def coco_1k_scores(images: Any, captions: Any, *, return_ranks: bool = False, **kwargs: Any) -> dict[str, Any]:
    """COCO 1K test: every metric averaged over five contiguous folds of 1000 images (VSE++ ``fold5``).

    ``rsum`` is the mean of the per-fold rsums (VSE++ *prints* ``6 x`` the mean i2t average recall on
    its rsum line, a known slip; the per-fold values it averages are the same as here).
    """
    n = int(images.shape[0])
    if n != 5000:
        raise MetricInputError(f"coco_1k_scores needs the 5000-image COCO test set, got {n} images")
    k = int(kwargs.get("captions_per_image", 5))
    folds = [
        retrieval_scores(images[f * 1000 : (f + 1) * 1000], captions[f * 1000 * k : (f + 1) * 1000 * k],
                         return_ranks=True, **kwargs)
        for f in range(5)
    ]
    result: dict[str, Any] = {key: float(np.mean([fold[key] for fold in folds])) for key in folds[0] if key != "ranks"}
    if return_ranks:  # ranks within each fold, folds concatenated
        result["ranks"] = tuple(np.concatenate([fold["ranks"][d] for fold in folds]) for d in (0, 1))
    return result
