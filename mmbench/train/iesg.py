"""IESG's network, losses, skip-gram pairs and batching: the torch half of the ``iesg`` plugin.

Luo (2018), "Exploration on Grounded Word Embedding: Matching Words and Images with Image-Enhanced
Skip-Gram Model". With the energy ``E(a, b) = a . b`` (inner product), ``lam`` (the paper's lambda = 5) and
margin ``m``, for a central word ``w_i``, a context word ``w_c`` and negative words ``w'_c``:

* word loss   ``max(0, m - lam * E(w_i, w_c) + E(w_i, w'_c))``
* image loss  ``max(0, m - lam * E(v_i, w_c) + E(v_i, w'_c))`` with ``v_i = W_p . CNN(f_i)``, ``f_i`` one
  image of ``w_i`` drawn at random each time (only for central words that have images)
* L2 baseline ``||W_p . CNN(f_i) - w_i||^2`` with ``w_i`` fixed.

With several negatives the hinge is averaged over them (one negative is exactly the paper's loss), then
over the rows of the batch. ``plugins/iesg.py`` holds the config, the vocabulary and the train/load
lifecycle; this module needs torch and is imported only when a model trains or embeds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


class Projection(torch.nn.Module):
    """``W_p . (f - mean)`` (no bias, as the paper writes it) on optionally L2-normalised CNN features.

    ``mean`` is a buffer (saved with the weights): the mean (normalised) feature of the training images,
    or zeros when features are not centred."""

    def __init__(self, feature_dim: int, dim: int, *, normalize: bool = True):
        super().__init__()
        self.linear = torch.nn.Linear(feature_dim, dim, bias=False)
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.normalize = normalize

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((F.normalize(features, dim=-1) if self.normalize else features) - self.mean)


class IESGNet(torch.nn.Module):
    """One language-tagged word table (rows in language blocks) and the image projection ``W_p``."""

    def __init__(self, n_words: int, dim: int, feature_dim: int, *, normalize_features: bool = True,
                 sparse: bool = False):
        super().__init__()
        self.words = torch.nn.Embedding(n_words, dim, sparse=sparse)
        self.image = Projection(feature_dim, dim, normalize=normalize_features)


def hinge(anchor: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor, *, margin: float,
          lam: float) -> torch.Tensor:
    """``mean_rows mean_k max(0, m - lam * a.c + a.n_k)``; anchor, context (B, d), negatives (B, K, d)."""
    positive = (anchor * context).sum(-1)
    negative = torch.einsum("bd,bkd->bk", anchor, negatives)
    return F.relu(margin - lam * positive[:, None] + negative).mean(1).mean()


def word_loss(net: IESGNet, batch: dict[str, torch.Tensor], *, margin: float, lam: float) -> torch.Tensor:
    """The skip-gram hinge over every (central, context) pair of the batch."""
    words = net.words
    return hinge(words(batch["center"]), words(batch["context"]), words(batch["negatives"]), margin=margin, lam=lam)


def _no_rows(net: IESGNet) -> torch.Tensor:
    """A zero loss that still reaches ``W_p`` (a batch without any central word that has images)."""
    return net.image.linear.weight.sum() * 0.0


def image_loss(net: IESGNet, batch: dict[str, torch.Tensor], *, margin: float, lam: float,
               update_words: bool) -> torch.Tensor:
    """The hinge with the projected image in place of the central word, over the batch rows whose central
    word has images; ``update_words=False`` detaches the word vectors (only ``W_p`` learns from it)."""
    rows = batch["image_rows"]
    if rows.numel() == 0:
        return _no_rows(net)
    context, negatives = net.words(batch["context"][rows]), net.words(batch["negatives"][rows])
    if not update_words:
        context, negatives = context.detach(), negatives.detach()
    return hinge(net.image(batch["image_features"]), context, negatives, margin=margin, lam=lam)


def l2_loss(net: IESGNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``||W_p . f - w||^2`` (summed over dimensions, mean over rows) against the fixed word vectors."""
    rows = batch["image_rows"]
    if rows.numel() == 0:
        return _no_rows(net)
    target = net.words(batch["center"][rows]).detach()
    return (net.image(batch["image_features"]) - target).pow(2).sum(-1).mean()


# -- skip-gram pairs (numpy: the data, drawn once from the run seed) -------------------------------

