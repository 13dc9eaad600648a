"""CLDI word pairs and the Bergsma-500 line-aligned lists."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mmbench.data.visual_bli import load_bergsma500, load_cldi_pairs
from mmbench.errors import DataError



def test_cldi_pairs(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "imgWords_en_de.txt"
    path.write_text("insane\twahnsinnig\tA\nice cream\tEis\tN\n\nrun\tlaufen\tV\n", encoding="utf-8")
    ds = load_cldi_pairs(path, cache_dir=cache_dir)
    assert ds[:] == {
        "source": ["insane", "ice cream", "run"],
        "target": ["wahnsinnig", "Eis", "laufen"],
        "pos": ["A", "N", "V"],
    }


def test_cldi_rejects_unknown_pos(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "imgWords_en_de.txt"
    path.write_text("insane\twahnsinnig\tADJ\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"imgWords_en_de\.txt:1: part of speech 'ADJ'"):
        load_cldi_pairs(path, cache_dir=cache_dir)


def _bergsma(folder: Path, lang: str, rows: list[tuple[str, str]], encoding: str = "utf-8-sig") -> None:
    text = "original\tforeign\n" + "".join(f"{en}\t{word}\n" for en, word in rows)
    (folder / f"pictureWords.{lang}.txt").write_bytes(text.encode(encoding))


def test_bergsma_aligned_columns(tmp_path: Path, cache_dir: Path) -> None:
    _bergsma(tmp_path, "en", [("bed", "bed"), ("faun", "faun")], encoding="ascii")
    _bergsma(tmp_path, "de", [("bed", "Bett"), ("faun", "Faun")], encoding="latin-1")
    _bergsma(tmp_path, "es", [("bed", "cama"), ("faun", "fauno")])
    ds = load_bergsma500(tmp_path, cache_dir=cache_dir)
    assert ds.column_names == ["en", "de", "es"]
    assert ds[:] == {"en": ["bed", "faun"], "de": ["Bett", "Faun"], "es": ["cama", "fauno"]}
    assert load_bergsma500(tmp_path, languages=["es"], cache_dir=cache_dir).column_names == ["es"]


def test_bergsma_german_may_be_latin1_but_others_must_be_utf8(tmp_path: Path, cache_dir: Path) -> None:
    _bergsma(tmp_path, "de", [("bed", "Bett"), ("cheese", "Käse")], encoding="latin-1")
    assert load_bergsma500(tmp_path, cache_dir=cache_dir)["de"][:] == ["Bett", "Käse"]
    _bergsma(tmp_path, "fr", [("bed", "lit"), ("cheese", "fromage é")], encoding="latin-1")
    with pytest.raises(DataError, match=r"pictureWords\.fr\.txt:3: not valid utf-8"):
        load_bergsma500(tmp_path, cache_dir=cache_dir)


def test_bergsma_length_mismatch(tmp_path: Path, cache_dir: Path) -> None:
    _bergsma(tmp_path, "en", [("bed", "bed"), ("faun", "faun")])
    _bergsma(tmp_path, "nl", [("bed", "bed")])
    with pytest.raises(DataError, match=r"pictureWords\.nl\.txt: has 1 words but pictureWords\.en\.txt has 2"):
        load_bergsma500(tmp_path, cache_dir=cache_dir)


def test_bergsma_english_keys_must_agree(tmp_path: Path, cache_dir: Path) -> None:
    _bergsma(tmp_path, "en", [("bed", "bed"), ("faun", "faun")])
    _bergsma(tmp_path, "it", [("bed", "letto"), ("fawn", "fauno")])
    with pytest.raises(DataError, match=r"pictureWords\.it\.txt:3: English word 'fawn' differs"):
        load_bergsma500(tmp_path, cache_dir=cache_dir)


def test_real_cldi_lists(shared_data: Path, shared_cache: Path) -> None:
    sources = None
    for lang in ("de", "es", "fr", "it", "ru"):
        ds = load_cldi_pairs(shared_data / "visual_bli" / f"imgWords_en_{lang}.txt", cache_dir=shared_cache)
        assert len(ds) == 1771
        assert Counter(ds["pos"][:]) == {"N": 1406, "V": 206, "A": 159}
        sources = sources or ds["source"][:]
        assert ds["source"][:] == sources  # the same English words in every pair file
    de = load_cldi_pairs(shared_data / "visual_bli" / "imgWords_en_de.txt", cache_dir=shared_cache)
    assert de[0] == {"source": "unnecessary", "target": "unnötig", "pos": "A"}


def test_real_bergsma500(shared_data: Path, shared_cache: Path) -> None:
    ds = load_bergsma500(shared_data / "visual_bli" / "bergsma500", cache_dir=shared_cache)
    assert ds.column_names == ["en", "de", "es", "fr", "it", "nl"]
    assert len(ds) == 500
    assert ds[0] == {
        "en": "pseudo-scorpion",
        "de": "Pseudo-Skorpion",
        "es": "pseudo-escorpión",
        "fr": "pseudo-scorpion",
        "it": "pseudo-scorpione",
        "nl": "pseudo-schorpioen",
    }
    assert ds[499]["de"] == "Bett" and ds[499]["en"] == "bed"
    assert (ds[13]["en"], ds[13]["de"]) == ("padlock", "Vorhängeschloss")  # the German file is Latin-1
    assert not any(w.startswith("\ufeff") for lang in ds.column_names for w in ds[lang][:])
