"""Task cards: one declarative TOML file per task (MTEB-style metadata), validated on load.

Card files come from the packaged ``tasks/`` directory, then ``MMBENCH_TASKS_PATH`` (os.pathsep list) and
``--tasks-dir`` (later ones override earlier cards of the same name, with a notice). A card reads files only
inside its base directory: checked lexically when the card is parsed and again, symlinks resolved, when a
file is resolved. See docs/task-cards.md.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable, Sequence

from .errors import CardError, DataError, MMBenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
TASKS_PATH_ENV = "MMBENCH_TASKS_PATH"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
BASES = ("data", "card", "package")
BASE_PLACES = {"data": "data directory", "card": "card directory", "package": "mmbench package"}

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

    def root(self, card_dir: Path, data_dir: Path) -> Path:
        """The directory this file must stay inside."""
        if self.base == "card":
            return Path(card_dir)
        if self.base == "package":
            return Path(str(importlib.resources.files("mmbench")))
        return Path(data_dir)

    def resolve(self, card_dir: Path, data_dir: Path) -> Path:
        """The file's path; DataError if it leaves its base directory (symlinks followed). The file is not read."""
        root = self.root(card_dir, data_dir)
        place = f"the {BASE_PLACES.get(self.base, 'base directory')} {root}"
        if not is_contained_path(self.path):
            raise DataError(f"data file {self.path!r}: must be a relative path inside {place}")
        try:
            real, real_root = (root / self.path).resolve(), root.resolve()
        except (OSError, RuntimeError) as exc:  # e.g. a symlink loop
            raise DataError(f"data file {self.path!r}: cannot resolve it inside {place}: {exc.__class__.__name__}") from None
        if not real.is_relative_to(real_root):
            raise DataError(f"data file {self.path!r} resolves to {real}, outside {place}; a card reads only files inside it")
        return real if self.base == "card" else root / self.path


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


class UnknownName(MMBenchError):
    """A task or suite name that no card has (a user error, exit 1, like an unknown model)."""


def suggest(name: str, known: Iterable[str], what: str, see: str) -> str:
    """``unknown task 'rg56'; did you mean 'rg65'? (see `mmbench list tasks`)``: close matches first."""
    import difflib

    close = difflib.get_close_matches(name, sorted(set(known)), n=3)
    hint = "; did you mean " + (repr(close[0]) if len(close) == 1 else
                                ", ".join(map(repr, close[:-1])) + f" or {close[-1]!r}") + "?" if close else ""
    return f"unknown {what} {name!r}{hint} ({see})"


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


def is_contained_path(path: str) -> bool:
    """Whether ``path`` names something below a directory, lexically: relative on POSIX and Windows, no '..'."""
    if not path or "\0" in path:
        return False
    posix, windows = PurePosixPath(path), PureWindowsPath(path)
    if posix.is_absolute() or windows.drive or windows.root:
        return False
    return bool(posix.parts) and ".." not in posix.parts and ".." not in windows.parts


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
            if not is_contained_path(path):
                check.fail(f"{here}path", f"must be a relative path inside the {BASE_PLACES.get(base, 'base directory')}")
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


def packaged_card_directory() -> Path:
    return Path(str(importlib.resources.files("mmbench_tasks")))


def user_card_directories(tasks_dirs: Iterable[Path] = ()) -> list[Path]:
    """$MMBENCH_TASKS_PATH, then explicit --tasks-dir (later wins)."""
    env = os.environ.get(TASKS_PATH_ENV)
    dirs = [Path(p) for p in env.split(os.pathsep) if p] if env else []
    return dirs + [Path(d) for d in tasks_dirs]


def card_directories(tasks_dirs: Iterable[Path] = ()) -> list[Path]:
    """Packaged cards first, then $MMBENCH_TASKS_PATH, then explicit --tasks-dir (later wins)."""
    return [packaged_card_directory(), *user_card_directories(tasks_dirs)]


@dataclass
class CardScan:
    """What discovery found: the cards that win, and what went wrong or was replaced on the way."""

    cards: dict[str, TaskCard] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # every problem, packaged or user, one line each
    user_errors: list[str] = field(default_factory=list)  # the user's (tasks dirs, env path) share of ``errors``
    notices: list[str] = field(default_factory=list)  # "task 'x' from FILE overrides the packaged card", ...


def scan_cards(tasks_dirs: Iterable[Path] = ()) -> CardScan:
    """Load the packaged cards, then the user's; a later card of the same name replaces an earlier one."""
    scan = CardScan()
    from_user: dict[str, bool] = {}
    directories = [(packaged_card_directory(), False)] + [(d, True) for d in user_card_directories(tasks_dirs)]
    for directory, user in directories:
        problems = [scan.errors, scan.user_errors] if user else [scan.errors]
        if not directory.is_dir():
            for lines in problems:
                lines.append(f"{directory}: tasks directory does not exist")
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                card = load_card(path)
            except CardError as exc:
                for lines in problems:
                    lines.append(str(exc))
                continue
            earlier = scan.cards.get(card.name)
            if user and earlier is not None and not _same_file(earlier.path, path):
                replaced = f"the one from {earlier.path}" if from_user[card.name] else "the packaged card"
                scan.notices.append(f"task {card.name!r} from {path} overrides {replaced}")
            scan.cards[card.name], from_user[card.name] = card, user
    return scan


