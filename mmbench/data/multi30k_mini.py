"""Multi30k-mini (``multi30k-mini-v1``): a small retrieval protocol on the 1000 Multi30k test-2016 photos.

**This is NOT the official Multi30k protocol.** The official one trains on ``train`` (29,000 images),
selects on ``val`` (1,014) and tests on ``test_2016_flickr`` (1,000), with the official image features of
all three splits; mmbench runs it (``mmbench.data.multi30k``) when those features are under the data
root. Scores on Multi30k-mini are not comparable with published Multi30k numbers.

What it is: the only real photo features that are freely available offline are those of test 2016
(``multi30k/features/test_2016_flickr-resnet50-avgpool.npy``, ResNet-50 average pool), so this
protocol splits those 1000 images into its own train / val / test (700 / 100 / 200 images) for
training and scoring retrieval models on real photos. Each row is one image with its ``features``
(float32[2048]), the five independent task-2 captions ``captions_en`` / ``captions_de``, and the
task-1 translations ``caption_en``, ``caption_de``, ``caption_fr``, ``caption_cs`` (one each).

How the split is made: each image name (e.g. ``1007129816.jpg``) gets the key
``sha256((MINI_PROTOCOL + name).encode("utf-8")).hexdigest()``; images sorted by key ascending give the
first 200 to ``test``, the next 100 to ``val`` and the remaining 700 to ``train``. Within a split,
rows keep the order of ``task1/image_splits/test_2016_flickr.txt`` (the feature file's row order).
The split depends only on the image names, so it is the same on every machine and for every copy of
the data; a change to it must come with a new protocol name (``-v2``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np

from mmbench.data import io, multi30k
from mmbench.errors import DataError

MINI_PROTOCOL = "multi30k-mini-v1"
LOADER_VERSION = 1
SPLIT_SIZES = {"test": 200, "val": 100, "train": 700}  # taken in this order from the sorted keys
IMAGES = sum(SPLIT_SIZES.values())
SPLITS = ("train", "val", "test")
TASK1_SPLIT = "test_2016_flickr"
TASK2_SPLIT = "test_2016"
TASK1_LANGUAGES = ("en", "de", "fr", "cs")
TASK2_LANGUAGES = ("en", "de")
FEATURES_FILE = f"features/{TASK1_SPLIT}-resnet50-avgpool.npy"  # under <data root>/multi30k/
HOW_TO_GET_FEATURES = (
    f"The {MINI_PROTOCOL} protocol needs the official ResNet-50 features of the Multi30k test-2016 images "
    f"as <data root>/multi30k/{FEATURES_FILE} (linked from https://github.com/multi30k/dataset)."
)


def load_multi30k_mini(root: Path, *, cache_dir: Path | None = None) -> datasets.DatasetDict:
    """``train`` / ``val`` / ``test`` (700 / 100 / 200 images) of the ``multi30k-mini-v1`` protocol.

    Columns: ``image``, ``features`` (float32[2048]), ``captions_en``, ``captions_de`` (five each),
    ``caption_en``, ``caption_de``, ``caption_fr``, ``caption_cs``. Not the official Multi30k protocol.
    """
    root = Path(root)
    return io.cached(
        "multi30k-mini",
        LOADER_VERSION,
        _input_files(root),
        lambda key: _build_mini(root, key, cache_dir),
        params={"protocol": MINI_PROTOCOL},
        cache_dir=cache_dir,
    )


def multi30k_mini_split_ids(root: Path) -> dict[str, list[str]]:
    """The image file names of each split (``train``, ``val``, ``test``), in row order."""
    base = Path(root) / "multi30k"
    task1_file = io.require_file(base / "task1" / "image_splits" / f"{TASK1_SPLIT}.txt", multi30k.HOW_TO_GET)
    task2_file = io.require_file(base / "task2" / "image_splits" / f"{TASK2_SPLIT}_images.txt", multi30k.HOW_TO_GET)
    task1_images = [line.strip() for _, line in io.read_aligned_lines(task1_file)]
    task2_images = [line.strip() for _, line in io.read_aligned_lines(task2_file)]
    _check_same_images(task1_images, task1_file, task2_images, task2_file)
    return split_images(task1_images)


def split_key(image: str) -> str:
    """The sort key that places an image in the protocol's split."""
    return hashlib.sha256((MINI_PROTOCOL + image).encode("utf-8")).hexdigest()


