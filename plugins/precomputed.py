"""``precomputed:DIR`` — score embeddings computed elsewhere (any model, any framework) on caption/image tasks.

mmbench asks a model for ``embed_texts(texts, language)`` and ``embed_images(features, source=...)``;
this model answers from files, matching every request by *content*, never by position, so rows cannot
be paired with the wrong caption or image. Layout of DIR::

    texts/{language}.txt      UTF-8, one text per line: exactly the strings mmbench embeds
    texts/{language}.npy      float array (lines, d): row i embeds line i
    images/{source}.keys      one key per line: feature_key(row) of an image's feature row
    images/{source}.npy       float array (keys, d): row i embeds the image of key i

``{source}`` is the task's feature-space name and may contain ``/``: ``multi30k/resnet50-avgpool`` is
``images/multi30k/resnet50-avgpool.npy``. ``feature_key(row)`` is the sha1 hex digest of the row as
little-endian float32 bytes. Every file pair must have as many rows as lines, and all arrays the same
width d (texts and images share one space). A text or key listed twice keeps its first row.

Exporting a task's inputs, embedding them with your model, and writing the files::

    from mmbench.kinds.retrieval_sources import load_retrieval_data
    data = load_retrieval_data(card, subset, data_dir)   # card from mmbench.cards.load_card(...)
    write_texts(DIR, data.language, data.captions, my_text_model(data.captions))
    write_images(DIR, data.feature_source, data.features, my_image_model(data.features))

A language or feature space with no files makes the task a skip (``mmbench.Incompatible``); a file that
lacks some of the texts or images a task asks for, or a malformed file, is an error naming the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import mmbench
from mmbench.cards import file_sha256
from mmbench.data import io
from mmbench.errors import DataError

TEXTS_DIR = "texts"
IMAGES_DIR = "images"


def feature_key(row: np.ndarray) -> str:
    """The key of one image's feature row: sha1 of its little-endian float32 bytes."""
    return hashlib.sha1(np.ascontiguousarray(row, dtype="<f4").tobytes()).hexdigest()


def feature_keys(features: np.ndarray) -> list[str]:
    return [feature_key(row) for row in np.asarray(features)]


def _write_pair(lines_path: Path, lines: Sequence[str], embeddings: np.ndarray) -> None:
    matrix = np.asarray(embeddings, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(lines):
        raise DataError(f"{lines_path}: {len(lines)} lines need a ({len(lines)}, d) array, got shape {matrix.shape}")
    bad = next((line for line in lines if "\n" in line or "\r" in line), None)
    if bad is not None:
        raise DataError(f"{lines_path}: cannot store a text containing a line break: {bad[:60]!r}")
    lines_path.parent.mkdir(parents=True, exist_ok=True)
    lines_path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    np.save(lines_path.with_suffix(".npy"), matrix)


def write_texts(directory: Path, language: str, texts: Sequence[str], embeddings: np.ndarray) -> None:
    """Write ``texts/{language}.txt`` and ``.npy`` (replacing any earlier files of that language)."""
    _write_pair(Path(directory) / TEXTS_DIR / f"{language}.txt", list(texts), embeddings)


def write_images(directory: Path, source: str, features: np.ndarray, embeddings: np.ndarray) -> None:
    """Write ``images/{source}.keys`` and ``.npy`` for image feature rows and their embeddings."""
    _write_pair(Path(directory) / IMAGES_DIR / f"{source}.keys", feature_keys(features), embeddings)


class _Table:
    """Rows of one ``.npy`` looked up by the lines of its companion file."""

    def __init__(self, lines_path: Path):
        self.lines_path = lines_path
        self.npy_path = lines_path.with_suffix(".npy")
        io.require_file(self.npy_path, f"it holds the embeddings of the lines of {lines_path.name}")
        lines = [line for _, line in io.read_lines(lines_path)]
        self.matrix = io.load_npy(self.npy_path)
        if self.matrix.shape[0] != len(lines):
            raise io.data_error(
                self.npy_path, f"has {self.matrix.shape[0]} rows but {lines_path.name} has {len(lines)} lines"
            )
        self.row_of: dict[str, int] = {}
        for row, line in enumerate(lines):
            self.row_of.setdefault(line, row)

    def lookup(self, keys: Sequence[str], what: str) -> np.ndarray:
        rows = [self.row_of.get(key, -1) for key in keys]
        missing = [key for key, row in zip(keys, rows) if row < 0]
        if missing:
            raise io.data_error(
                self.lines_path,
                f"no embedding for {len(missing)} of the {len(keys)} {what} asked for (first: {missing[0][:80]!r}); "
                "export every input of the task (see mmbench_plugins.precomputed)",
            )
        return np.asarray(self.matrix[rows], dtype=np.float32)


class Precomputed(mmbench.Model):
    """Embeddings read from .npy files (texts by string, images by feature-row hash)."""

    name = "precomputed"
    argument = "DIR"
    capabilities = frozenset({mmbench.Capability.TEXT, mmbench.Capability.IMAGES})

    def _directory(self) -> Path:
        directory = Path(self.argument_value)
        if not directory.is_dir():
            raise DataError(f"{directory}: precomputed embeddings directory not found")
        return directory

    def _files(self) -> list[Path]:
        directory = self._directory()
        return sorted(p for sub in (TEXTS_DIR, IMAGES_DIR) for p in (directory / sub).rglob("*") if p.is_file())

    def identity(self):
        directory = self._directory()
        digest = hashlib.sha256()
        for path in self._files():
            digest.update(f"{path.relative_to(directory).as_posix()}\0{file_sha256(path)}\0".encode())
        return {"sha256": digest.hexdigest()}

    def prepare(self, ctx):
        directory = self._directory()
        self._texts = {p.stem: _Table(p) for p in sorted((directory / TEXTS_DIR).glob("*.txt"))}
        images_root = directory / IMAGES_DIR
        self._images = {
            p.relative_to(images_root).with_suffix("").as_posix(): _Table(p)
            for p in sorted(images_root.rglob("*.keys"))
        }
        tables = [*self._texts.values(), *self._images.values()]
        if not tables:
            raise DataError(
                f"{directory}: no {TEXTS_DIR}/*.txt or {IMAGES_DIR}/**/*.keys files "
                "(layout: see mmbench_plugins.precomputed)"
            )
        width = tables[0].matrix.shape[1]
        for table in tables:
            if table.matrix.shape[1] != width:
                raise io.data_error(table.npy_path, f"has {table.matrix.shape[1]} columns but "
                                    f"{tables[0].npy_path.name} has {width}; all embeddings must share one space")

    def languages(self):
        return sorted(self._texts)

    def embed_texts(self, texts, language):
        table = self._texts.get(language)
        if table is None:
            raise mmbench.Incompatible(f"{self.argument_value} has no {TEXTS_DIR}/{language}.txt")
        return table.lookup(list(texts), f"{language} texts")

    def embed_images(self, features, *, source):
        table = self._images.get(source)
        if table is None:
            raise mmbench.Incompatible(f"{self.argument_value} has no {IMAGES_DIR}/{source}.keys")
        return table.lookup(feature_keys(features), f"{source} images")


@mmbench.hookimpl
def register_models(register):
    register(Precomputed)