def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's frequent-word downsampling: keep a token of a word with count ``c`` (of ``T`` tokens in
    the vocabulary) with ``(sqrt(c / (s T)) + 1) * s T / c``, capped at 1; ``sample = 0`` keeps all."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)


def skipgram_pairs(sentences: Sequence[np.ndarray], keep: np.ndarray, window: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(central, context) row pairs as word2vec forms them: tokens dropped with ``1 - keep[row]`` first,
    then each central token gets a window ``b`` drawn uniformly from 1..``window`` and pairs with every
    token at distance <= b in its (downsampled) sentence. ``sentences``: arrays of vocabulary rows (unknown
    words already removed) that index ``keep``. Returns int64 arrays grouped by offset (-1, +1, -2, ...);
    the trainer shuffles them."""
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    if not lengths.sum():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    tokens = np.concatenate(sentences).astype(np.int64)
    sentence = np.repeat(np.arange(len(sentences)), lengths)
    kept = rng.random(len(tokens)) < keep[tokens]
    tokens, sentence = tokens[kept], sentence[kept]
    reach = rng.integers(1, window + 1, size=len(tokens))
    centers, contexts = [], []
    positions = np.arange(len(tokens))
    for distance in range(1, window + 1):
        for sign in (-1, 1):
            first = max(0, -sign * distance)
            last = len(tokens) - max(0, sign * distance)
            at = positions[first:last]
            other = at + sign * distance
            ok = (sentence[at] == sentence[other]) & (reach[at] >= distance)
            centers.append(tokens[at[ok]])
            contexts.append(tokens[other[ok]])
    return np.concatenate(centers), np.concatenate(contexts)


class IESGCollate:
    """(central, context) index batches -> the losses' inputs, with negatives and images drawn here.

    Negatives come from the central word's language with probability proportional to ``count ** 0.75``
    (word2vec's noise distribution); each central word that has images gets one of them uniformly. Both
    draws use torch's global generator, which the trainer seeds and keeps in every checkpoint, so a resumed
    run draws what an uninterrupted one would.
    """

    def __init__(self, counts: np.ndarray, language_starts: Sequence[int], images_of: Sequence[Sequence[int]],
                 features: torch.Tensor, negatives: int, power: float = 0.75):
        n = len(counts)
        bounds = list(language_starts) + [n]
        # One cumulative table: language l's noise distribution runs from l to l + 1, so u + l finds a row
        # of language l for u uniform in [0, 1).
        cumulative = np.zeros(n, dtype=np.float64)
        self.language = np.zeros(n, dtype=np.int64)
        for language, (start, stop) in enumerate(itertools.pairwise(bounds)):
            weights = np.asarray(counts[start:stop], dtype=np.float64) ** power
            cumulative[start:stop] = language + np.cumsum(weights) / weights.sum()
            cumulative[stop - 1] = language + 1.0
            self.language[start:stop] = language
        self.cumulative = torch.from_numpy(cumulative)
        self.row_language = torch.from_numpy(self.language)
        self.n_images = torch.tensor([len(images) for images in images_of], dtype=torch.int64)
        self.image_start = torch.cumsum(self.n_images, 0) - self.n_images
        self.image_list = torch.tensor([i for images in images_of for i in images], dtype=torch.int64)
        self.features, self.negatives = features, negatives

    def draw_negatives(self, center: torch.Tensor) -> torch.Tensor:
        u = torch.rand(len(center), self.negatives, dtype=torch.float64)
        target = u + self.row_language[center][:, None].to(torch.float64)
        rows = torch.searchsorted(self.cumulative, target, right=True)
        return rows.clamp_(max=len(self.cumulative) - 1)

    def draw_images(self, center: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch rows whose central word has images, one image index for each)."""
        counts = self.n_images[center]
        rows = torch.nonzero(counts > 0).flatten()
        u = torch.rand(len(rows), dtype=torch.float64)
        pick = torch.minimum((u * counts[rows].to(torch.float64)).long(), counts[rows] - 1)
        return rows, self.image_list[self.image_start[center[rows]] + pick]

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        center, context = batch
        negatives = self.draw_negatives(center)
        rows, images = self.draw_images(center)
        return {"center": center, "context": context, "negatives": negatives, "image_rows": rows,
                "images": images, "image_features": self.features[images]}