def split_images(images: Sequence[str]) -> dict[str, list[str]]:
    """Assign ``IMAGES`` distinct names to train / val / test; each split keeps the order of ``images``."""
    if len(images) != IMAGES or len(set(images)) != IMAGES:
        raise DataError(
            f"{MINI_PROTOCOL} splits exactly {IMAGES} distinct images, got {len(images)} ({len(set(images))} distinct)"
        )
    ranked = sorted(images, key=lambda name: (split_key(name), name))
    assigned: dict[str, str] = {}
    start = 0
    for split, size in SPLIT_SIZES.items():
        assigned.update(dict.fromkeys(ranked[start : start + size], split))
        start += size
    return {split: [name for name in images if assigned[name] == split] for split in SPLITS}


def _input_files(root: Path) -> list[Path]:
    base = root / "multi30k"
    files = [io.require_file(base / FEATURES_FILE, HOW_TO_GET_FEATURES)]
    files.append(base / "task1" / "image_splits" / f"{TASK1_SPLIT}.txt")
    files += [base / "task1" / "raw" / f"{TASK1_SPLIT}.{lang}.gz" for lang in TASK1_LANGUAGES]
    files.append(base / "task2" / "image_splits" / f"{TASK2_SPLIT}_images.txt")
    files += [
        base / "task2" / "raw" / f"{TASK2_SPLIT}.{k}.{lang}.gz"
        for lang in TASK2_LANGUAGES
        for k in range(1, multi30k.CAPTIONS_PER_IMAGE + 1)
    ]
    return [io.require_file(path, multi30k.HOW_TO_GET) for path in files]


def _build_mini(root: Path, fingerprint: str, cache_dir: Path | None) -> datasets.DatasetDict:
    base = root / "multi30k"
    task1 = multi30k.load_multi30k(
        root, task=1, split=TASK1_SPLIT, languages=TASK1_LANGUAGES, features=True, cache_dir=cache_dir
    )
    task2 = multi30k.load_multi30k(
        root, task=2, split=TASK2_SPLIT, languages=TASK2_LANGUAGES, features=False, cache_dir=cache_dir
    )
    if "features" not in task1.column_names:  # the file vanished between the key and the build
        raise io.data_error(base / FEATURES_FILE, f"not found. {HOW_TO_GET_FEATURES}")
    task1_images, task2_images = task1["image"][:], task2["image"][:]
    _check_same_images(
        task1_images,
        base / "task1" / "image_splits" / f"{TASK1_SPLIT}.txt",
        task2_images,
        base / "task2" / "image_splits" / f"{TASK2_SPLIT}_images.txt",
    )
    features = io.feature_array(task1)
    task2_row = {name: row for row, name in enumerate(task2_images)}
    task1_row = {name: row for row, name in enumerate(task1_images)}
    task2_captions = {lang: task2[f"captions_{lang}"][:] for lang in TASK2_LANGUAGES}
    task1_captions = {lang: task1[f"caption_{lang}"][:] for lang in TASK1_LANGUAGES}

    parts = {}
    for split, names in split_images(task1_images).items():
        rows1 = [task1_row[name] for name in names]
        rows2 = [task2_row[name] for name in names]
        columns: dict[str, object] = {"image": names, "features": np.ascontiguousarray(features[rows1])}
        for lang in TASK2_LANGUAGES:
            columns[f"captions_{lang}"] = [task2_captions[lang][row] for row in rows2]
        for lang in TASK1_LANGUAGES:
            columns[f"caption_{lang}"] = [task1_captions[lang][row] for row in rows1]
        parts[split] = io.make_dataset(columns, f"{fingerprint}-{split}")
    return datasets.DatasetDict(parts)


def _check_same_images(task1: list[str], task1_file: Path, task2: list[str], task2_file: Path) -> None:
    """Both lists name the same ``IMAGES`` distinct images (order may differ); ``DataError`` otherwise."""
    for images, path in ((task1, task1_file), (task2, task2_file)):
        repeated = [name for name, count in Counter(images).items() if count > 1]
        if repeated:
            raise io.data_error(path, f"lists image {repeated[0]!r} more than once")
        if len(images) != IMAGES:
            raise io.data_error(path, f"lists {len(images)} images; {MINI_PROTOCOL} needs the {IMAGES} of test 2016")
    only_task2 = sorted(set(task2) - set(task1))
    if only_task2:
        raise io.data_error(
            task2_file, f"lists {len(only_task2)} images missing from {task1_file} (first: {only_task2[0]!r})"
        )
