"""Image-caption training corpora and the language-tagged caption vocabulary for sequence encoders.

What a caption model (AME; LIWE and IESG next) needs besides its network:

* :func:`caption_image_pairs` — one row per *caption* (languages mixed), each with the row of its image,
  read from a retrieval source's *training* split: ``multi30k-mini`` (the 700 ``train`` photos of
  ``multi30k-mini-v1`` with ResNet-50 features, or its 100 ``val`` photos for validation), ``multi30k``
  (the official task-2 ``train``/``val`` split, whose features must be under the data root; captions:
  the five task-2 captions in en and de, the task-1 caption in fr and cs) or ``coco`` (Karpathy
  ``train`` + ``restval``, or ``val``: five English captions per image, the features the COCO cards read).
* :class:`CaptionVocabulary` — per language, the training captions' tokens seen at least ``min_count``
  times, in one joint table keyed ``lang:word``; every language has its own *unknown* row (AME's
  ``<unk>`` per language). Row 0 is padding.
* :class:`PaddedCaptions` — a collate turning (caption, image) index batches into padded token rows,
  lengths and image features, for the shared trainer.
* :func:`training_lexicon` — MUSE dictionary pairs between two languages, filtered to the vocabulary,
  with the BLI test words held out (see its docstring), and the ``dataset:split`` ids it reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mmbench.errors import ConfigError, DataError

PAD = "<pad>"
UNKNOWN = "<unk>"
MINI_LANGUAGES = ("en", "de", "fr", "cs")
TASK2_LANGUAGES = ("en", "de")

COCO_LANGUAGES = ("en",)
# Where the COCO cards read (tasks/coco-1k.toml): the Karpathy split JSON and the image features.
COCO_JSON, COCO_FEATURES = "coco/dataset_coco.json", "coco/features/resnet152-avgpool.npz"
COCO_FEATURE_SOURCE = "coco/resnet152-avgpool"

# Evaluation data each source's train split is (the contamination guard's ids, see mmbench.cards).
SEEN_DATA: dict[str, frozenset[str]] = {
    "multi30k-mini": frozenset({"multi30k-mini-v1:train", "multi30k:test_2016_flickr"}),
    "multi30k": frozenset({"multi30k:train"}),
    "coco": frozenset({"coco-karpathy:train", "coco-karpathy:restval"}),
}


@dataclass
class CaptionPairs:
    """``languages[i]``/``tokens[i]``: caption i; ``image[i]``: the row of its image in ``features``."""

    languages: list[str]
    tokens: list[list[str]]
    image: np.ndarray  # (n_captions,) int64
    features: np.ndarray  # (n_images, d) float32; d = 0 when the source has none
    feature_source: str
    image_ids: list[str]

    def __len__(self) -> int:
        return len(self.tokens)

    def shuffled(self, seed: int) -> CaptionPairs:
        """The same captions paired with a random permutation of the images (a shuffled-pairs control)."""
        order = np.random.default_rng(seed).permutation(len(self.image_ids))
        return CaptionPairs(self.languages, self.tokens, order[self.image], self.features, self.feature_source,
                            self.image_ids)


def caption_image_pairs(source: str, split: Literal["train", "val"], languages: Sequence[str], *,
                        data_dir: Path, tokenize: Callable[[str], list[str]], features: bool = True,
                        shuffle_seed: int | None = None) -> CaptionPairs:
    """Captions of ``split`` of ``source`` in ``languages`` (each caption one row), with their images.

    ``shuffle_seed``: the shuffled-pairs control (:meth:`CaptionPairs.shuffled` with that seed)."""
    from mmbench.data import io

    data_dir = Path(data_dir)
    offered = COCO_LANGUAGES if source == "coco" else MINI_LANGUAGES
    unknown = sorted(set(languages) - set(offered))
    if unknown or not languages:
        raise ConfigError(f"{source}: captions exist in {', '.join(offered)}, not {', '.join(unknown) or '(none)'}"
                          + (" (--set languages=en)" if source == "coco" else ""))
    if source == "multi30k-mini":
        from mmbench.data.multi30k_mini import load_multi30k_mini
        from mmbench.data import MULTI30K_FEATURE_SOURCE

        rows = load_multi30k_mini(data_dir)[split]  # never test: it is scored
        feature_source = MULTI30K_FEATURE_SOURCE
    elif source == "multi30k":
        from mmbench.data.multi30k import HOW_TO_GET, load_multi30k
        from mmbench.data import MULTI30K_FEATURE_SOURCE

        task2 = [lang for lang in languages if lang in TASK2_LANGUAGES]
        rows = load_multi30k(data_dir, task=2 if task2 else 1, split=split, languages=task2 or list(languages),
                             features=features)
        if features and "features" not in rows.column_names:
            path = data_dir / "multi30k" / "features" / f"{split}-resnet50-avgpool.npy"
            raise DataError(f"{path}: not found; training on Multi30k needs the official {split} image features "
                            f"(the images' ResNet-50 average pool, rows in task1/image_splits/{split}.txt order). "
                            f"{HOW_TO_GET}")
        task1 = [lang for lang in languages if lang not in TASK2_LANGUAGES]
        if task1 and task2:
            extra = load_multi30k(data_dir, task=1, split=split, languages=task1, features=False)
            if extra["image"][:] != rows["image"][:]:
                raise DataError(f"multi30k {split}: task-1 and task-2 image lists differ")
            rows = rows.add_column("_task1", list(zip(*(extra[f"caption_{lang}"][:] for lang in task1))))
        feature_source = MULTI30K_FEATURE_SOURCE
    elif source == "coco":
        rows = _coco_rows(data_dir, split, languages, features)
        feature_source = COCO_FEATURE_SOURCE
    else:
        raise ConfigError(f"unknown caption training source {source!r} (known: {', '.join(SEEN_DATA)})")

    out_languages: list[str] = []
    out_tokens: list[list[str]] = []
    out_image: list[int] = []
    for lang in languages:
        if source == "coco":
            per_image = rows["captions"][:]
        elif lang in TASK2_LANGUAGES and f"captions_{lang}" in rows.column_names:
            per_image = rows[f"captions_{lang}"][:]
        elif f"caption_{lang}" in rows.column_names:
            per_image = [[c] for c in rows[f"caption_{lang}"][:]]
        else:
            position = [x for x in languages if x not in TASK2_LANGUAGES].index(lang)
            per_image = [[t[position]] for t in rows["_task1"][:]]
        for image, captions in enumerate(per_image):
            for caption in captions:
                tokens = tokenize(caption)
                if tokens:
                    out_languages.append(lang)
                    out_tokens.append(tokens)
                    out_image.append(image)
    feats = (np.ascontiguousarray(io.feature_array(rows), dtype=np.float32) if "features" in rows.column_names
             else np.zeros((len(rows), 0), dtype=np.float32))
    pairs = CaptionPairs(out_languages, out_tokens, np.asarray(out_image, dtype=np.int64), feats, feature_source,
                         [str(i) for i in rows["image"][:]])
    return pairs if shuffle_seed is None else pairs.shuffled(shuffle_seed)


class CaptionVocabulary:
    """``lang:word`` keys -> rows of one joint table; row 0 pads, each language has an unknown row."""

    def __init__(self, words: Mapping[str, Sequence[str]]):
        self.words = {lang: list(ws) for lang, ws in sorted(words.items())}  # per language, most frequent first
        self.keys = [PAD] + [f"{lang}:{w}" for lang, ws in self.words.items() for w in [UNKNOWN, *ws]]
        self.index = {key: row for row, key in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def languages(self) -> list[str]:
        return list(self.words)

    def row(self, language: str, word: str) -> int | None:
        return self.index.get(f"{language}:{word}")

    def rows(self, language: str, tokens: Sequence[str]) -> list[int]:
        """Token rows; unknown tokens map to the language's unknown row."""
        unknown = self.index[f"{language}:{UNKNOWN}"]
        return [self.index.get(f"{language}:{t}", unknown) for t in tokens]

    def language_rows(self, language: str) -> list[int]:
        """Rows of the language's words (not its unknown row), in ``words[language]`` order."""
        return [self.index[f"{language}:{w}"] for w in self.words[language]]

    def row_languages(self) -> np.ndarray:
        """(rows,) int64: the position in ``languages`` of each row's language (-1: padding)."""
        position = {lang: i for i, lang in enumerate(self.words)}
        return np.asarray([-1] + [position[k.split(":", 1)[0]] for k in self.keys[1:]], dtype=np.int64)

    @classmethod
    def build(cls, languages: Sequence[str], tokens: Sequence[Sequence[str]], *, min_count: int) -> CaptionVocabulary:
        counts: dict[str, Counter[str]] = {}
        for lang, caption in zip(languages, tokens):
            counts.setdefault(lang, Counter()).update(caption)
        return cls({lang: [w for w, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
                    for lang, c in counts.items()})

    def to_json(self) -> dict[str, Any]:
        return {"words": self.words}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> CaptionVocabulary:
        return cls(payload["words"])


class PaddedCaptions:
    """Collate: a batch of caption indices -> ``tokens`` (B, T) padded with 0, ``lengths``, ``languages``
    (B,) and ``images`` (features, or image indices when ``features`` is None)."""

    def __init__(self, rows: Sequence[Sequence[int]], languages: Sequence[int], images: Any, image_of: Any):
        import torch

        self.lengths = torch.tensor([max(1, len(r)) for r in rows], dtype=torch.int64)
        width = int(self.lengths.max()) if len(rows) else 1
        self.tokens = torch.zeros(len(rows), width, dtype=torch.int64)
        for i, r in enumerate(rows):
            self.tokens[i, :len(r)] = torch.tensor(r, dtype=torch.int64)
        self.languages = torch.as_tensor(languages, dtype=torch.int64)
        self.images, self.image_of = images, torch.as_tensor(image_of, dtype=torch.int64)

    def __call__(self, batch: Any) -> dict[str, Any]:
        index = batch[0] if isinstance(batch, (tuple, list)) else batch
        lengths = self.lengths[index]
        image = self.image_of[index]
        return {"tokens": self.tokens[index, :int(lengths.max())], "lengths": lengths,
                "languages": self.languages[index], "images": self.images[image] if self.images is not None else image}


def training_lexicon(data_dir: Path, source: str, target: str, vocabulary: CaptionVocabulary, *,
                     split: Literal["clean", "authors"] = "clean") -> tuple[list[tuple[str, str]], frozenset[str]]:
    """Word pairs to align ``source`` and ``target`` with, both words in the vocabulary; and the data ids read.

    ``clean`` (default): the full MUSE ``source-target`` dictionary minus every pair whose source word is a
    source word of ``source-target.5000-6500`` or whose target word is a source word of
    ``target-source.5000-6500`` (when that file exists), so both muse-bli directions stay unseen.
    ``authors``: AME's released split, the full dictionary together with the 5000-6500 test pairs (the
    test dictionary is then seen: the ids say so).
    """
    from mmbench.data.muse import load_muse_dictionary, muse_dictionary_path

    full = muse_dictionary_path(data_dir, source, target, "full")
    test = muse_dictionary_path(data_dir, source, target, "test")
    reverse_test = muse_dictionary_path(data_dir, target, source, "test")
    dictionary = load_muse_dictionary(full)
    pairs = list(zip(dictionary["source"][:], dictionary["target"][:]))
    seen = {f"muse:{source}-{target}.full"}
    if split == "clean":
        held_source = set(load_muse_dictionary(test)["source"][:]) if test.is_file() else set()
        held_target = set(load_muse_dictionary(reverse_test)["source"][:]) if reverse_test.is_file() else set()
        pairs = [(s, t) for s, t in pairs if s not in held_source and t not in held_target]
    elif split == "authors":
        extra = load_muse_dictionary(test)
        pairs += list(zip(extra["source"][:], extra["target"][:]))
        seen |= {f"muse:{source}-{target}.5000-6500", f"muse:{target}-{source}.5000-6500"}
    else:
        raise ConfigError(f"lexicon split must be 'clean' or 'authors', got {split!r}")
    known_s, known_t = set(vocabulary.words.get(source, ())), set(vocabulary.words.get(target, ()))
    kept = sorted({(s, t) for s, t in pairs if s in known_s and t in known_t})
    return kept, frozenset(seen)


def lexicon_seen_data(source: str, target: str, split: str) -> frozenset[str]:
    """The ids :func:`training_lexicon` reports, known from the config alone (no file read)."""
    seen = {f"muse:{source}-{target}.full"}
    if split == "authors":
        seen |= {f"muse:{source}-{target}.5000-6500", f"muse:{target}-{source}.5000-6500"}
    return frozenset(seen)


def _coco_rows(data_dir: Path, split: str, languages: Sequence[str], features: bool) -> Any:
    """COCO's Karpathy ``train`` split with ``restval`` (113,287 images, as VSE++ trains), or ``val``; the
    first five captions of each image, the features the COCO cards read."""
    import datasets

    from mmbench.data.retrieval_sets import load_coco_karpathy

    json_path, feature_path = data_dir / COCO_JSON, (data_dir / COCO_FEATURES if features else None)
    parts = ["train", "restval"] if split == "train" else [split]
    loaded = [load_coco_karpathy(json_path, feature_path, part) for part in parts]
    return datasets.concatenate_datasets([rows for rows in loaded if len(rows)]) if len(parts) > 1 else loaded[0]
