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
    ("absolute-path", _file("path", "/etc/passwd"), "subsets[0].files[0].path",
     "must be a relative path inside the data directory"),
    ("dotdot-path", _file("path", "wordsim/../../secret.txt"), "subsets[0].files[0].path",
     "must be a relative path inside the data directory"),
    ("dotdot-path-package", lambda c: c["subsets"][0]["files"][0].update(path="../x.txt", base="package"),
     "subsets[0].files[0].path", "must be a relative path inside the mmbench package"),
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


# -- a card reads only inside its base directory ---------------------------------------------------------

SECRET = b"TOPSECRET-TOKEN-123"


@pytest.mark.parametrize("bad", [
    "../../../etc/shadow", "../sibling.txt", "data/../../x.txt", "..", "/etc/shadow", "//host/share/x",
    "C:\\Windows\\x.txt", "..\\..\\x.txt", "", ".", "a\0b",
])
def test_card_path_outside_the_card_directory_is_a_field_problem(tmp_path: Path, bad: str) -> None:
    card = valid_card()
    card["base"] = "card"
    card["subsets"][0]["files"].append({"path": bad})
    path = write_card(tmp_path, card, "escape.toml")
    with pytest.raises(CardError) as info:
        load_card(path)
    assert str(info.value) == f"{path}: subsets[0].files[1].path: must be a relative path inside the card directory"


def test_validate_reports_an_escaping_card_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from mmbench.cli import main

    card = valid_card()
    card["subsets"][0]["files"].append({"path": "../../../etc/shadow", "base": "card"})
    path = write_card(tmp_path, card, "escape.toml")
    assert main(["validate", str(path)]) == 1
    assert "subsets[0].files[1].path: must be a relative path inside the card directory" in capsys.readouterr().err


def test_paths_inside_the_base_directory_still_parse() -> None:
    card = valid_card()
    card["subsets"][0]["files"] = [{"path": p, "base": "card"} for p in ("a.txt", "./d/a.txt", "d/..x/a..b.txt")]
    assert [f.path for f in parse_card(card, "c.toml").subsets[0].files] == ["a.txt", "./d/a.txt", "d/..x/a..b.txt"]


def _card_with_link(tmp_path: Path, base: str) -> tuple[Any, Path, Path]:
    """A card whose only file is a symlink (inside its base directory) to a secret outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"en:cat\tde:katze\t" + SECRET + b"\n")
    card_dir, data_dir = tmp_path / "cards", tmp_path / "data"
    link = (card_dir if base == "card" else data_dir) / "sub" / "pairs.txt"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside / "secret.txt")
    card = valid_card()
    card["subsets"] = [{"name": "en-de", "languages": ["en", "de"], "files": [{"path": "sub/pairs.txt", "base": base}]}]
    return load_card(write_card(card_dir, card)), data_dir, link  # lexically fine: it parses


@pytest.mark.parametrize("base", ["card", "data"])
def test_symlink_out_of_the_base_directory_is_refused_without_reading_it(tmp_path: Path, base: str) -> None:
    parsed, data_dir, link = _card_with_link(tmp_path, base)
    subset = parsed.subsets[0]
    place = "card directory" if base == "card" else "data directory"
    for call in (lambda: verify_files(parsed, subset, data_dir), lambda: parsed.data_paths(subset, data_dir),
                 lambda: subset.files[0].resolve(parsed.directory, data_dir)):
        with pytest.raises(DataError) as info:
            call()
        message = str(info.value)
        assert "'sub/pairs.txt'" in message and f"outside the {place}" in message
        assert SECRET.decode() not in message and "\n" not in message
    with pytest.raises(DataError, match=r"^task 'demo-task': data file 'sub/pairs.txt' resolves to "):
        verify_files(parsed, subset, data_dir)


def test_symlink_escape_never_reaches_a_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: the run reports the escaping file as an error and no record leaks the secret."""
    from mmbench import plugins
    from mmbench.runner import RunOptions, resolve_model, run, select_cards

    monkeypatch.delenv(TASKS_PATH_ENV, raising=False)
    parsed, data_dir, _ = _card_with_link(tmp_path, "card")
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("2 3\ncat 1 0 0\nkatze 0.9 0.1 0\n", encoding="utf-8")
    registry = plugins.load_plugins()[1]
    cards = select_cards(registry, ["demo-task"], [], [parsed.directory])
    outcomes = run(registry, [resolve_model(registry, f"vectors:{vectors}")], cards,
                   RunOptions(results_dir=tmp_path / "results", data_dir=data_dir))
    assert [o.status for o in outcomes] == ["error"]
    assert "outside the card directory" in outcomes[0].message and SECRET.decode() not in outcomes[0].message
    assert not any(SECRET in p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file())


