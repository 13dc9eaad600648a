"""The ``emoji`` dataset that ships inside mmbench: real emoji images in three styles x ~100 languages.

Images are every emoji that CLDR annotates and Noto Color Emoji draws as one glyph (skin-tone
variants left out), plus the same concepts drawn by EmojiOne 3 and Symbola; each comes with
EfficientNet-Lite0 features. Texts are CLDR names and keywords in every locale that names at least
1000 of them. ``build.py`` regenerates the artifact; licenses are in ``NOTICE.md``.

>>> ds = load_emoji()
>>> ds.images[0]["image_id"], ds.features_matrix().shape[1]
('noto:1f600', 1280)
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mmbench.data import io

if TYPE_CHECKING:  # `datasets` costs ~1 s to import; plugins import this module when they register
    import datasets

LOADER_VERSION = 1
FEATURE_DIM = 1280
ARTIFACT_FILES = ("manifest.json", "images.parquet", "features.parquet", "texts.parquet")
IMAGE_COLUMNS = ("image_id", "concept", "codepoints", "emoji", "style", "group", "subgroup", "split", "pixel_hash")
TEXT_COLUMNS = ("concept", "language", "name", "keywords")

__all__ = ["EmojiDataset", "artifact_dir", "load_emoji", "load_emoji_artifact", "sha256_file"]


@dataclass(frozen=True)
class EmojiDataset:
    """``images``: one row per image (with ``features``); ``texts``: one row per (concept, language)."""

    images: datasets.Dataset
    texts: datasets.Dataset
    languages: list[str]
    manifest: dict[str, Any]

    def features_matrix(self) -> np.ndarray:
        """float32 ``(n_images, 1280)`` in ``images`` row order (zero-copy from the Arrow cache)."""
        return io.feature_array(self.images, "features")


def artifact_dir() -> Path:
    """The packaged artifact folder."""
    return Path(str(resources.files(__name__) / "artifact"))


@functools.cache
def load_emoji() -> EmojiDataset:
    """The packaged dataset (cached per process; the Arrow cache is built on first use)."""
    return load_emoji_artifact(artifact_dir())


def load_emoji_artifact(directory: Path, *, cache_dir: Path | None = None) -> EmojiDataset:
    """Load an artifact folder written by :func:`mmbench.data.emoji.build.build_emoji`."""
    directory = Path(directory)
    manifest_path = io.require_file(directory / "manifest.json", "Rebuild it with `mmbench data build emoji`.")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw.decode("utf-8"))
        languages = sorted(manifest["languages"])
        expected = manifest["files"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise io.data_error(manifest_path, f"not a valid emoji manifest ({exc})") from None
    inputs = [io.require_file(directory / name) for name in ARTIFACT_FILES]
    both = io.cached(
        "emoji",
        LOADER_VERSION,
        inputs,
        lambda key: _build_arrow(directory, manifest, expected, key),
        params={"manifest_sha256": hashlib.sha256(raw).hexdigest()[:12]},
        cache_dir=cache_dir,
    )
    return EmojiDataset(images=both["images"], texts=both["texts"], languages=languages, manifest=manifest)


def _build_arrow(directory: Path, manifest: dict, expected: dict, key: str) -> datasets.DatasetDict:
    import datasets
    import pyarrow.parquet as pq

    for name in ARTIFACT_FILES[1:]:
        path = directory / name
        want = (expected.get(name) or {}).get("sha256")
        if want is None or sha256_file(path) != want:
            raise io.data_error(path, "checksum differs from manifest.json (corrupt or mixed artifact)")

    def read_table(name: str, columns: tuple[str, ...]):
        path = directory / name
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise io.data_error(path, f"not a readable parquet file ({exc})") from None
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise io.data_error(path, f"missing columns {missing}")
        return table.select(list(columns))

    images = read_table("images.parquet", IMAGE_COLUMNS)
    texts = read_table("texts.parquet", TEXT_COLUMNS)
    features_path = directory / "features.parquet"
    column = read_table("features.parquet", ("features",)).column("features").combine_chunks()
    if not pa.types.is_fixed_size_list(column.type) or column.type.list_size != FEATURE_DIM:
        raise io.data_error(features_path, f"expected fixed-size lists of {FEATURE_DIM} floats, got {column.type}")
    features = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, FEATURE_DIM)
    io.check_float_array(features, features_path)
    if len(features) != images.num_rows:
        raise io.data_error(features_path, f"{len(features)} rows but images.parquet has {images.num_rows}")
    counts = manifest.get("counts", {})
    if counts.get("images") != images.num_rows or counts.get("texts") != texts.num_rows:
        raise io.data_error(directory / "manifest.json", "counts do not match the artifact files")

    image_columns: dict[str, Any] = {name: images.column(name).combine_chunks() for name in IMAGE_COLUMNS}
    image_columns["features"] = features
    text_columns = {name: texts.column(name).combine_chunks() for name in TEXT_COLUMNS}
    return datasets.DatasetDict(
        images=io.make_dataset(image_columns, f"emoji-images-{key[:16]}"),
        texts=io.make_dataset(text_columns, f"emoji-texts-{key[:16]}"),
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
