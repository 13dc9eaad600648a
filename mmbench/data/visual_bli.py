"""Word lists for bilingual lexicon induction from images.

* CLDI (Hartmann & Søgaard 2018, "Limitations of cross-lingual learning from image search"):
  ``imgWords_en_{xx}.txt``, lines ``english<TAB>translation<TAB>POS`` with POS in A/N/V; 1771 lines
  per language pair (1406 N, 206 V, 159 A). https://github.com/coastalcph/cldi_from_image_search
* Bergsma & Van Durme (2011) 500 concrete nouns: ``pictureWords.{lang}.txt``, lines
  ``english<TAB>word in lang`` after a header line, line-aligned across languages. Copies at
  https://github.com/etsuko030/Uranus_mtlb. That copy's German file is ISO-8859-1, the others UTF-8
  (some with a byte-order mark); a file that is not UTF-8 is read as Latin-1 only for languages in
  ``LEGACY_ENCODINGS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets

from mmbench.data import io
from mmbench.errors import DataError

LOADER_VERSION = 1
POS_TAGS = ("A", "N", "V")
CLDI_COLUMNS = ("source", "target", "pos")
BERGSMA_COLUMNS = ("english", "translation")
BERGSMA_LANGUAGES = ("en", "de", "es", "fr", "it", "nl")
LEGACY_ENCODINGS: Mapping[str, str] = {"de": "latin-1"}
HOW_TO_GET_CLDI = (
    "CLDI word lists go under <data root>/visual_bli/imgWords_en_{de,es,fr,it,ru}.txt; get them from "
    "https://github.com/coastalcph/cldi_from_image_search."
)
HOW_TO_GET_BERGSMA = (
    "Bergsma-500 lists go under <data root>/visual_bli/bergsma500/pictureWords.{lang}.txt; a copy is in "
    "https://github.com/etsuko030/Uranus_mtlb."
)


def load_cldi_pairs(path: Path, *, cache_dir: Path | None = None) -> datasets.Dataset:
    """Columns ``source`` (English), ``target``, ``pos`` (A, N or V), in file order."""
    path = io.require_file(Path(path), HOW_TO_GET_CLDI)
    return io.cached("cldi", LOADER_VERSION, [path], lambda key: _build_cldi(path, key), cache_dir=cache_dir)


def _build_cldi(path: Path, fingerprint: str) -> datasets.Dataset:
    columns: dict[str, list[str]] = {name: [] for name in CLDI_COLUMNS}
    for number, line in io.read_lines(path, skip_blank=True):
        source, target, pos = io.split_columns(line, CLDI_COLUMNS, path, number, separator="\t")
        if pos not in POS_TAGS:
            raise io.data_error(path, f"part of speech {pos!r} is not one of {'/'.join(POS_TAGS)}", number)
        if not source.strip() or not target.strip():
            raise io.data_error(path, "empty word", number)
        columns["source"].append(source.strip())
        columns["target"].append(target.strip())
        columns["pos"].append(pos)
    return io.make_dataset(columns, fingerprint)


def load_bergsma500(
    directory: Path, *, languages: Sequence[str] | None = None, cache_dir: Path | None = None
) -> datasets.Dataset:
    """One column per language (``en``, ``de``, …); row i is line i+1 of every file (the header skipped).

    ``languages`` defaults to every ``pictureWords.{lang}.txt`` present. Files must have the same
    number of lines and the same English word on each line, else ``DataError``.
    """
    directory = Path(directory)
    if languages is None:
        io.require_dir(directory, HOW_TO_GET_BERGSMA)
        found = {p.name.split(".")[1] for p in directory.glob("pictureWords.*.txt")}
        languages = [lang for lang in BERGSMA_LANGUAGES if lang in found] + sorted(found - set(BERGSMA_LANGUAGES))
    if not languages:
        raise DataError(f"{directory}: no pictureWords.{{lang}}.txt files. {HOW_TO_GET_BERGSMA}")
    files = {lang: io.require_file(directory / f"pictureWords.{lang}.txt", HOW_TO_GET_BERGSMA) for lang in languages}
    return io.cached(
        "bergsma500",
        LOADER_VERSION,
        list(files.values()),
        lambda key: _build_bergsma(files, key),
        params={"languages": list(languages)},
        cache_dir=cache_dir,
    )


def _build_bergsma(files: Mapping[str, Path], fingerprint: str) -> datasets.Dataset:
    reference: tuple[Path, list[str]] | None = None
    columns: dict[str, list[str]] = {}
    for lang, path in files.items():
        english, words = _read_bergsma_file(path, LEGACY_ENCODINGS.get(lang))
        if reference is None:
            reference = (path, english)
        else:
            ref_path, ref_english = reference
            if len(english) != len(ref_english):
                raise io.data_error(
                    path,
                    f"has {len(english)} words but {ref_path.name} has {len(ref_english)}; lists must be line-aligned",
                )
            for index, (mine, theirs) in enumerate(zip(english, ref_english, strict=False)):
                if mine != theirs:
                    raise io.data_error(
                        path, f"English word {mine!r} differs from {theirs!r} in {ref_path.name}", index + 2
                    )
        columns[lang] = words
    return io.make_dataset(columns, fingerprint)


def _read_bergsma_file(path: Path, fallback_encoding: str | None) -> tuple[list[str], list[str]]:
    english: list[str] = []
    words: list[str] = []
    for number, line in io.read_aligned_lines(path, fallback_encoding=fallback_encoding)[1:]:  # skip header
        source, word = io.split_columns(line, BERGSMA_COLUMNS, path, number, separator="\t")
        english.append(source.strip())
        words.append(word.strip())
    if not words:
        raise io.data_error(path, "header only, no words")
    return english, words
