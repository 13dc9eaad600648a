"""RCV1/RCV2 document classification loader: jsonl and the original folder layout."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from mmbench.data.rcv import LANGUAGES, load_rcv, rcv_languages
from mmbench.errors import DataError



def _write_folder_tree(root: Path) -> None:
    docs = {
        ("train", "C", "100065"): "en:Shares en:rose en:.\n",
        ("train", "M", "100066"): "en:Gold en:fell\nen:sharply en:.\n",
        ("train", "E", "2001newsML"): "Plain tokens ,  no prefix\n",
        ("test", "G", "300"): "en:Elections en:in en:ratio en:12:30 en:\n",
        ("test", "C", "200"): "en:Profit en:up\n",
    }
    for (split, letter, name), text in docs.items():
        folder = root / "rcv" / split / "en" / letter
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    (root / "rcv" / "test" / "en" / "C" / ".DS_Store").write_bytes(b"\x00\x01")


def test_folder_layout(tmp_path: Path, cache_dir: Path) -> None:
    _write_folder_tree(tmp_path)
    assert rcv_languages(tmp_path) == ["en"]
    ds = load_rcv(tmp_path, "en", cache_dir=cache_dir)
    assert set(ds) == {"train", "test"}
    assert ds["train"][:] == {
        "id": ["100065", "2001newsML", "100066"],  # label folder C, E, G, M order, then file name
        "label": ["CCAT", "ECAT", "MCAT"],
        "text": ["Shares rose .", "Plain tokens , no prefix", "Gold fell sharply ."],
    }
    assert ds["test"][:] == {
        "id": ["200", "300"],
        "label": ["CCAT", "GCAT"],
        "text": ["Profit up", "Elections in ratio 12:30 en:"],
    }


def test_jsonl_preferred_over_folder_and_validated(tmp_path: Path, cache_dir: Path) -> None:
    _write_folder_tree(tmp_path)
    rows = [{"id": "7", "label": "GCAT", "text": "a b c"}]
    (tmp_path / "rcv" / "en.train.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    )
    ds = load_rcv(tmp_path, "en", cache_dir=cache_dir)
    assert ds["train"]["id"][:] == ["7"]
    assert len(ds["test"]) == 2  # still from the folder layout

    bad = [{"id": "8", "label": "XCAT", "text": "a"}]
    (tmp_path / "rcv" / "en.train.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in rows + bad).encode())
    )
    with pytest.raises(DataError, match=r"en\.train\.jsonl\.gz:2: unknown label 'XCAT'"):
        load_rcv(tmp_path, "en", cache_dir=cache_dir)


def test_empty_document_and_missing_language(tmp_path: Path, cache_dir: Path) -> None:
    _write_folder_tree(tmp_path)
    empty = tmp_path / "rcv" / "test" / "en" / "M" / "999"
    empty.parent.mkdir()
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"M/999: file is empty$"):
        load_rcv(tmp_path, "en", cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"rcv/xx\.train\.jsonl\.gz: not found .*NIST"):
        load_rcv(tmp_path, "xx", cache_dir=cache_dir)


def test_real_rcv_counts(shared_data: Path, shared_cache: Path) -> None:
    assert rcv_languages(shared_data) == list(LANGUAGES)
    test_sizes = {}
    for lang in LANGUAGES:
        ds = load_rcv(shared_data, lang, cache_dir=shared_cache)
        assert len(ds["train"]) == 1000, lang
        test_sizes[lang] = len(ds["test"])
    assert test_sizes == {"da": 1726, "de": 5000, "en": 5000, "es": 2999, "fr": 5000, "it": 4318, "sv": 2076}
    en = load_rcv(shared_data, "en", cache_dir=shared_cache)
    assert Counter(en["test"]["label"][:]) == {"CCAT": 2225, "MCAT": 1204, "GCAT": 1177, "ECAT": 394}
    assert en["test"][0]["id"] == "100015newsML"
    assert en["test"][0]["text"].startswith("All American Communications issues debt .")
