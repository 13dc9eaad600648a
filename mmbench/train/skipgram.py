"""Text-only multilingual word vectors: per-language skip-gram (gensim) aligned into one space.

The "MUSE" baseline of the ImageVec paper and the initialisation AME and IESG need, built once:

1. **Monolingual training** with gensim's C-optimised ``Word2Vec`` (skip-gram, negative sampling) or
   ``FastText`` (the same plus character n-grams, so unseen words get a vector). Corpus per language:
   the Multi30k task-1 *train* captions (never val/test) when ``multi30k`` is on, plus any plain-text
   files named in ``corpus`` (one sentence per line, ``.gz`` read transparently), tokenised with
   :func:`mmbench.text.tokenize` like every other model's input.
2. **Normalisation** (MUSE's ``renorm,center,renorm``): unit rows, minus their mean, unit rows.
3. **Supervised alignment** of every language into the ``pivot`` (English) space with the MUSE *train*
   dictionary ``{pivot}-{lang}.0-5000`` (never the 5000-6500 test files): orthogonal Procrustes, then
   optionally RCSLS refinement (:mod:`mmbench.train.alignment`). Aligned rows are renormalised.

:func:`aligned_skipgram_vectors` does all of it on demand and caches the result under
``<cache_dir>/skipgram-<key>/`` (``vectors.safetensors`` + ``skipgram.json``; no pickle), where the key
hashes the config, the seed and the sha256 of every input file, so any model can ask for the vectors
without the user running a separate command. :meth:`AlignedVectors.write_text` exports a word2vec/fastText
text file with ``en:word`` keys, which ``vectors:PATH`` reads back bit for bit.

**Reproducibility.** gensim is run with ``workers=1``: one worker thread consumes the jobs in corpus
order, so for a given seed, corpus, gensim build and NumPy the vectors are bit-identical across runs
and processes. gensim 4.4 seeds its initial vectors with ``numpy.random.default_rng(seed)`` and its
training with ``RandomState(seed)``; its ``hashfxn`` (Python's salted ``hash``, hence the old advice to
fix ``PYTHONHASHSEED``) is only used by the deprecated ``seeded_vector`` and never during training, so
``PYTHONHASHSEED`` does not matter (tested); a process-independent ``hashfxn`` is passed anyway for
older gensim releases. Not bit-reproducible: across gensim versions (the C kernels and the vocabulary
sort may change), across CPUs/BLAS builds (gensim's ``sdot``/``saxpy`` and torch's SVD and matmuls may
round differently), and with ``workers > 1`` (thread scheduling reorders updates). The alignment steps
are deterministic on one machine (no sampling: full-batch RCSLS).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mmbench.cards import file_sha256
from mmbench.errors import ConfigError, DataError
from mmbench.text import tokenize
from mmbench.train.aligned_vectors import FORMAT, STATE_FILE, VERSION, AlignedVectors, normalize, unit_rows

EXPORT_FILE = "vectors.vec"
MULTI30K_LANGUAGES = ("en", "de", "fr", "cs")  # Multi30k task-1 train captions exist in these

# The settings of fastText's published wiki.*.vec (Bojanowski et al. 2017) and of the aligned
# wiki.*.align.vec (Joulin et al. 2018: RCSLS, k=10, 10 iterations at lr 25 in alignment/example.sh):
# meant for corpora of Wikipedia size (``multi30k=false`` plus ``corpus.LANG=...``). lr 0.05 is
# fastText's skipgram default; ``bucket`` 2M n-gram rows needs about 2.4 GB of RAM per language at 300-d.
FASTTEXT_WIKI: dict[str, Any] = {
    "subwords": True, "dim": 300, "window": 5, "epochs": 5, "min_count": 5, "negative": 5, "sample": 1e-4,
    "lr": 0.05, "minn": 3, "maxn": 6, "bucket": 2_000_000, "align": "rcsls",
    "rcsls": {"k": 10, "iterations": 10, "lr": 25.0, "max_negatives": 200_000},
}


@dataclass(frozen=True)
class RcslsConfig:
    """RCSLS refinement after Procrustes (Joulin et al. 2018; fastText ``alignment/align.py``)."""

    k: int = 10  # neighbours in both CSLS terms
    iterations: int = 10  # full-batch gradient steps
    lr: float = 1.0  # align.py's default (its example.sh uses 25); halved when the loss rises
    constraint: Literal["none", "spectral"] = "none"  # none: align.py's default; spectral: ||W||_2 <= 1
    max_negatives: int = 200_000  # the first (most frequent) rows of each vocabulary used as CSLS pools

    def __post_init__(self) -> None:
        if self.k < 1 or self.iterations < 0 or self.max_negatives < 1 or not self.lr > 0:
            raise ValueError("rcsls: k and max_negatives must be >= 1, iterations >= 0, lr > 0")


@dataclass(frozen=True)
class SkipgramConfig:
    """Monolingual skip-gram/fastText training per language, then alignment into the pivot's space.

    Defaults are sized for the 29,000 Multi30k captions per language (about 350k tokens) on 2 CPU cores;
    ``FASTTEXT_WIKI`` holds the published fastText settings for large corpora.
    """

    subwords: bool = False  # True: fastText (character n-grams minn..maxn): unseen words get vectors
    languages: tuple[str, ...] = MULTI30K_LANGUAGES
    pivot: str = "en"  # every other language is mapped into this language's space
    multi30k: bool = True  # train on the Multi30k task-1 *train* captions of each language
    corpus: dict[str, tuple[str, ...]] = field(default_factory=dict)  # lang -> extra text files
    dim: int = 300
    window: int = 5
    min_count: int = 2
    negative: int = 5
    sample: float = 1e-3  # frequent-word downsampling (1e-4 loses 15 P@1 points on 29k captions)
    epochs: int = 20
    lr: float = 0.025  # gensim's skip-gram start lr, decayed linearly to lr / 250
    minn: int = 3  # fastText n-gram lengths (subwords only)
    maxn: int = 6
    bucket: int = 200_000  # fastText n-gram hash rows; only the rows a vocabulary word uses are kept
    max_vocab: int | None = None  # keep only the most frequent words (gensim max_final_vocab)
    # rcsls: Procrustes, then RCSLS refinement; procrustes: Procrustes only (MUSE supervised, without its
    # iterative refinement); none: the unaligned monolingual spaces (e.g. for pre-training)
    align: Literal["rcsls", "procrustes", "none"] = "rcsls"
    # The reverse test dictionary {lang}-{pivot}.5000-6500 shares words with the {pivot}-{lang} train file
    # (940 of the 1500 de-en test words are en-de.0-5000 targets). "exclude": drop every training pair
    # whose {lang} word is a source word of that test file (the file is read for nothing else), so the
    # {lang}->{pivot} BLI subset stays unseen, as MUSE's own per-direction protocol has it; "keep": train on
    # the whole file and declare the reverse test set as seen (the guard then skips it).
    reverse_test: Literal["exclude", "keep"] = "exclude"
    rcsls: RcslsConfig = field(default_factory=RcslsConfig)

    def __post_init__(self) -> None:
        corpus: dict[str, tuple[str, ...]] = {}
        for language, files in dict(self.corpus or {}).items():
            items = files.split(",") if isinstance(files, str) else list(files)
            corpus[str(language)] = tuple(str(item).strip() for item in items if str(item).strip())
        object.__setattr__(self, "corpus", dict(sorted(corpus.items())))
        object.__setattr__(self, "languages", tuple(self.languages))
        for name in ("dim", "window", "min_count", "negative", "epochs", "minn", "maxn", "bucket"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.minn > self.maxn:
            raise ValueError(f"minn ({self.minn}) must be <= maxn ({self.maxn})")
        if not 0 <= self.sample < 1 or not self.lr > 0:
            raise ValueError("sample must be in [0, 1) and lr > 0")
        if self.max_vocab is not None and self.max_vocab < 1:
            raise ValueError("max_vocab must be >= 1 (or none)")
        if not self.languages or len(set(self.languages)) != len(self.languages):
            raise ValueError(f"languages must be distinct and non-empty, got {self.languages}")
        if self.pivot not in self.languages:
            raise ValueError(f"pivot {self.pivot!r} is not one of the languages {', '.join(self.languages)}")
        unknown = sorted(set(self.corpus) - set(self.languages))
        if unknown:
            raise ValueError(f"corpus: {', '.join(unknown)} not in languages ({', '.join(self.languages)})")
        empty = [lang for lang in self.languages
                 if not self.corpus.get(lang) and not (self.multi30k and lang in MULTI30K_LANGUAGES)]
        if empty:
            raise ValueError(f"no training text for {', '.join(empty)}: give corpus.LANG=FILE "
                             f"(Multi30k has {', '.join(MULTI30K_LANGUAGES)})")

    def seen_data(self) -> frozenset[str]:
        """``dataset:split`` ids this config trains on (the contamination guard's vocabulary)."""
        seen = {"multi30k:train"} if self.multi30k and set(self.languages) & set(MULTI30K_LANGUAGES) else set()
        if self.align != "none":
            others = [lang for lang in self.languages if lang != self.pivot]
            seen |= {f"muse:{self.pivot}-{lang}.0-5000" for lang in others}
            if self.reverse_test == "keep":
                seen |= {f"muse:{lang}-{self.pivot}.5000-6500" for lang in others}
        return frozenset(seen)


# -- corpora ----------------------------------------------------------------------------------------

class TextFile:
    """A restartable iterable of token lists, one per non-blank line of a (gzipped) text file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __iter__(self) -> Iterator[list[str]]:
        opener = gzip.open if self.path.suffix == ".gz" else open
        try:
            with opener(self.path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    tokens = tokenize(line)
                    if tokens:
                        yield tokens
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.path}: not UTF-8 text ({exc.reason})") from None
        except (OSError, EOFError) as exc:
            raise DataError(f"{self.path}: cannot read corpus ({exc})") from None


class Corpus:
    """The training sentences of one language: in-memory ones first, then each file, every pass."""

    def __init__(self, sentences: Sequence[list[str]] = (), files: Sequence[Path] = ()):
        self.sentences, self.files = list(sentences), [TextFile(path) for path in files]

    def __iter__(self) -> Iterator[list[str]]:
        yield from self.sentences
        for text_file in self.files:
            yield from text_file


def multi30k_train_captions(data_dir: Path, language: str) -> tuple[list[list[str]], Path]:
    """Tokenised Multi30k task-1 *train* captions of ``language`` and the file they came from."""
    from mmbench.data.multi30k import load_multi30k

    rows = load_multi30k(Path(data_dir), task=1, split="train", languages=[language], features=False)
    sentences = [tokens for tokens in map(tokenize, rows[f"caption_{language}"][:]) if tokens]
    return sentences, Path(data_dir) / "multi30k" / "task1" / "raw" / f"train.{language}.gz"


def _corpus_files(config: SkipgramConfig, language: str) -> list[Path]:
    files = [Path(p).expanduser() for p in config.corpus.get(language, ())]
    for path in files:
        if not path.is_file():
            raise ConfigError(f"skipgram: corpus.{language}: {path} is not a file")
    return files


# -- monolingual training ---------------------------------------------------------------------------

def _stable_hash(text: str) -> int:
    """Process-independent ``hashfxn`` for gensim (Python's ``hash`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


@dataclass
class Monolingual:
    """One language's trained vectors: words by descending frequency, raw gensim vectors (float32), and
    for fastText the trained n-gram rows (``ngram_ids`` sorted bucket ids, ``ngram_vectors`` their rows).
    ``seconds``: training time; ``tokens``: corpus tokens before ``min_count``."""

    words: list[str]
    counts: np.ndarray
    vectors: np.ndarray
    ngram_ids: np.ndarray | None = None
    ngram_vectors: np.ndarray | None = None
    seconds: float = 0.0
    tokens: int = 0
    normalized: np.ndarray | None = None  # the rows after normalize(), and its mean (train_languages)
    mean: np.ndarray | None = None
    seed: int = 0


def train_monolingual(sentences: Any, config: SkipgramConfig, seed: int) -> Monolingual:
    """Skip-gram with negative sampling (``Word2Vec``) or fastText (``FastText``), one worker thread."""
    from gensim.models import FastText, Word2Vec

    start = time.perf_counter()
    kwargs: dict[str, Any] = dict(vector_size=config.dim, window=config.window, min_count=config.min_count,
                                  sg=1, hs=0, negative=config.negative, sample=config.sample, alpha=config.lr,
                                  min_alpha=config.lr / 250, epochs=config.epochs, seed=seed, workers=1,
                                  hashfxn=_stable_hash, max_final_vocab=config.max_vocab, sorted_vocab=1)
    if config.subwords:
        model: Any = FastText(min_n=config.minn, max_n=config.maxn, bucket=config.bucket, **kwargs)
    else:
        model = Word2Vec(**kwargs)
    model.build_vocab(corpus_iterable=sentences)
    if len(model.wv) == 0:
        raise DataError(f"skipgram: no word occurs {config.min_count} times in the corpus")
    model.train(corpus_iterable=sentences, total_examples=model.corpus_count, epochs=model.epochs)
    wv = model.wv
    counts = np.array([wv.get_vecattr(word, "count") for word in wv.index_to_key], dtype=np.int64)
    result = Monolingual(list(wv.index_to_key), counts, np.ascontiguousarray(wv.vectors, dtype=np.float32),
                         tokens=int(model.corpus_total_words))
    if config.subwords:
        used = np.unique(np.concatenate([np.asarray(b, dtype=np.int64) for b in wv.buckets_word]))
        result.ngram_ids = used
        result.ngram_vectors = np.ascontiguousarray(wv.vectors_ngrams[used], dtype=np.float32)
    result.seconds = time.perf_counter() - start
    return result


# -- alignment --------------------------------------------------------------------------------------

def dictionary_pairs(path: Path, source_index: dict[str, int], target_index: dict[str, int]) -> list[tuple[int, int]]:
    """``(source row, target row)`` of each dictionary line whose two words are both in the vocabularies
    (every translation of a word counts, as in ``align.py``'s ``load_pairs``)."""
    from mmbench.data.muse import load_muse_dictionary

    dictionary = load_muse_dictionary(path)
    return [(source_index[s], target_index[t]) for s, t in zip(dictionary["source"][:], dictionary["target"][:])
            if s in source_index and t in target_index]


def fit_mapping(vectors: np.ndarray, pivot_vectors: np.ndarray, pairs: list[tuple[int, int]],
                config: SkipgramConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """``W`` mapping ``vectors`` rows into the pivot space: Procrustes on the pairs (row in ``vectors``,
    row in ``pivot_vectors``), then RCSLS when ``config.align == "rcsls"``; and a summary for the log."""
    import torch  # here, not at module level: registering the plugin must not import torch (start-up)

    from mmbench.train.alignment import procrustes, rcsls_mapping_loss, refine_rcsls

    if not pairs:
        raise DataError("skipgram: no dictionary pair has both words in the vocabularies; nothing to align with")
    source = torch.from_numpy(vectors)
    target = torch.from_numpy(pivot_vectors)
    rows = torch.tensor(pairs, dtype=torch.long)
    x, y = source[rows[:, 0]], target[rows[:, 1]]
    mapping = procrustes(x, y)
    info: dict[str, Any] = {"pairs": len(pairs), "method": config.align}
    if config.align == "rcsls":
        rcsls = config.rcsls
        pools = source[: rcsls.max_negatives], target[: rcsls.max_negatives]
        result = refine_rcsls(x, y, *pools, init=mapping, k=rcsls.k, iterations=rcsls.iterations, lr=rcsls.lr,
                              constraint=rcsls.constraint)
        mapping = result.mapping
        info.update(rcsls_losses=[round(v, 6) for v in result.losses], rcsls_rejected=result.rejected)
    else:
        pools = source[: config.rcsls.max_negatives], target[: config.rcsls.max_negatives]
        with torch.no_grad():
            info["rcsls_loss"] = round(float(rcsls_mapping_loss(mapping, x, y, *pools, k=config.rcsls.k)), 6)
    return mapping.numpy().astype(np.float32), info


# -- train or load ----------------------------------------------------------------------------------

def _inputs(config: SkipgramConfig, data_dir: Path | None) -> dict[str, dict[str, Path]]:
    """Every file the vectors depend on, by language: Multi30k captions, user corpora, dictionaries."""
    from mmbench.data.multi30k import HOW_TO_GET as MULTI30K_HOW
    from mmbench.data.muse import HOW_TO_GET as MUSE_HOW
    from mmbench.data.muse import muse_dictionary_path

    inputs: dict[str, dict[str, Path]] = {}
    for lang in config.languages:
        files: dict[str, Path] = {}
        if config.multi30k and lang in MULTI30K_LANGUAGES:
            if data_dir is None:
                raise ConfigError("skipgram: the Multi30k captions are read from the data root, but none was given")
            files["multi30k"] = Path(data_dir) / "multi30k" / "task1" / "raw" / f"train.{lang}.gz"
            if not files["multi30k"].is_file():
                raise DataError(f"{files['multi30k']}: not found. {MULTI30K_HOW}")
        for number, path in enumerate(_corpus_files(config, lang)):
            files[f"corpus{number}"] = path
        if config.align != "none" and lang != config.pivot:
            if data_dir is None:
                raise ConfigError("skipgram: the MUSE dictionaries are read from the data root, but none was given")
            reverse_test = muse_dictionary_path(Path(data_dir), lang, config.pivot, "test")
            if config.reverse_test == "exclude" and reverse_test.is_file():
                files["reverse_test"] = reverse_test
            files["dictionary"] = muse_dictionary_path(Path(data_dir), config.pivot, lang, "train")
            if not files["dictionary"].is_file():
                raise DataError(f"{files['dictionary']}: not found (skipgram aligns {lang} to {config.pivot} with "
                                f"it). {MUSE_HOW}")
        inputs[lang] = files
    return inputs


def cache_key(config: SkipgramConfig, seed: int, fingerprints: dict[str, dict[str, str]]) -> str:
    """sha256 of the format, the config, the seed and the inputs' sha256 (corpus files count by content,
    not path; settings that do not apply, such as ``rcsls`` under Procrustes, are left out)."""
    settings = dataclasses.asdict(config)
    settings.pop("corpus")
    if config.align != "rcsls":
        settings.pop("rcsls")
    if not config.subwords:
        for name in ("minn", "maxn", "bucket"):
            settings.pop(name)
    payload = {"format": FORMAT, "version": VERSION, "config": settings, "seed": seed, "inputs": fingerprints}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$MMBENCH_CACHE_DIR/skipgram`` if set, else the per-user cache directory's ``skipgram/``."""
    from mmbench.data.io import default_cache_dir as arrow_cache_dir

    return arrow_cache_dir().parent / "skipgram"


def aligned_skipgram_vectors(config: SkipgramConfig | None = None, data_dir: Path | None = None,
                             cache_dir: Path | None = None, seed: int = 0, *, train: bool = True,
                             export: bool = False, log: Any = None) -> AlignedVectors:
    """The aligned vectors of ``config`` and ``seed``: loaded from ``<cache_dir>/skipgram-<key>/`` when
    present, else trained, aligned and saved there first (``train=False`` raises instead).

    ``data_dir`` is the data root (Multi30k captions, MUSE dictionaries); ``cache_dir`` defaults to
    :func:`default_cache_dir`. ``export`` also writes the text file ``vectors.vec`` (see
    :meth:`AlignedVectors.write_text`) when the vectors are built. ``log`` is an optional ``callable(str)``
    for progress lines.
    """
    config = config or SkipgramConfig()
    inputs = _inputs(config, data_dir)
    fingerprints = {lang: {name: file_sha256(path) for name, path in files.items()} for lang, files in inputs.items()}
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"skipgram-{cache_key(config, seed, fingerprints)}"
    if (target / STATE_FILE).is_file():
        return AlignedVectors.load(target)
    if not train:
        raise DataError(f"skipgram: no trained vectors at {target}: train them first (mmbench run, same config "
                        f"and seed)")
    vectors = build_aligned_vectors(config, data_dir, seed, inputs, log=log)
    vectors.info["inputs"] = fingerprints
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f".tmp-skipgram-{uuid.uuid4().hex}"
    try:
        vectors.save(scratch)
        if export:
            vectors.write_text(scratch / EXPORT_FILE)
        try:
            os.rename(scratch, target)
        except OSError:  # another process finished the same vectors first: use its copy
            if not (target / STATE_FILE).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return AlignedVectors.load(target)


def build_aligned_vectors(config: SkipgramConfig, data_dir: Path | None, seed: int,
                          inputs: dict[str, dict[str, Path]] | None = None, *, log: Any = None) -> AlignedVectors:
    """Train every language, normalise, align to the pivot (no caching; see :func:`aligned_skipgram_vectors`)."""
    inputs = inputs if inputs is not None else _inputs(config, data_dir)
    return align_languages(config, train_languages(config, data_dir, seed, inputs, log=log), inputs, log=log)


def train_languages(config: SkipgramConfig, data_dir: Path | None, seed: int,
                    inputs: dict[str, dict[str, Path]] | None = None, *, log: Any = None) -> dict[str, Monolingual]:
    """:func:`train_monolingual` on each language's corpus (``inputs`` as :func:`aligned_skipgram_vectors`
    finds them), with the normalised rows and their mean filled in."""
    inputs = inputs if inputs is not None else _inputs(config, data_dir)
    trained: dict[str, Monolingual] = {}
    for lang in config.languages:
        sentences: list[list[str]] = []
        if "multi30k" in inputs[lang]:
            sentences, _ = multi30k_train_captions(Path(data_dir), lang)  # type: ignore[arg-type]
        corpus = Corpus(sentences, [path for name, path in inputs[lang].items() if name.startswith("corpus")])
        mono = trained[lang] = train_monolingual(corpus, config, seed)
        mono.normalized, mono.mean = normalize(mono.vectors)
        mono.seed = seed
        if log:
            log(f"skipgram: {lang}: {len(mono.words)} words from {mono.tokens} tokens in {mono.seconds:.1f} s")
    return trained


def align_languages(config: SkipgramConfig, trained: dict[str, Monolingual], inputs: dict[str, dict[str, Path]],
                    *, log: Any = None) -> AlignedVectors:
    """Map every language of ``trained`` onto the pivot with ``config.align`` (the training settings of
    ``config`` are not looked at: one training can be aligned several ways)."""
    import gensim

    start = time.perf_counter()
    identity = np.eye(config.dim, dtype=np.float32)
    pivot = trained[config.pivot]
    pivot_index = {w: i for i, w in enumerate(pivot.words)}
    mappings, aligned, alignment = {}, {}, {}
    for lang, mono in trained.items():
        if lang == config.pivot or config.align == "none":
            mappings[lang], aligned[lang] = identity, mono.normalized
            continue
        index = {w: i for i, w in enumerate(mono.words)}
        # The dictionary goes pivot -> lang; pairs are (lang row, pivot row): lang is mapped onto the pivot.
        pairs = [(t, s) for s, t in dictionary_pairs(inputs[lang]["dictionary"], pivot_index, index)]
        excluded = 0
        if "reverse_test" in inputs[lang]:
            from mmbench.data.muse import load_muse_dictionary

            held_out = set(load_muse_dictionary(inputs[lang]["reverse_test"])["source"][:])
            kept = [(t, s) for t, s in pairs if mono.words[t] not in held_out]
            pairs, excluded = kept, len(pairs) - len(kept)
        mapping, alignment[lang] = fit_mapping(mono.normalized, pivot.normalized, pairs, config)
        alignment[lang].update(dictionary=inputs[lang]["dictionary"].name, excluded_pairs=excluded,
                               excluded_because=inputs[lang]["reverse_test"].name if excluded else None)
        mappings[lang] = mapping
        aligned[lang] = unit_rows(mono.normalized @ mapping.T)
        if log:
            log(f"skipgram: {lang} -> {config.pivot}: {config.align} on {len(pairs)} dictionary pairs")
    info = {
        "config": dataclasses.asdict(config), "seed": pivot.seed, "gensim": gensim.__version__,
        "seconds": round(sum(m.seconds for m in trained.values()) + time.perf_counter() - start, 3),
        "training": {lang: {"words": len(m.words), "tokens": m.tokens, "seconds": round(m.seconds, 3)}
                     for lang, m in trained.items()},
        "counts": {lang: m.counts.tolist() for lang, m in trained.items()},
        "alignment": alignment,
    }
    ngram_ids = {lang: m.ngram_ids for lang, m in trained.items() if m.ngram_ids is not None}
    ngram_vectors = {lang: m.ngram_vectors for lang, m in trained.items() if m.ngram_vectors is not None}
    return AlignedVectors({lang: m.words for lang, m in trained.items()}, aligned, info, mappings,
                          {lang: m.mean for lang, m in trained.items()}, ngram_ids, ngram_vectors)
