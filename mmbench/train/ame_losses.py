"""Losses of the caption-image ranking models (VSE++ family; AME): hinge ranking, order similarity, and a
loss-driven learning-rate halving that lives in the model's state (so checkpoints and resume keep it).

Conventions (VSE++, Faghri et al. 2018, ``model.py``): ``scores[i, j]`` is the similarity of image ``i``
and caption ``j``; row ``i`` of ``images`` and of ``captions`` is a positive pair. The hinge over the
negatives of the batch, in both directions, with margin ``m``::

    cost_c[i, j] = max(0, m + s(i, j) - s(i, i))   j != i   (captions ranked for image i)
    cost_i[i, j] = max(0, m + s(j, i) - s(i, i))   j != i   (images ranked for caption i)

summed over ``j`` (``max_violation=False``: VSE0 / AME's default) or the largest term only (VSE++'s
hardest negative), then **averaged** over the rows (VSE++ sums; the trainer wants the mean, which only
rescales the gradient). Under torchrun the negatives are the whole global batch.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from .distributed import gather_with_offset

Similarity = Literal["cosine", "order"]


def cosine_similarity(images: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
    """``(n_images, n_captions)`` dot products of the (already L2-normalised) rows: AME's "symmetric" score."""
    return images @ captions.T


def order_similarity(images: torch.Tensor, captions: torch.Tensor, *, eps: float = 1e-12) -> torch.Tensor:
    """``-|| max(0, caption - image) ||_2`` for every (image, caption) (Vendrov et al. 2016; VSE++
    ``order_sim``): 0 when the caption lies below the image in every coordinate, the "asymmetric" score.

    The norm's gradient at 0 is taken as 0 (VSE++'s ``sqrt`` gives NaN there).
    """
    violation = (captions.unsqueeze(0) - images.unsqueeze(1)).clamp(min=0)
    return -violation.pow(2).sum(-1).clamp(min=eps).sqrt()


SIMILARITIES = {"cosine": cosine_similarity, "order": order_similarity}


def hinge_ranking(images: torch.Tensor, captions: torch.Tensor, *, margin: float = 0.2,
                  max_violation: bool = False, similarity: Similarity = "cosine") -> torch.Tensor:
    """Bidirectional hinge ranking loss (module docstring), the mean over this rank's rows."""
    if images.shape != captions.shape or images.dim() != 2:
        raise ValueError(f"images and captions must be (n, d) of one shape, got {tuple(images.shape)} "
                         f"and {tuple(captions.shape)}")
    score = SIMILARITIES[similarity]
    all_captions, start = gather_with_offset(captions)
    all_images, _ = gather_with_offset(images)
    n = images.shape[0]
    own = torch.arange(start, start + n, device=images.device)
    rows = torch.arange(n, device=images.device)
    by_image = score(images, all_captions)  # (n, N): local images x all captions
    by_caption = score(all_images, captions).T  # (n, N): local captions x all images
    positive = by_image[rows, own]
    cost_captions = (margin + by_image - positive[:, None]).clamp(min=0)
    cost_images = (margin + by_caption - positive[:, None]).clamp(min=0)
    mask = torch.zeros_like(by_image, dtype=torch.bool)
    mask[rows, own] = True
    cost_captions = cost_captions.masked_fill(mask, 0.0)
    cost_images = cost_images.masked_fill(mask, 0.0)
    if max_violation:
        return (cost_captions.max(dim=1).values + cost_images.max(dim=1).values).mean()
    return (cost_captions.sum(dim=1) + cost_images.sum(dim=1)).mean()


class HalvingStep(torch.nn.Module):
    """The learning-rate factor of an objective that halves whenever its loss rises (AME's alignment
    loss; fastText ``align.py``), kept as buffers of the model so checkpoints and exact resume carry it.

    ``scaled(loss)`` compares ``loss`` with the previous call's, halves the factor if it went up (not
    below ``min_factor``), and returns a tensor whose *value* is ``loss`` and whose *gradient* is
    ``factor x`` the loss's. Under plain SGD (no momentum) that is exactly the optimizer's lr times the
    factor; gradient clipping applies to the scaled gradient.
    """

    def __init__(self, min_factor: float = 1e-4) -> None:
        super().__init__()
        self.min_factor = min_factor
        self.register_buffer("factor", torch.ones(()))
        self.register_buffer("last", torch.full((), float("inf")))

    def scaled(self, loss: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            value = loss.detach().to(self.last.dtype)
            rose = value > self.last
            self.factor.copy_(torch.where(rose, (self.factor / 2).clamp(min=self.min_factor), self.factor))
            self.last.copy_(value)
        factor = self.factor.to(loss.dtype)
        return loss * factor + (loss * (1 - factor)).detach()
