"""Word-similarity sets: word pairs with a human similarity score.

Formats (detected per file):

* language-prefixed, as in the multiSkip evaluation portal (crosslingual RG-65 of Camacho-Collados
  et al. 2015, Ammar et al. 2016): ``en:cord<TAB>de:lächeln<TAB>0.01``; languages come from the
  prefixes and ``languages``, if given, must agree;
* plain: ``w1 w2 score`` separated by tabs (words may then contain spaces; repeated tabs count as
  one) or by spaces — wordvectors.org (English) and the MUSE monolingual sets. Plain files carry no
  language, so ``languages`` is required.

Words keep their case; lowercasing is the metric's policy. Blank lines are skipped; anything else that
is not three columns with a finite score raises ``DataError`` with file and line.

Get the files: crosslingual RG-65 from https://github.com/wammar/multilingual-embeddings-eval-portal
(``eval-data/wordsim``); English sets from https://github.com/mfaruqui/eval-word-vectors
(``data/word-sim``); German/Spanish/French/Italian sets from the MUSE repository
(https://github.com/facebookresearch/MUSE, ``data/get_evaluation.sh``, monolingual ``wordsim``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import datasets

from mmbench.data import io
from mmbench.errors import DataError

LOADER_VERSION = 1
HOW_TO_GET = (
    "Word-similarity sets go under <data root>/wordsim/: crosslingual RG-65 from "
    "https://github.com/wammar/multilingual-embeddings-eval-portal (eval-data/wordsim), monolingual sets "
    "from https://github.com/mfaruqui/eval-word-vectors and https://github.com/facebookresearch/MUSE."
)
COLUMNS = ("word1", "word2", "score")
_PREFIXED = re.compile(r"^([a-z]{2,3}):(.+)$")


def load_wordsim(
    paths: Path | Sequence[Path],
    *,
    languages: tuple[str, str] | None = None,
    cache_dir: Path | None = None,
) -> datasets.Dataset:
    """Word pairs of one or more files, concatenated in order (e.g. the dev and test halves).

    Columns: ``word1, word2, lang1, lang2`` (strings) and ``score`` (float64).
    """
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not files:
        raise DataError("load_wordsim: no files given")
    if languages is not None and len(languages) != 2:
        raise DataError(f"load_wordsim: languages must be a pair like ('en', 'de'), got {languages!r}")
    for path in files:
        io.require_file(path, HOW_TO_GET)
    params = {"languages": list(languages) if languages else None}
    return io.cached(
        "wordsim",
        LOADER_VERSION,
        files,
        lambda key: _build_wordsim(files, languages, key),
        params=params,
        cache_dir=cache_dir,
    )


def _build_wordsim(files: list[Path], languages: tuple[str, str] | None, fingerprint: str) -> datasets.Dataset:
    columns: dict[str, list] = {"word1": [], "word2": [], "lang1": [], "lang2": [], "score": []}
    for path in files:
        for word1, word2, lang1, lang2, score in parse_wordsim_file(path, languages):
            columns["word1"].append(word1)
            columns["word2"].append(word2)
            columns["lang1"].append(lang1)
            columns["lang2"].append(lang2)
            columns["score"].append(score)
    return io.make_dataset(columns, fingerprint)


def has_language_prefixes(path: Path) -> bool:
    """Whether the file's first record uses language-prefixed words (``en:cord``)."""
    for number, line in io.read_lines(Path(path), skip_blank=True):
        word1, word2, _ = io.split_columns(line, COLUMNS, Path(path), number)
        return bool(_PREFIXED.match(word1) and _PREFIXED.match(word2))
    return False


def parse_wordsim_file(path: Path, languages: tuple[str, str] | None) -> list[tuple[str, str, str, str, float]]:
    """``(word1, word2, lang1, lang2, score)`` per non-blank line of one file."""
    rows: list[tuple[str, str, str, str, float]] = []
    prefixed: bool | None = None
    for number, line in io.read_lines(path, skip_blank=True):
        word1, word2, score_text = io.split_columns(line, COLUMNS, path, number)
        score = io.parse_float(score_text, "score", path, number)
        match1, match2 = _PREFIXED.match(word1), _PREFIXED.match(word2)
        if prefixed is None:  # the first record decides the file's format
            prefixed = bool(match1 and match2)
            if not prefixed and languages is None:
                raise io.data_error(
                    path, "plain word-pair file without language prefixes: pass languages=(lang1, lang2)"
                )
        if prefixed:
            if not (match1 and match2):
                raise io.data_error(path, "expected language-prefixed words like 'en:cord'", number)
            lang1, word1 = match1.groups()
            lang2, word2 = match2.groups()
            if languages is not None and (lang1, lang2) != tuple(languages):
                raise io.data_error(
                    path, f"languages {lang1}-{lang2} in the file disagree with languages={tuple(languages)}", number
                )
        else:
            assert languages is not None
            lang1, lang2 = languages
        rows.append((word1, word2, lang1, lang2, score))
    return rows