def test_symlink_inside_the_base_directory_is_followed(tmp_path: Path) -> None:
    card_dir = tmp_path / "cards"
    (card_dir / "real").mkdir(parents=True)
    (card_dir / "real" / "pairs.txt").write_bytes(b"en:cat\tde:katze\t3.9\n")
    (card_dir / "alias.txt").symlink_to(card_dir / "real" / "pairs.txt")
    data_file = DataFile(path="alias.txt", sha256=None, base="card")
    assert data_file.resolve(card_dir, tmp_path) == card_dir / "real" / "pairs.txt"


def test_data_root_may_itself_be_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "big-disk" / "wordsim").mkdir(parents=True)
    (tmp_path / "big-disk" / "wordsim" / "en.txt").write_bytes(b"x")
    (tmp_path / "root").symlink_to(tmp_path / "big-disk")
    data_file = DataFile(path="wordsim/en.txt", sha256=None, base="data")
    assert data_file.resolve(Path("/unused"), tmp_path / "root") == tmp_path / "root" / "wordsim" / "en.txt"


@pytest.mark.parametrize(("base", "path", "place"), [
    ("data", "../outside.txt", "data directory"),
    ("data", "/etc/passwd", "data directory"),
    ("card", "../outside.txt", "card directory"),
    ("package", "../../outside.txt", "mmbench package"),
])
def test_resolve_refuses_paths_that_bypassed_parsing(tmp_path: Path, base: str, path: str, place: str) -> None:
    """A DataFile built in code (not parsed from a card) is held to the same rule."""
    (tmp_path / "outside.txt").write_bytes(SECRET)
    (tmp_path / "root").mkdir()
    with pytest.raises(DataError, match=rf"^data file '{re.escape(path)}': must be a relative path inside the {place} "):
        DataFile(path=path, sha256=None, base=base).resolve(tmp_path / "root", tmp_path / "root")


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


# -- the user's cards: overrides are announced, broken ones stop a run ----------------------------------


@pytest.fixture(scope="module")
def registry():
    from mmbench import plugins

    return plugins.load_plugins()[1]


def _packaged_text(name: str) -> str:
    return (PACKAGED_DIR / f"{name}.toml").read_text(encoding="utf-8")


