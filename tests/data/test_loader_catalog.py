"""The data catalog: presence, counts via the loaders, helpful messages for missing data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbench.data.catalog import CATALOG, catalog_entry, catalog_status, dataset_counts
from mmbench.errors import DataError



def test_entries_are_complete_and_unique() -> None:
    names = [entry.name for entry in CATALOG]
    assert len(names) == len(set(names))
    for entry in CATALOG:
        assert entry.paths and entry.license and entry.source and entry.obtain, entry.name
        assert all(not Path(p).is_absolute() for p in entry.paths)


def test_status_on_empty_root(tmp_path: Path) -> None:
    status = catalog_status(tmp_path)
    assert [s["name"] for s in status] == [e.name for e in CATALOG]
    assert not any(s["present"] for s in status)
    assert {"name", "path", "present", "license"} <= set(status[0])


def test_absent_dataset_says_what_is_missing_and_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        dataset_counts("muse-dictionaries", tmp_path)
    message = str(exc.value)
    assert "missing muse/dictionaries" in message and "facebookresearch/MUSE" in message and "CC BY-NC" in message
    with pytest.raises(DataError, match="unknown dataset 'nope'; known: multi30k-task1"):
        catalog_entry("nope")


def test_counts_of_a_dataset_written_in_place(tmp_path: Path, cache_dir: Path) -> None:
    coco = tmp_path / "coco"
    coco.mkdir()
    images = [
        {"filename": f"{i}.jpg", "cocoid": i, "split": split, "sentences": [{"raw": f"c{k}"} for k in range(5)]}
        for i, split in enumerate(["train", "test", "test", "restval"])
    ]
    (coco / "dataset_coco.json").write_text(json.dumps({"images": images}), encoding="utf-8")
    assert next(s for s in catalog_status(tmp_path) if s["name"] == "coco-karpathy")["present"]
    assert dataset_counts("coco-karpathy", tmp_path, cache_dir=cache_dir) == {
        "train": {"images": 1, "captions": 5},
        "restval": {"images": 1, "captions": 5},
        "test": {"images": 2, "captions": 10},
    }


def test_real_status(shared_data: Path) -> None:
    present = {s["name"] for s in catalog_status(shared_data) if s["present"]}
    assert {
        "multi30k-task1",
        "multi30k-task2",
        "multi30k-features",
        "wordsim-crosslingual",
        "wordsim-monolingual",
        "muse-dictionaries",
        "rcv",
        "sib200",
        "cldi",
        "bergsma500",
    } <= present


def test_real_counts(shared_data: Path, shared_cache: Path) -> None:
    cldi = dataset_counts("cldi", shared_data, cache_dir=shared_cache)
    assert cldi["en-de"] == {"pairs": 1771, "A": 159, "N": 1406, "V": 206}
    assert set(cldi) == {"en-de", "en-es", "en-fr", "en-it", "en-ru"}
    crosslingual = dataset_counts("wordsim-crosslingual", shared_data, cache_dir=shared_cache)
    assert len(crosslingual) == 30
    assert crosslingual["en+de.rg65.dev.txt"] + crosslingual["en+de.rg65.test.txt"] == 125
    monolingual = dataset_counts("wordsim-monolingual", shared_data, cache_dir=shared_cache)
    assert monolingual["en/EN-SIMLEX-999.txt"] == 999 and monolingual["fa/fa.rg65.txt"] == 65
    rcv = dataset_counts("rcv", shared_data, cache_dir=shared_cache)
    assert rcv["en"] == {"train": 1000, "test": 5000} and len(rcv) == 7
    assert dataset_counts("bergsma500", shared_data, cache_dir=shared_cache) == {
        "words": 500,
        "languages": ["en", "de", "es", "fr", "it", "nl"],
    }
    features = dataset_counts("multi30k-features", shared_data, cache_dir=shared_cache)
    assert features == {"test_2016_flickr": {"images": 1000, "dim": 2048}}
    task2 = dataset_counts("multi30k-task2", shared_data, cache_dir=shared_cache)
    assert task2 == {
        s: {"images": n, "languages": ["en", "de"]} for s, n in [("train", 29000), ("val", 1014), ("test_2016", 1000)]
    }
