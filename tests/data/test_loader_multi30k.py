"""Multi30k loader: task 1 / task 2 joins by image, optional features, and their checks."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mmbench.data import multi30k
from mmbench.data.io import feature_array
from mmbench.data.multi30k import load_multi30k, multi30k_languages
from mmbench.errors import DataError



def _gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))


def _text(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _small_tree(root: Path, images: list[str], task1_images: list[str] | None = None) -> Path:
    """Task 2 test_2016 with two images, and task 1's test_2016_flickr list + features."""
    base = root / "multi30k"
    _text(base / "task2" / "image_splits" / "test_2016_images.txt", images)
    for k in range(1, 6):
        for lang in ("en", "de"):
            _gz(base / "task2" / "raw" / f"test_2016.{k}.{lang}.gz", [f"{lang}{k} caption of {im}" for im in images])
    _text(base / "task1" / "image_splits" / "test_2016_flickr.txt", task1_images or images)
    _gz(base / "task1" / "raw" / "test_2016_flickr.en.gz", [f"only {im}" for im in (task1_images or images)])
    features = np.arange(len(images) * 4, dtype=np.float16).reshape(len(images), 4)
    (base / "features").mkdir()
    np.save(base / "features" / "test_2016_flickr-resnet50-avgpool.npy", features)
    return base


def test_task2_rows_join_five_captions_per_language(tmp_path: Path, cache_dir: Path) -> None:
    _small_tree(tmp_path, ["1.jpg", "2.jpg"])
    ds = load_multi30k(tmp_path, task=2, split="test_2016", cache_dir=cache_dir)
    assert ds.column_names == ["image", "captions_en", "captions_de", "features"]
    assert ds[1]["image"] == "2.jpg"
    assert ds[1]["captions_de"] == [f"de{k} caption of 2.jpg" for k in range(1, 6)]
    np.testing.assert_array_equal(feature_array(ds), np.arange(8, dtype=np.float32).reshape(2, 4))


def test_task1_columns_and_languages(tmp_path: Path, cache_dir: Path) -> None:
    _small_tree(tmp_path, ["1.jpg", "2.jpg"])
    ds = load_multi30k(tmp_path, task=1, split="test_2016_flickr", features=False, cache_dir=cache_dir)
    assert ds[:] == {"image": ["1.jpg", "2.jpg"], "caption_en": ["only 1.jpg", "only 2.jpg"]}
    with pytest.raises(DataError, match=r"test_2016_flickr\.fr\.gz: not found"):
        load_multi30k(tmp_path, task=1, split="test_2016_flickr", languages=["fr"], cache_dir=cache_dir)
    with pytest.raises(DataError, match="unknown Multi30k task-1 split 'test_2016'"):
        load_multi30k(tmp_path, task=1, split="test_2016", cache_dir=cache_dir)


def test_task2_features_need_agreeing_image_lists(tmp_path: Path, cache_dir: Path) -> None:
    base = _small_tree(tmp_path, ["1.jpg", "2.jpg"], task1_images=["2.jpg", "1.jpg"])
    with pytest.raises(DataError, match=r"avgpool\.npy: rows follow .*test_2016_flickr\.txt, whose image list differs"):
        load_multi30k(tmp_path, task=2, split="test_2016", cache_dir=cache_dir)
    assert (
        "features"
        not in load_multi30k(tmp_path, task=2, split="test_2016", features=False, cache_dir=cache_dir).column_names
    )
    assert base.is_dir()


def test_caption_count_must_match_images(tmp_path: Path, cache_dir: Path) -> None:
    base = _small_tree(tmp_path, ["1.jpg", "2.jpg"])
    _gz(base / "task2" / "raw" / "test_2016.3.en.gz", ["just one"])
    with pytest.raises(DataError, match=r"test_2016\.3\.en\.gz: has 1 captions but .* lists 2 images"):
        load_multi30k(tmp_path, task=2, split="test_2016", cache_dir=cache_dir)


def test_nan_features_rejected(tmp_path: Path, cache_dir: Path) -> None:
    base = _small_tree(tmp_path, ["1.jpg", "2.jpg"])
    np.save(base / "features" / "test_2016_flickr-resnet50-avgpool.npy", np.array([[0, 1], [np.nan, 2]], np.float32))
    with pytest.raises(DataError, match=r"avgpool\.npy: contains NaN"):
        load_multi30k(tmp_path, task=1, split="test_2016_flickr", cache_dir=cache_dir)


def test_new_feature_file_invalidates_cache(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _small_tree(tmp_path, ["1.jpg", "2.jpg"])
    feature_file = base / "features" / "test_2016_flickr-resnet50-avgpool.npy"
    feature_file.rename(tmp_path / "aside.npy")
    calls = []
    build = multi30k._build_multi30k
    monkeypatch.setattr(multi30k, "_build_multi30k", lambda *a: calls.append(a) or build(*a))
    assert "features" not in load_multi30k(tmp_path, task=1, split="test_2016_flickr", cache_dir=cache_dir).column_names
    assert "features" not in load_multi30k(tmp_path, task=1, split="test_2016_flickr", cache_dir=cache_dir).column_names
    assert len(calls) == 1
    (tmp_path / "aside.npy").rename(feature_file)
    assert "features" in load_multi30k(tmp_path, task=1, split="test_2016_flickr", cache_dir=cache_dir).column_names
    assert len(calls) == 2


def test_real_task1_train(shared_data: Path, shared_cache: Path) -> None:
    ds = load_multi30k(shared_data, task=1, split="train", cache_dir=shared_cache)
    assert len(ds) == 29000
    assert ds.column_names == ["image", "caption_en", "caption_de", "caption_fr", "caption_cs"]
    assert ds[0]["image"] == "1000092795.jpg"
    assert ds[0]["caption_en"] == "Two young, White males are outside near many bushes."


def test_real_task2_test_2016_with_features(shared_data: Path, shared_cache: Path) -> None:
    ds = load_multi30k(shared_data, task=2, split="test_2016", cache_dir=shared_cache)
    assert len(ds) == 1000
    assert ds.column_names == ["image", "captions_en", "captions_de", "features"]
    assert all(len(c) == 5 and all(c) for c in ds["captions_en"][:] + ds["captions_de"][:])
    assert ds[0]["captions_de"][0] == "Der Mann trägt eine orange Wollmütze."
    features = feature_array(ds)
    assert features.shape == (1000, 2048) and features.dtype == np.float32
    raw = np.load(shared_data / "multi30k" / "features" / "test_2016_flickr-resnet50-avgpool.npy")
    np.testing.assert_array_equal(features, raw.astype(np.float32))
    task1 = load_multi30k(shared_data, task=1, split="test_2016_flickr", languages=["de"], cache_dir=shared_cache)
    assert task1["image"][:] == ds["image"][:]
    assert feature_array(task1).shape == (1000, 2048)


def test_real_languages_per_split(shared_data: Path) -> None:
    assert multi30k_languages(shared_data, task=1, split="train") == ["en", "de", "fr", "cs"]
    assert multi30k_languages(shared_data, task=1, split="test_2017_mscoco") == ["en", "de", "fr"]
    assert multi30k_languages(shared_data, task=2, split="val") == ["en", "de"]


def test_real_task2_test_2017_has_no_captions(shared_data: Path, shared_cache: Path) -> None:
    with pytest.raises(DataError, match="no caption files for task-2 split 'test_2017'"):
        load_multi30k(shared_data, task=2, split="test_2017", cache_dir=shared_cache)
