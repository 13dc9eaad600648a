"""Reading, validating, grouping and ranking result records (no formatting, no file writing)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mmbench.errors import DataError

SCHEMA_VERSIONS = (1, 2)  # 2 adds optional per-item outputs (details.items); 1 still renders, without intervals
# The config hash already encodes the model's identity (e.g. the vectors file sha256), so the model
# argument (a local path) is not part of the key: one file scored from two paths is one model.
ROW_KEY = ("task", "subset", "split", "protocol", "model", "config_hash", "main_score_name", "higher_is_better")
_REQUIRED_STRINGS = ("record_id", "model", "config_hash", "task", "task_kind", "subset", "split",
                     "protocol", "main_score_name")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
LIMIT_MARK = "+limit="  # protocol suffix of `--limit N` smoke runs (mmbench.runner.limited_protocol)


def is_smoke_run(record: dict) -> bool:
    """A ``--limit N`` record: scored on part of the data, so never ranked beside full runs."""
    return LIMIT_MARK in str(record.get("protocol", ""))


# --- reading records ---------------------------------------------------------------------------------


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record_problem(data: Any) -> str | None:
    """Why ``data`` is not a usable result record (schema 1 or 2), or None if it is."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if "schema_version" not in data:
        return "no schema_version (not a result record)"
    version = data["schema_version"]
    if not is_int(version) or version not in SCHEMA_VERSIONS:
        return f"schema_version {version!r} is not supported (expected one of {', '.join(map(str, SCHEMA_VERSIONS))})"
    for key in _REQUIRED_STRINGS:
        if not isinstance(data.get(key), str) or not data[key].strip():
            return f"'{key}' must be a non-empty string"
    task = data["task"]
    if "/" in task or "\\" in task or ".." in task or _CONTROL.search(task):
        return f"unsafe task name {task!r}"
    if not is_int(data.get("seed")):
        return "'seed' must be an integer"
    if not isinstance(data.get("higher_is_better"), bool):
        return "'higher_is_better' must be true or false"
    if not is_finite(data.get("main_score")):
        return "'main_score' must be a finite number"
    scores = data.get("scores")
    if not isinstance(scores, dict):
        return "'scores' must be an object"
    for name, value in scores.items():
        if isinstance(value, bool) or (value is not None and not isinstance(value, (int, float))):
            return f"scores[{name!r}] must be a number or null"
    coverage = data.get("coverage")
    if coverage is not None and not (is_finite(coverage) and 0 <= coverage <= 1):
        return "'coverage' must be null or a number in [0, 1]"
    if data.get("n_items") is not None and not (is_int(data["n_items"]) and data["n_items"] >= 0):
        return "'n_items' must be null or a non-negative integer"
    languages = data.get("languages")
    if not isinstance(languages, list) or not all(isinstance(lang, str) for lang in languages):
        return "'languages' must be a list of strings"
    if data.get("model_argument") is not None and not isinstance(data["model_argument"], str):
        return "'model_argument' must be null or a string"
    return None


def read_json(path: Path) -> tuple[Any, str | None]:
    """``(data, None)``, or ``(None, problem)`` with a one-line reason the file cannot be used."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        return None, f"cannot read ({error.strerror or error})"
    if not raw.strip():
        return None, "empty file"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 (byte {error.start})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
    except (ValueError, RecursionError) as error:
        return None, f"invalid JSON: {error}"


def load_records(results_dir: Path, exclude: Path | None = None) -> tuple[list[dict], list[str]]:
    """Read every ``*.json`` record under ``results_dir``; skip bad files with one warning line each.

    Hidden files and folders (leading ``.``), ``*.tmp`` files and anything under ``exclude`` are ignored.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise DataError(f"{root}: results directory not found")
    excluded = Path(exclude).resolve() if exclude is not None else None
    records: list[dict] = []
    warnings: list[str] = []
    smoke = 0
    for path in sorted(root.rglob("*.json"), key=lambda p: p.relative_to(root).as_posix()):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or path.name.endswith(".tmp"):
            continue
        if not path.is_file() or (excluded is not None and path.resolve().is_relative_to(excluded)):
            continue
        data, problem = read_json(path)
        problem = problem or record_problem(data)
        if problem:
            warnings.append(f"skipped {relative.as_posix()}: {problem}")
        elif is_smoke_run(data):
            smoke += 1
        else:
            records.append(data)
    if smoke:
        warnings.append(f"left out {smoke} record(s) of --limit smoke runs (partial data: never ranked)")
    return records, warnings


# --- ordering --------------------------------------------------------------------------------------------


def natural_key(text: str) -> tuple:
    """Sort key that puts ``recall@5`` before ``recall@10``."""
    return tuple((0, int(part), part) if part.isascii() and part.isdigit() else (1, 0, part)
                 for part in re.split(r"([0-9]+)", text) if part)


def subset_key(subset: str) -> tuple:
    return (subset != "all", natural_key(subset))  # the aggregate subset first


def split_key(split: str) -> tuple:
    order = {"test": 0, "dev": 1, "validation": 1, "val": 1, "train": 2}
    return (order.get(split, 3), split)


def table_key(row: dict) -> tuple:
    """Order of tables: task, main score, subset, split, protocol."""
    return (row["task"], row["main_score_name"], not row["higher_is_better"],
            subset_key(row["subset"]), split_key(row["split"]), row["protocol"])


