"""Losses that several plugins share; each is the mean over this rank's rows, as the trainer expects."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import gather_with_offset


def in_batch_softmax(
    queries: torch.Tensor,
    items: torch.Tensor,
    *,
    temperature: float = 0.05,
    cosine: bool = True,
    symmetric: bool = True,
) -> torch.Tensor:
    """Cross-entropy of each query against all items of the global batch, its own item being the target.

    Row ``i`` of ``queries`` and of ``items`` form a positive pair; the other items of the *global* batch
    (gathered across ranks with gradients) are the negatives. ``symmetric`` adds the item-to-query direction
    and averages the two.
    """
    if queries.shape != items.shape or queries.dim() != 2:
        raise ValueError(f"queries and items must be (n, d) of one shape, got {tuple(queries.shape)} "
                         f"and {tuple(items.shape)}")
    if cosine:
        queries, items = F.normalize(queries, dim=-1), F.normalize(items, dim=-1)
    all_items, start = gather_with_offset(items)
    targets = torch.arange(start, start + queries.shape[0], device=queries.device)
    loss = F.cross_entropy(queries @ all_items.T / temperature, targets)
    if not symmetric:
        return loss
    all_queries, _ = gather_with_offset(queries)
    return 0.5 * (loss + F.cross_entropy(items @ all_queries.T / temperature, targets))
