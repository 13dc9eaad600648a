"""Image-text training corpora as (query, image, weight) triples over a table of queries and one of images.

The core's one reader of the training splits of the retrieval sources for bag-of-words and word models
(ImageVec, IESG); sequence models read captions through :mod:`mmbench.train.captions`.

A *query* is a language and its word tokens (an image-search query in the paper; here a CLDR emoji
name or keyword, or a Multi30k caption). Every source returns a :class:`TrainingPairs`; add one (click
logs, another captioned set) by writing a function with the signature of :func:`emoji_pairs` and listing
it in ``SOURCES``. Sources:

* ``emoji``: train-split emoji concepts (packaged data), every drawing with the concept's names.
* ``multi30k``: the 29,000 Multi30k task-1 *training* images, each with its en/de/fr/cs caption; no
  features exist for them here, so only co-occurrence models (``image_encoder="cooc"``) train on it.
* ``multi30k-mini``: the 700 ``train`` photos of the non-official ``multi30k-mini-v1`` split with their
  ResNet-50 features, five task-2 captions in en and de and the task-1 fr and cs captions.

Neither Multi30k source touches an evaluation image: ``multi30k`` refuses a training list that shares
an image with any other task-1 split, and ``multi30k-mini`` uses only its ``train`` split.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
                tokenize: Callable[[str], list[str]], data_dir: Path | None = None) -> TrainingPairs:
    """Train-split emoji concepts: each CLDR name and keyword (per language) paired with every drawing.

    ``languages`` empty means all; ``min_image_languages`` keeps only images whose concept has queries in
    at least that many of the chosen languages (2: the paper's multilingual subset). ``data_dir`` is
    unused: the emoji data ships with mmbench.
    """
    from mmbench.data.emoji import load_emoji
    from mmbench.data.io import column_array
    from mmbench.data import EMOJI_FEATURE_SOURCE

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

    import pyarrow as pa  # here, not at module level: registering the models must stay cheap (`mmbench --help`)
    import pyarrow.compute as pc

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


def multi30k_pairs(languages: Sequence[str] = (), *, min_image_languages: int = 1,
                   tokenize: Callable[[str], list[str]], data_dir: Path | None = None) -> TrainingPairs:
    """Multi30k task-1 training images, each paired with its caption in every chosen language.

    No image features (``feature_source`` is empty): a co-occurrence model learns one vector per image.
    """
    from mmbench.data import io
    from mmbench.data.multi30k import LANGUAGE_ORDER, TASK1_SPLITS, load_multi30k

    root = _root(data_dir, "multi30k")
    chosen = _check_languages(languages, LANGUAGE_ORDER, "multi30k", "Multi30k task-1 train")
    rows = load_multi30k(root, task=1, split="train", languages=chosen, features=False)
    images = rows["image"][:]
    splits = root / "multi30k" / "task1" / "image_splits"
    train_images = set(images)
    for split in TASK1_SPLITS[1:]:  # val and the test sets: never train on an image scored anywhere
        path = splits / f"{split}.txt"
        if path.is_file():
            shared = sorted(train_images & {line.strip() for _, line in io.read_aligned_lines(path)})
            if shared:
                raise io.data_error(splits / "train.txt", f"lists {len(shared)} images of {path.name} "
                                    f"(first: {shared[0]!r}); training on evaluation images is refused")
    captions = {lang: [[caption] for caption in rows[f"caption_{lang}"][:]] for lang in chosen}
    return caption_pairs(images, captions, np.zeros((len(images), 0), dtype=np.float32), "",
                         min_image_languages=min_image_languages, tokenize=tokenize, where="multi30k train")


def multi30k_mini_pairs(languages: Sequence[str] = (), *, min_image_languages: int = 1,
                        tokenize: Callable[[str], list[str]], data_dir: Path | None = None) -> TrainingPairs:
    """The ``train`` split of ``multi30k-mini-v1`` (700 photos, ResNet-50 features): five task-2 captions
    in en and de, the task-1 caption in fr and cs."""
    from mmbench.data import io
    from mmbench.data.multi30k_mini import (
        MINI_PROTOCOL,
        TASK1_LANGUAGES,
        TASK2_LANGUAGES,
        load_multi30k_mini,
    )
    from mmbench.data import MULTI30K_FEATURE_SOURCE

    root = _root(data_dir, "multi30k-mini")
    chosen = _check_languages(languages, TASK1_LANGUAGES, "multi30k-mini", f"{MINI_PROTOCOL} train")
    rows = load_multi30k_mini(root)["train"]  # never val or test: those are scored
    captions = {lang: rows[f"captions_{lang}"][:] if lang in TASK2_LANGUAGES
                else [[caption] for caption in rows[f"caption_{lang}"][:]] for lang in chosen}
    features = np.ascontiguousarray(io.feature_array(rows), dtype=np.float32)
    return caption_pairs(rows["image"][:], captions, features, MULTI30K_FEATURE_SOURCE,
                         min_image_languages=min_image_languages, tokenize=tokenize,
                         where=f"{MINI_PROTOCOL} train")


def caption_pairs(image_ids: Sequence[str], captions: Mapping[str, Sequence[Sequence[str]]], features: np.ndarray,
                  feature_source: str, *, min_image_languages: int, tokenize: Callable[[str], list[str]],
                  where: str) -> TrainingPairs:
    """Pairs from per-image captions: ``captions[lang][i]`` are image i's captions in ``lang``.

    Identical (language, tokens) queries share one query row; an image's repeated caption counts once;
    images with captions in fewer than ``min_image_languages`` languages are left out.
    """
    query_row: dict[tuple[str, tuple[str, ...]], int] = {}
    kept_images: list[int] = []
    pair_query: list[int] = []
    pair_image: list[int] = []
    for image in range(len(image_ids)):
        rows: set[int] = set()
        languages_seen = 0
        for language, per_image in captions.items():
            distinct = {tuple(tokenize(text)) for text in per_image[image]}
            distinct.discard(())
            languages_seen += bool(distinct)
            rows.update(query_row.setdefault((language, tokens), len(query_row)) for tokens in sorted(distinct))
        if languages_seen < min_image_languages:
            continue
        pair_query.extend(sorted(rows))
        pair_image.extend([len(kept_images)] * len(rows))
        kept_images.append(image)
    if not kept_images:
        raise DataError(f"{where}: no image has captions in >= {min_image_languages} of the languages "
                        f"{', '.join(captions)}")
    used = np.unique(np.asarray(pair_query, dtype=np.int64))
    remap = np.full(len(query_row), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    table = list(query_row)
    return TrainingPairs(
        query_languages=[table[r][0] for r in used],
        query_tokens=[table[r][1] for r in used],
        image_ids=[str(image_ids[i]) for i in kept_images],
        image_features=np.ascontiguousarray(features[kept_images], dtype=np.float32),
        feature_source=feature_source,
        pair_query=remap[np.asarray(pair_query, dtype=np.int64)],
        pair_image=np.asarray(pair_image, dtype=np.int64),
    )


def alignment_lexicon(source: str, target: str, known: Mapping[str, Sequence[str]], *, data_dir: Path | None,
                      tokenize: Callable[[str], list[str]]) -> tuple[dict[str, list[str]], str]:
    """Source word -> its gold target words, only words in ``known[language]``, and a note naming the lexicon.

    The MUSE ``source-target`` 0-5000 *train* dictionary under ``data_dir`` when it is there and shares a
    pair with the vocabulary; else emoji train-split concepts whose CLDR name is one word in both languages.
    """
    from mmbench.data.muse import load_muse_dictionary, muse_dictionary_path

    known_source, known_target = set(known.get(source, ())), set(known.get(target, ()))
    path = muse_dictionary_path(Path(data_dir), source, target, "train") if data_dir is not None else None
    fallback = "no MUSE dictionary at " + str(path) if path is not None else "no data root"
    if path is not None and path.is_file():
        dictionary = load_muse_dictionary(path)
        lexicon = _known_pairs(zip(dictionary["source"][:], dictionary["target"][:]), known_source, known_target)
        n_source = len(set(dictionary["source"][:]))
        if lexicon:
            return lexicon, f"MUSE {path.name}: {len(lexicon)} of {n_source} source words known to the model"
        fallback = f"no word pair of {path.name} is known to the model"
    lexicon = _known_pairs(_emoji_word_pairs(source, target, tokenize), known_source, known_target)
    if not lexicon:
        raise ConfigError(f"imagevec: no {source}-{target} word pair to track the alignment ratio with "
                          f"({fallback}; no single-word emoji name pair is in the vocabulary)")
    return lexicon, (f"emoji train-split single-word names ({fallback}): {len(lexicon)} {source} words "
                     f"known to the model")


def _known_pairs(pairs: Iterable[tuple[str, str]], known_source: set[str], known_target: set[str]) -> dict[str, list[str]]:
    lexicon: dict[str, list[str]] = {}
    for source_word, target_word in pairs:
        if source_word in known_source and target_word in known_target:
            golds = lexicon.setdefault(source_word, [])
            if target_word not in golds:
                golds.append(target_word)
    return lexicon


def emoji_name_groups(languages: Sequence[str], tokenize: Callable[[str], list[str]]) -> list[list[tuple[str, list[str]]]]:
    """Per train-split emoji concept (in concept order), its CLDR names as ``(language, tokens)`` in the
    chosen ``languages`` (empty: all); names that tokenize to nothing are left out."""
    from mmbench.data.emoji import load_emoji
    from mmbench.data.io import column_array

    emoji = load_emoji()
    images = emoji.images
    train = set(column_array(images, "concept")[column_array(images, "split") == "train"])
    wanted = set(languages)
    groups: dict[str, list[tuple[str, list[str]]]] = {}
    for concept, language, name in zip(column_array(emoji.texts, "concept"), column_array(emoji.texts, "language"),
                                       column_array(emoji.texts, "name")):
        if concept in train and (not wanted or language in wanted):
            tokens = tokenize(name)
            if tokens:
                groups.setdefault(concept, []).append((language, tokens))
    return [groups[concept] for concept in sorted(groups)]


def _emoji_word_pairs(source: str, target: str, tokenize: Callable[[str], list[str]]) -> list[tuple[str, str]]:
    """(source word, target word) for each emoji train-split concept named by one word in both languages."""
    pairs = []
    for names in emoji_name_groups([source, target], tokenize):
        words = {language: tokens[0] for language, tokens in names if len(tokens) == 1}
        if source in words and target in words:
            pairs.append((words[source], words[target]))
    return pairs


def _root(data_dir: Path | None, source: str) -> Path:
    if data_dir is None:
        raise ConfigError(f"imagevec: train_data {source!r} reads the data root, but none was given")
    return Path(data_dir)


def _check_languages(languages: Sequence[str], available: Sequence[str], source: str, what: str) -> list[str]:
    unknown = sorted(set(languages) - set(available))
    if unknown:
        raise ConfigError(f"imagevec: train_data {source!r} has no captions in {', '.join(unknown)} "
                          f"({what}: {', '.join(available)})")
    return [lang for lang in available if not languages or lang in languages]


# Evaluation data each source trains on ("dataset:split", see mmbench.cards.data_overlap): the
# multi30k-mini train photos are test_2016_flickr images, so such a model is never scored on that split.
SEEN_DATA: dict[str, frozenset[str]] = {
    "emoji": frozenset({"emoji:train"}),
    "multi30k": frozenset({"multi30k:train"}),
    "multi30k-mini": frozenset({"multi30k-mini-v1:train", "multi30k:test_2016_flickr"}),
}

SOURCES: dict[str, Callable[..., TrainingPairs]] = {
    "emoji": emoji_pairs,
    "multi30k": multi30k_pairs,
    "multi30k-mini": multi30k_mini_pairs,
}


def build_pairs(source: str, languages: Sequence[str], *, min_image_languages: int,
                tokenize: Callable[[str], list[str]], data_dir: Path | None = None) -> TrainingPairs:
    if source not in SOURCES:
        raise ConfigError(f"imagevec: unknown train_data {source!r} (known: {', '.join(SOURCES)})")
    return SOURCES[source](languages, min_image_languages=min_image_languages, tokenize=tokenize,
                           data_dir=data_dir)
