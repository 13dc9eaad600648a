"""Task cards: validation messages, discovery order, data-file resolution and verification."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_DATA

import mmbench
from mmbench.cards import (
    TASKS_PATH_ENV,
    DataFile,
    discover_cards,
    file_sha256,
    load_card,
    parse_card,
    verify_files,
)
from mmbench.errors import CardError, DataError

SHA = "ab" * 32
PACKAGED_DIR = Path(str(importlib.resources.files("mmbench_tasks")))
PACKAGED_CARDS = sorted(PACKAGED_DIR.glob("*.toml"))


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def to_toml(card: dict[str, Any]) -> str:
    """Enough TOML for cards: top-level scalars and lists, [params], [[subsets]] with inline values."""
    lines, tables = [], []
    for key, value in card.items():
        if key == "subsets" and isinstance(value, list) and value and all(isinstance(s, dict) for s in value):
            for subset in value:
                tables.append("[[subsets]]")
                tables += [f"{k} = {toml_value(v)}" for k, v in subset.items()]
        else:
            lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines + tables) + "\n"


def valid_card() -> dict[str, Any]:
    return {
        "name": "demo-task",
        "kind": "word-similarity",
        "description": "a demo",
        "main_score": "spearman",
        "protocol": "demo/v1",
        "license": "MIT",
        "citation": "Someone (2024).",
        "splits": ["dev", "test"],
        "subsets": [
            {
                "name": "en",
                "languages": ["en"],
                "split": "test",
                "files": [{"path": "wordsim/en.txt", "sha256": SHA}],
            },
            {"name": "de", "languages": ["de"], "files": ["wordsim/de.txt"]},
        ],
    }


def write_card(directory: Path, card: dict[str, Any], filename: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (filename or f"{card.get('name', 'card')}.toml")
    path.write_text(to_toml(card), encoding="utf-8")
    return path


def test_to_toml_helper_round_trips() -> None:
    import tomllib

    card = valid_card()
    assert tomllib.loads(to_toml(card)) == card


# -- valid cards ---------------------------------------------------------------------------------------


def test_valid_card_parses_with_defaults(tmp_path: Path) -> None:
    path = write_card(tmp_path, valid_card())
    card = load_card(path)
    assert card.name == "demo-task" and card.kind == "word-similarity"
    assert card.path == path and card.directory == tmp_path
    assert card.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    en, de = card.subsets
    assert en.languages == ("en",) and en.split == "test"
    assert en.files == (DataFile(path="wordsim/en.txt", sha256=SHA, base="data"),)
    assert de.split == "dev"  # default: the card's first split
    assert de.files == (DataFile(path="wordsim/de.txt", sha256=None, base="data"),)
    assert card.suites == [] and card.params == {} and card.aggregate is None


@pytest.mark.parametrize("path", PACKAGED_CARDS, ids=lambda p: p.name)
def test_every_packaged_card_parses(path: Path) -> None:
    card = load_card(path)
    assert card.name == path.stem  # convention: file name = card name
    assert card.subsets and card.splits
    assert len({s.name for s in card.subsets}) == len(card.subsets)
    for subset in card.subsets:
        assert subset.files
        assert subset.split in card.splits
        if SHARED_DATA is not None:
            # Data we have is pinned; only user-computed files (COCO features) may go unpinned.
            for data_file in subset.files:
                if data_file.base == "data" and (SHARED_DATA / data_file.path).exists():
                    assert data_file.sha256, f"{path.name}: {data_file.path} exists but has no sha256"
        if not all(f.sha256 for f in subset.files):
            assert card.name.startswith("coco"), f"{path.name}: unpinned files outside the COCO cards"


def test_packaged_cards_are_found() -> None:
    assert {p.stem for p in PACKAGED_CARDS} >= {"rg65-xling", "rg65-xling-extra", "wordsim-en"}


# -- malformed cards ---------------------------------------------------------------------------------


def _drop(key: str):
    return lambda c: c.pop(key)


def _set(key: str, value: Any):
    return lambda c: c.__setitem__(key, value)


def _sub(i: int, key: str, value: Any):
    return lambda c: c["subsets"][i].__setitem__(key, value)


def _file(key: str, value: Any):
    return lambda c: c["subsets"][0]["files"][0].__setitem__(key, value)


MALFORMED = [
    # (id, mutation, field, problem)
    ("missing-main-score", _drop("main_score"), "main_score", "required field is missing"),
    ("missing-subsets", _drop("subsets"), "subsets", "required field is missing"),
    ("kind-wrong-type", _set("kind", 3), "kind", "expected str, got int"),
    ("splits-wrong-type", _set("splits", "test"), "splits", "expected list, got str"),
    ("splits-empty", _set("splits", []), "splits", "expected a non-empty list of strings"),
    ("splits-not-strings", _set("splits", [1]), "splits", "expected a non-empty list of strings"),
    ("params-wrong-type", _set("params", "x"), "params", "expected dict, got str"),
    ("schema-bool", _set("schema", True), "schema", "expected int, got bool"),
    ("unknown-top-level", _set("homepag", "x"), "homepag", "unknown field"),
    ("bad-name", _set("name", "Demo Task"), "name", "use lowercase letters"),
    ("subsets-empty", _set("subsets", []), "subsets", "at least one [[subsets]] entry is required"),
    ("subset-not-table", _set("subsets", ["en"]), "subsets[0]", "expected a table"),
    ("unknown-subset-field", _sub(0, "lang", "en"), "subsets[0].lang", "unknown field"),
    ("subset-name-missing", lambda c: c["subsets"][1].pop("name"), "subsets[1].name", "required field is missing"),
    ("languages-not-codes", _sub(0, "languages", ["en", ""]), "subsets[0].languages", "expected a list of language codes"),
    ("split-not-in-splits", _sub(0, "split", "train"), "subsets[0].split", "'train' is not one of the card's splits"),
    ("duplicate-subset", _sub(1, "name", "en"), "subsets[1].name", "duplicate or reserved subset name 'en'"),
    ("reserved-all", _sub(0, "name", "all"), "subsets[0].name", "duplicate or reserved subset name 'all'"),
    ("files-not-list", _sub(0, "files", "wordsim/en.txt"), "subsets[0].files", "expected a list of file tables"),
    ("file-not-table", _sub(0, "files", [3]), "subsets[0].files[0]", "expected a table"),
    ("file-path-missing", lambda c: c["subsets"][0]["files"][0].pop("path"), "subsets[0].files[0].path", "required field is missing"),
    ("unknown-file-field", _file("md5", "x"), "subsets[0].files[0].md5", "unknown field"),
    ("sha-too-short", _file("sha256", "abc123"), "subsets[0].files[0].sha256", "must be 64 lowercase hex digits"),
    ("sha-uppercase", _file("sha256", "AB" * 32), "subsets[0].files[0].sha256", "must be 64 lowercase hex digits"),
    ("sha-not-hex", _file("sha256", "zz" * 32), "subsets[0].files[0].sha256", "must be 64 lowercase hex digits"),
    ("absolute-path", _file("path", "/etc/passwd"), "subsets[0].files[0].path", "must be relative"),
    ("dotdot-path", _file("path", "wordsim/../../secret.txt"), "subsets[0].files[0].path", "must not leave the data directory"),
    ("dotdot-path-package", lambda c: c["subsets"][0]["files"][0].update(path="../x.txt", base="package"),
     "subsets[0].files[0].path", "must not leave the data directory"),
    ("bad-file-base", _file("base", "home"), "subsets[0].files[0].base", "must be one of data, card, package"),
    ("bad-card-base", _set("base", "home"), "base", "must be one of data, card, package"),
    ("unsupported-schema", _set("schema", 2), "schema", "unsupported card schema 2"),
    ("bad-aggregate", _set("aggregate", "median"), "aggregate", "only 'mean' is supported"),
    ("evaluates-on-not-list", _set("evaluates_on", "emoji:test"), "evaluates_on", "expected list, got str"),
    ("evaluates-on-no-split", _set("evaluates_on", ["emoji"]), "evaluates_on", 'expected a list of "dataset:split" ids'),
    ("subset-evaluates-on-bad", _sub(1, "evaluates_on", ["Emoji:test"]), "subsets[1].evaluates_on",
     'expected a list of "dataset:split" ids'),
]


@pytest.mark.parametrize(("mutate", "field", "problem"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_card_names_file_field_and_problem(tmp_path: Path, mutate, field: str, problem: str) -> None:
    card = valid_card()
    mutate(card)
    path = write_card(tmp_path, card, "broken.toml")
    with pytest.raises(CardError) as info:
        load_card(path)
    message = str(info.value)
    assert f"{path}: {field}: {problem}" in message
    assert "\n" not in message


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    card = valid_card()
    del card["license"]
    card["kind"] = ["word-similarity"]
    card["extra"] = 1
    card["subsets"][0]["files"][0]["sha256"] = "nothex"
    card["subsets"][1]["name"] = "all"
    path = write_card(tmp_path, card, "many.toml")
    with pytest.raises(CardError) as info:
        load_card(path)
    problems = str(info.value).split("; ")
    assert sorted(p.split(": ")[1] for p in problems) == sorted(
        ["license", "kind", "extra", "subsets[0].files[0].sha256", "subsets[1].name"]
    )
    assert all(p.startswith(f"{path}: ") for p in problems)


def test_parse_card_uses_the_given_source_name() -> None:
    card = valid_card()
    card["kind"] = 1
    with pytest.raises(CardError, match=r"^somewhere/x\.toml: kind: expected str"):
        parse_card(card, "somewhere/x.toml")


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nkind = \n', encoding="utf-8")
    with pytest.raises(CardError) as info:
        load_card(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML") and "line 2" in message
    assert "\n" not in message


def test_non_utf8_card(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(to_toml(valid_card()).replace("a demo", "caf\u00e9").encode("latin-1"))
    with pytest.raises(CardError, match=rf"^{re.escape(str(path))}: card is not valid UTF-8$"):
        load_card(path)


def test_unreadable_card(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="missing.toml: cannot read card"):
        load_card(tmp_path / "missing.toml")
    with pytest.raises(CardError, match="cannot read card"):
        load_card(tmp_path)  # a directory


def test_dotdot_is_allowed_next_to_the_card(tmp_path: Path) -> None:
    card = valid_card()
    card["subsets"][0]["files"][0].update(path="../shared/en.txt", base="card")
    parsed = parse_card(card, "c.toml")
    assert parsed.subsets[0].files[0] == DataFile(path="../shared/en.txt", sha256=SHA, base="card")


# -- discovery -----------------------------------------------------------------------------------------


def _variant(name: str, description: str) -> dict[str, Any]:
    card = valid_card()
    card.update(name=name, description=description)
    return card


def test_discover_packaged_cards_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TASKS_PATH_ENV, raising=False)
    cards, errors = discover_cards()
    assert errors == []
    assert set(cards) == {load_card(p).name for p in PACKAGED_CARDS}
    assert cards["rg65-xling"].path.parent == PACKAGED_DIR


def test_discover_env_and_explicit_dirs_later_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_a, env_b, explicit = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_card(env_a, _variant("rg65-xling", "overrides the packaged card"))
    write_card(env_a, _variant("local-one", "from a"))
    write_card(env_b, _variant("local-one", "from b"), "other-file-name.toml")
    write_card(env_b, _variant("local-two", "from b"))
    write_card(explicit, _variant("local-two", "from c"))
    broken = valid_card()
    del broken["citation"]
    broken_path = write_card(env_b, broken, "broken.toml")
    (env_b / "notes.txt").write_text("not a card")
    monkeypatch.setenv(TASKS_PATH_ENV, os.pathsep.join([str(env_a), "", str(env_b), str(tmp_path / "missing")]))

    cards, errors = discover_cards([explicit])

    assert cards["rg65-xling"].description == "overrides the packaged card"
    assert cards["local-one"].description == "from b"
    assert cards["local-two"].description == "from c"
    assert cards["local-two"].path == explicit / "local-two.toml"
    assert "rg65-xling-extra" in cards and "wordsim-en" in cards  # packaged cards still there
    assert len(errors) == 2
    assert any(e.startswith(f"{broken_path}: citation: required field is missing") for e in errors)
    assert any(e == f"{tmp_path / 'missing'}: tasks directory does not exist" for e in errors)


def test_discover_explicit_dir_without_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TASKS_PATH_ENV, raising=False)
    write_card(tmp_path, _variant("wordsim-en", "mine"))
    cards, errors = discover_cards([tmp_path])
    assert errors == []
    assert cards["wordsim-en"].description == "mine"


# -- data files ----------------------------------------------------------------------------------------


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = os.urandom(3000)
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(path, chunk=7) == hashlib.sha256(data).hexdigest()
    with pytest.raises(DataError, match="nope.bin: file not found"):
        file_sha256(tmp_path / "nope.bin")


@pytest.mark.parametrize("path", PACKAGED_CARDS, ids=lambda p: p.name)
def test_verify_packaged_cards_on_real_data(shared_data: Path, path: Path) -> None:
    card = load_card(path)
    if any(f.base == "data" and not (shared_data / f.path).exists() for s in card.subsets for f in s.files):
        pytest.skip(f"{path.name}: its data (user-supplied, e.g. COCO) is not in shared/data")
    for subset in card.subsets:
        entries = verify_files(card, subset, shared_data)
        assert entries == [{"path": f.path, "sha256": f.sha256 or e["sha256"]} for f, e in zip(subset.files, entries)]


def _copy_rg65(shared_data: Path, data_dir: Path) -> tuple[Any, Any]:
    card = load_card(PACKAGED_DIR / "rg65-xling.toml")
    subset = next(s for s in card.subsets if s.name == "en-de")
    for data_file in subset.files:
        target = data_dir / data_file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / data_file.path, target)
    return card, subset


def test_verify_detects_sha_mismatch(shared_data: Path, tmp_path: Path) -> None:
    card, subset = _copy_rg65(shared_data, tmp_path)
    assert len(verify_files(card, subset, tmp_path)) == 2
    changed = tmp_path / subset.files[1].path
    changed.write_bytes(changed.read_bytes().replace(b"\t0.", b"\t1.", 1))
    with pytest.raises(DataError) as info:
        verify_files(card, subset, tmp_path)
    message = str(info.value)
    assert str(changed) in message and "does not match" in message
    assert subset.files[1].sha256[:12] in message


def test_verify_reports_missing_file(shared_data: Path, tmp_path: Path) -> None:
    card, subset = _copy_rg65(shared_data, tmp_path)
    (tmp_path / subset.files[0].path).unlink()
    with pytest.raises(DataError) as info:
        verify_files(card, subset, tmp_path)
    message = str(info.value)
    assert "'rg65-xling'" in message and subset.files[0].path in message
    assert "--data-dir" in message and "\n" not in message


def test_verify_missing_file_mentions_url(tmp_path: Path) -> None:
    card = valid_card()
    card["subsets"][0]["files"][0]["url"] = "https://example.org/en.txt"
    parsed = parse_card(card, "c.toml")
    with pytest.raises(DataError, match="get it from https://example.org/en.txt"):
        verify_files(parsed, parsed.subsets[0], tmp_path)


def test_card_base_resolves_next_to_the_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card_dir = tmp_path / "cards"
    payload = b"en:cat\tde:katze\t3.9\n"
    (card_dir / "data").mkdir(parents=True)
    (card_dir / "data" / "pairs.txt").write_bytes(payload)
    (tmp_path / "sibling.txt").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    card = valid_card()
    card["base"] = "card"  # default base for every file of the card
    card["subsets"] = [
        {"name": "inside", "languages": ["en", "de"], "files": [{"path": "data/pairs.txt", "sha256": digest}]},
        {"name": "up", "languages": ["en", "de"], "files": [{"path": "../sibling.txt", "sha256": digest}]},
        {"name": "data-root", "languages": ["en"], "files": [{"path": "pairs.txt", "base": "data"}]},
    ]
    path = write_card(card_dir, card)
    other_cwd = tmp_path / "elsewhere"
    other_cwd.mkdir()
    monkeypatch.chdir(other_cwd)  # resolution must not depend on the working directory
    parsed = load_card(path)
    inside, up, data_root = parsed.subsets
    assert parsed.data_paths(inside, tmp_path / "unused") == [card_dir / "data" / "pairs.txt"]
    assert parsed.data_paths(up, tmp_path / "unused") == [tmp_path / "sibling.txt"]
    assert parsed.data_paths(data_root, tmp_path / "root") == [tmp_path / "root" / "pairs.txt"]
    assert verify_files(parsed, inside, tmp_path / "unused") == [{"path": "data/pairs.txt", "sha256": digest}]
    assert verify_files(parsed, up, tmp_path / "unused")[0]["sha256"] == digest


def test_package_base_resolves_inside_mmbench() -> None:
    data_file = DataFile(path="errors.py", sha256=None, base="package")
    resolved = data_file.resolve(Path("/nonexistent-card-dir"), Path("/nonexistent-data"))
    assert resolved == Path(mmbench.__file__).parent / "errors.py"
    assert resolved.is_file()
