"""MUSE dictionary loader and path mapping."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mmbench.data import muse
from mmbench.data.muse import load_muse_dictionary, muse_dictionary_path
from mmbench.errors import DataError



def test_paths_follow_muse_naming(tmp_path: Path) -> None:
    base = tmp_path / "muse" / "dictionaries"
    assert muse_dictionary_path(tmp_path, "en", "de", "full") == base / "en-de.txt.gz"
    assert muse_dictionary_path(tmp_path, "en", "de", "train") == base / "en-de.0-5000.txt.gz"
    assert muse_dictionary_path(tmp_path, "de", "en", "test") == base / "de-en.5000-6500.txt.gz"
    with pytest.raises(DataError, match="unknown MUSE dictionary split 'dev'"):
        muse_dictionary_path(tmp_path, "en", "de", "dev")  # type: ignore[arg-type]


def test_rows_keep_order_duplicates_and_separators(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "en-de.txt.gz"
    path.write_bytes(gzip.compress(b"okay ok\nokay\tokay\nokay ok\n\nWaves Welle\n"))
    ds = load_muse_dictionary(path, cache_dir=cache_dir)
    assert ds[:] == {"source": ["okay", "okay", "okay", "Waves"], "target": ["ok", "okay", "ok", "Welle"]}


def test_missing_dictionary_says_where_to_get_it(tmp_path: Path, cache_dir: Path) -> None:
    path = muse_dictionary_path(tmp_path, "en", "xx", "test")
    with pytest.raises(DataError, match=r"en-xx\.5000-6500\.txt\.gz: not found\. .*facebookresearch/MUSE"):
        load_muse_dictionary(path, cache_dir=cache_dir)


def test_second_load_is_not_parsed_again(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "en-de.txt"
    path.write_text("a b\n", encoding="utf-8")
    calls = []
    build = muse._build_muse
    monkeypatch.setattr(muse, "_build_muse", lambda *a: calls.append(a) or build(*a))
    load_muse_dictionary(path, cache_dir=cache_dir)
    assert load_muse_dictionary(path, cache_dir=cache_dir)[0] == {"source": "a", "target": "b"}
    assert len(calls) == 1


def test_real_en_de_test_dictionary(shared_data: Path, shared_cache: Path) -> None:
    ds = load_muse_dictionary(muse_dictionary_path(shared_data, "en", "de", "test"), cache_dir=shared_cache)
    assert len(ds) == 3660
    assert len(ds.unique("source")) == 1500
    assert ds[0] == {"source": "okay", "target": "ok"} and ds[1] == {"source": "okay", "target": "okay"}


def test_real_ja_en_train_dictionary_loads(shared_data: Path, shared_cache: Path) -> None:
    ds = load_muse_dictionary(muse_dictionary_path(shared_data, "ja", "en", "train"), cache_dir=shared_cache)
    assert (len(ds), len(ds.unique("source"))) == (6819, 4436)
    assert ds[0] == {"source": "から", "target": "from"}
