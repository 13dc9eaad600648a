"""Bags of token rows for ``torch.nn.EmbeddingBag``: one text's rows, or a batch of (query, image) pairs.

Shared by the bag-of-words models (ImageVec, imagevec-multi); needs torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def bags(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row lists -> (flat rows, offsets) as ``EmbeddingBag`` takes them; an empty bag embeds as zeros."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)
    flat = torch.tensor([row for bag in rows for row in bag], dtype=torch.int64)
    return flat, torch.cumsum(lengths, 0) - lengths


class PairCollate:
    """Turns a batch of (query, image[, weight]) indices into token bags and image inputs."""

    def __init__(self, query_rows: list[list[int]], images: torch.Tensor | None, weighted: bool):
        self.flat, self.starts = bags(query_rows)
        self.lengths = torch.tensor([len(r) for r in query_rows], dtype=torch.int64)
        self.images, self.weighted = images, weighted

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        query, image = batch[0], batch[1]
        lengths = self.lengths[query]
        offsets = torch.cumsum(lengths, 0) - lengths
        gather = torch.repeat_interleave(self.starts[query] - offsets, lengths) + torch.arange(int(lengths.sum()))
        out = {"tokens": self.flat[gather], "offsets": offsets,
               "images": self.images[image] if self.images is not None else image}
        if self.weighted:
            out["weight"] = batch[2]
        return out
