"""The exponentially weighted contrastive loss of LIWE and CLMR (Wehrmann and Barros; ``lavse``
``model/loss.py``, ``ContrastiveLoss``), with its weight ``k`` a function of the checkpointed step.

With ``scores[i, j]`` the similarity of query ``i`` (an image, or a caption in language a) and item ``j``
(a caption, or its translation), row ``i`` of both sides a positive pair, and the hinge terms of
:mod:`mmbench.train.ame_losses`::

    cost_c[i, j] = max(0, m + s(i, j) - s(i, i))   j != i
    cost_i[i, j] = max(0, m + s(j, i) - s(i, i))   j != i

the loss at training step ``t`` (1-based) is::

    (1 - k) * sum_ij (cost_c + cost_i)  +  k * sum_i (max_j cost_c[i, j] + max_j cost_i[i, j]),
    k = 1 - beta ** t

so training starts on every violation (VSE0) and moves to the hardest negative (VSE++) at a rate set
by ``beta`` (0.991 image-text, 0.91 crosslingual in the LIWE options). The reference sums over the
batch; here the result is divided by the number of rows (the trainer wants a mean: only a rescaling).
``t`` lives in a buffer (:class:`StepCounter`) of the model, so checkpoints carry it and resume is exact.
"""

from __future__ import annotations

import torch

from .ame_losses import cosine_similarity
from .distributed import gather_with_offset


def k_at(step: int | torch.Tensor, beta: float) -> torch.Tensor | float:
    """The hard-negative weight ``1 - beta ** step`` (``step`` 1-based, as the reference's iteration)."""
    if isinstance(step, torch.Tensor):
        return 1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64, device=step.device), step.double())
    return 1.0 - beta ** step


def weighted_contrastive(queries: torch.Tensor, items: torch.Tensor, k: float | torch.Tensor, *,
                         margin: float = 0.2) -> torch.Tensor:
    """The loss of the module docstring for L2-normalised rows (cosine similarity), divided by the rows.

    ``queries`` (images, or captions of one language) and ``items`` (their captions or translations) are
    ``(n, d)``; under torchrun the negatives are the whole global batch.
    """
    if queries.shape != items.shape or queries.dim() != 2:
        raise ValueError(f"queries and items must be (n, d) of one shape, got {tuple(queries.shape)} "
                         f"and {tuple(items.shape)}")
    all_items, start = gather_with_offset(items)
    all_queries, _ = gather_with_offset(queries)
    n = queries.shape[0]
    rows = torch.arange(n, device=queries.device)
    own = rows + start
    by_query = cosine_similarity(queries, all_items)  # (n, N): items ranked for each local query
    by_item = cosine_similarity(all_queries, items).T  # (n, N): queries ranked for each local item
    positive = by_query[rows, own]
    mask = torch.zeros_like(by_query, dtype=torch.bool)
    mask[rows, own] = True
    cost_items = (margin + by_query - positive[:, None]).clamp(min=0).masked_fill(mask, 0.0)
    cost_queries = (margin + by_item - positive[:, None]).clamp(min=0).masked_fill(mask, 0.0)
    every = cost_items.sum() + cost_queries.sum()
    hardest = cost_items.max(dim=1).values.sum() + cost_queries.max(dim=1).values.sum()
    k = torch.as_tensor(k, dtype=every.dtype, device=every.device)
    return ((1 - k) * every + k * hardest) / n


class StepCounter(torch.nn.Module):
    """The training step ``t`` of the weighted loss, as a buffer (checkpointed with the weights).

    ``advance()`` is called once per training step by the loss (so ``t`` is the trainer's 1-based step)
    and returns the new ``t``; the buffer is an int64 so it counts exactly to any length of run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def advance(self) -> torch.Tensor:
        with torch.no_grad():
            self.step += 1
        return self.step.clone()
