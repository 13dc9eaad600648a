"""Result records: one JSON file per (model + config hash, seed, task, subset, split, protocol).

Records are written atomically (temp file in the same directory, fsync, rename), so a killed run never
leaves a partial record. A unit of work is done when its record exists *and* is intact: it parses, has
this schema version, its key fields match the key it is stored under, and its scores are finite numbers.
A damaged record (truncated, emptied, edited, copied under another key) counts as missing and is
recomputed. Temp files left by killed processes are removed by the next run. Schema: docs/results.md;
guarantees: docs/guarantees.md.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import stable_hash

SCHEMA_VERSION = 2  # 2: optional per-item outputs in details.items (see ``encode_items``)
READABLE_VERSIONS = (1, 2)  # a version-1 record (no per-item outputs) is still intact, never recomputed
ITEMS_FORMAT = "mmbench-items/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def slug(text: str, limit: int = 80) -> str:
    """A file-name-safe version of ``text`` (never empty, never '.' or '..')."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    return cleaned[:limit]


@dataclass(frozen=True)
class RecordKey:
    model: str
    config_hash: str
    seed: int
    task: str
    subset: str
    split: str
    protocol: str

    @property
    def record_id(self) -> str:
        return stable_hash(self.__dict__, length=16)

    def relative_path(self) -> Path:
        # Human-browsable layout; the record_id suffix keeps distinct keys apart after slugging.
        return (
            Path(slug(self.task))
            / f"{slug(self.model)}__{slug(self.config_hash)}"
            / f"seed-{self.seed}"
            / f"{slug(self.subset)}__{slug(self.split)}__{self.record_id}.json"
        )


_KEY_FIELDS = ("model", "config_hash", "seed", "task", "subset", "split", "protocol")


