"""Training pairs for ImageVec: (query, image, weight) triples over a table of queries and one of images.

A *query* is a language and its word tokens (an image-search query in the paper; here a CLDR emoji
name or keyword). Every source returns a :class:`TrainingPairs`; add one (Multi30k captions, click
logs) by writing a function with the signature of :func:`emoji_pairs` and listing it in ``SOURCES``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmbench.errors import ConfigError, DataError


@dataclass
class TrainingPairs:
    """Unique queries, the images, and one row per (query, image) pair.

    ``image_features`` is ``(n_images, d)`` float32 in the feature space ``feature_source``; co-occurrence
    models ignore it and learn one free vector per image id. ``pair_weight`` is None when all pairs count
    the same (the paper weights pairs by clicks).
    """

    query_languages: list[str]
    query_tokens: list[tuple[str, ...]]
    image_ids: list[str]
    image_features: np.ndarray
    feature_source: str
    pair_query: np.ndarray  # (n_pairs,) int64 rows of the query table
    pair_image: np.ndarray  # (n_pairs,) int64 rows of the image table
    pair_weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pair_query)

    @property
    def languages(self) -> list[str]:
        return sorted(set(self.query_languages))


def emoji_pairs(languages: Sequence[str] = (), *, min_image_languages: int = 1,
                tokenize: Callable[[str], list[str]]) -> TrainingPairs:
    """Train-split emoji concepts: each CLDR name and keyword (per language) paired with every drawing.

    ``languages`` empty means all; ``min_image_languages`` keeps only images whose concept has queries in
    at least that many of the chosen languages (2: the paper's multilingual subset).
    """
    from mmbench.data.emoji import load_emoji
    from mmbench.data.io import column_array
    from mmbench.kinds.retrieval import EMOJI_FEATURE_SOURCE

    emoji = load_emoji()
    unknown = sorted(set(languages) - set(emoji.languages))
    if unknown:
        raise ConfigError(f"imagevec: languages {', '.join(unknown)} have no emoji names "
                          f"(see `mmbench data info emoji`)")
    train_rows = np.flatnonzero(column_array(emoji.images, "split") == "train")
    image_concepts = column_array(emoji.images, "concept")[train_rows]
    rows_of: dict[str, list[int]] = defaultdict(list)
    for position, concept in enumerate(image_concepts):
        rows_of[concept].append(position)

    texts = emoji.texts
    text_language = column_array(texts, "language")
    # Arrow's hash-based is_in: np.isin sorts object arrays (seconds on the 193k names).
    keep = pc.is_in(texts.data.column("concept"), value_set=pa.array(list(rows_of)))
    if languages:
        keep = pc.and_(keep, pc.is_in(texts.data.column("language"), value_set=pa.array(list(languages))))
    selected = np.flatnonzero(keep.to_numpy(zero_copy_only=False))
    concepts = column_array(texts, "concept")[selected]
    names = column_array(texts, "name")[selected]
    keyword_lists = texts.data.column("keywords").take(selected).to_pylist()

    query_row: dict[tuple[str, tuple[str, ...]], int] = {}
    queries_of: dict[str, list[int]] = defaultdict(list)  # concept -> query rows, one per (language, query)
    languages_of: dict[str, set[str]] = defaultdict(set)
    for concept, language, name, keywords in zip(concepts, text_language[selected], names, keyword_lists):
        distinct = {tuple(tokenize(text)) for text in (name, *keywords)}
        distinct.discard(())
        for tokens in sorted(distinct):
            row = query_row.setdefault((language, tokens), len(query_row))
            queries_of[concept].append(row)
        if distinct:
            languages_of[concept].add(language)

    kept = sorted(c for c in queries_of if len(languages_of[c]) >= min_image_languages)
    if not kept:
        raise DataError(f"emoji: no training image has queries in >= {min_image_languages} of the languages "
                        f"{', '.join(languages) or 'all'}")
    image_positions = [p for c in kept for p in rows_of[c]]
    new_index = {p: i for i, p in enumerate(image_positions)}
    pair_query, pair_image = [], []
    for concept in kept:
        query_rows = np.asarray(queries_of[concept], dtype=np.int64)
        for position in rows_of[concept]:
            pair_query.append(query_rows)
            pair_image.append(np.full(len(query_rows), new_index[position], dtype=np.int64))
    used = sorted({r for c in kept for r in queries_of[c]})
    remap = np.full(len(query_row), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    table = list(query_row)
    features = emoji.features_matrix()[train_rows[image_positions]]
    return TrainingPairs(
        query_languages=[table[r][0] for r in used],
        query_tokens=[table[r][1] for r in used],
        image_ids=[str(i) for i in column_array(emoji.images, "image_id")[train_rows[image_positions]]],
        image_features=np.ascontiguousarray(features, dtype=np.float32),
        feature_source=EMOJI_FEATURE_SOURCE,
        pair_query=remap[np.concatenate(pair_query)],
        pair_image=np.concatenate(pair_image),
    )


# Extension point: Multi30k (captions per image in en/de/fr/cs) plugs in here with the same signature.
SOURCES: dict[str, Callable[..., TrainingPairs]] = {"emoji": emoji_pairs}


def build_pairs(source: str, languages: Sequence[str], *, min_image_languages: int,
                tokenize: Callable[[str], list[str]]) -> TrainingPairs:
    if source not in SOURCES:
        raise ConfigError(f"imagevec: unknown train_data {source!r} (known: {', '.join(SOURCES)})")
    return SOURCES[source](languages, min_image_languages=min_image_languages, tokenize=tokenize)
