"""``cnn-mean`` — a training-free visual baseline on the embedded ``emoji`` data.

A word's vector is the mean of the (L2-normalised) CNN features of the training-split images whose CLDR
name (and optionally keywords) in that language contain the word: the CNN-MEAN visual representation of
Kiela et al. (2015), built from image-text co-occurrence instead of image search. Texts are the mean of
their known words; images are their own features. Everything lives in one space, so it serves word,
text and image tasks, and gives a floor any trained model should beat.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

import mmbench
from mmbench.data.emoji.splits import SPLIT_FRACTIONS
from mmbench.kinds.retrieval import EMOJI_FEATURE_SOURCE
from mmbench.text import tokenize


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


EMOJI_STYLES = ("noto", "emojione", "symbola")
EMOJI_SPLITS = tuple(name for name, _ in SPLIT_FRACTIONS)


@dataclass(frozen=True)
class CnnMeanConfig:
    styles: tuple[str, ...] = EMOJI_STYLES  # image styles averaged per concept
    keywords: bool = True  # also learn from CLDR keyword lists, not only names
    split: str = "train"  # concepts used to build word vectors (never the evaluation split)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.styles) - set(EMOJI_STYLES))
        if not self.styles or unknown:
            raise ValueError(f"styles must be a non-empty subset of {', '.join(EMOJI_STYLES)} (got {list(self.styles)})")
        if self.split not in EMOJI_SPLITS:
            raise ValueError(f"split must be one of {', '.join(EMOJI_SPLITS)} (got {self.split!r})")


class CnnMean(mmbench.Model):
    """Word/text vectors = mean CNN features of the emoji images they name (no training)."""

    name = "cnn-mean"
    Config = CnnMeanConfig
    capabilities = frozenset({mmbench.Capability.WORDS, mmbench.Capability.TEXT, mmbench.Capability.IMAGES})

    def prepare(self, ctx):
        from mmbench.data.emoji import load_emoji
        from mmbench.data.io import column_array

        emoji = load_emoji()
        images = emoji.images
        features = _normalise(emoji.features_matrix())
        keep = np.isin(column_array(images, "style"), list(self.config.styles)) & (
            column_array(images, "split") == self.config.split
        )
        concept_rows: dict[str, list[int]] = defaultdict(list)
        for row, concept in zip(np.flatnonzero(keep), column_array(images, "concept")[keep]):
            concept_rows[concept].append(row)
        concept_vectors = {c: features[rows].mean(axis=0) for c, rows in concept_rows.items()}

        sums: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        texts = emoji.texts
        columns = [column_array(texts, name) for name in ("concept", "language", "name")]
        keyword_lists = texts.data.column("keywords").to_pylist() if self.config.keywords else [()] * len(texts)
        for concept, language, name, keywords in zip(*columns, keyword_lists):
            vector = concept_vectors.get(concept)
            if vector is None:
                continue
            words = set(tokenize(name))
            if self.config.keywords:
                words.update(token for keyword in keywords for token in tokenize(keyword))
            for word in words:
                if word in sums[language]:
                    sums[language][word] = sums[language][word] + vector
                else:
                    sums[language][word] = vector.copy()
                counts[language][word] += 1
        self._dim = features.shape[1]
        self._vocab: dict[str, dict[str, int]] = {}
        self._vectors: dict[str, np.ndarray] = {}
        for language, table in sums.items():
            words = sorted(table)
            self._vocab[language] = {w: i for i, w in enumerate(words)}
            self._vectors[language] = np.stack([table[w] / counts[language][w] for w in words]).astype(np.float32)

    def languages(self):
        return sorted(self._vocab)

    def vocabulary(self, language):
        return list(self._vocab.get(language, {}))

    def seen_data(self):
        return frozenset({f"emoji:{self.config.split}"})

    def embed_words(self, words, language):
        table = self._vocab.get(language, {})
        rows = [table.get(w.lower(), -1) for w in words]
        found = np.array([r >= 0 for r in rows], dtype=bool)
        vectors = np.zeros((len(words), self._dim), dtype=np.float32)
        if found.any():
            vectors[found] = self._vectors[language][[r for r in rows if r >= 0]]
        return vectors, found

    def embed_texts(self, texts, language):
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            vectors, found = self.embed_words(tokenize(text), language)
            if found.any():
                out[i] = vectors[found].mean(axis=0)
        return out

    def embed_images(self, features, *, source):
        if source != EMOJI_FEATURE_SOURCE:
            raise mmbench.Incompatible(f"cnn-mean lives in the {EMOJI_FEATURE_SOURCE} feature space, not {source}")
        return _normalise(np.asarray(features, dtype=np.float32))


@mmbench.hookimpl
def register_models(register):
    register(CnnMean)
