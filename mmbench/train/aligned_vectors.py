"""The aligned skip-gram vectors as a value: unit word vectors per language in one space, their
normalisation and mappings (so fastText n-gram vectors of unseen words land in the same space), a text
export that ``vectors:PATH`` reads back bit for bit, and safetensors + JSON storage (no pickle, sha256
checked on load). Built by :mod:`mmbench.train.skipgram`."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import DataError

FORMAT = "mmbench-skipgram"
VERSION = 1
STATE_FILE = "skipgram.json"
TENSORS_FILE = "vectors.safetensors"


def normalize(vectors: np.ndarray, mean: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MUSE's ``renorm,center,renorm``: unit rows, minus the mean unit row (``mean``, computed when
    None), unit rows. Returns the rows and the mean, which normalises later (out-of-vocabulary) rows."""
    rows = unit_rows(np.asarray(vectors, dtype=np.float32))
    if mean is None:
        mean = rows.mean(axis=0, dtype=np.float64).astype(np.float32)
    return unit_rows(rows - mean), mean


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


# -- the result -------------------------------------------------------------------------------------

@dataclass
class AlignedVectors:
    """Aligned unit word vectors per language (rows in ``words[lang]`` order: descending frequency)."""

    words: dict[str, list[str]]
    vectors: dict[str, np.ndarray]
    info: dict[str, Any]
    mappings: dict[str, np.ndarray] = field(default_factory=dict)  # (d, d) per language; pivot: identity
    means: dict[str, np.ndarray] = field(default_factory=dict)  # normalisation means (for n-gram vectors)
    ngram_ids: dict[str, np.ndarray] = field(default_factory=dict)  # fastText: trained bucket ids, sorted
    ngram_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    directory: Path | None = None  # the cache directory it was loaded from or saved to

    def __post_init__(self) -> None:
        self._index = {lang: {w: i for i, w in enumerate(words)} for lang, words in self.words.items()}

    @property
    def languages(self) -> list[str]:
        return list(self.words)

    @property
    def dim(self) -> int:
        return int(next(iter(self.vectors.values())).shape[1])

    @property
    def subwords(self) -> bool:
        return bool(self.ngram_ids)

    def index(self, language: str) -> dict[str, int]:
        return self._index[language]

    def embed_words(self, words: Sequence[str], language: str, *,
                    subwords: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors (n, d) float32, found (n,) bool)``; words are lowercased (the corpus was). With
        ``subwords`` (fastText only) an unseen word is built from its trained character n-grams."""
        index, table = self._index[language], self.vectors[language]
        out = np.zeros((len(words), self.dim), dtype=np.float32)
        found = np.zeros(len(words), dtype=bool)
        missing = []
        for i, word in enumerate(words):
            row = index.get(word.lower(), -1)
            if row >= 0:
                out[i], found[i] = table[row], True
            else:
                missing.append(i)
        if subwords and missing and language in self.ngram_ids:
            for i in missing:
                vector = self.subword_vector(words[i].lower(), language)
                if vector is not None:
                    out[i], found[i] = vector, True
        return out, found

    def subword_vector(self, word: str, language: str) -> np.ndarray | None:
        """Aligned vector of a word from its character n-grams (fastText), or None if none was trained.

        The sum of the word's trained n-gram rows (gensim averages them, with the untrained, still random
        rows too; the direction is what counts), normalised and mapped like a vocabulary row."""
        from gensim.models.fasttext import ft_ngram_hashes

        config = self.info["config"]
        ids = self.ngram_ids[language]
        hashes = np.asarray(ft_ngram_hashes(word, config["minn"], config["maxn"], config["bucket"]), dtype=np.int64)
        if not len(hashes) or not len(ids):
            return None
        positions = np.minimum(np.searchsorted(ids, hashes), len(ids) - 1)
        positions = positions[ids[positions] == hashes]
        if not len(positions):
            return None
        raw = self.ngram_vectors[language][positions].sum(axis=0)
        row, _ = normalize(raw[None, :], self.means[language])
        return unit_rows(row @ self.mappings[language].T)[0]

    def write_text(self, path: Path, languages: Sequence[str] | None = None) -> Path:
        """A word2vec/fastText text file (``N D`` header, one ``lang:word v1 .. vD`` line per word);
        ``%.9g`` keeps every float32 exactly, so ``vectors:PATH`` reads back the same vectors."""
        path = Path(path)
        chosen = list(languages) if languages is not None else self.languages
        total = sum(len(self.words[lang]) for lang in chosen)
        template = " ".join(["%.9g"] * self.dim)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(tmp, "wt", encoding="utf-8") as handle:
            handle.write(f"{total} {self.dim}\n")
            for lang in chosen:
                for word, row in zip(self.words[lang], self.vectors[lang].tolist()):
                    handle.write(f"{lang}:{word} {template % tuple(row)}\n")
        os.replace(tmp, path)
        return path

    # -- storage --------------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        from safetensors.numpy import save_file

        directory.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, np.ndarray] = {}
        for lang in self.languages:
            tensors[f"vectors.{lang}"] = self.vectors[lang]
            tensors[f"mapping.{lang}"] = self.mappings[lang]
            tensors[f"mean.{lang}"] = self.means[lang]
            if lang in self.ngram_ids:
                tensors[f"ngram_ids.{lang}"] = self.ngram_ids[lang]
                tensors[f"ngram_vectors.{lang}"] = self.ngram_vectors[lang]
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(directory / TENSORS_FILE))
        digest = hashlib.sha256((directory / TENSORS_FILE).read_bytes()).hexdigest()
        state = {"format": FORMAT, "version": VERSION, **self.info, "words": self.words, "tensors_sha256": digest}
        (directory / STATE_FILE).write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        self.directory = directory

    @classmethod
    def load(cls, directory: Path) -> AlignedVectors:
        """Read a cache directory written by :meth:`save` (safetensors + JSON; the sha256 is checked)."""
        from safetensors.numpy import load

        directory = Path(directory)
        state_path, tensors_path = directory / STATE_FILE, directory / TENSORS_FILE
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            raw = tensors_path.read_bytes()
        except (OSError, ValueError) as exc:
            raise DataError(f"{directory}: no readable skip-gram vectors ({exc})") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION:
            raise DataError(f"{state_path}: not a skip-gram vectors file (format {FORMAT} v{VERSION})")
        if hashlib.sha256(raw).hexdigest() != state.get("tensors_sha256"):
            raise DataError(f"{tensors_path}: sha256 differs from {state_path.name} (incomplete or edited)")
        tensors = load(raw)
        words = state.pop("words")
        for key in ("format", "version", "tensors_sha256"):
            state.pop(key)

        def pick(prefix: str) -> dict[str, np.ndarray]:
            return {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

        vectors = pick("vectors")
        if sorted(vectors) != sorted(words) or any(len(vectors[lang]) != len(words[lang]) for lang in words):
            raise DataError(f"{directory}: the vectors do not match the word lists")
        return cls({lang: words[lang] for lang in words}, {lang: vectors[lang] for lang in words}, state,
                   pick("mapping"), pick("mean"), pick("ngram_ids"), pick("ngram_vectors"), directory)
