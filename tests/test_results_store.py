"""Result records: atomic JSON writes, safe and distinct record paths, record construction."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

import mmbench.results as results
from mmbench.results import SCHEMA_VERSION, RecordKey, ResultStore, make_record, slug, write_json_atomic

KEY = RecordKey(
    model="vectors:wiki.en.vec", config_hash="0123456789ab", seed=3, task="rg65-xling",
    subset="en-de", split="test", protocol="multiskip-rg65/dev+test",
)


def record_kwargs(**overrides) -> dict:
    kwargs = dict(
        model_argument="/data/wiki.en.vec",
        config={"prefixed": "auto", "max_words": None},
        task_kind="word-similarity",
        languages=["en", "de"],
        main_score_name="spearman",
        higher_is_better=True,
        scores={"spearman": 0.61, "pearson": 0.58},
        coverage=0.9,
        n_items=125,
        wall_time_s=1.234567,
        created_at="2024-01-01T00:00:00+00:00",
        details={"oov_policy": "drop"},
        provenance={"mmbench": "0.1.0"},
    )
    kwargs.update(overrides)
    return kwargs


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- write_json_atomic ---------------------------------------------------------------------------------


def test_write_json_atomic_writes_complete_sorted_utf8_json(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "r.json"
    write_json_atomic(path, {"b": 1, "a": "lächeln", "c": [1.5, None]})
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"a": "lächeln", "b": 1, "c": [1.5, None]}
    assert "lächeln" in text  # not \u-escaped
    assert text.index('"a"') < text.index('"b"') < text.index('"c"')
    assert text.endswith("}\n")
    assert files_in(path.parent) == ["r.json"]


def test_write_json_atomic_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": 1})
    write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert files_in(tmp_path) == ["r.json"]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"score": float("nan")}, ValueError),  # allow_nan=False: NaN is not JSON
        ({"score": float("inf")}, ValueError),
        ({"a": "x" * 10_000, "z": object()}, TypeError),  # fails after part of the file was written
        ({"a": {1, 2}}, TypeError),
    ],
)
def test_failed_serialisation_keeps_old_file_and_leaves_no_temp(tmp_path: Path, payload, error) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": "old"})
    before = path.read_bytes()
    with pytest.raises(error):
        write_json_atomic(path, payload)
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["r.json"]


def test_failed_first_write_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with pytest.raises(ValueError):
        write_json_atomic(path, [float("nan")])
    assert files_in(tmp_path) == []


def test_interrupt_during_write_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": "old"})

    def interrupted_fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(path, {"v": "new"})
    assert json.loads(path.read_text()) == {"v": "old"}
    assert files_in(tmp_path) == ["r.json"]


def test_rename_is_from_a_complete_temp_file_in_the_same_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": "old"})
    real_replace = os.replace
    seen = []

    def checking_replace(src, dst):
        src, dst = Path(src), Path(dst)
        # Same directory => same filesystem => rename is atomic; the new content is already complete
        # and the old file is still in place until the rename.
        seen.append((src.parent == dst.parent, json.loads(src.read_text()), json.loads(dst.read_text())))
        assert src.name.startswith(".")  # hidden temp file, never matched as a record
        real_replace(src, dst)

    monkeypatch.setattr(results.os, "replace", checking_replace)
    write_json_atomic(path, {"v": "new"})
    assert seen == [(True, {"v": "new"}, {"v": "old"})]


def test_concurrent_writers_readers_always_see_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, {"writer": -1, "pad": ""})
    stop = threading.Event()
    failures: list[str] = []
    reads = [0]

    def writer(n: int) -> None:
        for i in range(40):
            write_json_atomic(path, {"writer": n, "i": i, "pad": "x" * (1000 * (i % 7))})

    def reader() -> None:
        while not stop.is_set():
            try:
                json.loads(path.read_text(encoding="utf-8"))
                reads[0] += 1
            except Exception as exc:  # a partial file or a missing one
                failures.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    observer = threading.Thread(target=reader)
    observer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    observer.join()
    assert failures == []
    assert reads[0] > 0
    assert json.loads(path.read_text())["i"] == 39
    assert files_in(tmp_path) == ["r.json"]


# -- slug and record paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("en-de", "en-de"),
        ("vectors:wiki.en.vec", "vectors_wiki.en.vec"),
        ("a/b", "a_b"),
        ("../..", "_"),
        ("..", "_"),
        (".", "_"),
        ("", "_"),
        ("/", "_"),
        (".hidden", "hidden"),
        ("日本語", "_"),
        ("a  b", "a_b"),
    ],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_slug_limit() -> None:
    assert slug("a" * 200) == "a" * 80
    assert slug("abcdef", limit=3) == "abc"


HOSTILE = ["../..", "..", "/", "/etc/passwd", "", ".", "日本語", "a/../../b", "\\..\\..", "~", "a\x00b", "con:"]


@pytest.mark.parametrize("field", ["model", "task", "subset", "split", "protocol"])
@pytest.mark.parametrize("value", HOSTILE)
def test_relative_path_stays_inside_root_for_hostile_names(tmp_path: Path, field: str, value: str) -> None:
    key = dataclasses.replace(KEY, **{field: value})
    relative = key.relative_path()
    assert not relative.is_absolute()
    assert ".." not in relative.parts and "." not in relative.parts
    assert all(part and not part.startswith(".") for part in relative.parts)
    root = tmp_path / "results"
    store = ResultStore(root)
    record = make_record(key, **record_kwargs())
    written = store.write(key, record)
    assert written.resolve().is_relative_to(root.resolve())
    assert store.read(key) == record
    assert store.exists(key)


def test_relative_path_stays_inside_root_for_hostile_config_hash() -> None:
    relative = dataclasses.replace(KEY, config_hash="/../../../outside").relative_path()
    assert ".." not in relative.parts


def test_distinct_keys_give_distinct_paths() -> None:
    # Names that slug to the same text must still land in different files.
    names = ["a/b", "a_b", "a b", "a:b", "a\\b", "a__b", "日", "本", "", "_"]
    keys = set()
    for name in names:
        keys.add(dataclasses.replace(KEY, subset=name))
        keys.add(dataclasses.replace(KEY, task=name))
        keys.add(dataclasses.replace(KEY, model=name))
        keys.add(dataclasses.replace(KEY, split=name))
        keys.add(dataclasses.replace(KEY, protocol=name))
    keys |= {dataclasses.replace(KEY, seed=s) for s in range(5)}
    keys |= {dataclasses.replace(KEY, config_hash=h) for h in ("aaaaaaaaaaaa", "bbbbbbbbbbbb")}
    paths = {key.relative_path() for key in keys}
    assert len(paths) == len(keys)


def test_relative_path_layout() -> None:
    path = KEY.relative_path()
    assert path.parts == (
        "rg65-xling",
        "vectors_wiki.en.vec__0123456789ab",
        "seed-3",
        f"en-de__test__{KEY.record_id}.json",
    )


def test_record_id_is_a_stable_hash_of_all_key_fields() -> None:
    fields = {
        "model": KEY.model, "config_hash": KEY.config_hash, "seed": KEY.seed, "task": KEY.task,
        "subset": KEY.subset, "split": KEY.split, "protocol": KEY.protocol,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    assert KEY.record_id == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert RecordKey(**fields).record_id == KEY.record_id
    changed = [
        dataclasses.replace(KEY, **{name: (value + 1 if isinstance(value, int) else value + "x")})
        for name, value in fields.items()
    ]
    assert len({k.record_id for k in changed} | {KEY.record_id}) == len(fields) + 1


# -- ResultStore ---------------------------------------------------------------------------------------


def test_store_round_trip(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    assert not store.exists(KEY)
    assert store.read(KEY) is None
    record = make_record(KEY, **record_kwargs())
    path = store.write(KEY, record)
    assert path == tmp_path / KEY.relative_path()
    assert store.exists(KEY)
    assert store.read(KEY) == record
    other = dataclasses.replace(KEY, seed=4)
    assert not store.exists(other) and store.read(other) is None


def _damage_truncate(path: Path, record: dict) -> None:
    path.write_bytes(path.read_bytes()[:40])


def _damage_empty(path: Path, record: dict) -> None:
    path.write_bytes(b"")


def _damage_garbage(path: Path, record: dict) -> None:
    path.write_bytes(b"\xff\xfe\x00garbage")


def _damage_edit(field: str, value):
    def damage(path: Path, record: dict) -> None:
        path.write_text(json.dumps({**record, field: value}), encoding="utf-8")
    return damage


def _damage_copy_of_another_key(path: Path, record: dict) -> None:
    other = dataclasses.replace(KEY, seed=KEY.seed + 1)
    path.write_text(json.dumps(make_record(other, **record_kwargs())), encoding="utf-8")


DAMAGE = {
    "truncated": (_damage_truncate, "not valid JSON"),
    "empty": (_damage_empty, "empty file"),
    "binary-garbage": (_damage_garbage, "not valid JSON"),
    "a-json-list": (lambda path, record: path.write_text("[1, 2]"), "not a JSON object"),
    "old-schema": (_damage_edit("schema_version", 0), "schema_version"),
    "no-scores": (_damage_edit("scores", {}), "no scores"),
    "main-score-edited": (_damage_edit("main_score", 0.99), "main_score does not match"),
    "score-not-a-number": (_damage_edit("scores", {"spearman": "0.61", "pearson": 0.58}), "not a finite number"),
    "coverage-out-of-range": (_damage_edit("coverage", 1.5), "coverage"),
    "protocol-edited": (_damage_edit("protocol", "other"), "protocol"),
    "another-keys-record": (_damage_copy_of_another_key, "record_id does not match"),
    "provenance-missing": (_damage_edit("provenance", None), "provenance"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_record_is_not_trusted(tmp_path: Path, damage: str) -> None:
    store = ResultStore(tmp_path)
    record = make_record(KEY, **record_kwargs())
    path = store.write(KEY, record)
    apply, reason = DAMAGE[damage]
    apply(path, record)
    assert store.read(KEY) is None and not store.exists(KEY)
    found, problem = store.inspect(KEY)
    assert found is None and reason in problem


def test_inspect_tells_absent_from_intact(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    assert store.inspect(KEY) == (None, None)
    record = make_record(KEY, **record_kwargs())
    store.write(KEY, record)
    assert store.inspect(KEY) == (record, None)


def test_store_refuses_to_write_a_record_that_does_not_match_its_key(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    with pytest.raises(ValueError, match="does not match its key"):
        store.write(KEY, make_record(dataclasses.replace(KEY, task="other"), **record_kwargs()))
    assert not list(tmp_path.rglob("*.json"))


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.write(KEY, make_record(KEY, **record_kwargs()))
    directory = store.path(KEY).parent
    dead = _a_dead_pid()
    stale = directory / f".x.json.~{results._HOST}~{dead}~abc123.tmp"
    live = directory / f".x.json.~{results._HOST}~{os.getpid()}~abc123.tmp"  # a writer still at work
    other_host = directory / f".x.json.~some-other-host~{dead}~abc123.tmp"  # cannot tell: leave it
    foreign = directory / ".notes.tmp"  # not ours
    for path in (stale, live, other_host, foreign):
        path.write_text("partial")
    assert store.remove_stale_temp_files() == [stale]
    assert not stale.exists() and live.exists() and other_host.exists() and foreign.exists()
    assert store.read(KEY) is not None


def _a_dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid  # reaped: no process has this pid now (reuse within the test is vanishingly rare)


def test_temp_file_names_carry_host_and_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(results.os, "replace", lambda src, dst: (seen.append(Path(src).name), real_replace(src, dst)))
    write_json_atomic(tmp_path / "r.json", {"v": 1})
    assert results._temp_owner(seen[0]) == (results._HOST, os.getpid())


# -- make_record ---------------------------------------------------------------------------------------


def test_make_record_fields() -> None:
    record = make_record(KEY, **record_kwargs())
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["record_id"] == KEY.record_id
    for name in ("model", "config_hash", "seed", "task", "subset", "split", "protocol"):
        assert record[name] == getattr(KEY, name)
    assert record["main_score_name"] == "spearman"
    assert record["main_score"] == 0.61
    assert record["scores"] == {"spearman": 0.61, "pearson": 0.58}
    assert record["wall_time_s"] == 1.2346
    assert record["coverage"] == 0.9 and record["n_items"] == 125
    assert record["higher_is_better"] is True
    json.dumps(record, allow_nan=False)  # a record is plain JSON


def test_make_record_main_score_can_be_any_listed_score() -> None:
    record = make_record(KEY, **record_kwargs(main_score_name="pearson"))
    assert record["main_score"] == 0.58


def test_make_record_refuses_main_score_not_among_scores() -> None:
    with pytest.raises(KeyError, match="'accuracy'.*pearson.*spearman"):
        make_record(KEY, **record_kwargs(main_score_name="accuracy"))
    with pytest.raises(KeyError):
        make_record(KEY, **record_kwargs(scores={}))


def test_record_id_stable_across_records() -> None:
    first = make_record(KEY, **record_kwargs())
    second = make_record(KEY, **record_kwargs(scores={"spearman": 0.1, "pearson": 0.2}, wall_time_s=9.0))
    assert first["record_id"] == second["record_id"]
    assert make_record(dataclasses.replace(KEY, seed=0), **record_kwargs())["record_id"] != first["record_id"]
