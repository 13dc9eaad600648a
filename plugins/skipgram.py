"""``skipgram``, ``fasttext`` — the text-only baseline: per-language skip-gram aligned with a dictionary.

The "MUSE" row of the ImageVec paper (Singhal et al. 2019): monolingual skip-gram vectors per language
(gensim; ``fasttext`` adds character n-grams, so unseen words still get a vector), mapped into the
English space with the MUSE 0-5000 *train* dictionaries by Procrustes and RCSLS (Joulin et al. 2018).
Trained by default on the Multi30k task-1 train captions (en, de, fr, cs); ``--set corpus.LANG=FILE``
adds plain-text files (one sentence per line), ``--set multi30k=false`` leaves the captions out.
Texts are the mean of their words' vectors. Variants: ``skipgram`` (word2vec), ``fasttext``
(subwords), ``fasttext-wiki`` (the published fastText wiki settings, for corpora of that size).

Everything but the embedding lookups lives in :mod:`mmbench.train.skipgram`: training, alignment and
the cache (``<work_dir>/skipgram-<key>/``: ``vectors.safetensors`` and ``skipgram.json``). Other models
get the same vectors with ``mmbench.train.skipgram.aligned_skipgram_vectors(config, data_dir, cache_dir,
seed)``. ``mmbench skipgram-export WORK_DIR OUT.vec`` writes them as a text file that ``vectors:OUT.vec``
scores identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import mmbench
from mmbench.errors import MMBenchError
from mmbench.text import tokenize
from mmbench.train.skipgram import (
    FASTTEXT_WIKI,
    STATE_FILE,
    AlignedVectors,
    SkipgramConfig,
    aligned_skipgram_vectors,
)


class Skipgram(mmbench.Model):
    """Monolingual skip-gram/fastText vectors per language, aligned into the English space."""

    name = "skipgram"
    Config = SkipgramConfig
    capabilities = frozenset({mmbench.Capability.WORDS, mmbench.Capability.TEXT, mmbench.Capability.TRAINABLE})

    def identity(self) -> dict[str, Any]:
        # The user's corpora by content: editing a file makes a new model, moving it does not.
        from mmbench.cards import file_sha256

        return {"corpus_sha256": {lang: [file_sha256(Path(p).expanduser()) for p in files]
                                  for lang, files in self.config.corpus.items()}} if self.config.corpus else {}

    def seen_data(self) -> frozenset[str]:
        return self.config.seen_data()

    def prepare(self, ctx: mmbench.RunContext) -> None:
        if ctx.checkpoint is not None:
            self.vectors = load_trained(Path(ctx.checkpoint))
        else:
            self.vectors = aligned_skipgram_vectors(self.config, ctx.data_dir, ctx.work_dir, ctx.seed, train=ctx.train)

    def languages(self) -> list[str]:
        return list(self.vectors.languages)

    def _check(self, language: str) -> None:
        if language not in self.vectors.words:
            raise mmbench.Incompatible(f"{self.name} was trained on {', '.join(self.vectors.languages)}, "
                                       f"not {language!r}")

    def vocabulary(self, language: str) -> list[str]:
        self._check(language)
        return list(self.vectors.words[language])

    def embed_words(self, words: Sequence[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        self._check(language)
        return self.vectors.embed_words(words, language)

    def embed_texts(self, texts: Sequence[str], language: str) -> np.ndarray:
        self._check(language)
        out = np.zeros((len(texts), self.vectors.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            vectors, found = self.vectors.embed_words(tokenize(text), language)
            if found.any():
                out[i] = vectors[found].mean(axis=0)
        return out


def load_trained(path: Path) -> AlignedVectors:
    """Trained vectors from a ``skipgram-<key>`` directory or a work dir holding exactly one."""
    found = [path] if (path / STATE_FILE).is_file() else sorted(p.parent for p in path.glob(f"skipgram-*/{STATE_FILE}"))
    if len(found) != 1:
        raise MMBenchError(f"skipgram: expected one trained skipgram-* directory in {path}, found {len(found)}")
    return AlignedVectors.load(found[0])


def skipgram_export(trained: Path, output: Path) -> None:
    """Write trained skipgram/fasttext vectors as a word2vec text file (``en:word v1 .. vD``; ``.gz`` to
    compress) that ``--model vectors:OUTPUT`` scores identically. TRAINED: a run's work dir (e.g.
    results/.runs/skipgram__HASH/seed-0) or the skipgram-KEY directory inside it."""
    vectors = load_trained(Path(trained))
    vectors.write_text(Path(output))
    print(f"{output}: {sum(map(len, vectors.words.values()))} vectors of {vectors.dim} dimensions "
          f"({', '.join(vectors.languages)})")


VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "skipgram": ({}, "Text-only: skip-gram per language (Multi30k train captions), MUSE-dictionary "
                     "Procrustes + RCSLS into English"),
    "fasttext": ({"subwords": True}, "Text-only: fastText (subword n-grams) per language, Procrustes + RCSLS "
                                     "into English; unseen words get vectors"),
    "fasttext-wiki": (FASTTEXT_WIKI, "Text-only: fastText with the published wiki.*.vec settings, for "
                                     "Wikipedia-size corpora (--set corpus.LANG=FILE)"),
}


@mmbench.hookimpl
def register_models(register):
    for name, (defaults, description) in VARIANTS.items():
        register(Skipgram, name=name, defaults=defaults, description=description)


@mmbench.hookimpl
def register_commands(register):
    register(skipgram_export, name="skipgram-export")
