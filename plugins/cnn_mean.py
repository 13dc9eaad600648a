"""``cnn-mean`` — a training-free visual baseline on the embedded ``emoji`` data.

A word's vector is the mean of the (L2-normalised) CNN features of the training-split images whose CLDR
name (and optionally keywords) in that language contain the word: the CNN-MEAN visual representation of
Kiela et al. (2015), built from image-text co-occurrence instead of image search. Texts are the mean of
their known words; images are their own features. Everything lives in one space, so it serves word,
text and image tasks, and gives a floor any trained model should beat.
"""

from __future__ import annotations

import gc
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

import mmbench
from mmbench.data.emoji.splits import SPLIT_FRACTIONS
from mmbench.kinds.retrieval import EMOJI_FEATURE_SOURCE
from mmbench.text import TOKEN, tokenize


_SEPARATOR = "\x01"  # not a token character, in no CLDR name or keyword (and unlike \x00 not stripped by NumPy)
_TOKEN_OR_SEPARATOR = re.compile(f"{TOKEN.pattern}|{_SEPARATOR}")


def _tokenize_many(texts: list[str]) -> list[list[str]]:
    """``[tokenize(t) for t in texts]`` from one regex pass over the joined texts (3x faster on 355k strings)."""
    if any(_SEPARATOR in text for text in texts):
        return [tokenize(text) for text in texts]
    if not texts:
        return []
    flat = _TOKEN_OR_SEPARATOR.findall(_SEPARATOR.join(text.lower() for text in texts))
    ends = np.flatnonzero(np.array(flat, dtype=object) == _SEPARATOR).tolist() + [len(flat)]
    return [flat[start + 1 : end] for start, end in zip([-1, *ends[:-1]], ends)]


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


EMOJI_STYLES = ("noto", "emojione", "symbola")
EMOJI_SPLITS = tuple(name for name, _ in SPLIT_FRACTIONS)
_CACHED_LANGUAGES = 8  # per-language word-vector tables kept (about 12 MB each)


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
        # Building the word lists creates ~2M small lists and sets (none in a reference cycle); the
        # cyclic garbage collector would walk them all again and again (40 % of prepare).
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._prepare()
        finally:
            if enabled:
                gc.enable()

    def _prepare(self):
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
        concept_index = {c: i for i, c in enumerate(concept_rows)}
        self._concept_vectors = np.stack([features[rows].mean(axis=0) for rows in concept_rows.values()])
        self._dim = features.shape[1]

        # Which concepts each (language, word) names, in text-row order. The vectors themselves are
        # summed per language on first use (``_language_vectors``): all 109 languages at once would
        # take 1.3 GB.
        texts = emoji.texts
        concepts, languages, names = (column_array(texts, name) for name in ("concept", "language", "name"))
        named: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        # A set lookup per row: np.isin on 193k strings against 4k compares every pair (5 s).
        rows = np.flatnonzero(np.fromiter((c in concept_index for c in concepts), dtype=bool, count=len(concepts)))
        name_tokens = _tokenize_many(names[rows].tolist())
        keyword_lists = texts.data.column("keywords").take(rows).to_pylist() if self.config.keywords else None
        keyword_tokens: dict[str, list[str]] = {}  # keywords repeat across concepts: tokenize each once
        if keyword_lists is not None:
            distinct = list(dict.fromkeys(k for keywords in keyword_lists for k in keywords))
            keyword_tokens = dict(zip(distinct, _tokenize_many(distinct)))
        for position, (concept, language) in enumerate(zip(concepts[rows].tolist(), languages[rows].tolist())):
            words = set(name_tokens[position])
            if keyword_lists is not None:
                for keyword in keyword_lists[position]:
                    words.update(keyword_tokens[keyword])
            concept_id, table = concept_index[concept], named[language]
            for word in words:
                table[word].append(concept_id)
        self._vocab: dict[str, dict[str, int]] = {}
        self._named: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # language -> (offsets, concept ids)
        for language, table in named.items():
            words = sorted(table)
            self._vocab[language] = {w: i for i, w in enumerate(words)}
            lists = [table[w] for w in words]
            offsets = np.cumsum([0] + [len(c) for c in lists])
            self._named[language] = (offsets, np.fromiter((c for cs in lists for c in cs), dtype=np.int64))
        self._cache: dict[str, np.ndarray] = {}

    def _language_vectors(self, language: str) -> np.ndarray:
        """(words x dim) float32: each word's mean concept vector, summed in text-row order in float32
        (bit for bit what adding the vectors one text row at a time gives). The last few languages used
        are kept."""
        vectors = self._cache.pop(language, None)
        if vectors is None:
            offsets, concept_ids = self._named[language]
            counts = np.diff(offsets)
            vectors = self._concept_vectors[concept_ids[offsets[:-1]]]
            for position in range(1, int(counts.max())):  # one float32 addition per word and position
                words = np.flatnonzero(counts > position)
                vectors[words] += self._concept_vectors[concept_ids[offsets[words] + position]]
            vectors /= counts[:, None].astype(np.float32)
        self._cache[language] = vectors
        while len(self._cache) > _CACHED_LANGUAGES:
            del self._cache[next(iter(self._cache))]
        return vectors

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
            vectors[found] = self._language_vectors(language)[[r for r in rows if r >= 0]]
        return vectors, found

    def embed_texts(self, texts, language):
        table = self._vocab.get(language, {})
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        matrix = None
        for i, text in enumerate(texts):
            rows = [row for row in (table.get(w.lower(), -1) for w in tokenize(text)) if row >= 0]
            if rows:
                matrix = self._language_vectors(language) if matrix is None else matrix
                out[i] = matrix[rows].mean(axis=0)
        return out

    def embed_images(self, features, *, source):
        if source != EMOJI_FEATURE_SOURCE:
            raise mmbench.Incompatible(f"cnn-mean lives in the {EMOJI_FEATURE_SOURCE} feature space, not {source}")
        return _normalise(np.asarray(features, dtype=np.float32))


@mmbench.hookimpl
def register_models(register):
    register(CnnMean)
