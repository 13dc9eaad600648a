"""Multi30k (Elliott et al. 2016): Flickr30k images with captions in several languages.

Layout under ``<data root>/multi30k/`` (as in https://github.com/multi30k/dataset, ``data/``):

* task 1 (one translated caption per image): ``task1/raw/{split}.{lang}.gz``, line i <-> line i of
  ``task1/image_splits/{split}.txt``; splits train, val, test_2016_flickr, test_2017_flickr,
  test_2017_mscoco, test_2018_flickr; languages en, de, fr, cs (not every split has every language).
* task 2 (five independent captions per image): ``task2/raw/{split}.{1..5}.{lang}.gz`` and
  ``task2/image_splits/{split}_images.txt``; splits train, val, test_2016 (test_2017 has images only).
* image features, optional: ``features/{split}-resnet50-avgpool.npy``, shape (images, D), row i <-> line i
  of the task-1 image list of ``split``. Task 2 uses the task-1 file of the same images
  (test_2016 -> test_2016_flickr, test_2017 -> test_2018_flickr) after checking both image lists agree.

Multi30k is for non-commercial research and education (Flickr30K terms). Features: extract them from
the Flickr30k images (https://shannon.cs.illinois.edu/DenotationGraph/) or use the official ones
linked from https://github.com/multi30k/dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import datasets
import numpy as np

from mmbench.data import io
from mmbench.errors import DataError

LOADER_VERSION = 1
TASK1_SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr")
TASK2_SPLITS = ("train", "val", "test_2016", "test_2017")
# Task-2 split -> task-1 split with the same images (and so the same feature file).
TASK2_TO_TASK1 = {"train": "train", "val": "val", "test_2016": "test_2016_flickr", "test_2017": "test_2018_flickr"}
LANGUAGE_ORDER = ("en", "de", "fr", "cs")
CAPTIONS_PER_IMAGE = 5
HOW_TO_GET = (
    "Multi30k goes under <data root>/multi30k/{task1,task2}/ as in https://github.com/multi30k/dataset (data/); "
    "non-commercial research use only."
)


def load_multi30k(
    root: Path,
    *,
    task: Literal[1, 2],
    split: str,
    languages: Sequence[str] | None = None,
    features: bool = True,
    cache_dir: Path | None = None,
) -> datasets.Dataset:
    """One row per image: ``image`` plus ``caption_{lang}`` (task 1) or ``captions_{lang}`` (task 2, five
    strings), and ``features`` (float32, fixed length) when ``features`` and the feature file exists.

    ``languages`` defaults to every language with caption files for this split.
    """
    base = Path(root) / "multi30k"
    if task == 1:
        if split not in TASK1_SPLITS:
            raise DataError(f"unknown Multi30k task-1 split {split!r}; expected one of {', '.join(TASK1_SPLITS)}")
        images_file = base / "task1" / "image_splits" / f"{split}.txt"
    elif task == 2:
        if split not in TASK2_SPLITS:
            raise DataError(f"unknown Multi30k task-2 split {split!r}; expected one of {', '.join(TASK2_SPLITS)}")
        images_file = base / "task2" / "image_splits" / f"{split}_images.txt"
    else:
        raise DataError(f"Multi30k task must be 1 or 2, got {task!r}")
    io.require_file(images_file, HOW_TO_GET)
    languages = list(languages) if languages is not None else multi30k_languages(root, task=task, split=split)
    caption_files = {lang: _caption_files(base, task, split, lang) for lang in languages}
    for files in caption_files.values():
        for path in files:
            io.require_file(path, HOW_TO_GET)

    feature_split = split if task == 1 else TASK2_TO_TASK1[split]
    feature_file = base / "features" / f"{feature_split}-resnet50-avgpool.npy"
    feature_images = base / "task1" / "image_splits" / f"{feature_split}.txt"
    use_features = features and feature_file.is_file()
    inputs = [images_file] + [p for files in caption_files.values() for p in files]
    if use_features:
        inputs.append(feature_file)
        if feature_images != images_file:
            inputs.append(io.require_file(feature_images, "it orders the rows of " + str(feature_file)))
    return io.cached(
        "multi30k",
        LOADER_VERSION,
        inputs,
        lambda key: _build_multi30k(
            task, images_file, caption_files, feature_file if use_features else None, feature_images, key
        ),
        params={"task": task, "split": split, "languages": languages, "features": use_features},
        cache_dir=cache_dir,
    )


def _caption_files(base: Path, task: int, split: str, lang: str) -> list[Path]:
    if task == 1:
        return [base / "task1" / "raw" / f"{split}.{lang}.gz"]
    return [base / "task2" / "raw" / f"{split}.{k}.{lang}.gz" for k in range(1, CAPTIONS_PER_IMAGE + 1)]


def multi30k_languages(root: Path, *, task: Literal[1, 2], split: str) -> list[str]:
    """Languages with caption files for this task and split (en, de, fr, cs first); ``DataError`` if none."""
    base = Path(root) / "multi30k"
    raw = base / f"task{task}" / "raw"
    pattern = f"{split}.*.gz" if task == 1 else f"{split}.1.*.gz"
    found = {path.name[: -len(".gz")].rsplit(".", 1)[1] for path in raw.glob(pattern)} if raw.is_dir() else set()
    found = {lang for lang in found if all(p.is_file() for p in _caption_files(base, task, split, lang))}
    if not found:
        raise DataError(f"{raw}: no caption files for task-{task} split {split!r}. {HOW_TO_GET}")
    return [lang for lang in LANGUAGE_ORDER if lang in found] + sorted(found - set(LANGUAGE_ORDER))


def _build_multi30k(
    task: int,
    images_file: Path,
    caption_files: dict[str, list[Path]],
    feature_file: Path | None,
    feature_images: Path,
    fingerprint: str,
) -> datasets.Dataset:
    images = [line.strip() for _, line in io.read_aligned_lines(images_file)]
    columns: dict[str, object] = {"image": images}
    for lang, files in caption_files.items():
        per_file = [_read_captions(path, images_file, len(images)) for path in files]
        if task == 1:
            columns[f"caption_{lang}"] = per_file[0]
        else:
            columns[f"captions_{lang}"] = [list(captions) for captions in zip(*per_file, strict=False)]
    if feature_file is not None:
        if feature_images != images_file:
            expected = [line.strip() for _, line in io.read_aligned_lines(feature_images)]
            if expected != images:
                raise io.data_error(
                    feature_file,
                    f"rows follow {feature_images}, whose image list differs from {images_file}; "
                    "cannot attach features",
                )
        array = io.load_npy(feature_file)
        if array.shape[0] != len(images):
            raise io.data_error(
                feature_file, f"has {array.shape[0]} feature rows but {images_file} lists {len(images)} images"
            )
        columns["features"] = np.asarray(array, dtype=np.float32)
    return io.make_dataset(columns, fingerprint)


def _read_captions(path: Path, images_file: Path, expected: int) -> list[str]:
    captions = [line.strip() for _, line in io.read_aligned_lines(path)]
    if len(captions) != expected:
        raise io.data_error(path, f"has {len(captions)} captions but {images_file} lists {expected} images")
    return captions
