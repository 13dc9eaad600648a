"""``vectors:PATH`` — score any word2vec/fastText text-format vectors file (MUSE, aligned fastText, ...).

Words may carry a language prefix (``en:cat``); a file whose every word has one is read per language,
otherwise one vocabulary serves all languages. ``.gz`` files are read transparently. Duplicate words keep
their first vector (fastText dumps contain a few); files are usually sorted by frequency, so
``--set max_words=200000`` keeps the most frequent words, as MUSE does. A ``N D`` header line is
optional; when present the file must hold exactly ``N`` rows of ``D`` numbers (see ``read_vectors``).

One file per language, as MUSE's ``--src_emb``/``--tgt_emb`` users have them:
``vectors:en=wiki.en.vec,de=wiki.de.vec`` (``LANG=PATH`` pairs joined by commas). Every file must have the
same width; its words are that language's vocabulary (``max_words`` and ``lowercase`` apply per file), and a
task in a language without a file is skipped (``Incompatible``). The model's identity is the sha256 of each
file with its language, so the same files scored from other paths are the same model.

A file without language prefixes has one vocabulary for every language. Crosslingual kinds (BLI,
crosslingual word similarity) refuse it (skipped with the reason), because identical spellings would
translate themselves (random vectors scored en-fr P@1 93.65); ``--set shared_vocabulary=true`` says the
sharing is intended, and then is part of the model's identity.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

import mmbench
from mmbench.cards import file_sha256
from mmbench.errors import DataError
from mmbench.models import added_field

PREFIX = re.compile(r"^([a-z]{2,3}(?:[_-][A-Za-z0-9]+)?):(.+)$")
LANGUAGE_FILE = re.compile(r"^([a-z]{2,3}(?:[_-][A-Za-z0-9]+)?)=(.+)$")


def language_files(argument: str) -> dict[str, Path] | None:
    """``"en=a.vec,de=b.vec"`` -> ``{"en": Path("a.vec"), "de": Path("b.vec")}``; a single path -> None.

    Only an argument whose every comma-separated part is ``LANG=PATH`` is read per language, so a plain
    path that happens to hold ``=`` or ``,`` still names one file."""
    parts = argument.split(",")
    matches = [LANGUAGE_FILE.match(part.strip()) for part in parts]
    if not all(matches):
        return None
    files: dict[str, Path] = {}
    for match in matches:
        language, path = match.group(1), match.group(2).strip()
        if language in files:
            raise DataError(f"vectors:{argument}: language {language!r} is given two files")
        files[language] = Path(path).expanduser()
    return files


@dataclass(frozen=True)
class VectorsConfig:
    prefixed: Literal["auto", "yes", "no"] = "auto"  # auto: yes iff every word has a lang: prefix
    max_words: int | None = None
    lowercase: bool = False  # lowercase file words (first occurrence wins)
    # An unprefixed file answers every language from one table, so on a crosslingual task an identical
    # spelling translates itself; such tasks are refused unless this says the sharing is intended. When
    # true it enters the config hash (an added field), so those records never mix with the others.
    shared_vocabulary: bool = added_field(False)

    def __post_init__(self):
        if self.max_words is not None and self.max_words < 1:
            raise ValueError(f"max_words must be a positive number of words, got {self.max_words}")


_GZIP_MAGIC = b"\x1f\x8b"


def _open_binary(path: Path):
    """Open ``path`` for reading bytes; gzip if it is named ``.gz`` or starts with the gzip magic bytes.

    A ``.gz`` file that is not gzip is an error (not silently read as text): it is a wrong download.
    """
    handle = open(path, "rb")
    if path.suffix == ".gz" or handle.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=handle, mode="rb"), handle
    return handle, handle


def _parse_header(line: str) -> tuple[int, int] | None:
    """``(count, dim)`` if ``line`` is a word2vec/fastText header ``N D``, else ``None``."""
    parts = line.split()
    if len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def read_vectors(path: Path, max_words: int | None = None) -> tuple[list[str], np.ndarray]:
    """Read a text-format vectors file; every problem is a one-line ``DataError`` naming file (and line).

    The first line may be a word2vec/fastText header ``N D``. With a header, every row must hold a word
    and ``D`` numbers and the file must hold exactly ``N`` rows (fewer: truncated; more: a wrong or
    concatenated file). Without one, the first row fixes the width and every other row must match it.
    With ``max_words`` the reader stops after that many rows and does not look further, so it only
    checks that the file has at least ``min(N, max_words)`` rows. Only ``\\n`` ends a line; blank lines
    are skipped; text must be UTF-8.
    """
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
    declared_count = None
    extra_rows = 0
    try:
        stream, raw_handle = _open_binary(path)
    except FileNotFoundError:
        raise DataError(f"{path}: vectors file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot open vectors file ({exc.strerror or exc})") from None
    try:
        with raw_handle, stream:
            for number, raw in enumerate(stream, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    where = f"line {number} (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                    raise DataError(f"{path}: not UTF-8 text at {where}") from None
                if number == 1:
                    line = line.removeprefix("\ufeff")
                    header = _parse_header(line)
                    if header is not None:
                        declared_count, dim = header
                        if dim < 1:
                            raise DataError(f"{path}:1: header declares {dim} dimensions")
                        continue
                if not line.strip():
                    continue
                if declared_count is not None and len(words) == declared_count:
                    extra_rows += 1  # counted, not parsed, to report the file's real size
                    continue
                parts = line.rstrip("\n\r").rstrip(" ").split(" ")
                if dim is None:
                    dim = len(parts) - 1
                if len(parts) - 1 != dim or dim < 1:
                    source = "the header's" if declared_count is not None else "the first row's"
                    raise DataError(
                        f"{path}:{number}: expected a word and {dim} numbers, got {len(parts)} fields"
                        f" (width {dim} is {source})"
                    )
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
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        problem = "not a valid gzip file, corrupt or truncated"
        raise DataError(f"{path}: cannot read vectors: {problem} ({_one_line(exc)})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read vectors ({_one_line(exc)})") from None
    if extra_rows:
        raise DataError(
            f"{path}: header declares {declared_count} vectors but the file has {declared_count + extra_rows}"
        )
    if not words:
        raise DataError(f"{path}: no vectors in file")
    if declared_count is not None:
        expected = declared_count if max_words is None else min(declared_count, max_words)
        if len(words) < expected:
            raise DataError(
                f"{path}: header declares {declared_count} vectors but the file has {len(words)} (truncated?)"
            )
    return words, np.stack(rows)


def _sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:  # FileNotFoundError is a DataError already; a directory, no permission, ...
        raise DataError(f"{path}: cannot read vectors file ({exc.strerror or exc})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class WordVectors(mmbench.Model):
    """Word vectors from a word2vec/fastText text file (optionally language-prefixed words)."""

    name = "vectors"
    argument = "PATH"
    Config = VectorsConfig
    capabilities = frozenset({mmbench.Capability.WORDS})

    @property
    def shared_vocabulary(self) -> bool:
        """True when the user declared one vocabulary for all languages intended (see the module doc)."""
        return bool(self.config.shared_vocabulary)

    def identity(self):
        files = language_files(self.argument_value)
        if files is not None:
            return {"sha256": {language: _sha256(path) for language, path in sorted(files.items())}}
        identity = {"sha256": file_sha256(Path(self.argument_value))}
        if self.config.shared_vocabulary:
            identity["shared_vocabulary"] = True
        return identity

    def prepare(self, ctx):
        files = language_files(self.argument_value)
        if files is not None:
            self._prepare_per_language(files)
            return
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

    def _prepare_per_language(self, files: dict[str, Path]) -> None:
        matrices, self._index, offset, first = [], {}, 0, None
        for language, path in files.items():
            words, matrix = read_vectors(path, self.config.max_words)
            if first is not None and matrix.shape[1] != first[1]:
                raise DataError(f"{path}: {matrix.shape[1]}-d vectors for {language!r}, but {first[0]} has "
                                f"{first[1]}-d ones; every language's file must have one width")
            first = first or (path, matrix.shape[1])
            table = self._index.setdefault(language, {})
            for row, word in enumerate(words):
                table.setdefault(word.lower() if self.config.lowercase else word, offset + row)
            matrices.append(matrix)
            offset += len(words)
        self._matrix = np.concatenate(matrices)
        self._prefixed = True
        self._per_language = True

    def _table(self, language: str) -> dict[str, int]:
        if getattr(self, "_per_language", False) and language not in self._index:
            raise mmbench.Incompatible(f"no vectors file for language {language!r} (given: {', '.join(self._index)})")
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
