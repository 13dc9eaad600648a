"""Auxiliary training streams drawn by step: skip-gram context pairs and translation pairs.

A model trained on several objectives at once (``imagevec-multi``) gets its main batches from the
trainer and draws every other objective's batch here, as a pure function of (seed, step): a resumed run
draws exactly what the killed one would have, with no sampler state to checkpoint. Pure NumPy.

* :class:`ContextCorpus`: skip-gram with negative sampling (Mikolov et al. 2013, as word2vec and gensim
  train it) over tokenised sentences. A step draws centre positions with word2vec's subsampling of
  frequent words (``keep(w) = (sqrt(f / (s T)) + 1) * s T / f``: a position is drawn in proportion to
  its word's keep probability) and one context word at distance ``d`` with odds ``window - d + 1`` (the
  pairs word2vec's shrunk windows ``b ~ U{1..window}`` give), and ``negatives`` noise words from the unigram
  distribution to the power 0.75. Unlike word2vec the context word is subsampled by rejection rather
  than removed before windowing (a rejected or out-of-sentence context gets weight 0): the expected
  pairs are word2vec's up to that widening of windows over removed words.
* :class:`TranslationGroups`: groups of texts that say the same thing (one image's captions in several
  languages, one emoji's names in every language); a step draws ``batch`` distinct groups and two
  different members of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmbench.errors import DataError

CONTEXT_SALT, TRANSLATION_SALT = 4177, 6353  # separate random streams for the two kinds of batch


def step_rng(seed: int, step: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, salt])


@dataclass
class ContextPairs:
    """One step's skip-gram batch: rows of the vocabulary (``weight`` 0 marks a dropped pair)."""

    centres: np.ndarray  # (B,) int64
    contexts: np.ndarray  # (B,) int64
    negatives: np.ndarray  # (B, K) int64
    weight: np.ndarray  # (B,) float32, 0 or 1


class ContextCorpus:
    """Sentences of vocabulary rows, ready to draw skip-gram batches from."""

    def __init__(self, sentences: Sequence[Sequence[int]], *, n_rows: int, subsample: float = 1e-3) -> None:
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        self.rows = np.fromiter((r for s in sentences for r in s), dtype=np.int64, count=int(lengths.sum()))
        if len(self.rows) == 0:
            raise DataError("context corpus: no token of any sentence is in the vocabulary")
        if self.rows.min() < 0 or self.rows.max() >= n_rows:
            raise ValueError(f"context corpus: rows must be in [0, {n_rows})")
        ends = np.cumsum(lengths)
        self.start = np.repeat(ends - lengths, lengths)
        self.stop = np.repeat(ends, lengths)
        counts = np.bincount(self.rows, minlength=n_rows).astype(np.float64)
        frequency = counts[self.rows] / len(self.rows)
        keep = np.minimum(1.0, (np.sqrt(frequency / subsample) + 1) * subsample / frequency) if subsample > 0 \
            else np.ones(len(self.rows))
        self.keep = keep  # per position: the chance its word survives subsampling
        centre = np.where(np.repeat(lengths, lengths) < 2, 0.0, keep)  # a one-word sentence has no context
        if not centre.any():
            raise DataError("context corpus: no sentence has two words")
        self.centre_cdf = np.cumsum(centre)
        noise = counts ** 0.75
        self.noise_cdf = np.cumsum(noise)

    def __len__(self) -> int:
        return len(self.rows)

    def sample(self, step: int, batch: int, *, seed: int, window: int = 5, negatives: int = 5) -> ContextPairs:
        rng = step_rng(seed, step, CONTEXT_SALT)
        positions = np.searchsorted(self.centre_cdf, rng.random(batch) * self.centre_cdf[-1], side="right")
        # word2vec pairs a centre with every word within b ~ U{1..window}, so distance d comes with weight
        # window - d + 1: draw d with those odds (one context per centre), on either side.
        odds = np.arange(window, 0, -1, dtype=np.float64)
        distance = rng.choice(np.arange(1, window + 1), size=batch, p=odds / odds.sum())
        offset = distance * np.where(rng.random(batch) < 0.5, -1, 1)
        context = positions + offset
        outside = (context < self.start[positions]) | (context >= self.stop[positions])
        context = np.where(outside, positions - offset, context)  # mirror into the sentence
        valid = (context >= self.start[positions]) & (context < self.stop[positions])
        context = np.where(valid, context, positions)
        valid &= rng.random(batch) < self.keep[context]  # contexts are subsampled too
        noise = np.searchsorted(self.noise_cdf, rng.random((batch, negatives)) * self.noise_cdf[-1], side="right")
        return ContextPairs(self.rows[positions], self.rows[context], noise.astype(np.int64),
                            valid.astype(np.float32))


class TranslationGroups:
    """Groups of text ids that translate each other; a step draws pairs of members of distinct groups."""

    def __init__(self, groups: Sequence[Sequence[int]]) -> None:
        self.groups = [np.asarray(g, dtype=np.int64) for g in groups if len(g) >= 2]
        if not self.groups:
            raise DataError("translation groups: no group has two texts")
        self.sizes = np.array([len(g) for g in self.groups], dtype=np.int64)
        self.members = np.concatenate(self.groups)
        self.first = np.cumsum(self.sizes) - self.sizes

    def __len__(self) -> int:
        return len(self.groups)

    def sample(self, step: int, batch: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)``: text ids, ``a[i]`` and ``b[i]`` two different members of one group; the groups of a
        batch are distinct (so no other row of the batch is a translation of a row's text)."""
        rng = step_rng(seed, step, TRANSLATION_SALT)
        chosen = rng.choice(len(self.groups), size=min(batch, len(self.groups)), replace=False)
        sizes = self.sizes[chosen]
        first = np.floor(rng.random(len(chosen)) * sizes).astype(np.int64)
        second = (first + 1 + np.floor(rng.random(len(chosen)) * (sizes - 1)).astype(np.int64)) % sizes
        base = self.first[chosen]
        return self.members[base + first], self.members[base + second]
