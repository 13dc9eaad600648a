"""MUSE bilingual dictionaries (Conneau et al. 2018), one ``source target`` pair per line.

Files: ``<data root>/muse/dictionaries/{src}-{tgt}.txt.gz`` (full), ``.0-5000.txt.gz`` (train) and
``.5000-6500.txt.gz`` (test); gzipped or plain text both load. A source word may have several lines
(several correct translations); rows keep the file's order and duplicates.

Get the files from https://github.com/facebookresearch/MUSE (``data/get_evaluation.sh``, or
https://dl.fbaipublicfiles.com/arrival/dictionaries/{src}-{tgt}.5000-6500.txt), licence CC BY-NC 4.0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import datasets

from mmbench.data import io
from mmbench.errors import DataError

LOADER_VERSION = 1
HOW_TO_GET = (
    "MUSE dictionaries go under <data root>/muse/dictionaries/ as {src}-{tgt}[.0-5000|.5000-6500].txt.gz; "
    "get them from https://github.com/facebookresearch/MUSE (data/get_evaluation.sh) (CC BY-NC 4.0)."
)
SPLIT_SUFFIXES = {"full": "", "train": ".0-5000", "test": ".5000-6500"}
COLUMNS = ("source", "target")


def muse_dictionary_path(root: Path, src: str, tgt: str, split: Literal["full", "train", "test"]) -> Path:
    """Where the ``src``-``tgt`` dictionary of ``split`` lives under the data root (may not exist)."""
    if split not in SPLIT_SUFFIXES:
        raise DataError(f"unknown MUSE dictionary split {split!r}; expected one of {', '.join(SPLIT_SUFFIXES)}")
    return Path(root) / "muse" / "dictionaries" / f"{src}-{tgt}{SPLIT_SUFFIXES[split]}.txt.gz"


def load_muse_dictionary(path: Path, *, cache_dir: Path | None = None) -> datasets.Dataset:
    """Columns ``source, target``: one row per line, in file order, duplicates kept."""
    path = io.require_file(Path(path), HOW_TO_GET)
    return io.cached("muse", LOADER_VERSION, [path], lambda key: _build_muse(path, key), cache_dir=cache_dir)


def _build_muse(path: Path, fingerprint: str) -> datasets.Dataset:
    sources: list[str] = []
    targets: list[str] = []
    for number, line in io.read_lines(path, skip_blank=True):
        source, target = io.split_columns(line, COLUMNS, path, number)
        sources.append(source)
        targets.append(target)
    return io.make_dataset({"source": sources, "target": targets}, fingerprint)
