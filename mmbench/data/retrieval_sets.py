"""Image-caption retrieval sets: COCO / Flickr30k with five captions per image and image features.

Two formats, each loaded to one row per image with ``captions`` (five strings) and ``features``:

* **VSE++/SCAN precomputed folders** (``coco_precomp/``, ``f30k_precomp/``): ``{split}_caps.txt`` has 5N
  lines, captions 5i..5i+4 describe image i; ``{split}_ims.npy`` has N rows, or 5N rows when each image
  is repeated once per caption (SCAN's layout). 5N rows are checked to be five identical copies per
  image and reduced to N. Features may be (rows, D) vectors or (rows, R, D) region features.
  VSE++ data: https://github.com/fartashf/vsepp (``data.tar``); SCAN bottom-up features:
  https://github.com/kuanghuei/SCAN (``data.zip``).
* **Karpathy split JSON** (``dataset_coco.json``, ``dataset_flickr30k.json`` from
  https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip; also the Hugging Face
  dataset ``yerevann/coco-karpathy``): ``images[]`` with ``split`` (train/restval/val/test),
  ``filename``, ``cocoid`` (COCO) or ``imgid``, and ``sentences[].raw``. Only the first five captions of
  an image are kept, as in VSE++. Japanese captions converted to the same shape (STAIR Captions,
  https://github.com/STAIR-Lab-CIT/STAIR-captions; YJ Captions,
  https://github.com/yahoojapan/YJCaptions) load the same way.

  Feature file contract: either a ``.npy`` with one row per image *of the requested split*, in the
  order those images appear in the JSON, or an ``.npz`` with arrays ``ids`` (the images' ``cocoid`` /
  ``imgid``) and ``features`` (one row per id, any order, other splits allowed), matched by id.

``protocol`` (test sets): ``"5k"`` keeps all 5000 test images; ``"1k"`` adds a ``fold`` column
(image i is in fold i // 1000) for the five-fold 1K evaluation; the image count must fit the protocol.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np

from mmbench.data import io
from mmbench.errors import DataError

LOADER_VERSION = 1
CAPTIONS_PER_IMAGE = 5
KARPATHY_SPLITS = ("train", "restval", "val", "test")
HOW_TO_GET_PRECOMP = (
    "Precomputed retrieval data ({split}_caps.txt, {split}_ims.npy) come from https://github.com/fartashf/vsepp "
    "(data.tar) or https://github.com/kuanghuei/SCAN (data.zip)."
)
HOW_TO_GET_KARPATHY = (
    "Karpathy split JSON (dataset_coco.json) comes from "
    "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip (or HF dataset yerevann/coco-karpathy)."
)
Protocol = Literal["1k", "5k"]
NO_IMAGES_IN_SPLIT = "no images in split"


def load_precomputed(
    directory: Path, split: str, *, protocol: Protocol | None = None, cache_dir: Path | None = None
) -> datasets.Dataset:
    """One row per image: ``captions`` (five strings), ``features`` (float32), and ``fold`` for ``"1k"``."""
    _check_protocol(protocol)
    directory = Path(directory)
    captions_file = io.require_file(directory / f"{split}_caps.txt", HOW_TO_GET_PRECOMP)
    images_file = io.require_file(directory / f"{split}_ims.npy", HOW_TO_GET_PRECOMP)
    return io.cached(
        "precomputed",
        LOADER_VERSION,
        [captions_file, images_file],
        lambda key: _build_precomputed(captions_file, images_file, protocol, key),
        params={"protocol": protocol},
        cache_dir=cache_dir,
    )


def _build_precomputed(
    captions_file: Path, images_file: Path, protocol: Protocol | None, fingerprint: str
) -> datasets.Dataset:
    lines = [line.strip() for _, line in io.read_aligned_lines(captions_file)]
    if len(lines) % CAPTIONS_PER_IMAGE:
        raise io.data_error(captions_file, f"has {len(lines)} captions, not a multiple of {CAPTIONS_PER_IMAGE}")
    n_images = len(lines) // CAPTIONS_PER_IMAGE
    features = io.load_npy(images_file, ndim=(2, 3))
    if features.shape[0] == CAPTIONS_PER_IMAGE * n_images and n_images > 0:
        features = _dedupe_repeated_rows(features, images_file)
    elif features.shape[0] != n_images:
        raise io.data_error(
            images_file,
            f"has {features.shape[0]} rows; {captions_file.name} describes {n_images} images "
            f"(expected {n_images} or {CAPTIONS_PER_IMAGE * n_images} rows)",
        )
    columns: dict[str, Any] = {
        "captions": [lines[i : i + CAPTIONS_PER_IMAGE] for i in range(0, len(lines), CAPTIONS_PER_IMAGE)],
        "features": np.asarray(features, dtype=np.float32),
    }
    _add_protocol(columns, n_images, protocol, captions_file)
    return io.make_dataset(columns, fingerprint)


def _dedupe_repeated_rows(features: np.ndarray, path: Path, chunk: int = 1024) -> np.ndarray:
    """Rows 5i..5i+4 must be identical copies of image i (SCAN); return one row per image."""
    first = features[0::CAPTIONS_PER_IMAGE]
    for start in range(0, first.shape[0], chunk):  # chunked: region features can be gigabytes
        block = np.asarray(features[start * CAPTIONS_PER_IMAGE : (start + chunk) * CAPTIONS_PER_IMAGE])
        block = block.reshape(-1, CAPTIONS_PER_IMAGE, *features.shape[1:])
        same = (block == block[:, :1]).reshape(block.shape[0], -1).all(axis=1)
        if not same.all():
            image = start + int(np.argmin(same))
            raise io.data_error(
                path,
                f"has {CAPTIONS_PER_IMAGE}x as many rows as images but rows {CAPTIONS_PER_IMAGE * image}.."
                f"{CAPTIONS_PER_IMAGE * image + CAPTIONS_PER_IMAGE - 1} (image {image}) are not identical copies",
            )
    return first


def load_coco_karpathy(
    json_path: Path,
    features_path: Path | None,
    split: str,
    *,
    protocol: Protocol | None = None,
    cache_dir: Path | None = None,
) -> datasets.Dataset:
    """One row per image of ``split``: ``image`` (file name), ``image_id`` (cocoid, else imgid), ``captions``
    (first five), ``features`` (unless ``features_path`` is None) and ``fold`` for ``"1k"``."""
    if split not in KARPATHY_SPLITS:
        raise DataError(f"unknown Karpathy split {split!r}; expected one of {', '.join(KARPATHY_SPLITS)}")
    _check_protocol(protocol)
    json_path = io.require_file(Path(json_path), HOW_TO_GET_KARPATHY)
    inputs = [json_path]
    if features_path is not None:
        features_path = io.require_file(Path(features_path))
        if features_path.suffix not in (".npy", ".npz"):
            raise io.data_error(features_path, "features must be a .npy or .npz file")
        inputs.append(features_path)
    return io.cached(
        "coco-karpathy",
        LOADER_VERSION,
        inputs,
        lambda key: _build_karpathy(json_path, features_path, split, protocol, key),
        params={"split": split, "protocol": protocol},
        cache_dir=cache_dir,
    )


def _build_karpathy(
    json_path: Path, features_path: Path | None, split: str, protocol: Protocol | None, fingerprint: str
) -> datasets.Dataset:
    images = _read_karpathy_images(json_path, split)
    columns: dict[str, Any] = {
        "image": [image for image, _, _ in images],
        "image_id": [image_id for _, image_id, _ in images],
        "captions": [captions for _, _, captions in images],
    }
    if features_path is not None:
        columns["features"] = _karpathy_features(features_path, columns["image_id"], json_path, split)
    _add_protocol(columns, len(images), protocol, json_path)
    return io.make_dataset(columns, fingerprint)


def _read_karpathy_images(json_path: Path, split: str) -> list[tuple[str, int, list[str]]]:
    text = io.read_bytes(json_path)
    try:
        document = json.loads(text)
    except UnicodeDecodeError as exc:
        raise io.data_error(json_path, f"not valid UTF-8 (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise io.data_error(json_path, f"invalid JSON ({exc.msg}, column {exc.colno})", exc.lineno) from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise io.data_error(json_path, "expected an object with an 'images' list (Karpathy split format)")
    rows = []
    for index, image in enumerate(document["images"]):
        if not isinstance(image, dict) or "split" not in image or "sentences" not in image:
            raise io.data_error(json_path, f"images[{index}] lacks 'split' or 'sentences'")
        if image["split"] != split:
            continue
        name = image.get("filename", str(index))
        image_id = image.get("cocoid", image.get("imgid", index))
        try:
            captions = [str(sentence["raw"]).strip() for sentence in image["sentences"][:CAPTIONS_PER_IMAGE]]
        except (KeyError, TypeError):
            raise io.data_error(json_path, f"images[{index}] ({name}): a sentence lacks 'raw'") from None
        if len(captions) < CAPTIONS_PER_IMAGE or not all(captions):
            raise io.data_error(
                json_path,
                f"images[{index}] ({name}) has {len(captions)} non-empty captions, needs {CAPTIONS_PER_IMAGE}",
            )
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise io.data_error(json_path, f"images[{index}] ({name}): image id {image_id!r} is not an integer")
        rows.append((str(name), image_id, captions))
    if not rows:
        raise io.data_error(json_path, f"{NO_IMAGES_IN_SPLIT} {split!r}")
    return rows


def _karpathy_features(features_path: Path, image_ids: list[int], json_path: Path, split: str) -> np.ndarray:
    if features_path.suffix == ".npy":
        features = io.load_npy(features_path, ndim=(2, 3))
        if features.shape[0] != len(image_ids):
            raise io.data_error(
                features_path,
                f"has {features.shape[0]} rows but {json_path.name} has {len(image_ids)} {split} images "
                "(a .npy must have one row per image of the split, in JSON order)",
            )
        return np.asarray(features, dtype=np.float32)
    try:
        with np.load(features_path, allow_pickle=False) as archive:
            ids, features = archive["ids"], archive["features"]
    except KeyError:
        raise io.data_error(features_path, "an .npz needs arrays 'ids' and 'features'") from None
    except (ValueError, OSError, EOFError) as exc:
        raise io.data_error(features_path, f"not a readable .npz archive ({exc})") from None
    features = io.check_float_array(features, features_path, ndim=(2, 3))
    if ids.ndim != 1 or ids.shape[0] != features.shape[0]:
        raise io.data_error(features_path, f"'ids' has shape {ids.shape} but 'features' has {features.shape[0]} rows")
    row_of = {int(image_id): row for row, image_id in enumerate(ids.tolist())}
    if len(row_of) != len(ids):
        raise io.data_error(features_path, "'ids' contains duplicates")
    missing = [image_id for image_id in image_ids if image_id not in row_of]
    if missing:
        raise io.data_error(
            features_path, f"no features for {len(missing)} of {len(image_ids)} {split} images (first id {missing[0]})"
        )
    return np.asarray(features[[row_of[image_id] for image_id in image_ids]], dtype=np.float32)


def _check_protocol(protocol: str | None) -> None:
    if protocol not in (None, "1k", "5k"):
        raise DataError(f"unknown retrieval protocol {protocol!r}; expected '1k' or '5k'")


def _add_protocol(columns: dict[str, Any], n_images: int, protocol: Protocol | None, path: Path) -> None:
    if protocol is None:
        return
    if protocol == "5k":
        if n_images != 5000:
            raise io.data_error(path, f"the 5K protocol needs 5000 images, this split has {n_images}")
    elif protocol == "1k":
        if n_images == 0 or n_images % 1000:
            raise io.data_error(path, f"the 1K protocol needs a multiple of 1000 images, this split has {n_images}")
        columns["fold"] = [index // 1000 for index in range(n_images)]
