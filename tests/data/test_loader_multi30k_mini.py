"""Multi30k-mini: the fixed 700/100/200 split of the test-2016 photos, its columns, and a feature sanity check."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import datasets
import numpy as np
import pytest

from mmbench.data import multi30k_mini
from mmbench.data.io import feature_array
from mmbench.data.multi30k_mini import MINI_PROTOCOL, load_multi30k_mini, multi30k_mini_split_ids
from mmbench.errors import DataError

FEATURES = Path("multi30k") / "features" / "test_2016_flickr-resnet50-avgpool.npy"
TASK1_IMAGES = Path("multi30k") / "task1" / "image_splits" / "test_2016_flickr.txt"


@pytest.fixture(scope="module")
def mini(shared_data: Path, shared_cache: Path) -> datasets.DatasetDict:
    return load_multi30k_mini(shared_data, cache_dir=shared_cache)


def _official_images(shared_data: Path) -> list[str]:
    return (shared_data / TASK1_IMAGES).read_text(encoding="utf-8").split()


def _expected_split(images: list[str]) -> dict[str, set[str]]:
    """The protocol recomputed from its description: sha256(protocol + name), ascending; 200 test, 100 val."""
    ranked = sorted(images, key=lambda name: hashlib.sha256(f"{MINI_PROTOCOL}{name}".encode()).hexdigest())
    return {"test": set(ranked[:200]), "val": set(ranked[200:300]), "train": set(ranked[300:])}


def test_name_and_docstring_say_it_is_not_the_official_protocol() -> None:
    assert MINI_PROTOCOL == "multi30k-mini-v1"
    doc = multi30k_mini.__doc__ or ""
    assert "NOT the official Multi30k protocol" in doc
    assert "29,000" in doc and "1,014" in doc


def test_real_split_sizes_disjoint_and_cover_test_2016(shared_data: Path, mini: datasets.DatasetDict) -> None:
    assert list(mini) == ["train", "val", "test"]
    assert {split: len(part) for split, part in mini.items()} == {"train": 700, "val": 100, "test": 200}
    names = {split: part["image"][:] for split, part in mini.items()}
    assert sum(len(set(v)) for v in names.values()) == 1000  # no duplicates, no overlap
    assert set().union(*names.values()) == set(_official_images(shared_data))


def test_real_split_is_the_documented_hash_split(shared_data: Path, mini: datasets.DatasetDict) -> None:
    official = _official_images(shared_data)
    expected = _expected_split(official)
    ids = multi30k_mini_split_ids(shared_data)
    position = {name: i for i, name in enumerate(official)}
    for split, part in mini.items():
        assert set(part["image"][:]) == expected[split]
        assert part["image"][:] == ids[split]
        rows = [position[name] for name in ids[split]]
        assert rows == sorted(rows), f"{split} rows are not in official file order"
    assert ids["test"][:3] == sorted(expected["test"], key=position.__getitem__)[:3]


def test_real_rows_have_all_captions(shared_data: Path, mini: datasets.DatasetDict) -> None:
    assert mini["train"].column_names == [
        "image",
        "features",
        "captions_en",
        "captions_de",
        "caption_en",
        "caption_de",
        "caption_fr",
        "caption_cs",
    ]
    for part in mini.values():
        table = part.select_columns([c for c in part.column_names if c != "features"])[:]
        for lang in ("en", "de"):
            assert all(
                len(captions) == 5 and all(c.strip() for c in captions) for captions in table[f"captions_{lang}"]
            )
        for lang in ("en", "de", "fr", "cs"):
            assert all(caption.strip() for caption in table[f"caption_{lang}"])
    # A known image: task-1 and task-2 captions land on the same row (joined by file name).
    row = next(
        r for r in mini["test"].select_columns(["image", "caption_de", "captions_en"]) if r["image"] == "101362133.jpg"
    )
    assert row["caption_de"] == "Ein Mädchen in einem Karateanzug bricht ein Brett mit einem Tritt."
    assert "A girl breaking boards by using karate." in row["captions_en"]


def test_real_features_are_the_matching_npy_rows(shared_data: Path, mini: datasets.DatasetDict) -> None:
    raw = np.load(shared_data / FEATURES).astype(np.float32)
    position = {name: i for i, name in enumerate(_official_images(shared_data))}
    for part in mini.values():
        features = feature_array(part)
        assert features.shape == (len(part), 2048) and features.dtype == np.float32
        np.testing.assert_array_equal(features, raw[[position[name] for name in part["image"][:]]])


def _bag_of_words(caption_lists: list[list[str]], vocabulary: dict[str, int]) -> np.ndarray:
    counts = np.zeros((len(caption_lists), len(vocabulary)))
    for row, captions in enumerate(caption_lists):
        for word in re.findall(r"[a-z]+", " ".join(captions).lower()):
            if word in vocabulary:
                counts[row, vocabulary[word]] += 1
    counts = np.log1p(counts)
    return counts / np.maximum(np.linalg.norm(counts, axis=1, keepdims=True), 1e-12)


def _top10_share(train_text, train_images, test_text, test_images, ridge: float = 1.0) -> float:
    """Dual-form ridge text -> image features; share of test texts whose own image ranks in the top 10."""
    mean, scale = train_images.mean(0), train_images.std(0) + 1e-6
    targets, gallery = (train_images - mean) / scale, (test_images - mean) / scale
    weights = np.linalg.solve(train_text @ train_text.T + ridge * np.eye(len(train_text)), targets)
    predicted = test_text @ train_text.T @ weights
    predicted /= np.linalg.norm(predicted, axis=1, keepdims=True)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = predicted @ gallery.T
    rank = (scores > np.diag(scores)[:, None]).sum(axis=1)
    return float((rank < 10).mean())


def test_real_features_carry_signal_ridge_from_captions(mini: datasets.DatasetDict) -> None:
    train, test = mini["train"], mini["test"]
    train_captions, test_captions = train["captions_en"][:], test["captions_en"][:]
    words = sorted({w for captions in train_captions for w in re.findall(r"[a-z]+", " ".join(captions).lower())})
    vocabulary = {word: i for i, word in enumerate(words)}
    train_text, test_text = _bag_of_words(train_captions, vocabulary), _bag_of_words(test_captions, vocabulary)
    train_images = feature_array(train).astype(np.float64)
    test_images = feature_array(test).astype(np.float64)

    share = _top10_share(train_text, train_images, test_text, test_images)
    assert share > 0.30, f"top-10 among 200 for {share:.1%} of test images (chance 5%; measured ~71%)"
    # Control: with the training pairs shuffled the map learns nothing and retrieval falls to chance.
    shuffled = np.random.default_rng(0).permutation(len(train_images))
    control = _top10_share(train_text, train_images[shuffled], test_text, test_images)
    assert control < 0.15, f"shuffled-pairs control reached {control:.1%}"


def _tree_without(shared_data: Path, tmp_path: Path, *, features: bool) -> Path:
    """A data root linking the real Multi30k task folders, with or without the feature file."""
    base = tmp_path / "multi30k"
    base.mkdir()
    for task in ("task1", "task2"):
        (base / task).symlink_to(shared_data / "multi30k" / task, target_is_directory=True)
    if features:
        (base / "features").mkdir()
        (base / "features" / FEATURES.name).symlink_to(shared_data / FEATURES)
    return base


def test_missing_features_file_is_named(shared_data: Path, tmp_path: Path, cache_dir: Path) -> None:
    _tree_without(shared_data, tmp_path, features=False)
    with pytest.raises(DataError, match=r"test_2016_flickr-resnet50-avgpool\.npy: not found\. The multi30k-mini-v1"):
        load_multi30k_mini(tmp_path, cache_dir=cache_dir)


def test_task1_and_task2_must_list_the_same_images(shared_data: Path, tmp_path: Path, cache_dir: Path) -> None:
    base = tmp_path / "multi30k"
    base.mkdir()
    (base / "task1").symlink_to(shared_data / "multi30k" / "task1", target_is_directory=True)
    (base / "features").symlink_to(shared_data / "multi30k" / "features", target_is_directory=True)
    (base / "task2" / "image_splits").mkdir(parents=True)
    (base / "task2" / "raw").symlink_to(shared_data / "multi30k" / "task2" / "raw", target_is_directory=True)
    images = _official_images(shared_data)
    images[7] = "not-in-task1.jpg"
    (base / "task2" / "image_splits" / "test_2016_images.txt").write_text("\n".join(images) + "\n")
    with pytest.raises(DataError, match=r"test_2016_images\.txt: lists 1 images missing from .*'not-in-task1\.jpg'"):
        load_multi30k_mini(tmp_path, cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"test_2016_images\.txt: lists 1 images missing"):
        multi30k_mini_split_ids(tmp_path)
    images[7] = images[8]
    (base / "task2" / "image_splits" / "test_2016_images.txt").write_text("\n".join(images) + "\n")
    with pytest.raises(DataError, match=r"test_2016_images\.txt: lists image .* more than once"):
        multi30k_mini_split_ids(tmp_path)


def test_split_images_needs_exactly_1000_distinct_names() -> None:
    with pytest.raises(DataError, match="exactly 1000 distinct images, got 999"):
        multi30k_mini.split_images([f"{i}.jpg" for i in range(999)])
    split = multi30k_mini.split_images([f"{i}.jpg" for i in range(1000)])
    assert [len(split[s]) for s in ("train", "val", "test")] == [700, 100, 200]
