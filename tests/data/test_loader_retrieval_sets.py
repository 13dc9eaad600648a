"""Retrieval sets: VSE++/SCAN precomputed folders and Karpathy-split JSON, on small files in those formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmbench.data.io import feature_array
from mmbench.data.retrieval_sets import load_coco_karpathy, load_precomputed
from mmbench.errors import DataError



def _precomp(folder: Path, split: str, n_images: int, features: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"caption {j} of image {i}" for i in range(n_images) for j in range(5)]
    (folder / f"{split}_caps.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(folder / f"{split}_ims.npy", features)


def test_precomputed_one_row_per_image(tmp_path: Path, cache_dir: Path) -> None:
    features = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    _precomp(tmp_path, "dev", 3, features)
    ds = load_precomputed(tmp_path, "dev", cache_dir=cache_dir)
    assert len(ds) == 3
    assert ds[2]["captions"] == [f"caption {j} of image 2" for j in range(5)]
    np.testing.assert_array_equal(feature_array(ds), features)


def test_precomputed_scan_repeated_rows_are_deduplicated(tmp_path: Path, cache_dir: Path) -> None:
    regions = np.random.default_rng(1).standard_normal((3, 2, 4)).astype(np.float32)
    _precomp(tmp_path, "test", 3, np.repeat(regions, 5, axis=0))
    ds = load_precomputed(tmp_path, "test", cache_dir=cache_dir)
    assert len(ds) == 3
    np.testing.assert_array_equal(feature_array(ds), regions)


def test_precomputed_5n_rows_that_are_not_copies(tmp_path: Path, cache_dir: Path) -> None:
    features = np.repeat(np.eye(3, dtype=np.float32), 5, axis=0)
    features[7, 0] = 0.5  # image 1's third copy differs
    _precomp(tmp_path, "test", 3, features)
    with pytest.raises(DataError, match=r"test_ims\.npy: .* rows 5\.\.9 \(image 1\) are not identical copies"):
        load_precomputed(tmp_path, "test", cache_dir=cache_dir)


def test_precomputed_row_count_mismatch(tmp_path: Path, cache_dir: Path) -> None:
    _precomp(tmp_path, "dev", 3, np.zeros((4, 2), np.float32))
    with pytest.raises(DataError, match=r"dev_ims\.npy: has 4 rows; dev_caps\.txt describes 3 images"):
        load_precomputed(tmp_path, "dev", cache_dir=cache_dir)


def test_precomputed_caption_count_not_multiple_of_five(tmp_path: Path, cache_dir: Path) -> None:
    _precomp(tmp_path, "dev", 2, np.zeros((2, 2), np.float32))
    with (tmp_path / "dev_caps.txt").open("a", encoding="utf-8") as fh:
        fh.write("one caption too many\n")
    with pytest.raises(DataError, match=r"dev_caps\.txt: has 11 captions, not a multiple of 5"):
        load_precomputed(tmp_path, "dev", cache_dir=cache_dir)


def test_precomputed_protocols(tmp_path: Path, cache_dir: Path) -> None:
    _precomp(tmp_path, "testall", 5000, np.zeros((5000, 1), np.float32))
    folds = load_precomputed(tmp_path, "testall", protocol="1k", cache_dir=cache_dir)["fold"][:]
    assert folds[:1000] == [0] * 1000 and folds[4000:] == [4] * 1000
    assert "fold" not in load_precomputed(tmp_path, "testall", protocol="5k", cache_dir=cache_dir).column_names
    _precomp(tmp_path, "dev", 3, np.zeros((3, 1), np.float32))
    with pytest.raises(DataError, match="5K protocol needs 5000 images, this split has 3"):
        load_precomputed(tmp_path, "dev", protocol="5k", cache_dir=cache_dir)
    with pytest.raises(DataError, match="unknown retrieval protocol '2k'"):
        load_precomputed(tmp_path, "dev", protocol="2k", cache_dir=cache_dir)  # type: ignore[arg-type]


def _image(split: str, cocoid: int, captions: list[str], **extra: object) -> dict:
    return {
        "filepath": "val2014",
        "filename": f"COCO_val2014_{cocoid:012d}.jpg",
        "split": split,
        "cocoid": cocoid,
        "sentences": [{"raw": c, "tokens": c.lower().split(), "sentid": i} for i, c in enumerate(captions)],
        **extra,
    }


def _karpathy(path: Path, images: list[dict]) -> Path:
    path.write_text(json.dumps({"dataset": "coco", "images": images}, ensure_ascii=False), encoding="utf-8")
    return path


def _five(prefix: str, n: int = 5) -> list[str]:
    return [f"{prefix} caption {k}. " for k in range(n)]


def test_karpathy_npy_aligned_with_split_order(tmp_path: Path, cache_dir: Path) -> None:
    json_path = _karpathy(
        tmp_path / "dataset_coco.json",
        [
            _image("test", 11, _five("a")),
            _image("train", 12, _five("b")),
            _image("test", 13, _five("c", 7)),  # COCO images may have more than five captions
            _image("restval", 14, _five("d")),
        ],
    )
    features = np.array([[1, 0], [0, 1]], np.float32)
    np.save(tmp_path / "test.npy", features)
    ds = load_coco_karpathy(json_path, tmp_path / "test.npy", "test", cache_dir=cache_dir)
    assert ds["image_id"][:] == [11, 13]
    assert ds["image"][:] == ["COCO_val2014_000000000011.jpg", "COCO_val2014_000000000013.jpg"]
    assert ds[1]["captions"] == [f"c caption {k}." for k in range(5)]  # first five, stripped
    np.testing.assert_array_equal(feature_array(ds), features)
    restval = load_coco_karpathy(json_path, None, "restval", cache_dir=cache_dir)
    assert restval.column_names == ["image", "image_id", "captions"] and restval["image_id"][:] == [14]
    with pytest.raises(DataError, match=r"test\.npy: has 2 rows but dataset_coco\.json has 1 train images"):
        load_coco_karpathy(json_path, tmp_path / "test.npy", "train", cache_dir=cache_dir)


def test_karpathy_npz_matched_by_id(tmp_path: Path, cache_dir: Path) -> None:
    json_path = _karpathy(tmp_path / "dataset_coco.json", [_image("val", 5, _five("a")), _image("val", 3, _five("b"))])
    np.savez(tmp_path / "all.npz", ids=np.array([3, 99, 5]), features=np.array([[3.0], [99.0], [5.0]], np.float32))
    ds = load_coco_karpathy(json_path, tmp_path / "all.npz", "val", cache_dir=cache_dir)
    np.testing.assert_array_equal(feature_array(ds), [[5.0], [3.0]])
    np.savez(tmp_path / "some.npz", ids=np.array([3]), features=np.array([[3.0]], np.float32))
    with pytest.raises(DataError, match=r"some\.npz: no features for 1 of 2 val images \(first id 5\)"):
        load_coco_karpathy(json_path, tmp_path / "some.npz", "val", cache_dir=cache_dir)


def test_karpathy_japanese_and_flickr_style_ids(tmp_path: Path, cache_dir: Path) -> None:
    ja = [f"白い犬が芝生の上を走っている{k}" for k in range(5)]
    image = _image("test", 0, ja)
    del image["cocoid"]
    image["imgid"] = 42
    json_path = _karpathy(tmp_path / "dataset_coco_stair_ja.json", [image])
    ds = load_coco_karpathy(json_path, None, "test", cache_dir=cache_dir)
    assert ds[0]["captions"] == ja and ds[0]["image_id"] == 42


def test_karpathy_bad_inputs(tmp_path: Path, cache_dir: Path) -> None:
    short = _karpathy(tmp_path / "short.json", [_image("test", 1, _five("a", 4))])
    with pytest.raises(DataError, match=r"short\.json: images\[0\] \(COCO_val2014_000000000001\.jpg\) has 4"):
        load_coco_karpathy(short, None, "test", cache_dir=cache_dir)
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [\n{"split": "test",}\n]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.json:2: invalid JSON"):
        load_coco_karpathy(broken, None, "test", cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"short\.json: no images in split 'val'"):
        load_coco_karpathy(short, None, "val", cache_dir=cache_dir)
    with pytest.raises(DataError, match="unknown Karpathy split 'dev'"):
        load_coco_karpathy(short, None, "dev", cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"dataset_coco\.json: not found\. .*caption_datasets\.zip"):
        load_coco_karpathy(tmp_path / "dataset_coco.json", None, "test", cache_dir=cache_dir)