def _same_file(a: Path | None, b: Path) -> bool:
    try:
        return a is not None and a.samefile(b)
    except OSError:
        return False


def discover_cards(
    tasks_dirs: Iterable[Path] = (), notices: list[str] | None = None
) -> tuple[dict[str, TaskCard], list[str]]:
    """All valid cards by name, and one error line per card that failed validation. Never raises for a
    broken card (``mmbench list`` shows them); ``notices``, if given, receives one line per override."""
    scan = scan_cards(tasks_dirs)
    if notices is not None:
        notices.extend(scan.notices)
    return scan.cards, scan.errors


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    return digest.hexdigest()


def data_status(card: TaskCard, data_dir: Path) -> str:
    """Whether a card's data is installed: ``embedded`` (no files, or only packaged ones), ``yes``, ``no``,
    ``partial`` (some subsets have every file). Only existence is checked (``mmbench data verify`` hashes)."""
    present = []
    for subset in card.subsets:
        files = [f for f in subset.files if f.base != "package"]
        if files:
            try:
                present.append(all(f.resolve(card.directory, data_dir).is_file() for f in files))
            except MMBenchError:
                present.append(False)
    if not present:
        return "embedded"
    return "yes" if all(present) else "partial" if any(present) else "no"


def check_files(card: TaskCard, subset: Subset, data_dir: Path) -> list[tuple[DataFile, str, str]]:
    """Every file of ``subset`` as ``(file, status, detail)`` without raising: ``ok``; ``missing`` (not
    installed: restricted data such as COCO that the user adds); ``corrupt`` (sha256 mismatch, unreadable,
    a path outside its base, or a missing file of the mmbench package itself: always an error)."""
    results = []
    for data_file in subset.files:
        try:
            path = data_file.resolve(card.directory, data_dir)
        except DataError as exc:
            results.append((data_file, "corrupt", str(exc)))
            continue
        if not path.is_file():
            if data_file.base == "package":
                results.append((data_file, "corrupt", f"{data_file.path}: missing from the installed package"))
            else:
                hint = f"; get it from {data_file.url}" if data_file.url else ""
                results.append((data_file, "missing", f"{data_file.path} not in {path.parent}{hint}"))
            continue
        try:
            digest = file_sha256(path)
        except OSError as exc:
            results.append((data_file, "corrupt", f"{path}: cannot read ({exc.strerror or exc})"))
            continue
        if data_file.sha256 and digest != data_file.sha256:
            results.append((data_file, "corrupt",
                            f"{data_file.path}: sha256 {digest[:12]}… does not match the card's {data_file.sha256[:12]}…"))
        else:
            results.append((data_file, "ok", data_file.path))
    return results


def verify_files(card: TaskCard, subset: Subset, data_dir: Path) -> list[dict[str, str]]:
    """Check every file of ``subset`` exists and matches its sha256; return provenance entries."""
    entries = []
    for data_file in subset.files:
        try:
            path = data_file.resolve(card.directory, data_dir)
        except DataError as exc:
            raise DataError(f"task {card.name!r}: {exc}") from None
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


# -- selecting cards for a run (``registry`` is a mmbench.plugins.Registry; cards never import plugins) --
def select_cards(
    registry, task_names: Sequence[str], suites: Sequence[str], tasks_dirs: Sequence[Path] = (),
    notices: list[str] | None = None,
) -> list[TaskCard]:
    """Cards named directly or through a suite, validated against their kind; errors name the card.

    Any of the user's cards (``tasks_dirs``, $MMBENCH_TASKS_PATH) that fails to load is a CardError, so a
    broken override never loses silently to the packaged card; ``notices``, if given, receives the overrides.
    """
    scan = scan_cards(tasks_dirs)
    if notices is not None:
        notices.extend(scan.notices)
    if scan.user_errors:
        raise CardError("; ".join(scan.user_errors) + f" (every card from --tasks-dir and {TASKS_PATH_ENV} must load)")
    cards, errors = scan.cards, scan.errors
    wanted = list(dict.fromkeys(task_names))
    for suite in suites:
        members = sorted(name for name, card in cards.items() if suite in card.suites)
        if not members:
            known = {s for card in cards.values() for s in card.suites}
            raise UnknownName(suggest(suite, known, "suite", "known: " + (", ".join(sorted(known)) or "none")))
        wanted += [m for m in members if m not in wanted]
    if not wanted:
        raise CardError("no task given: use --task NAME or --suite NAME")
    selected = []
    for name in wanted:
        if name not in cards:
            broken = [e for e in errors if f"/{name}.toml" in e or e.startswith(f"{name}.toml")]
            if broken:
                raise CardError(broken[0])
            raise UnknownName(suggest(name, cards, "task", "see `mmbench list tasks`"))
        selected.append(validate_against_kind(registry, cards[name]))
    return selected


def validate_against_kind(registry, card: TaskCard) -> TaskCard:
    source = str(card.path or card.name)
    try:
        kind = registry.task_kind(card.kind)
    except MMBenchError as exc:  # unknown, or claimed by two plugins: the registry says which
        raise CardError(f"{source}: kind: {str(exc).splitlines()[0]}") from None
    problems = list(kind.validate(card))
    if card.main_score not in kind.scores:
        problems.append(f"main_score: {card.main_score!r} is not a score of kind {kind.name!r} ({', '.join(kind.scores)})")
    if problems:
        raise CardError(f"{source}: " + "; ".join(problems))
    return card
