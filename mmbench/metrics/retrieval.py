"""Image<->caption retrieval scores with the VSE++ protocol (Faghri et al. 2018, ``evaluation.py``).

Images are (N, d), captions (N*k, d) with captions ``k*i .. k*i+k-1`` describing image ``i``.

* Image->text: the rank of image ``i`` is the best (smallest) 0-based rank of any of its k captions
  among all N*k captions.
* Text->image: the rank of caption ``j`` is the 0-based rank of its image among the N images.
* ``R@K`` is the percentage of queries with rank < K; ``medr = floor(median(ranks)) + 1``;
  ``meanr = mean(ranks) + 1``; ``rsum`` is the sum of the six R@K values.

VSE++ ranks with ``argsort``, which breaks exact ties arbitrarily; here ties are a named policy.
Similarities are computed ``block_size`` rows at a time, so memory stays bounded for 5K x 25K.
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


def retrieval_ranks(
    images: Any,
    captions: Any,
    *,
    captions_per_image: int = 5,
    similarity: Similarity = "cosine",
    ties: Ties = "pessimistic",
    block_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """0-based ranks ``(i2t (N,), t2i (N*k,))`` as defined in the module docstring."""
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
    return i2t.cpu().numpy(), t2i.cpu().numpy()


def _summary(ranks: np.ndarray, prefix: str) -> dict[str, float]:
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
) -> dict[str, float]:
    """VSE++ retrieval metrics: ``i2t_/t2i_`` ``r1, r5, r10`` (percent), ``medr``, ``meanr``, and ``rsum``.

    ``similarity``: ``"cosine"`` (rows normalised; an all-zero row has similarity 0), ``"dot"``, or
    ``"order"`` (``-||max(0, caption - image)||^2``). ``ties="pessimistic"`` ranks a wrong item with a
    score equal to the correct one before it (all-equal scores give R@1 = 0); ``"optimistic"`` after it.
    Numpy arrays and CPU/CUDA tensors are accepted; tensors are scored on their device.

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
    result = {**_summary(i2t, "i2t"), **_summary(t2i, "t2i")}
    result["rsum"] = sum(result[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10))
    return result


def coco_1k_scores(images: Any, captions: Any, **kwargs: Any) -> dict[str, float]:
    """COCO 1K test: every metric averaged over five contiguous folds of 1000 images (VSE++ ``fold5``).

    ``rsum`` is the mean of the per-fold rsums (VSE++ *prints* ``6 x`` the mean i2t average recall on
    its rsum line, a known slip; the per-fold values it averages are the same as here).
    """
    n = int(images.shape[0])
    if n != 5000:
        raise MetricInputError(f"coco_1k_scores needs the 5000-image COCO test set, got {n} images")
    k = int(kwargs.get("captions_per_image", 5))
    folds = [
        retrieval_scores(images[f * 1000 : (f + 1) * 1000], captions[f * 1000 * k : (f + 1) * 1000 * k], **kwargs)
        for f in range(5)
    ]
    return {key: float(np.mean([fold[key] for fold in folds])) for key in folds[0]}
