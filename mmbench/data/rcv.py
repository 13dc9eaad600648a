"""Crosslingual document classification on RCV1/RCV2 (Klementiev et al. 2012).

Seven languages (da, de, en, es, fr, it, sv), four labels (CCAT, ECAT, GCAT, MCAT), tokenized text.
Two layouts under ``<data root>/rcv/`` are read, per split, in this order:

1. ``{lang}.{train,test}.jsonl.gz``: one JSON object per line with ``id``, ``label``, ``text``;
2. the original folder layout ``{train,test}/{lang}/{C,E,G,M}/<one file per document>``: the label
   comes from the folder (C->CCAT, E->ECAT, G->GCAT, M->MCAT), the id is the file name, the text is the
   file's whitespace-normalised content with ``{lang}:`` token prefixes (as in the multiSkip portal's
   copy) removed. Documents are ordered by label folder, then file name. Hidden files are ignored.

The data follow the Reuters corpus terms (research use, no redistribution): request RCV1/RCV2 from
NIST (https://trec.nist.gov/data/reuters/reuters.html); the document split of Klementiev et al. is
distributed with https://github.com/wammar/multilingual-embeddings-eval-portal
(``eval-data/classification/reuters_all``).
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from mmbench.data import io
from mmbench.errors import DataError

LOADER_VERSION = 1
SPLITS = ("train", "test")
LANGUAGES = ("da", "de", "en", "es", "fr", "it", "sv")
LABELS = ("CCAT", "ECAT", "GCAT", "MCAT")
FOLDER_LABELS = {"C": "CCAT", "E": "ECAT", "G": "GCAT", "M": "MCAT"}
HOW_TO_GET = (
    "RCV data go under <data root>/rcv/ as {lang}.{train,test}.jsonl.gz or {split}/{lang}/{C,E,G,M}/ "
    "folders; obtain RCV1/RCV2 from NIST (https://trec.nist.gov/data/reuters/reuters.html) and the "
    "Klementiev et al. split from https://github.com/wammar/multilingual-embeddings-eval-portal."
)


def load_rcv(root: Path, language: str, *, cache_dir: Path | None = None) -> datasets.DatasetDict:
    """``train`` and ``test`` splits of one language; columns ``id, label, text``."""
    base = Path(root) / "rcv"
    sources = {split: _find_split(base, language, split) for split in SPLITS}
    inputs: list[Path] = []
    for files in sources.values():
        inputs.extend(files)
    return io.cached(
        "rcv",
        LOADER_VERSION,
        inputs,
        lambda key: _build_rcv(sources, language, key),
        params={"language": language},
        cache_dir=cache_dir,
    )


def rcv_languages(root: Path) -> list[str]:
    """Languages of ``LANGUAGES`` whose train and test data are present in either layout."""
    base = Path(root) / "rcv"
    return [
        lang
        for lang in LANGUAGES
        if all((base / f"{lang}.{split}.jsonl.gz").is_file() or (base / split / lang).is_dir() for split in SPLITS)
    ]


def _find_split(base: Path, language: str, split: str) -> list[Path]:
    """The input files of one split: ``[jsonl]`` or the sorted document files of the folder layout."""
    jsonl = base / f"{language}.{split}.jsonl.gz"
    if jsonl.is_file():
        return [jsonl]
    folder = base / split / language
    if folder.is_dir():
        files = [
            path
            for letter in sorted(FOLDER_LABELS)
            if (folder / letter).is_dir()
            for path in sorted((folder / letter).iterdir())
            if path.is_file() and not path.name.startswith(".")
        ]
        if not files:
            raise io.data_error(folder, "no documents in the C/E/G/M label folders")
        return files
    raise DataError(f"{jsonl}: not found (nor the folder {folder}). {HOW_TO_GET}")


def _build_rcv(sources: dict[str, list[Path]], language: str, fingerprint: str) -> datasets.DatasetDict:
    splits = {}
    for split, files in sources.items():
        if len(files) == 1 and files[0].name.endswith(".jsonl.gz"):
            rows = _read_jsonl(files[0])
        else:
            rows = [_read_document(path, language) for path in files]
        splits[split] = io.make_dataset(
            {"id": [r[0] for r in rows], "label": [r[1] for r in rows], "text": [r[2] for r in rows]},
            f"{fingerprint}-{split}",
        )
    return datasets.DatasetDict(splits)


def _read_jsonl(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for number, line in io.read_lines(path, skip_blank=True):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise io.data_error(path, f"invalid JSON ({exc.msg} at column {exc.colno})", number) from None
        if not isinstance(record, dict) or not {"id", "label", "text"} <= record.keys():
            raise io.data_error(path, "expected an object with keys id, label, text", number)
        label, text = record["label"], record["text"]
        if label not in LABELS:
            raise io.data_error(path, f"unknown label {label!r}; expected one of {', '.join(LABELS)}", number)
        if not isinstance(text, str) or not text.strip():
            raise io.data_error(path, "empty or non-string text", number)
        rows.append((str(record["id"]), label, text))
    return rows


def _read_document(path: Path, language: str) -> tuple[str, str, str]:
    prefix = f"{language}:"
    tokens = [
        token[len(prefix) :] if token.startswith(prefix) and len(token) > len(prefix) else token
        for _, line in io.read_lines(path, skip_blank=True)
        for token in line.split()
    ]
    return path.name, FOLDER_LABELS[path.parent.name], " ".join(tokens)
