"""A small Multi30k tree in the official layout, cut from the real one, for tests of models that train on it."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def official_multi30k_tree(root: Path, source: Path, *, images: int = 40, features: bool = True,
                           translations: Sequence[str] = ()) -> Path:
    """Write ``root/multi30k`` as the official layout, from the real tree at ``source`` (``…/multi30k``): for
    the train and val splits, the task-2 and task-1 image lists and the task-2 captions (5 per image, en and
    de) of the first ``images`` images; the task-1 translations in ``translations`` (e.g. en, de, fr, cs),
    cut the same way; and, with ``features``, generated (images, 32) float16 features. Returns ``root``."""
    for split in ("train", "val"):
        names = (source / "task2" / "image_splits" / f"{split}_images.txt").read_text().splitlines()[:images]
        for task, name in ((2, f"{split}_images.txt"), (1, f"{split}.txt")):
            path = root / "multi30k" / f"task{task}" / "image_splits" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(names) + "\n")
        files = [(2, f"{split}.{k}.{lang}.gz") for k in range(1, 6) for lang in ("en", "de")]
        files += [(1, f"{split}.{lang}.gz") for lang in translations]
        for task, name in files:
            with gzip.open(source / f"task{task}" / "raw" / name, "rt") as lines_in:
                lines = lines_in.read().splitlines()
            path = root / "multi30k" / f"task{task}" / "raw" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(path, "wt") as out:
                out.write("\n".join(lines[:images]) + "\n")
        if features:
            path = root / "multi30k" / "features" / f"{split}-resnet50-avgpool.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.random.default_rng(0).standard_normal((images, 32)).astype(np.float16))
    return root
