"""Words as *sets of emoji images*: the input of visual bilingual lexicon induction.

A word ``w`` of language ``L`` gets the images, in one drawing ``style``, of every emoji concept whose
CLDR name in ``L`` contains ``w`` as a token, or whose CLDR keyword list in ``L`` contains ``w``. Matching
is on normalised terms: NFC, lowercased, split into word tokens (``tokenize``) and re-joined with one
space, so ``T-Shirt``, ``t shirt`` and ``t-shirt`` are one term. A word of several tokens matches a name
that contains its tokens contiguously (``ice cream`` in "soft ice cream"), or a keyword that equals it;
keywords are not split (a keyword "face with tears of joy" does not give "joy" its image).

This replaces the web image search of Bergsma & Van Durme (2011) and Kiela et al. (2015) with the
image-text co-occurrence of the packaged ``emoji`` data: a word's images are those "tagged" with it.
``split`` restricts the concepts (``"all"``: every concept; lexicon induction from image sets is
training-free, so there is nothing to hold out). Indexes are cached per (artifact, language, style,
split) for the life of the process.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmbench.data import EMOJI_SPLITS
from mmbench.errors import DataError
from mmbench.text import tokenize

SPLITS = ("all", *EMOJI_SPLITS)

def normalize_term(text: str) -> str:
    """The matching key of a word, name part or keyword: NFC, lowercased tokens joined by one space."""
    return " ".join(tokenize(unicodedata.normalize("NFC", text)))


@dataclass(frozen=True)
class ImageSetIndex:
    """Image rows (of the emoji ``images`` table) per normalised term, for one language and style."""

    language: str
    style: str
    split: str
    rows: dict[str, tuple[int, ...]]  # term -> sorted image rows
    features: np.ndarray  # (n_images, d) float32: the whole emoji feature matrix, rows index into it

    def image_rows(self, word: str) -> tuple[int, ...]:
        """Rows of the images tagged with ``word`` (empty when none)."""
        return self.rows.get(normalize_term(word), ())

    def image_set(self, word: str) -> np.ndarray:
        """``(images, d)`` float32 features of ``word``'s images, in row order (``(0, d)`` when none)."""
        return self.features[list(self.image_rows(word))]


def build_image_set_index(
    images_concept: np.ndarray,
    images_style: np.ndarray,
    images_split: np.ndarray,
    text_concepts: np.ndarray,
    text_names: np.ndarray,
    text_keywords: list[list[str]],
    *,
    style: str,
    split: str,
) -> dict[str, tuple[int, ...]]:
    """``{term: image rows}`` from the image columns and one language's text rows (pure; tested directly)."""
    if split not in SPLITS:
        raise DataError(f"emoji: split {split!r} is not one of {', '.join(SPLITS)}")
    keep = images_style == style
    if split != "all":
        keep &= images_split == split
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row in np.flatnonzero(keep):
        rows_of[str(images_concept[row])].append(int(row))
    index: dict[str, set[int]] = defaultdict(set)
    for concept, name, keywords in zip(text_concepts, text_names, text_keywords):
        rows = rows_of.get(str(concept))
        if not rows:
            continue
        tokens = normalize_term(name).split()
        terms = {" ".join(tokens[i:j]) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)}
        terms.update(normalize_term(keyword) for keyword in keywords or ())
        terms.discard("")
        for term in terms:
            index[term].update(rows)
    return {term: tuple(sorted(rows)) for term, rows in sorted(index.items())}


def image_set_index(language: str, style: str, split: str = "all", artifact: Path | None = None) -> ImageSetIndex:
    """The (cached) index of ``language`` in ``style``; ``artifact`` is an emoji artifact folder (default: packaged)."""
    from mmbench.data.emoji import artifact_dir

    folder = Path(artifact).resolve() if artifact is not None else Path(artifact_dir()).resolve()
    return _cached_index(str(folder), language, style, split)


@functools.lru_cache(maxsize=64)
def _cached_index(folder: str, language: str, style: str, split: str) -> ImageSetIndex:
    from mmbench.data.emoji import artifact_dir, load_emoji, load_emoji_artifact
    from mmbench.data.io import column_array

    emoji = load_emoji() if Path(folder) == Path(artifact_dir()).resolve() else load_emoji_artifact(Path(folder))
    styles = column_array(emoji.images, "style")
    if not (styles == style).any():
        raise DataError(f"emoji: no images in style {style!r} (styles: {', '.join(sorted(set(styles)))})")
    languages = column_array(emoji.texts, "language")
    text_rows = np.flatnonzero(languages == language)
    if text_rows.size == 0:
        raise DataError(f"emoji: no names in language {language!r} (see `mmbench data info emoji`)")
    keywords = emoji.texts.data.column("keywords").take(text_rows).to_pylist()
    rows = build_image_set_index(
        column_array(emoji.images, "concept"), styles, column_array(emoji.images, "split"),
        column_array(emoji.texts, "concept")[text_rows], column_array(emoji.texts, "name")[text_rows], keywords,
        style=style, split=split,
    )
    return ImageSetIndex(language, style, split, rows, emoji.features_matrix())
