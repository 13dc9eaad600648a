"""Word-similarity loader: the three file formats, language handling, real-data counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbench.data import wordsim
from mmbench.data.wordsim import load_wordsim
from mmbench.errors import DataError



def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_prefixed_file_takes_languages_from_prefixes(tmp_path: Path, cache_dir: Path) -> None:
    path = _write(tmp_path / "en+de.txt", "en:cord\tde:lächeln\t0.01\nen:Brother\tde:Mönch\t2.89\n")
    ds = load_wordsim(path, cache_dir=cache_dir)
    assert ds.column_names == ["word1", "word2", "lang1", "lang2", "score"]
    assert ds.features["score"].dtype == "float64"
    assert ds[:] == {
        "word1": ["cord", "Brother"],  # case kept: lowercasing is the metric's decision
        "word2": ["lächeln", "Mönch"],
        "lang1": ["en", "en"],
        "lang2": ["de", "de"],
        "score": [0.01, 2.89],
    }
    assert len(load_wordsim(path, languages=("en", "de"), cache_dir=cache_dir)) == 2


def test_prefixed_words_may_contain_spaces(tmp_path: Path, cache_dir: Path) -> None:
    path = _write(tmp_path / "fa.txt", "fa:نیم روز\tfa:ظهر\t3.75\n")
    assert load_wordsim(path, cache_dir=cache_dir)[0]["word1"] == "نیم روز"


def test_languages_must_agree_with_prefixes(tmp_path: Path, cache_dir: Path) -> None:
    path = _write(tmp_path / "en+de.txt", "en:cord\tde:lächeln\t0.01\n")
    with pytest.raises(DataError, match=r"en\+de\.txt:1: languages en-de .* disagree"):
        load_wordsim(path, languages=("de", "en"), cache_dir=cache_dir)


def test_plain_files_tab_space_and_double_tab(tmp_path: Path, cache_dir: Path) -> None:
    tab = _write(tmp_path / "EN.txt", "Car\tautomobile\t3.92\r\n\r\n")
    space = _write(tmp_path / "DE.txt", "Auto Fahrt 2.75\n")
    double_tab = _write(tmp_path / "FR.txt", "corde\tsourire\t\t0.00\n")
    ds = load_wordsim([tab, space, double_tab], languages=("xx", "xx"), cache_dir=cache_dir)
    assert ds["word1"][:] == ["Car", "Auto", "corde"]
    assert ds["score"][:] == [3.92, 2.75, 0.0]
    assert set(ds["lang1"][:]) == {"xx"}


def test_plain_file_needs_languages(tmp_path: Path, cache_dir: Path) -> None:
    path = _write(tmp_path / "plain.txt", "car automobile 3.92\n")
    with pytest.raises(DataError, match=r"plain\.txt: plain word-pair file .* languages="):
        load_wordsim(path, cache_dir=cache_dir)


def test_mixed_prefixed_and_plain_lines_are_rejected(tmp_path: Path, cache_dir: Path) -> None:
    path = _write(tmp_path / "mixed.txt", "en:a\tde:b\t1\nc\td\t2\n")
    with pytest.raises(DataError, match=r"mixed\.txt:2: expected language-prefixed"):
        load_wordsim(path, cache_dir=cache_dir)


def test_second_load_comes_from_the_arrow_cache(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "en+de.txt", "en:cord\tde:lächeln\t0.01\n")
    calls = []
    parse = wordsim.parse_wordsim_file
    monkeypatch.setattr(wordsim, "parse_wordsim_file", lambda *a: calls.append(a) or parse(*a))
    first = load_wordsim(path, cache_dir=cache_dir)
    second = load_wordsim(path, cache_dir=cache_dir)
    assert len(calls) == 1
    assert first[:] == second[:]
    # Other parameters are another dataset: parsed again.
    load_wordsim(path, languages=("en", "de"), cache_dir=cache_dir)
    assert len(calls) == 2


def test_real_crosslingual_rg65_en_de(shared_data: Path, shared_cache: Path) -> None:
    folder = shared_data / "wordsim" / "crosslingual"
    ds = load_wordsim([folder / "en+de.rg65.dev.txt", folder / "en+de.rg65.test.txt"], cache_dir=shared_cache)
    assert len(ds) == 125  # 63 dev + 62 test
    assert ds[0] == {"word1": "cord", "word2": "lächeln", "lang1": "en", "lang2": "de", "score": 0.01}
    assert ds[63]["word1"] == "monk"  # the test half follows the dev half
    assert set(ds["lang1"][:]) == {"en"} and set(ds["lang2"][:]) == {"de"}


@pytest.mark.parametrize(
    ("relative", "rows"),
    [
        ("monolingual/en/EN-SIMLEX-999.txt", 999),
        ("monolingual/en/EN-MTurk-287.txt", 287),  # no final newline
        ("monolingual/en/EN-SimVerb-3500.txt", 3500),  # CRLF
        ("monolingual/de/DE_GUR350.txt", 350),  # space separated
        ("monolingual/fr/FR_RG-65.txt", 65),  # doubled tabs
        ("monolingual/it/IT_SIMLEX-999.txt", 999),
        ("monolingual/es/ES_RG-65.txt", 65),
    ],
)
def test_real_monolingual_sets(shared_data: Path, shared_cache: Path, relative: str, rows: int) -> None:
    path = shared_data / "wordsim" / relative
    lang = path.parent.name
    ds = load_wordsim(path, languages=(lang, lang), cache_dir=shared_cache)
    assert len(ds) == rows
    assert all(w.strip() == w and w for w in ds["word1"][:] + ds["word2"][:])


def test_real_prefixed_monolingual_fa(shared_data: Path, shared_cache: Path) -> None:
    ds = load_wordsim(shared_data / "wordsim" / "monolingual" / "fa" / "fa.rg65.txt", cache_dir=shared_cache)
    assert len(ds) == 65
    assert sum(" " in w for w in ds["word1"][:] + ds["word2"][:]) == 13  # multi-word Persian entries