def rank_key(row: dict) -> tuple:
    """Order within a table: best main score mean first, ties by model name, then config hash."""
    mean = row["main_mean"] if row["higher_is_better"] else -row["main_mean"]
    return (-mean, row["model"], row["config_hash"])


def group_by(rows: list[dict], key: Callable[[dict], Any]) -> dict[Any, list[dict]]:
    groups: dict[Any, list[dict]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


# --- aggregation ------------------------------------------------------------------------------------------


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _newest(records: Iterable[dict]) -> dict:
    return max(records, key=lambda r: (r.get("created_at") or "", r["record_id"]))


def _describe(key: tuple) -> str:
    row = dict(zip(ROW_KEY, key))
    return (f"{row['task']}/{row['subset']}/{row['split']} [{row['protocol']}] "
            f"{row['model']} {row['config_hash']}")


def aggregate(records: Iterable[dict], warnings: list[str] | None = None) -> list[dict]:
    """One row per (task, subset, split, protocol, model, config hash, main score and its direction).

    ``main_sd`` is the sample standard deviation over seeds (ddof=1) and None with a single seed.
    Several records for one seed keep the newest (``created_at``, then ``record_id``) with a warning.
    ``model_argument`` is that of the group's newest record. Records must already be valid (see
    ``record_problem``); problems are appended to ``warnings``.
    """
    warn: Callable[[str], None] = warnings.append if warnings is not None else (lambda _message: None)
    ordered = sorted(records, key=lambda r: (r["record_id"], r.get("created_at") or "",
                                             json.dumps(r, sort_keys=True, default=str)))
    groups: dict[tuple, dict[int, dict]] = {}
    for record in ordered:
        key = tuple(record.get(name) for name in ROW_KEY)
        by_seed = groups.setdefault(key, {})
        kept = by_seed.get(record["seed"])
        if kept is None:
            by_seed[record["seed"]] = record
        elif kept["record_id"] == record["record_id"]:
            by_seed[record["seed"]] = _newest((kept, record))  # e.g. one model file scored from two paths
            warn(f"record {record['record_id']} appears in several files; counted once")
        else:
            newer = _newest((kept, record))
            older = kept if newer is record else record
            by_seed[record["seed"]] = newer
            warn(f"{_describe(key)}: seed {record['seed']} has several records; kept {newer['record_id']},"
                 f" ignored {older['record_id']}")
    rows = [_aggregate_group(key, by_seed, warn) for key, by_seed in groups.items()]
    return sorted(rows, key=lambda row: (table_key(row), rank_key(row)))


def _aggregate_group(key: tuple, by_seed: dict[int, dict], warn: Callable[[str], None]) -> dict:
    records = [by_seed[seed] for seed in sorted(by_seed)]
    mains = [float(r["main_score"]) for r in records]
    mean = math.fsum(mains) / len(mains)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in mains) / (len(mains) - 1)) if len(mains) > 1 else None
    names = sorted({name for r in records for name in r["scores"]}, key=natural_key)
    # A null or NaN sub-score counts as missing: the mean is over the seeds that have it.
    scores = {name: _mean([float(v) for r in records if is_finite(v := r["scores"].get(name))])
              for name in names}
    n_items = sorted({r.get("n_items") for r in records if r.get("n_items") is not None})
    n_scored = [_scored_items(r) for r in records]
    if len(n_items) > 1:
        warn(f"{_describe(key)}: n_items differs across seeds {n_items}; showing the smallest")
    languages = records[0]["languages"]
    if any(r["languages"] != languages for r in records):
        warn(f"{_describe(key)}: languages differ across seeds; showing those of seed {records[0]['seed']}")
    versions = {(r.get("provenance") or {}).get("mmbench_version") for r in records} - {None}
    return {
        **dict(zip(ROW_KEY, key)),
        "model_argument": _newest(records).get("model_argument"),
        "task_kind": records[0]["task_kind"],
        "main_mean": mean,
        "main_sd": sd,
        "n_seeds": len(records),
        "seeds": [r["seed"] for r in records],
        "coverage_mean": _mean([float(r["coverage"]) for r in records if r.get("coverage") is not None]),
        "n_items": n_items[0] if n_items else None,
        "n_scored": min(n_scored) if None not in n_scored else None,
        "languages": list(languages),
        "scores": scores,
        "record_ids": sorted(r["record_id"] for r in records),
        "mmbench_versions": sorted(str(v) for v in versions),
    }


def _scored_items(record: dict) -> int | None:
    """Items a record's score is computed on: pairs scored, queries asked, else all its items."""
    details = record.get("details") if isinstance(record.get("details"), dict) else {}
    for name in ("n_scored", "n_queries"):
        if is_int(details.get(name)):
            return details[name]
    return record.get("n_items")


def assign_ranks(rows: list[dict]) -> None:
    """Set ``rank`` on rows in place: competition ranking (1, 1, 3) within each table."""
    for table in group_by(rows, table_key).values():
        for row in table:
            row["rank"] = 1 + sum(rank_key(other)[0] < rank_key(row)[0] for other in table)


def main_table(rows: list[dict]) -> list[dict]:
    """The table the index reports: subset ``all`` if present, then split ``test``, then the most models."""
    tables = group_by(rows, table_key)
    return tables[min(tables, key=lambda k: (k[3][0], k[4], -len(tables[k]), k))]


def model_entries(rows: list[dict]) -> int:
    """Distinct models of ``rows``: a model name with one config hash (the hash carries its identity)."""
    return len({(r["model"], r["config_hash"]) for r in rows})