def record_problem(record: Any, key: RecordKey) -> str | None:
    """Why ``record`` is not an intact record for ``key`` (None when it is)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    version = record.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        return f"schema_version {version!r} is not one of {', '.join(map(str, READABLE_VERSIONS))}"
    if record.get("record_id") != key.record_id:
        return "record_id does not match its key"
    for name in _KEY_FIELDS:
        if record.get(name) != getattr(key, name):
            return f"{name} {record.get(name)!r} does not match its key ({getattr(key, name)!r})"
    scores = record.get("scores")
    if not isinstance(scores, dict) or not scores:
        return "no scores"
    if not all(_finite_number(v) for v in scores.values()):
        return "a score is not a finite number"
    main = record.get("main_score_name")
    if main not in scores or record.get("main_score") != scores[main]:
        return "main_score does not match its scores"
    coverage = record.get("coverage")
    if coverage is not None and not (_finite_number(coverage) and 0 <= coverage <= 1):
        return f"coverage {coverage!r} is not in [0, 1]"
    details = record.get("details")
    if isinstance(details, dict) and "items" in details:
        problem = items_problem(details["items"])
        if problem:
            return f"details.items: {problem}"
    for name, kind in (("languages", list), ("provenance", dict), ("config", dict), ("n_items", int),
                       ("created_at", str), ("wall_time_s", (int, float))):
        if not isinstance(record.get(name), kind):
            return f"{name} is missing or of the wrong type"
    return None


# --- per-item outputs ------------------------------------------------------------------------------------
# ``details.items`` holds what a score was computed from, one value per item (pair, query, source word),
# so leaderboards can bootstrap intervals, test differences on shared items and score the common subset,
# and a reader can do error analysis. Each column is one space-separated string ("-" = item not scored):
# about 3-6 bytes per item, one JSON line, instead of a line per value. Items are in the task's own order
# (documented per kind in docs/results.md), the same for every model, so records pair up by position.


def encode_column(values: Any, decimals: int | str | None = None) -> str:
    """Values as one space-separated string, None/NaN as "-": ints as such (``decimals=None``), floats
    rounded to ``decimals``, or ``decimals="exact"``: the shortest text that reads back as the same float
    (similarities whose order decides a rank correlation: rounding would tie values the score told apart)."""
    out = []
    for value in values:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            out.append("-")
        elif decimals is None:
            out.append(str(int(value)))
        elif decimals == "exact":
            out.append(repr(float(value) + 0.0))
        else:
            text = f"{float(value):.{decimals}f}".rstrip("0").rstrip(".")
            out.append("0" if text in ("-0", "") else text)
    return " ".join(out)


def decode_column(text: str) -> list[float | None]:
    """The values of an encoded column (None where "-")."""
    return [None if part == "-" else float(part) for part in text.split(" ")] if text else []


def encode_items(unit: str, n: int, columns: dict[str, str], **extra: Any) -> dict[str, Any]:
    """The ``details.items`` object: ``format``, ``unit`` (what an item is), ``n`` and encoded ``columns``.

    ``extra`` keys describe the columns (e.g. ``per_item = {"t2i_rank": 5}``: five values per item)."""
    return {"format": ITEMS_FORMAT, "unit": unit, "n": n, "columns": columns, **extra}


def items_problem(items: Any) -> str | None:
    """Why ``items`` is not a well-formed per-item object (None when it is)."""
    if not isinstance(items, dict) or items.get("format") != ITEMS_FORMAT:
        return f"not a {ITEMS_FORMAT} object"
    n, columns = items.get("n"), items.get("columns")
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0) or not isinstance(columns, dict):
        return "n or columns missing"
    per_item = items.get("per_item", {})
    for name, text in columns.items():
        if not isinstance(text, str):
            return f"column {name!r} is not a string"
        expected = n * (per_item.get(name, 1) if isinstance(per_item, dict) else 1)
        length = len(text.split(" ")) if text else 0
        if length != expected:
            return f"column {name!r} has {length} values for {expected}"
    return None


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class ResultStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: RecordKey) -> Path:
        return self.root / key.relative_path()

    def inspect(self, key: RecordKey) -> tuple[dict[str, Any] | None, str | None]:
        """``(record, None)`` for an intact record, ``(None, None)`` when absent, ``(None, why)`` when damaged."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"unreadable ({exc.strerror or exc})"
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None, "empty file" if not raw.strip() else "not valid JSON (truncated?)"
        problem = record_problem(record, key)
        return (None, problem) if problem else (record, None)

    def read(self, key: RecordKey) -> dict[str, Any] | None:
        """The intact record of ``key``, or None (absent or damaged)."""
        return self.inspect(key)[0]

    def exists(self, key: RecordKey) -> bool:
        """True only for an intact record: a damaged one is work still to do."""
        return self.read(key) is not None

    def write(self, key: RecordKey, record: dict[str, Any]) -> Path:
        problem = record_problem(record, key)
        if problem:  # never store what a later run would refuse to trust
            raise ValueError(f"refusing to write a record that does not match its key: {problem}")
        path = self.path(key)
        write_json_atomic(path, record)
        return path

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temp files of killed writers on this host (their process is gone); return them."""
        removed = []
        if not self.root.is_dir():
            return removed
        for path in self.root.rglob(".*.tmp"):
            owner = _temp_owner(path.name)
            if owner is None or owner[0] != _HOST or _process_alive(owner[1]):
                continue
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass  # another run removed it first
        return removed


_HOST = slug(socket.gethostname(), limit=40)
_TEMP_OWNER = re.compile(r"\.~(?P<host>[A-Za-z0-9._+-]+)~(?P<pid>\d+)~")


def _temp_owner(name: str) -> tuple[str, int] | None:
    match = _TEMP_OWNER.search(name)
    return (match["host"], int(match["pid"])) if match else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Host and pid in the name let a later run tell a killed writer's leftover from a live writer's file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.~{_HOST}~{os.getpid()}~", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; records are ordinary shared files
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def make_record(
    key: RecordKey,
    *,
    model_argument: str | None,
    config: dict[str, Any],
    task_kind: str,
    languages: list[str],
    main_score_name: str,
    higher_is_better: bool,
    scores: dict[str, float],
    coverage: float | None,
    n_items: int,
    wall_time_s: float,
    created_at: str,
    details: dict[str, Any],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    if main_score_name not in scores:
        raise KeyError(f"main score {main_score_name!r} not among scores {sorted(scores)}")
    return {
        "schema_version": SCHEMA_VERSION,
        "record_id": key.record_id,
        "model": key.model,
        "model_argument": model_argument,
        "config_hash": key.config_hash,
        "config": config,
        "seed": key.seed,
        "task": key.task,
        "task_kind": task_kind,
        "subset": key.subset,
        "languages": languages,
        "split": key.split,
        "protocol": key.protocol,
        "main_score_name": main_score_name,
        "main_score": scores[main_score_name],
        "higher_is_better": higher_is_better,
        "scores": scores,
        "coverage": coverage,
        "n_items": n_items,
        "details": details,
        "wall_time_s": round(wall_time_s, 4),
        "created_at": created_at,
        "provenance": provenance,
    }
