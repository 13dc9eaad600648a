"""Task cards: one declarative TOML file per task (MTEB-style metadata), validated on load.

Card files come from the packaged ``tasks/`` directory, then ``MMBENCH_TASKS_PATH`` (os.pathsep list) and
``--tasks-dir`` (later ones override earlier cards of the same name). See docs/task-cards.md.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import CardError, DataError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
TASKS_PATH_ENV = "MMBENCH_TASKS_PATH"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
BASES = ("data", "card", "package")

REQUIRED_FIELDS = {
    "name": str,
    "kind": str,
    "description": str,
    "main_score": str,
    "protocol": str,
    "license": str,
    "citation": str,
    "splits": list,
    "subsets": list,
}
OPTIONAL_FIELDS = {
    "schema": int,
    "suites": list,
    "params": dict,
    "aggregate": str,
    "homepage": str,
    "base": str,
    "evaluates_on": list,
}
DATA_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*:[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class DataFile:
    path: str
    sha256: str | None
    base: str  # "data": under the data root; "card": next to the card; "package": inside mmbench
    url: str | None = None

    def resolve(self, card_dir: Path, data_dir: Path) -> Path:
        if self.base == "card":
            return (card_dir / self.path).resolve()
        if self.base == "package":
            return Path(str(importlib.resources.files("mmbench").joinpath(self.path)))
        return data_dir / self.path


@dataclass(frozen=True)
class Subset:
    name: str
    languages: tuple[str, ...]
    split: str
    files: tuple[DataFile, ...]
    params: dict[str, Any]
    # "dataset:split" ids of the items scored (e.g. "multi30k:test_2016_flickr"); a model that declares
    # it trained on one of them is not scored here (see ``data_overlap``).
    evaluates_on: tuple[str, ...] = ()


@dataclass
class TaskCard:
    name: str
    kind: str
    description: str
    main_score: str
    protocol: str
    license: str
    citation: str
    splits: list[str]
    subsets: list[Subset]
    suites: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    aggregate: str | None = None
    homepage: str | None = None
    path: Path | None = None
    sha256: str = ""

    @property
    def directory(self) -> Path:
        return self.path.parent if self.path else Path(".")

    def data_paths(self, subset: Subset, data_dir: Path) -> list[Path]:
        return [f.resolve(self.directory, data_dir) for f in subset.files]


class _Checker:
    """Collects errors as 'file: field: problem' lines."""

    def __init__(self, source: str):
        self.source = source
        self.errors: list[str] = []

    def fail(self, where: str, problem: str) -> None:
        self.errors.append(f"{self.source}: {where}: {problem}")

    def typed(self, table: dict, key: str, kind: type, where: str, required: bool = True) -> Any:
        if key not in table:
            if required:
                self.fail(f"{where}{key}", "required field is missing")
            return None
        value = table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(f"{where}{key}", f"expected {kind.__name__}, got {type(value).__name__}")
            return None
        return value


def _parse_files(check: _Checker, raw: Any, where: str, default_base: str) -> tuple[DataFile, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.fail(where, "expected a list of file tables")
        return ()
    files = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]."
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict):
            check.fail(f"{where}[{i}]", "expected a table with path and sha256")
            continue
        unknown = set(item) - {"path", "sha256", "base", "url"}
        if unknown:
            check.fail(f"{here}{sorted(unknown)[0]}", "unknown field")
        path = check.typed(item, "path", str, here)
        sha = check.typed(item, "sha256", str, here, required=False)
        base = check.typed(item, "base", str, here, required=False) or default_base
        url = check.typed(item, "url", str, here, required=False)
        if sha is not None and not SHA256_RE.match(sha):
            check.fail(f"{here}sha256", "must be 64 lowercase hex digits")
        if base not in BASES:
            check.fail(f"{here}base", f"must be one of {', '.join(BASES)}")
        if path is not None:
            if Path(path).is_absolute():
                check.fail(f"{here}path", "must be relative (to the data dir, the card, or the package)")
            elif base != "card" and ".." in Path(path).parts:
                check.fail(f"{here}path", "must not leave the data directory ('..')")
            else:
                files.append(DataFile(path=path, sha256=sha, base=base, url=url))
    return tuple(files)


def _data_ids(check: _Checker, ids: list | None, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A type-checked ``evaluates_on`` list (None: absent) as a tuple of valid ids."""
    if ids is None:
        return default
    if not all(isinstance(i, str) and DATA_ID_RE.match(i) for i in ids):
        check.fail(where, 'expected a list of "dataset:split" ids, e.g. "multi30k:test_2016_flickr"')
        return default
    return tuple(ids)


def data_overlap(seen: Iterable[str], evaluated: Iterable[str]) -> list[str]:
    """The ``evaluated`` data ids a model has ``seen`` in training: same dataset and same split, where the
    split ``all`` overlaps every split of its dataset."""
    pairs = [tuple(i.split(":", 1)) for i in seen]
    return sorted({e for e in evaluated for dataset, split in [e.split(":", 1)]
                   if any(d == dataset and (s == split or "all" in (s, split)) for d, s in pairs)})


