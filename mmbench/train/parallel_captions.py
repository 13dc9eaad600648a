"""Parallel captions for crosslingual alignment (CLMR, Wehrmann and Barros): the Multi30k task-1
translations of a caption source's *training* images, one pair per image and language pair.

``multi30k-mini``: the task-1 captions (en, de, fr, cs) of the 700 ``multi30k-mini-v1`` train photos;
``multi30k``: the official task-1 ``train`` split (29,000 images). The validation and test images are never
read: the scored splits stay unseen. Read through the loaders of :mod:`mmbench.data`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmbench.errors import ConfigError

LANGUAGES = ("en", "de", "fr", "cs")


@dataclass
class ParallelCaptions:
    """Row i: ``tokens_a[i]`` in ``languages_a[i]`` is a translation of ``tokens_b[i]`` in ``languages_b[i]``."""

    languages_a: list[str]
    tokens_a: list[list[str]]
    languages_b: list[str]
    tokens_b: list[list[str]]

    def __len__(self) -> int:
        return len(self.tokens_a)

    def languages(self) -> list[str]:
        return sorted(set(self.languages_a) | set(self.languages_b))


def parse_pairs(pairs: Sequence[str]) -> list[tuple[str, str]]:
    """``["en-de", "en-fr"]`` -> ``[("en", "de"), ("en", "fr")]``, checked against the task-1 languages."""
    out = []
    for pair in pairs:
        a, _, b = pair.partition("-")
        if a not in LANGUAGES or b not in LANGUAGES or a == b:
            raise ConfigError(f"parallel caption pair {pair!r}: expected 'X-Y' with X != Y among "
                              f"{', '.join(LANGUAGES)}")
        out.append((a, b))
    return out


def parallel_captions(source: str, pairs: Sequence[str], *, data_dir: Path,
                      tokenize: Callable[[str], list[str]]) -> ParallelCaptions:
    """The translation pairs of ``source``'s training images for each ``X-Y`` in ``pairs`` (X first);
    pairs where either side tokenizes to nothing are left out."""
    parsed = parse_pairs(pairs)
    wanted = sorted({lang for pair in parsed for lang in pair}, key=LANGUAGES.index)
    if source == "multi30k-mini":
        from mmbench.data.multi30k_mini import load_multi30k_mini

        rows = load_multi30k_mini(Path(data_dir))["train"]
    elif source == "multi30k":
        from mmbench.data.multi30k import load_multi30k

        rows = load_multi30k(Path(data_dir), task=1, split="train", languages=wanted, features=False)
    else:
        raise ConfigError(f"unknown parallel caption source {source!r} (known: multi30k-mini, multi30k)")
    columns = {lang: [tokenize(c) for c in rows[f"caption_{lang}"][:]] for lang in wanted}
    out = ParallelCaptions([], [], [], [])
    for a, b in parsed:
        for left, right in zip(columns[a], columns[b]):
            if left and right:
                out.languages_a.append(a)
                out.tokens_a.append(left)
                out.languages_b.append(b)
                out.tokens_b.append(right)
    return out


def clmr_batch(step: int, n_pairs: int, batch_size: int, seed: int) -> np.ndarray:
    """Rows of the parallel captions for 1-based training ``step``: epochs of their own over a seeded
    permutation (a pure function of the step, so a resumed run draws the same pairs); the last, smaller
    batch of an epoch is dropped so every batch has ``min(batch_size, n_pairs)`` rows."""
    size = min(batch_size, n_pairs)
    per_epoch = n_pairs // size
    epoch, position = divmod(step - 1, per_epoch)
    order = np.random.default_rng([seed, epoch, 1807]).permutation(n_pairs)
    return order[position * size:(position + 1) * size]
