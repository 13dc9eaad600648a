"""``vectors:PATH`` — score any word2vec/fastText text-format vectors file (MUSE, aligned fastText, ...).

Words may carry a language prefix (``en:cat``); a file whose every word has one is read per language,
otherwise one vocabulary serves all languages. ``.gz`` files are read transparently. Duplicate words keep
their first vector (fastText dumps contain a few); files are usually sorted by frequency, so
``--set max_words=200000`` keeps the most frequent words, as MUSE does.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

import mmbench
from mmbench.cards import file_sha256
from mmbench.errors import DataError

PREFIX = re.compile(r"^([a-z]{2,3}(?:[_-][A-Za-z0-9]+)?):(.+)$")


@dataclass(frozen=True)
class VectorsConfig:
    prefixed: Literal["auto", "yes", "no"] = "auto"  # auto: yes iff every word has a lang: prefix
    max_words: int | None = None
    lowercase: bool = False  # lowercase file words (first occurrence wins)


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_vectors(path: Path, max_words: int | None = None) -> tuple[list[str], np.ndarray]:
    """Read a text-format vectors file (optional ``N D`` header line); DataError names file and line."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
    declared_count = None
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                parts = line.rstrip("\n\r").rstrip(" ").split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    declared_count, dim = int(parts[0]), int(parts[1])
                    continue
                if not line.strip():
                    continue
                if dim is None:
                    dim = len(parts) - 1
                if len(parts) - 1 != dim or dim < 1:
                    raise DataError(f"{path}:{number}: expected a word and {dim} numbers, got {len(parts)} fields")
                try:
                    vector = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    raise DataError(f"{path}:{number}: non-numeric vector value") from None
                if not np.isfinite(vector).all():
                    raise DataError(f"{path}:{number}: NaN or infinite value in the vector of {parts[0]!r}")
                words.append(parts[0])
                rows.append(vector)
                if max_words is not None and len(words) >= max_words:
                    break
    except FileNotFoundError:
        raise DataError(f"{path}: vectors file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise DataError(f"{path}: cannot read vectors ({exc})") from None
    if not words:
        raise DataError(f"{path}: no vectors in file")
    limit = declared_count if max_words is None else min(declared_count or max_words, max_words)
    if declared_count is not None and len(words) < limit:
        raise DataError(f"{path}: header declares {declared_count} vectors but the file has {len(words)} (truncated?)")
    return words, np.stack(rows)


class WordVectors(mmbench.Model):
    """Word vectors from a word2vec/fastText text file (optionally language-prefixed words)."""

    name = "vectors"
    argument = "PATH"
    Config = VectorsConfig
    capabilities = frozenset({mmbench.Capability.WORDS})

    def identity(self):
        return {"sha256": file_sha256(Path(self.argument_value))}

    def prepare(self, ctx):
        words, matrix = read_vectors(Path(self.argument_value), self.config.max_words)
        prefixed = self.config.prefixed == "yes" or (
            self.config.prefixed == "auto" and all(PREFIX.match(w) for w in words)
        )
        self._matrix = matrix
        self._index: dict[str, dict[str, int]] = {}
        for row, word in enumerate(words):
            language, token = ("", word)
            if prefixed:
                match = PREFIX.match(word)
                if not match:
                    raise DataError(f"{self.argument_value}: word {word!r} has no language prefix")
                language, token = match.group(1), match.group(2)
            if self.config.lowercase:
                token = token.lower()
            self._index.setdefault(language, {}).setdefault(token, row)
        self._prefixed = prefixed

    def _table(self, language: str) -> dict[str, int]:
        return self._index.get(language, {}) if self._prefixed else self._index.get("", {})

    def languages(self):
        return sorted(self._index) if self._prefixed else None

    def vocabulary(self, language):
        return list(self._table(language))

    def embed_words(self, words, language):
        table = self._table(language)
        rows = [table.get(w, -1) for w in words]
        found = np.array([r >= 0 for r in rows], dtype=bool)
        vectors = np.zeros((len(words), self._matrix.shape[1]), dtype=np.float32)
        if found.any():
            vectors[found] = self._matrix[[r for r in rows if r >= 0]]
        return vectors, found


@mmbench.hookimpl
def register_models(register):
    register(WordVectors)
