"""SIB-200 loader: header, CSV-style quoting, validation, real counts."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from mmbench.data.sib200 import CATEGORIES, load_sib200, sib200_languages
from mmbench.errors import DataError



def _write_language(root: Path, lang: str, body: str, *, compress: bool = True) -> None:
    folder = root / "sib200" / lang
    folder.mkdir(parents=True)
    text = "index_id\tcategory\ttext\n" + body
    for split in ("train", "dev", "test"):
        if compress:
            (folder / f"{split}.tsv.gz").write_bytes(gzip.compress(text.encode()))
        else:
            (folder / f"{split}.tsv").write_text(text, encoding="utf-8")


def test_quoted_fields_are_unquoted(tmp_path: Path, cache_dir: Path) -> None:
    _write_language(tmp_path, "xxx_Latn", '1\thealth\t"He said ""hi"" today."\n2\ttravel\tA "quoted" word\n')
    ds = load_sib200(tmp_path, "xxx_Latn", cache_dir=cache_dir)
    assert ds["dev"][:] == {
        "index_id": [1, 2],
        "category": ["health", "travel"],
        "text": ['He said "hi" today.', 'A "quoted" word'],
    }


def test_plain_tsv_and_language_listing(tmp_path: Path, cache_dir: Path) -> None:
    _write_language(tmp_path, "bbb_Latn", "3\tsports\tGoal.\n", compress=False)
    _write_language(tmp_path, "aaa_Arab", "3\tsports\tGoal.\n")
    (tmp_path / "sib200" / "not_a_language").mkdir()
    assert sib200_languages(tmp_path) == ["aaa_Arab", "bbb_Latn"]
    assert load_sib200(tmp_path, "bbb_Latn", cache_dir=cache_dir)["test"]["text"][:] == ["Goal."]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x\thealth\ttext\n", r"train\.tsv\.gz:2: index_id 'x' is not an integer"),
        ("1\tcooking\ttext\n", r"train\.tsv\.gz:2: unknown category 'cooking'"),
        ("", r"train\.tsv\.gz: header only"),
    ],
)
def test_invalid_rows(tmp_path: Path, cache_dir: Path, body: str, message: str) -> None:
    _write_language(tmp_path, "xxx_Latn", body)
    with pytest.raises(DataError, match=message):
        load_sib200(tmp_path, "xxx_Latn", cache_dir=cache_dir)


def test_missing_header(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "sib200" / "xxx_Latn"
    folder.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (folder / f"{split}.tsv").write_text("1\thealth\ttext\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.tsv:1: expected the header"):
        load_sib200(tmp_path, "xxx_Latn", cache_dir=cache_dir)


def test_real_sib200(shared_data: Path, shared_cache: Path) -> None:
    languages = sib200_languages(shared_data)
    assert len(languages) == 205
    assert {"eng_Latn", "deu_Latn", "jpn_Jpan", "zul_Latn", "ace_Arab"} <= set(languages)
    for lang in ("eng_Latn", "deu_Latn", "ace_Arab"):
        ds = load_sib200(shared_data, lang, cache_dir=shared_cache)
        assert {split: len(part) for split, part in ds.items()} == {"train": 701, "dev": 99, "test": 204}
        assert set(ds["train"]["category"][:]) == set(CATEGORIES)
    eng = load_sib200(shared_data, "eng_Latn", cache_dir=shared_cache)
    assert eng["train"][0]["index_id"] == 431 and eng["train"][0]["category"] == "geography"
    assert eng["train"][0]["text"].startswith("Turkey is encircled by seas on three sides")
    # The same Flores sentence ids and topics in every language.
    deu = load_sib200(shared_data, "deu_Latn", cache_dir=shared_cache)
    assert deu["test"]["index_id"][:] == eng["test"]["index_id"][:]
    assert Counter(deu["test"]["category"][:]) == Counter(eng["test"]["category"][:])
    # ace_Arab has CSV-quoted sentences: no stray quote characters survive at the edges.
    ace = load_sib200(shared_data, "ace_Arab", cache_dir=shared_cache)
    assert not any(t.startswith('"') and t.endswith('"') for split in ace.values() for t in split["text"][:])