def parse_card(data: dict[str, Any], source: str, path: Path | None = None, sha256: str = "") -> TaskCard:
    """Validate a parsed TOML table; raise CardError listing every problem."""
    check = _Checker(source)
    values = {key: check.typed(data, key, kind, "") for key, kind in REQUIRED_FIELDS.items()}
    optional = {key: check.typed(data, key, kind, "", required=False) for key, kind in OPTIONAL_FIELDS.items()}
    for key in sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS)):
        check.fail(key, "unknown field")
    schema = optional["schema"]
    if schema is not None and schema != SCHEMA_VERSION:
        check.fail("schema", f"unsupported card schema {schema} (this mmbench reads {SCHEMA_VERSION})")
    name = values["name"]
    if name is not None and not NAME_RE.match(name):
        check.fail("name", "use lowercase letters, digits, '.', '_' and '-' (start with a letter or digit)")
    splits = values["splits"] or []
    if values["splits"] is not None and (not splits or not all(isinstance(s, str) for s in splits)):
        check.fail("splits", "expected a non-empty list of strings")
    default_base = optional["base"] or "data"
    if default_base not in BASES:
        check.fail("base", f"must be one of {', '.join(BASES)}")

    card_evaluates_on = _data_ids(check, optional["evaluates_on"], "evaluates_on", ())
    subsets: list[Subset] = []
    seen: set[str] = set()
    raw_subsets = values["subsets"] or []
    if values["subsets"] is not None and not raw_subsets:
        check.fail("subsets", "at least one [[subsets]] entry is required")
    for i, raw in enumerate(raw_subsets):
        where = f"subsets[{i}]."
        if not isinstance(raw, dict):
            check.fail(f"subsets[{i}]", "expected a table")
            continue
        for key in sorted(set(raw) - {"name", "languages", "split", "files", "params", "evaluates_on"}):
            check.fail(f"{where}{key}", "unknown field")
        sub_name = check.typed(raw, "name", str, where)
        languages = check.typed(raw, "languages", list, where) or []
        if not all(isinstance(lang, str) and lang for lang in languages):
            check.fail(f"{where}languages", "expected a list of language codes")
        split = check.typed(raw, "split", str, where, required=False) or (splits[0] if splits else "test")
        if splits and split not in splits:
            check.fail(f"{where}split", f"{split!r} is not one of the card's splits {splits}")
        params = check.typed(raw, "params", dict, where, required=False) or {}
        files = _parse_files(check, raw.get("files"), f"{where}files", default_base)
        evaluates_on = _data_ids(check, check.typed(raw, "evaluates_on", list, where, required=False),
                                 f"{where}evaluates_on", card_evaluates_on)
        if sub_name is not None:
            if sub_name in seen or sub_name == "all":
                check.fail(f"{where}name", f"duplicate or reserved subset name {sub_name!r}")
            seen.add(sub_name)
            subsets.append(Subset(sub_name, tuple(languages), split, files, params, evaluates_on))

    aggregate = optional["aggregate"]
    if aggregate is not None and aggregate != "mean":
        check.fail("aggregate", "only 'mean' is supported")
    if check.errors:
        raise CardError("; ".join(check.errors))
    return TaskCard(
        name=name, kind=values["kind"], description=values["description"],
        main_score=values["main_score"], protocol=values["protocol"], license=values["license"],
        citation=values["citation"], splits=splits, subsets=subsets,
        suites=[str(s) for s in optional["suites"] or []], params=optional["params"] or {},
        aggregate=aggregate, homepage=optional["homepage"], path=path, sha256=sha256,
    )


def load_card(path: Path) -> TaskCard:
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise CardError(f"{path}: cannot read card: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise CardError(f"{path}: card is not valid UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"{path}: invalid TOML: {exc}") from None
    return parse_card(data, str(path), path=path, sha256=hashlib.sha256(raw_bytes).hexdigest())


def card_directories(tasks_dirs: Iterable[Path] = ()) -> list[Path]:
    """Packaged cards first, then $MMBENCH_TASKS_PATH, then explicit --tasks-dir (later wins)."""
    dirs = [Path(str(importlib.resources.files("mmbench_tasks")))]
    env = os.environ.get(TASKS_PATH_ENV)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(d) for d in tasks_dirs]
    return dirs


def discover_cards(tasks_dirs: Iterable[Path] = ()) -> tuple[dict[str, TaskCard], list[str]]:
    """All valid cards by name, and one error line per card that failed validation."""
    cards: dict[str, TaskCard] = {}
    errors: list[str] = []
    for directory in card_directories(tasks_dirs):
        if not directory.is_dir():
            errors.append(f"{directory}: tasks directory does not exist")
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                card = load_card(path)
            except CardError as exc:
                errors.append(str(exc))
                continue
            cards[card.name] = card
    return cards, errors


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    return digest.hexdigest()


def verify_files(card: TaskCard, subset: Subset, data_dir: Path) -> list[dict[str, str]]:
    """Check every file of ``subset`` exists and matches its sha256; return provenance entries."""
    entries = []
    for data_file in subset.files:
        path = data_file.resolve(card.directory, data_dir)
        if not path.is_file():
            hint = f"; get it from {data_file.url}" if data_file.url else ""
            raise DataError(
                f"task {card.name!r} needs {data_file.path} (looked in {path.parent}){hint}; "
                "set --data-dir or MMBENCH_DATA"
            )
        digest = file_sha256(path)
        if data_file.sha256 and digest != data_file.sha256:
            raise DataError(f"{path}: sha256 {digest[:12]}… does not match the card's {data_file.sha256[:12]}…")
        entries.append({"path": data_file.path, "sha256": digest})
    return entries
