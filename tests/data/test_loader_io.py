"""Shared loader plumbing: line reading, column splitting, the Arrow cache, feature columns."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import datasets
import numpy as np
import pytest

from mmbench.data import io
from mmbench.errors import DataError



def test_read_lines_numbers_physical_lines_and_strips_endings(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_bytes("\ufeffa b\r\n\r\n  \nc d\n".encode())
    assert list(io.read_lines(path)) == [(1, "a b"), (2, ""), (3, "  "), (4, "c d")]
    assert list(io.read_lines(path, skip_blank=True)) == [(1, "a b"), (4, "c d")]


def test_read_lines_detects_gzip_by_content_not_suffix(tmp_path: Path) -> None:
    path = tmp_path / "looks-plain.txt"
    path.write_bytes(gzip.compress(b"x\ty\n"))
    assert list(io.read_lines(path)) == [(1, "x\ty")]


def test_read_lines_splits_only_on_newline(tmp_path: Path) -> None:
    # U+2028 and form feeds inside a caption must not create extra lines (str.splitlines would).
    path = tmp_path / "captions.txt"
    path.write_text("a\u2028b\x0cc\nd\n", encoding="utf-8")
    assert [line for _, line in io.read_lines(path)] == ["a\u2028b\x0cc", "d"]


def test_non_utf8_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("ok\nGr\u00fc\u00dfe\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt:2: not valid utf-8 \(byte 0xfc at column 3\)"):
        list(io.read_lines(path))
    # A published legacy-encoded file can opt into a fallback for the whole file.
    assert list(io.read_lines(path, fallback_encoding="latin-1"))[1] == (2, "Grüße")


def test_aligned_lines_allow_trailing_blank_lines_but_not_inner_ones(tmp_path: Path) -> None:
    path = tmp_path / "aligned.txt"
    path.write_text("a\nb\n\n\n", encoding="utf-8")
    assert io.read_aligned_lines(path) == [(1, "a"), (2, "b")]
    path.write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"aligned\.txt:2: blank line"):
        io.read_aligned_lines(path)


def test_split_columns_tab_and_space_rules(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    names = ("word1", "word2", "score")
    assert io.split_columns("nim roz\tsun\t1.0", names, path, 1) == ["nim roz", "sun", "1.0"]
    assert io.split_columns("corde\tsourire\t\t0.00", names, path, 1) == ["corde", "sourire", "0.00"]
    assert io.split_columns("Auto  Fahrt 2.75", names, path, 1) == ["Auto", "Fahrt", "2.75"]
    with pytest.raises(DataError, match=r"f\.txt:7: expected 3 columns \(word1, word2, score\), found 4"):
        io.split_columns("a b c d", names, path, 7)


def test_parse_float_rejects_nan(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not finite"):
        io.parse_float("nan", "score", tmp_path / "f.txt", 3)


def test_missing_file_message_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.txt: not found\. Get it from X\.$"):
        io.require_file(tmp_path / "nope.txt", "Get it from X.")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_cache_key_depends_on_version_params_size_and_mtime(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", "x y\n")
    key = io.cache_key("muse", 1, [path])
    assert key == io.cache_key("muse", 1, [path])
    assert len(key) == 64 and int(key, 16) >= 0
    assert io.cache_key("muse", 2, [path]) != key
    assert io.cache_key("muse", 1, [path], {"languages": ["en", "de"]}) != key
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert io.cache_key("muse", 1, [path]) != key


def test_cached_builds_once_then_memory_maps(tmp_path: Path, cache_dir: Path) -> None:
    path = _write(tmp_path / "a.txt", "x y\n")
    calls = []

    def build(key: str) -> datasets.Dataset:
        calls.append(key)
        return io.make_dataset({"word": ["x", "y"]}, key)

    first = io.cached("toy", 1, [path], build, cache_dir=cache_dir)
    second = io.cached("toy", 1, [path], build, cache_dir=cache_dir)
    assert len(calls) == 1
    assert first["word"][:] == second["word"][:] == ["x", "y"]
    assert [p.name for p in cache_dir.iterdir()] == [f"toy-{calls[0]}"]
    assert second.cache_files and Path(second.cache_files[0]["filename"]).is_relative_to(cache_dir)

    # Editing the input changes size/mtime, hence the key: the dataset is rebuilt.
    _write(path, "x y z\n")
    io.cached("toy", 1, [path], build, cache_dir=cache_dir)
    assert len(calls) == 2


def test_cached_rebuilds_a_damaged_cache(tmp_path: Path, cache_dir: Path) -> None:
    path = _write(tmp_path / "a.txt", "x\n")
    calls = []

    def build(key: str) -> datasets.Dataset:
        calls.append(key)
        return io.make_dataset({"word": ["x"]}, key)

    io.cached("toy", 1, [path], build, cache_dir=cache_dir)
    target = cache_dir / f"toy-{calls[0]}"
    for file in target.iterdir():
        file.write_bytes(b"garbage")
    assert io.cached("toy", 1, [path], build, cache_dir=cache_dir)["word"][:] == ["x"]
    assert len(calls) == 2


def test_feature_columns_round_trip_to_numpy(tmp_path: Path, cache_dir: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((7, 5)).astype(np.float32)
    regions = rng.standard_normal((7, 3, 4)).astype(np.float32)
    path = _write(tmp_path / "a.txt", "x\n")
    ds = io.cached(
        "toy",
        1,
        [path],
        lambda key: io.make_dataset({"id": list(range(7)), "features": vectors, "regions": regions}, key),
        cache_dir=cache_dir,
    )
    assert ds.features["features"] == datasets.List(datasets.Value("float32"), length=5)
    np.testing.assert_array_equal(io.feature_array(ds), vectors)
    np.testing.assert_array_equal(io.feature_array(ds, "regions"), regions)
    # A selection (indices mapping) takes the generic path and still returns the selected rows.
    np.testing.assert_array_equal(io.feature_array(ds.select([4, 1])), vectors[[4, 1]])
    np.testing.assert_array_equal(io.feature_array(ds.select([2]), "regions"), regions[[2]])