def test_malformed_override_of_a_packaged_card_stops_the_run(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmbench.runner import select_cards

    monkeypatch.delenv(TASKS_PATH_ENV, raising=False)
    broken = tmp_path / "emoji-retrieval.toml"
    broken.write_text(_packaged_text("emoji-retrieval").replace("main_score =", "main_scor ="), encoding="utf-8")
    with pytest.raises(CardError) as info:
        select_cards(registry, ["emoji-retrieval"], [], [tmp_path])
    message = str(info.value)
    assert message.startswith(f"{broken}: main_score: required field is missing") and "\n" not in message
    with pytest.raises(CardError, match=re.escape(str(broken))):  # also when it was not even asked for
        select_cards(registry, ["wordsim-en"], [], [tmp_path])
    cards, errors = discover_cards([tmp_path])  # `mmbench list tasks` still lists, with the problem
    assert cards["emoji-retrieval"].path.parent == PACKAGED_DIR and errors == [message.split(" (every card")[0]]


def test_broken_user_card_under_another_file_name_surfaces_its_reason(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmbench.runner import select_cards

    monkeypatch.delenv(TASKS_PATH_ENV, raising=False)
    card = _variant("my-sim", "mine")
    card["subsets"][0]["files"][0]["path"] = "../../../etc/shadow"
    broken = write_card(tmp_path, card, "similarity-v2.toml")
    with pytest.raises(CardError) as info:
        select_cards(registry, ["my-sim"], [], [tmp_path])
    assert f"{broken}: subsets[0].files[0].path: must be a relative path inside the data directory" in str(info.value)
    assert "unknown task" not in str(info.value)


def test_broken_card_on_the_env_path_and_a_missing_tasks_dir_stop_the_run(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmbench.runner import select_cards

    broken = valid_card()
    del broken["citation"]
    path = write_card(tmp_path / "env", broken, "x.toml")
    monkeypatch.setenv(TASKS_PATH_ENV, str(tmp_path / "env"))
    with pytest.raises(CardError, match=rf"^{re.escape(str(path))}: citation: required field is missing"):
        select_cards(registry, ["wordsim-en"], [], [])
    monkeypatch.delenv(TASKS_PATH_ENV)
    with pytest.raises(CardError, match=rf"^{re.escape(str(tmp_path / 'typo'))}: tasks directory does not exist"):
        select_cards(registry, ["wordsim-en"], [], [tmp_path / "typo"])


def test_broken_packaged_card_is_reported_as_before(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken packaged card stops only a run that asks for it (a broken install, not a user's mistake)."""
    from mmbench import cards as cards_module
    from mmbench.runner import select_cards

    monkeypatch.delenv(TASKS_PATH_ENV, raising=False)
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    shutil.copyfile(PACKAGED_DIR / "wordsim-en.toml", packaged / "wordsim-en.toml")
    (packaged / "rg65-xling.toml").write_text(_packaged_text("rg65-xling").replace("kind =", "knd ="), encoding="utf-8")
    monkeypatch.setattr(cards_module, "packaged_card_directory", lambda: packaged)
    assert [c.name for c in select_cards(registry, ["wordsim-en"], [], [])] == ["wordsim-en"]
    with pytest.raises(CardError, match=rf"^{re.escape(str(packaged / 'rg65-xling.toml'))}: kind: required field"):
        select_cards(registry, ["rg65-xling"], [], [])


def test_valid_override_is_announced(registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbench.runner import select_cards

    monkeypatch.delenv(TASKS_PATH_ENV, raising=False)
    mine = tmp_path / "my-emoji.toml"  # the file name need not match the task name
    mine.write_text(_packaged_text("emoji-retrieval").replace('protocol = "', 'protocol = "mine/'), encoding="utf-8")
    expected = f"task 'emoji-retrieval' from {mine} overrides the packaged card"
    notices: list[str] = []
    (card,) = select_cards(registry, ["emoji-retrieval"], [], [tmp_path], notices=notices)
    assert card.path == mine and card.protocol.startswith("mine/") and notices == [expected]
    notices = []
    cards, errors = discover_cards([tmp_path], notices=notices)
    assert cards["emoji-retrieval"].path == mine and errors == [] and notices == [expected]
    assert select_cards(registry, ["emoji-retrieval"], [], [tmp_path])[0].path == mine  # notices are optional


def test_overrides_between_user_directories_are_announced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = write_card(tmp_path / "a", _variant("local", "a")), write_card(tmp_path / "b", _variant("local", "b"))
    monkeypatch.setenv(TASKS_PATH_ENV, str(tmp_path / "a"))
    notices: list[str] = []
    cards, _ = discover_cards([tmp_path / "b", tmp_path / "b"], notices=notices)  # the same directory twice
    assert cards["local"].description == "b"
    assert notices == [f"task 'local' from {second} overrides the one from {first}"]
    notices = []
    discover_cards([], notices=notices)
    assert notices == []  # a user card that overrides nothing is not announced


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
    digest = hashlib.sha256(payload).hexdigest()
    card = valid_card()
    card["base"] = "card"  # default base for every file of the card
    card["subsets"] = [
        {"name": "inside", "languages": ["en", "de"], "files": [{"path": "data/pairs.txt", "sha256": digest}]},
        {"name": "data-root", "languages": ["en"], "files": [{"path": "pairs.txt", "base": "data"}]},
    ]
    path = write_card(card_dir, card)
    other_cwd = tmp_path / "elsewhere"
    other_cwd.mkdir()
    monkeypatch.chdir(other_cwd)  # resolution must not depend on the working directory
    parsed = load_card(path)
    inside, data_root = parsed.subsets
    assert parsed.data_paths(inside, tmp_path / "unused") == [card_dir / "data" / "pairs.txt"]
    assert parsed.data_paths(data_root, tmp_path / "root") == [tmp_path / "root" / "pairs.txt"]
    assert verify_files(parsed, inside, tmp_path / "unused") == [{"path": "data/pairs.txt", "sha256": digest}]


def test_package_base_resolves_inside_mmbench() -> None:
    data_file = DataFile(path="errors.py", sha256=None, base="package")
    resolved = data_file.resolve(Path("/nonexistent-card-dir"), Path("/nonexistent-data"))
    assert resolved == Path(mmbench.__file__).parent / "errors.py"
    assert resolved.is_file()
