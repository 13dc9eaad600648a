"""SIB-200 topic classification (Adelani et al. 2024): 205 languages, 7 topics, Flores-200 sentences.

Layout: ``<data root>/sib200/{lang_Script}/{train,dev,test}.tsv.gz`` (or uncompressed ``.tsv``, as in
the upstream ``data/annotated/`` folders). Each file has the header ``index_id<TAB>category<TAB>text``;
fields that contain quotes are CSV-quoted (``"…""…"``) as pandas writes them, and are unquoted here.
701/99/204 sentences per language.

Get it from https://github.com/dadelani/sib-200 (``data/download_data.py`` builds ``data/annotated``)
or the Hugging Face dataset ``Davlan/sib200``. Apache-2.0; the text is Flores-200 (CC BY-SA 4.0).
"""

from __future__ import annotations

from pathlib import Path

import datasets

from mmbench.data import io
from mmbench.errors import DataError

LOADER_VERSION = 1
SPLITS = ("train", "dev", "test")
HEADER = ("index_id", "category", "text")
CATEGORIES = ("entertainment", "geography", "health", "politics", "science/technology", "sports", "travel")
HOW_TO_GET = (
    "SIB-200 goes under <data root>/sib200/{lang_Script}/{train,dev,test}.tsv[.gz]; get it from "
    "https://github.com/dadelani/sib-200 (data/download_data.py) or the Hugging Face dataset Davlan/sib200."
)


def sib200_languages(root: Path) -> list[str]:
    """Sorted language codes (``eng_Latn``, …) that have a SIB-200 folder with a train file."""
    base = io.require_dir(Path(root) / "sib200", HOW_TO_GET)
    languages = sorted(
        entry.name
        for entry in base.iterdir()
        if entry.is_dir() and any((entry / f"train{suffix}").is_file() for suffix in (".tsv.gz", ".tsv"))
    )
    if not languages:
        raise io.data_error(base, f"no language folders with train.tsv[.gz]. {HOW_TO_GET}")
    return languages


def load_sib200(root: Path, language: str, *, cache_dir: Path | None = None) -> datasets.DatasetDict:
    """``train``, ``dev``, ``test`` of one language; columns ``index_id`` (int), ``category``, ``text``."""
    folder = Path(root) / "sib200" / language
    files = {split: _split_file(folder, split) for split in SPLITS}
    return io.cached(
        "sib200",
        LOADER_VERSION,
        list(files.values()),
        lambda key: _build_sib200(files, key),
        params={"language": language},
        cache_dir=cache_dir,
    )


def _split_file(folder: Path, split: str) -> Path:
    for suffix in (".tsv.gz", ".tsv"):
        if (folder / f"{split}{suffix}").is_file():
            return folder / f"{split}{suffix}"
    raise DataError(f"{folder / f'{split}.tsv.gz'}: not found. {HOW_TO_GET}")


def _build_sib200(files: dict[str, Path], fingerprint: str) -> datasets.DatasetDict:
    splits = {}
    for split, path in files.items():
        ids, categories, texts = [], [], []
        for index_id, category, text in parse_sib200_file(path):
            ids.append(index_id)
            categories.append(category)
            texts.append(text)
        splits[split] = io.make_dataset(
            {"index_id": ids, "category": categories, "text": texts}, f"{fingerprint}-{split}"
        )
    return datasets.DatasetDict(splits)


def parse_sib200_file(path: Path) -> list[tuple[int, str, str]]:
    rows: list[tuple[int, str, str]] = []
    header_seen = False
    for number, line in io.read_lines(path, skip_blank=True):
        fields = tuple(_unquote(field) for field in io.split_columns(line, HEADER, path, number, separator="\t"))
        if not header_seen:
            if fields != HEADER:
                raise io.data_error(path, f"expected the header {chr(9).join(HEADER)!r}", number)
            header_seen = True
            continue
        index_text, category, text = fields
        try:
            index_id = int(index_text)
        except ValueError:
            raise io.data_error(path, f"index_id {index_text!r} is not an integer", number) from None
        if category not in CATEGORIES:
            raise io.data_error(path, f"unknown category {category!r}", number)
        if not text.strip():
            raise io.data_error(path, "empty text", number)
        rows.append((index_id, category, text))
    if not rows:
        raise io.data_error(path, "header only, no sentences")
    return rows


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field
