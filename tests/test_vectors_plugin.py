"""``vectors:PATH`` model: reading word2vec/fastText text files, prefixes, config options, identity."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

import mmbench
from mmbench.config import build_config
from mmbench.errors import DataError
from mmbench_plugins.vectors import VectorsConfig, WordVectors, read_vectors

PLAIN = "cat 1 0 0\ndog 0 1 0\nKatze 0 0 1\n"
PREFIXED = "en:cat 1 0 0\nen:dog 0 1 0\nde:katze 0.5 0 0.5\nde:hund 0 2 0\nzh_Hans:猫 1 1 1\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def model_for(path: Path, **overrides: str) -> WordVectors:
    config = build_config(VectorsConfig, overrides, model_name="vectors")
    model = WordVectors(config, str(path))
    model.prepare(mmbench.RunContext())
    return model


# -- read_vectors --------------------------------------------------------------------------------------


def test_read_without_header(tmp_path: Path) -> None:
    words, matrix = read_vectors(write(tmp_path / "v.txt", PLAIN))
    assert words == ["cat", "dog", "Katze"]
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, np.eye(3, dtype=np.float32))


def test_read_with_header(tmp_path: Path) -> None:
    words, matrix = read_vectors(write(tmp_path / "v.vec", "3 3\n" + PLAIN))
    assert words == ["cat", "dog", "Katze"]
    np.testing.assert_array_equal(matrix, np.eye(3))


def test_header_fixes_the_dimension(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"v\.vec:2: expected a word and 4 numbers, got 4 fields"):
        read_vectors(write(tmp_path / "v.vec", "3 4\n" + PLAIN))


def test_read_tolerates_trailing_spaces_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes(b"cat 1 2 \r\n\r\ndog -3.5 4e-1 \r\n")
    words, matrix = read_vectors(path)
    assert words == ["cat", "dog"]
    np.testing.assert_allclose(matrix, [[1, 2], [-3.5, 0.4]])


def test_read_gzip(tmp_path: Path) -> None:
    path = tmp_path / "v.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("2 3\n" + "".join(PLAIN.splitlines(True)[:2]))
    words, matrix = read_vectors(path)
    assert words == ["cat", "dog"]
    np.testing.assert_array_equal(matrix, np.eye(3)[:2])


def test_max_words_keeps_the_first_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "v.txt", "3 3\n" + PLAIN + "broken line\n")
    words, matrix = read_vectors(path, max_words=2)
    assert words == ["cat", "dog"] and matrix.shape == (2, 3)


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("cat 1 2\ndog 1 2 3\n", ":2:", "expected a word and 2 numbers, got 4 fields"),
        ("cat 1 2\ndog 1\n", ":2:", "expected a word and 2 numbers"),
        ("2 2\ncat 1 2\n\ndog one 2\n", ":4:", "non-numeric vector value"),
        ("cat 1  2\n", ":1:", "non-numeric"),  # two spaces: an empty field
        ("cat\n", ":1:", "expected a word and 0 numbers"),
        ("cat 1 nan\n", ":1:", "NaN or infinite value in the vector of 'cat'"),
        ("cat 1 2\ndog inf 2\n", ":2:", "NaN or infinite"),
        ("cat 1 2\ndog 1 -NaN\n", ":2:", "NaN or infinite"),
    ],
)
def test_malformed_lines(tmp_path: Path, text: str, where: str, problem: str) -> None:
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataError) as info:
        read_vectors(path)
    message = str(info.value)
    assert message.startswith(f"{path}{where}")
    assert problem in message
    assert "\n" not in message


@pytest.mark.parametrize("text", ["", "\n\n", "0 300\n", "  \n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(DataError, match=r"empty\.txt: no vectors in file"):
        read_vectors(path)


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("cat 1 2\ncaf\u00e9 3 4\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: not UTF-8"):
        read_vectors(path)


def test_missing_and_corrupt_gzip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.txt: vectors file not found"):
        read_vectors(tmp_path / "nope.txt")
    fake = tmp_path / "fake.txt.gz"
    fake.write_bytes(b"cat 1 2\n")
    with pytest.raises(DataError, match=r"fake\.txt\.gz: cannot read vectors"):
        read_vectors(fake)
    truncated = tmp_path / "cut.txt.gz"
    rows = "".join(f"w{i} {i * 0.37:.6f} {i / 7:.6f}\n" for i in range(2000)).encode()
    compressed = gzip.compress(rows)
    truncated.write_bytes(compressed[: len(compressed) // 2])  # a cut-off download
    with pytest.raises(DataError, match=r"cut\.txt\.gz: cannot read vectors"):
        read_vectors(truncated)


def test_header_count_larger_than_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "cut.vec", "5 3\n" + PLAIN)  # header promises 5 words, 3 follow
    with pytest.raises(DataError, match=r"cut\.vec"):
        read_vectors(path)


# -- WordVectors ---------------------------------------------------------------------------------------


def test_plain_vocabulary_serves_every_language(tmp_path: Path) -> None:
    model = model_for(write(tmp_path / "v.txt", PLAIN))
    assert model.languages() is None
    assert model.vocabulary("en") == model.vocabulary("xx") == ["cat", "dog", "Katze"]
    vectors, found = model.embed_words(["dog", "Katze"], "de")
    np.testing.assert_array_equal(vectors, np.eye(3)[[1, 2]])
    assert found.tolist() == [True, True]


def test_embed_words_oov_rows_are_zero(tmp_path: Path) -> None:
    model = model_for(write(tmp_path / "v.txt", PLAIN))
    vectors, found = model.embed_words(["cow", "cat", "katze", "cat", ""], "en")
    assert found.dtype == bool and found.tolist() == [False, True, False, True, False]
    assert vectors.dtype == np.float32 and vectors.shape == (5, 3)
    np.testing.assert_array_equal(vectors[[0, 2, 4]], 0)
    np.testing.assert_array_equal(vectors[[1, 3]], [[1, 0, 0], [1, 0, 0]])
    empty, empty_found = model.embed_words([], "en")
    assert empty.shape == (0, 3) and empty_found.shape == (0,)
    none_vectors, none_found = model.embed_words(["zzz"], "en")
    assert not none_found.any() and not none_vectors.any()


def test_prefixed_auto_detection(tmp_path: Path) -> None:
    model = model_for(write(tmp_path / "v.txt", PREFIXED))
    assert model.languages() == ["de", "en", "zh_Hans"]
    assert model.vocabulary("en") == ["cat", "dog"]
    assert model.vocabulary("de") == ["katze", "hund"]
    assert model.vocabulary("fr") == []
    vectors, found = model.embed_words(["katze", "cat", "hund"], "de")
    assert found.tolist() == [True, False, True]  # 'cat' is English only
    np.testing.assert_array_equal(vectors, [[0.5, 0, 0.5], [0, 0, 0], [0, 2, 0]])
    assert model.embed_words(["猫"], "zh_Hans")[1].tolist() == [True]


def test_auto_is_plain_when_one_word_lacks_a_prefix(tmp_path: Path) -> None:
    model = model_for(write(tmp_path / "v.txt", PREFIXED + "plain 1 1 1\n"))
    assert model.languages() is None
    assert model.embed_words(["en:cat", "cat", "plain"], "en")[1].tolist() == [True, False, True]


def test_prefixed_no_keeps_prefixes_as_part_of_the_word(tmp_path: Path) -> None:
    model = model_for(write(tmp_path / "v.txt", PREFIXED), prefixed="no")
    assert model.languages() is None
    assert model.embed_words(["en:cat", "cat", "de:katze"], "de")[1].tolist() == [True, False, True]


def test_prefixed_yes_requires_every_prefix(tmp_path: Path) -> None:
    model = model_for(write(tmp_path / "v.txt", PREFIXED), prefixed="yes")
    assert model.languages() == ["de", "en", "zh_Hans"]
    with pytest.raises(DataError, match="word 'plain' has no language prefix"):
        model_for(write(tmp_path / "w.txt", PREFIXED + "plain 1 1 1\n"), prefixed="yes")


def test_prefixed_config_rejects_other_values() -> None:
    from mmbench.errors import ConfigError

    with pytest.raises(ConfigError, match="auto, yes, no"):
        build_config(VectorsConfig, {"prefixed": "maybe"})


def test_duplicates_keep_the_first_vector(tmp_path: Path) -> None:
    model = model_for(write(tmp_path / "v.txt", "cat 1 0\ndog 0 1\ncat 9 9\n"))
    assert model.vocabulary("en") == ["cat", "dog"]
    vectors, _ = model.embed_words(["cat"], "en")
    np.testing.assert_array_equal(vectors, [[1, 0]])
    prefixed = model_for(write(tmp_path / "p.txt", "en:cat 1 0\nde:cat 0 1\nen:cat 5 5\n"))
    np.testing.assert_array_equal(prefixed.embed_words(["cat"], "en")[0], [[1, 0]])
    np.testing.assert_array_equal(prefixed.embed_words(["cat"], "de")[0], [[0, 1]])


def test_max_words(tmp_path: Path) -> None:
    path = write(tmp_path / "v.txt", "3 3\n" + PLAIN)
    model = model_for(path, max_words="2")
    assert model.vocabulary("en") == ["cat", "dog"]
    assert model.embed_words(["Katze"], "en")[1].tolist() == [False]
    assert model_for(path, max_words="none").vocabulary("en") == ["cat", "dog", "Katze"]


def test_lowercase_first_occurrence_wins(tmp_path: Path) -> None:
    path = write(tmp_path / "v.txt", "Paris 1 0\nparis 0 1\nKatze 1 1\n")
    exact = model_for(path)
    assert exact.embed_words(["paris", "Paris", "katze"], "fr")[1].tolist() == [True, True, False]
    np.testing.assert_array_equal(exact.embed_words(["paris"], "fr")[0], [[0, 1]])
    lowered = model_for(path, lowercase="true")
    assert lowered.vocabulary("fr") == ["paris", "katze"]
    vectors, found = lowered.embed_words(["paris", "Paris", "katze"], "fr")
    assert found.tolist() == [True, False, True]  # queries are not lowercased, only file words
    np.testing.assert_array_equal(vectors[0], [1, 0])  # 'Paris' came first


def test_lowercase_applies_to_prefixed_tokens_not_languages(tmp_path: Path) -> None:
    model = model_for(write(tmp_path / "v.txt", "de:Katze 1 0\nen:Cat 0 1\n"), lowercase="yes")
    assert model.languages() == ["de", "en"]
    assert model.vocabulary("de") == ["katze"]


def test_model_metadata() -> None:
    assert WordVectors.name == "vectors" and WordVectors.argument == "PATH"
    assert mmbench.Capability.WORDS in WordVectors.capabilities
    assert WordVectors.Config is VectorsConfig
    assert WordVectors().config == VectorsConfig()


def test_identity_is_the_file_sha256(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first = write(tmp_path / "a" / "v.txt", PLAIN)
    second = write(tmp_path / "copy.vec", PLAIN)
    different = write(tmp_path / "other.txt", PLAIN.replace("dog", "cow"))
    identity = WordVectors(VectorsConfig(), str(first)).identity()
    assert identity == {"sha256": hashlib.sha256(PLAIN.encode()).hexdigest()}
    assert WordVectors(VectorsConfig(), str(second)).identity() == identity
    assert WordVectors(VectorsConfig(), str(different)).identity() != identity
    with pytest.raises(DataError, match="missing.txt"):
        WordVectors(VectorsConfig(), str(tmp_path / "missing.txt")).identity()


def test_prepare_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"bad\.txt:2:"):
        model_for(write(tmp_path / "bad.txt", "cat 1 2\ndog 3\n"))


# -- corrupt and inconsistent files: every problem is one DataError line naming the file -----------------


def gzip_rows(count: int = 2000) -> bytes:
    return gzip.compress("".join(f"w{i} {i * 0.37:.6f} {i / 7:.6f}\n" for i in range(count)).encode())


def assert_one_line_error(path: Path, *fragments: str, max_words: int | None = None) -> str:
    with pytest.raises(DataError) as info:
        read_vectors(path, max_words)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_gzip_with_garbage_after_a_valid_header(tmp_path: Path) -> None:
    # zlib's "Error -3 while decompressing data" used to escape as an internal plugin error
    compressed = gzip_rows()
    path = tmp_path / "garbage.vec.gz"
    path.write_bytes(compressed[:10] + bytes((i * 151 + 7) % 256 for i in range(600)))
    assert_one_line_error(path, "not a valid gzip file, corrupt or truncated")


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c[: len(c) // 2],  # cut-off download
        lambda c: b"\x1f\x8b" + bytes(range(256)) * 2,  # gzip magic, then garbage
        lambda c: c[:-8] + bytes(b ^ 0xFF for b in c[-8:]),  # CRC and length trailer damaged
        lambda c: b"not gzip at all\n",  # a .gz name on a plain file
    ],
    ids=["truncated", "garbage", "bad-trailer", "not-gzip"],
)
def test_corrupt_gzip_is_a_data_error(tmp_path: Path, damage) -> None:
    path = tmp_path / "broken.vec.gz"
    path.write_bytes(damage(gzip_rows()))
    assert_one_line_error(path, "not a valid gzip file, corrupt or truncated")


def test_gzip_is_recognised_by_its_magic_bytes(tmp_path: Path) -> None:
    path = tmp_path / "vectors.vec"  # no .gz suffix
    path.write_bytes(gzip.compress(b"2 2\ncat 1 2\ndog 3 4\n"))
    assert read_vectors(path)[0] == ["cat", "dog"]


def test_undecodable_text_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.vec.gz"
    path.write_bytes(gzip.compress("cat 1 2\ncaf\u00e9 3 4\n".encode("latin-1")))
    assert_one_line_error(path, "not UTF-8 text at line 2", "byte 0xe9 at column 4")


def test_byte_order_mark_before_the_header(tmp_path: Path) -> None:
    words, matrix = read_vectors(write(tmp_path / "bom.vec", "\ufeff3 3\n" + PLAIN))
    assert words == ["cat", "dog", "Katze"] and matrix.shape == (3, 3)


def test_header_count_smaller_than_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "long.vec", "2 3\n" + PLAIN + "\n")  # header promises 2 words, 3 follow
    assert_one_line_error(path, "header declares 2 vectors but the file has 3")
    assert_one_line_error(path, "header declares 2 vectors but the file has 3", max_words=5)
    assert read_vectors(path, max_words=2)[0] == ["cat", "dog"]  # stops reading before the extra row


def test_header_count_larger_than_file_names_both_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "cut.vec", "5 3\n" + PLAIN)
    assert_one_line_error(path, "header declares 5 vectors but the file has 3")
    assert_one_line_error(path, "header declares 5 vectors but the file has 3", max_words=4)
    assert read_vectors(path, max_words=3)[0] == ["cat", "dog", "Katze"]


def test_header_count_zero_with_rows(tmp_path: Path) -> None:
    assert_one_line_error(write(tmp_path / "zero.vec", "0 3\n" + PLAIN), "header declares 0 vectors but the file has 3")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("3 4\n" + PLAIN, (":2:", "expected a word and 4 numbers, got 4 fields", "the header's")),
        ("3 2\n" + PLAIN, (":2:", "expected a word and 2 numbers, got 4 fields", "the header's")),
        ("3 3\ncat 1 0 0\ndog 0 1 0 5\nKatze 0 0 1\n", (":3:", "got 5 fields")),
        ("cat 1 0 0\ndog 0 1\n", (":2:", "expected a word and 3 numbers, got 3 fields", "the first row's")),
        ("3 0\n" + PLAIN, (":1:", "header declares 0 dimensions")),
    ],
)
def test_width_mismatch(tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    path = write(tmp_path / "w.vec", text)
    message = assert_one_line_error(path, *fragments[1:])
    assert message.startswith(f"{path}{fragments[0]}")


def test_a_lone_carriage_return_does_not_split_a_row(tmp_path: Path) -> None:
    path = tmp_path / "cr.vec"
    path.write_bytes(b"2 2\nca\rt 1 2\ndog 3 4\r\n")
    assert read_vectors(path)[0] == ["ca\rt", "dog"]


# -- one file per language (vectors:en=a.vec,de=b.vec) ---------------------------------------------------


def test_one_file_per_language(tmp_path: Path) -> None:
    from mmbench_plugins.vectors import language_files

    en = write(tmp_path / "wiki.en.vec", "2 3\ncat 1 0 0\ndog 0 1 0\n")
    de = write(tmp_path / "wiki.de.vec", "Katze 0 0 1\nHund 0 2 0\ncat 5 5 5\n")
    spec = f"en={en},de={de}"
    assert language_files(spec) == {"en": en, "de": de}
    assert language_files(str(en)) is None and language_files("weird=name.vec,x.vec") is None
    model = model_for(spec)
    assert model.languages() == ["de", "en"]
    vectors, found = model.embed_words(["cat", "Katze", "dog"], "de")
    assert found.tolist() == [True, True, False]
    np.testing.assert_array_equal(vectors[:2], [[5, 5, 5], [0, 0, 1]])  # de's own "cat", not en's
    vectors, found = model.embed_words(["cat", "Katze"], "en")
    assert found.tolist() == [True, False] and vectors[0].tolist() == [1, 0, 0]
    with pytest.raises(mmbench.Incompatible, match="no vectors file for language 'fr'"):
        model.embed_words(["chat"], "fr")
    # Identity: each file's sha256 with its language, whatever the paths.
    sha = {lang: hashlib.sha256(p.read_bytes()).hexdigest() for lang, p in (("en", en), ("de", de))}
    assert WordVectors(VectorsConfig(), spec).identity() == {"sha256": {"de": sha["de"], "en": sha["en"]}}
    moved = tmp_path / "moved"
    moved.mkdir()
    copies = {lang: write(moved / p.name, p.read_text()) for lang, p in (("en", en), ("de", de))}
    other = WordVectors(VectorsConfig(), f"de={copies['de']},en={copies['en']}")
    assert other.identity() == WordVectors(VectorsConfig(), spec).identity()


def test_per_language_files_must_share_one_width_and_exist(tmp_path: Path) -> None:
    en = write(tmp_path / "en.vec", "cat 1 0 0\n")
    de = write(tmp_path / "de.vec", "Katze 1 0\n")
    with pytest.raises(DataError, match="every language's file must have one width"):
        model_for(f"en={en},de={de}")
    with pytest.raises(DataError, match="not found"):
        WordVectors(VectorsConfig(), f"en={en},de={tmp_path / 'absent.vec'}").identity()
    with pytest.raises(DataError, match="two files"):
        WordVectors(VectorsConfig(), f"en={en},en={de}").identity()


def test_per_language_files_from_the_cli_keep_file_names_only(tmp_path: Path) -> None:
    from mmbench.runner import resolve_model
    from mmbench.plugins import get_registry

    en = write(tmp_path / "wiki.en.vec", "cat 1 0 0\n")
    de = write(tmp_path / "wiki.de.vec", "Katze 0 0 1\n")
    resolved = resolve_model(get_registry(), f"vectors:en={en},de={de}")
    assert resolved.display_name == "vectors:en=wiki.en.vec,de=wiki.de.vec"
