"""Bad input raises DataError with one line naming the file (and line) — never a shortened dataset."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mmbench.data.multi30k import load_multi30k
from mmbench.data.muse import load_muse_dictionary
from mmbench.data.rcv import load_rcv
from mmbench.data.sib200 import load_sib200
from mmbench.data.visual_bli import load_bergsma500, load_cldi_pairs
from mmbench.data.wordsim import load_wordsim
from mmbench.errors import DataError



def _one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_truncated_gzip(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "en-de.0-5000.txt.gz"
    data = gzip.compress("".join(f"word{i} wort{i}\n" for i in range(5000)).encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as exc:
        load_muse_dictionary(path, cache_dir=cache_dir)
    assert _one_line(exc).startswith(f"{path}: corrupt or truncated gzip data")
    assert not cache_dir.exists() or not any(cache_dir.iterdir())  # nothing half-built was cached


def test_wrong_column_count_names_file_and_line(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "EN-TEST.txt"
    path.write_text("car\tautomobile\t3.92\ngem\tjewel\t3.84\njourney\t3.84\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load_wordsim(path, languages=("en", "en"), cache_dir=cache_dir)
    assert _one_line(exc) == (f"{path}:3: expected 3 columns (word1, word2, score), found 2")


def test_wrong_column_count_in_tab_separated_formats(tmp_path: Path, cache_dir: Path) -> None:
    cldi = tmp_path / "imgWords_en_de.txt"
    cldi.write_text("dirty\tschmutzig\tA\ndog\tHund\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{cldi}:2: expected 3 columns \(source, target, pos\), found 2$"):
        load_cldi_pairs(cldi, cache_dir=cache_dir)
    sib = tmp_path / "sib200" / "xxx_Latn"
    sib.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (sib / f"{split}.tsv").write_text("index_id\tcategory\ttext\n1\thealth\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.tsv:2: expected 3 columns"):
        load_sib200(tmp_path, "xxx_Latn", cache_dir=cache_dir)


def test_feature_rows_differ_from_image_ids(tmp_path: Path, cache_dir: Path) -> None:
    base = tmp_path / "multi30k"
    (base / "task1" / "image_splits").mkdir(parents=True)
    (base / "task1" / "raw").mkdir(parents=True)
    (base / "features").mkdir()
    images = [f"{i}.jpg" for i in range(4)]
    (base / "task1" / "image_splits" / "val.txt").write_text("\n".join(images) + "\n", encoding="utf-8")
    (base / "task1" / "raw" / "val.en.gz").write_bytes(gzip.compress(b"a\nb\nc\nd\n"))
    features = base / "features" / "val-resnet50-avgpool.npy"
    np.save(features, np.zeros((3, 8), dtype=np.float16))
    with pytest.raises(DataError) as exc:
        load_multi30k(tmp_path, task=1, split="val", cache_dir=cache_dir)
    assert _one_line(exc) == f"{features}: has 3 feature rows but {base / 'task1/image_splits/val.txt'} lists 4 images"
    # Without features the same data loads.
    assert len(load_multi30k(tmp_path, task=1, split="val", features=False, cache_dir=cache_dir)) == 4


def test_non_utf8_bytes_name_file_and_line(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "de-en.txt"
    path.write_bytes("Hund dog\nM\u00fcller miller\n".encode("latin-1"))
    with pytest.raises(DataError) as exc:
        load_muse_dictionary(path, cache_dir=cache_dir)
    assert _one_line(exc) == f"{path}:2: not valid utf-8 (byte 0xfc at column 2)"


def test_non_utf8_in_gzipped_jsonl(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "rcv"
    folder.mkdir()
    good = '{"id": "1", "label": "CCAT", "text": "a b"}\n'
    (folder / "xx.train.jsonl.gz").write_bytes(gzip.compress((good + good).encode()))
    (folder / "xx.test.jsonl.gz").write_bytes(
        gzip.compress(good.encode() + b'{"id": "2", "label": "CCAT", "text": "\xff"}\n')
    )
    with pytest.raises(DataError, match=r"xx\.test\.jsonl\.gz:2: not valid utf-8"):
        load_rcv(tmp_path, "xx", cache_dir=cache_dir)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", gzip.compress(b"")])
def test_empty_file(tmp_path: Path, cache_dir: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(DataError) as exc:
        load_wordsim(path, languages=("en", "en"), cache_dir=cache_dir)
    assert _one_line(exc) == f"{path}: file is empty"


def test_empty_bergsma_list(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "pictureWords.en.txt").write_text("original\tforeign\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pictureWords\.en\.txt: header only, no words"):
        load_bergsma500(tmp_path, cache_dir=cache_dir)


@pytest.mark.parametrize("score", ["high", "3,5", "nan", "inf"])
def test_non_numeric_score(tmp_path: Path, cache_dir: Path, score: str) -> None:
    path = tmp_path / "scores.txt"
    path.write_text(f"cat\tdog\t2.5\ncat\ttiger\t{score}\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load_wordsim(path, languages=("en", "en"), cache_dir=cache_dir)
    assert _one_line(exc).startswith(f"{path}:2: score {score!r} is not ")
