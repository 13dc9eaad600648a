"""A language-tagged word vocabulary and the bag-of-words embedding methods of the models built on one.

ImageVec and the multi-task ``imagevec-multi`` both embed a word as one row of a table keyed
``lang:word`` (or the bare spelling for language-unaware models) and a text as the mean of its tokens'
rows; :class:`Vocabulary` maps keys to rows (rarer tokens may share hashed bucket rows) and
:class:`WordTableEmbeddings` gives a :class:`~mmbench.models.Model` its ``languages``/``vocabulary``/
``embed_words``/``embed_texts`` from ``self.vocab`` and a network with ``words`` (an ``EmbeddingBag``)
and ``encode_queries(tokens, offsets)``. No torch at import: models register without it.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mmbench.models import Incompatible
from mmbench.text import tokenize


def token_key(language: str, word: str, *, tagged: bool) -> str:
    """``en:back`` (language-tagged) or ``back`` (the unaware variant: one key per spelling)."""
    return f"{language}:{word}" if tagged else word


class Vocabulary:
    """Token keys (``lang:word``, or ``word`` untagged) -> rows; unknown keys hash into bucket rows."""

    def __init__(self, keys: Sequence[str], words: dict[str, list[str]], *, tagged: bool, buckets: int):
        self.keys, self.words, self.tagged, self.buckets = list(keys), words, tagged, buckets
        self.index = {key: row for row, key in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys) + self.buckets

    def key(self, language: str, word: str) -> str:
        return token_key(language, word, tagged=self.tagged)

    def row(self, language: str, word: str, *, bucket: bool) -> int | None:
        key = self.key(language, word)
        row = self.index.get(key)
        if row is None and bucket and self.buckets:
            row = len(self.keys) + zlib.crc32(key.encode("utf-8")) % self.buckets
        return row

    def rows(self, language: str, tokens: Sequence[str], *, bucket: bool) -> list[int]:
        found = (self.row(language, token, bucket=bucket) for token in tokens)
        return [row for row in found if row is not None]

    @classmethod
    def build(cls, pairs: Any, *, min_count: int, tagged: bool, buckets: int) -> Vocabulary:
        """From a :class:`~mmbench.train.corpora.TrainingPairs`' queries."""
        return cls.from_texts(zip(pairs.query_languages, pairs.query_tokens), min_count=min_count, tagged=tagged,
                              buckets=buckets)

    @classmethod
    def from_texts(cls, texts: Iterable[tuple[str, Sequence[str]]], *, min_count: int, tagged: bool,
                   buckets: int) -> Vocabulary:
        """Tokens seen in >= ``min_count`` of the ``(language, tokens)`` texts (a text counts a token once)."""
        counts: Counter[str] = Counter()
        seen: dict[str, set[str]] = {}
        for language, tokens in texts:
            for token in set(tokens):
                counts[token_key(language, token, tagged=tagged)] += 1
                seen.setdefault(language, set()).add(token)
        keys = sorted(key for key, count in counts.items() if count >= min_count)
        kept = set(keys)
        words = {lang: sorted(w for w in ws if token_key(lang, w, tagged=tagged) in kept) for lang, ws in seen.items()}
        return cls(keys, dict(sorted(words.items())), tagged=tagged, buckets=buckets)

    def to_json(self) -> dict[str, Any]:
        return {"tagged": self.tagged, "buckets": self.buckets, "keys": self.keys, "words": self.words}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Vocabulary:
        return cls(payload["keys"], payload["words"], tagged=payload["tagged"], buckets=payload["buckets"])


class WordTableEmbeddings:
    """Word and text embedding for a model whose ``self.vocab`` is a :class:`Vocabulary` and whose
    ``self.net`` has ``words`` (rows = vocabulary rows) and ``encode_queries(tokens, offsets)``.

    ``embed_words`` reports only vocabulary words as found (a hashed bucket is a blend of unrelated rare
    words, not a word's vector); ``embed_texts`` hashes unknown tokens into buckets when
    :meth:`bucket_unknown_tokens` says so, else drops them (an all-unknown text embeds as zeros).
    """

    name: str
    vocab: Vocabulary
    net: Any
    device: Any
    state: dict[str, Any]

    def bucket_unknown_tokens(self) -> bool:
        return False

    def languages(self) -> list[str]:
        return sorted(self.vocab.words)

    def _check_language(self, language: str) -> None:
        if language not in self.vocab.words:
            raise Incompatible(f"{self.name} was not trained on language {language!r}")

    def vocabulary(self, language: str) -> list[str]:
        self._check_language(language)
        return list(self.vocab.words[language])

    def embed_words(self, words: Sequence[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        self._check_language(language)
        # Untagged (unaware) keys are shared by all languages: any trained spelling is found.
        rows = [self.vocab.index.get(self.vocab.key(language, word.lower()), -1) for word in words]
        found = np.array([r >= 0 for r in rows], dtype=bool)
        vectors = np.zeros((len(words), self.state["dim"]), dtype=np.float32)
        if found.any():
            import torch

            table = self.net.words.weight.detach()
            vectors[found] = table[torch.tensor([r for r in rows if r >= 0])].float().cpu().numpy()
        return vectors, found

    def embed_texts(self, texts: Sequence[str], language: str) -> np.ndarray:
        self._check_language(language)
        from mmbench.train.bags import bags
        from mmbench.train.encoding import encode

        bucket = self.bucket_unknown_tokens()
        rows = [self.vocab.rows(language, tokenize(text), bucket=bucket) for text in texts]
        if not rows:
            return np.zeros((0, self.state["dim"]), dtype=np.float32)
        device = self.device
        out = encode(lambda chunk: self.net.encode_queries(*(t.to(device) for t in bags(chunk))), rows, 4096)
        return out.float().numpy()
