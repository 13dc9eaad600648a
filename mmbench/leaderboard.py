"""Leaderboards built from result records: Markdown pages, CSV and JSON.

This module reads records only; it never runs a model. Output is deterministic: the same records give
byte-identical files whatever the order (or names) of their files, and nothing depends on the clock.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from mmbench.errors import DataError, MMBenchError

SCHEMA_VERSION = 1
INDEX_NAME = "README.md"
JSON_NAME = "leaderboard.json"
MAX_EXTRA_SCORES = 6  # sub-score columns per Markdown table; CSV and JSON keep all of them
GRID_SUBSETS = range(2, 13)  # a per-subset summary grid is drawn for 2..12 subsets
MISSING = "—"
ROW_KEY = ("task", "subset", "split", "protocol", "model", "model_argument", "config_hash",
           "main_score_name", "higher_is_better")
CSV_FIELDS = ("task", "task_kind", "subset", "split", "protocol", "rank", "model", "model_argument",
              "config_hash", "main_score_name", "higher_is_better", "main_mean", "main_sd", "n_seeds",
              "seeds", "coverage_mean", "n_items", "languages", "record_ids", "mmbench_versions")
_REQUIRED_STRINGS = ("record_id", "model", "config_hash", "task", "task_kind", "subset", "split",
                     "protocol", "main_score_name")
_BEST_FIELDS = ("subset", "split", "protocol", "model", "model_argument", "config_hash", "main_score_name",
                "higher_is_better", "main_mean", "main_sd", "n_seeds")
_RESERVED_SLUGS = {"readme", "leaderboard"}  # would clash with README.md / leaderboard.json
_MD_SPECIAL = re.compile(r"[\\|*_`\[\]<>~&$]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SAFE_CODE = re.compile(r"[0-9A-Za-z._-]+")
_SAFE_FILE = re.compile(r"[a-z0-9][a-z0-9._-]*\.(md|csv)")


@dataclass
class LeaderboardReport:
    """What ``build_leaderboards`` wrote, removed and complained about."""

    output_dir: Path
    files: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)  # pages of tasks that no longer have records
    warnings: list[str] = field(default_factory=list)
    n_records: int = 0
    n_rows: int = 0
    n_tasks: int = 0


# --- reading records ---------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record_problem(data: Any) -> str | None:
    """Why ``data`` is not a usable schema-1 result record, or None if it is."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if "schema_version" not in data:
        return "no schema_version (not a result record)"
    version = data["schema_version"]
    if not _is_int(version) or version != SCHEMA_VERSION:
        return f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})"
    for key in _REQUIRED_STRINGS:
        if not isinstance(data.get(key), str) or not data[key].strip():
            return f"'{key}' must be a non-empty string"
    task = data["task"]
    if "/" in task or "\\" in task or ".." in task or _CONTROL.search(task):
        return f"unsafe task name {task!r}"
    if not _is_int(data.get("seed")):
        return "'seed' must be an integer"
    if not isinstance(data.get("higher_is_better"), bool):
        return "'higher_is_better' must be true or false"
    if not _is_finite(data.get("main_score")):
        return "'main_score' must be a finite number"
    scores = data.get("scores")
    if not isinstance(scores, dict):
        return "'scores' must be an object"
    for name, value in scores.items():
        if isinstance(value, bool) or (value is not None and not isinstance(value, (int, float))):
            return f"scores[{name!r}] must be a number or null"
    coverage = data.get("coverage")
    if coverage is not None and not (_is_finite(coverage) and 0 <= coverage <= 1):
        return "'coverage' must be null or a number in [0, 1]"
    if data.get("n_items") is not None and not (_is_int(data["n_items"]) and data["n_items"] >= 0):
        return "'n_items' must be null or a non-negative integer"
    languages = data.get("languages")
    if not isinstance(languages, list) or not all(isinstance(lang, str) for lang in languages):
        return "'languages' must be a list of strings"
    if data.get("model_argument") is not None and not isinstance(data["model_argument"], str):
        return "'model_argument' must be null or a string"
    return None


def _read_json(path: Path) -> tuple[Any, str | None]:
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
    for path in sorted(root.rglob("*.json"), key=lambda p: p.relative_to(root).as_posix()):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or path.name.endswith(".tmp"):
            continue
        if not path.is_file() or (excluded is not None and path.resolve().is_relative_to(excluded)):
            continue
        data, problem = _read_json(path)
        problem = problem or record_problem(data)
        if problem:
            warnings.append(f"skipped {relative.as_posix()}: {problem}")
        else:
            records.append(data)
    return records, warnings


# --- aggregation ------------------------------------------------------------------------------------------


def natural_key(text: str) -> tuple:
    """Sort key that puts ``recall@5`` before ``recall@10``."""
    return tuple((0, int(part), part) if part.isascii() and part.isdigit() else (1, 0, part)
                 for part in re.split(r"([0-9]+)", text) if part)


def _subset_key(subset: str) -> tuple:
    return (subset != "all", natural_key(subset))  # the aggregate subset first


def _split_key(split: str) -> tuple:
    order = {"test": 0, "dev": 1, "validation": 1, "val": 1, "train": 2}
    return (order.get(split, 3), split)


def table_key(row: dict) -> tuple:
    """Order of tables: task, main score, subset, split, protocol."""
    return (row["task"], row["main_score_name"], not row["higher_is_better"],
            _subset_key(row["subset"]), _split_key(row["split"]), row["protocol"])


def rank_key(row: dict) -> tuple:
    """Order within a table: best main score mean first, ties by model name, argument, config."""
    mean = row["main_mean"] if row["higher_is_better"] else -row["main_mean"]
    return (-mean, row["model"], row["model_argument"] or "", row["config_hash"])


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _describe(key: tuple) -> str:
    task, subset, split, protocol, model, argument, config_hash = key[:7]
    name = f"{model} ({argument})" if argument else model
    return f"{task}/{subset}/{split} [{protocol}] {name} {config_hash}"


def aggregate(records: Iterable[dict], warnings: list[str] | None = None) -> list[dict]:
    """One row per (task, subset, split, protocol, model, model argument, config hash, main score).

    ``main_sd`` is the sample standard deviation over seeds (ddof=1) and None with a single seed.
    Several records for one seed keep the newest (``created_at``, then ``record_id``) with a warning.
    Records must already be valid (see ``record_problem``); problems are appended to ``warnings``.
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
            warn(f"record {record['record_id']} appears in several files; counted once")
        else:
            older, newer = sorted((kept, record), key=lambda r: (r.get("created_at") or "", r["record_id"]))
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
    scores = {name: _mean([float(v) for r in records if _is_finite(v := r["scores"].get(name))])
              for name in names}
    n_items = sorted({r.get("n_items") for r in records if r.get("n_items") is not None})
    if len(n_items) > 1:
        warn(f"{_describe(key)}: n_items differs across seeds {n_items}; showing the smallest")
    languages = records[0]["languages"]
    if any(r["languages"] != languages for r in records):
        warn(f"{_describe(key)}: languages differ across seeds; showing those of seed {records[0]['seed']}")
    versions = {(r.get("provenance") or {}).get("mmbench_version") for r in records} - {None}
    return {
        **dict(zip(ROW_KEY, key)),
        "task_kind": records[0]["task_kind"],
        "main_mean": mean,
        "main_sd": sd,
        "n_seeds": len(records),
        "seeds": [r["seed"] for r in records],
        "coverage_mean": _mean([float(r["coverage"]) for r in records if r.get("coverage") is not None]),
        "n_items": n_items[0] if n_items else None,
        "languages": list(languages),
        "scores": scores,
        "record_ids": sorted(r["record_id"] for r in records),
        "mmbench_versions": sorted(str(v) for v in versions),
    }


def assign_ranks(rows: list[dict]) -> None:
    """Set ``rank`` on rows in place: competition ranking (1, 1, 3) within each table."""
    tables: dict[tuple, list[dict]] = {}
    for row in rows:
        tables.setdefault(table_key(row), []).append(row)
    for table in tables.values():
        for row in table:
            row["rank"] = 1 + sum(rank_key(other)[0] < rank_key(row)[0] for other in table)


# --- formatting --------------------------------------------------------------------------------------------


def escape_markdown(text: Any) -> str:
    """Make ``text`` literal in GitHub Markdown, including inside a table cell."""
    text = _CONTROL.sub(" ", str(text))  # newlines would end the table row
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
    return "\\" + text if text.startswith("#") else text


def format_score(value: float | None) -> str:
    """Two decimals from 1 upwards, else three significant digits; ``—`` when missing."""
    if value is None or not math.isfinite(value):
        return MISSING
    value = float(value) + 0.0  # no "-0.000"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:#.3g}"


def format_mean_sd(mean: float | None, sd: float | None) -> str:
    return format_score(mean) if sd is None else f"{format_score(mean)} ± {format_score(sd)}"


def format_coverage(coverage: float | None) -> str:
    return MISSING if coverage is None else f"{100 * coverage:.1f}%"


def _model_cell(row: dict) -> str:
    argument = row["model_argument"]
    return escape_markdown(row["model"]) + (f" ({escape_markdown(argument)})" if argument else "")


def _config_cell(config_hash: str) -> str:
    return f"`{config_hash}`" if _SAFE_CODE.fullmatch(config_hash) else escape_markdown(config_hash)


def _score_group(row: dict) -> str:
    return f"{row['main_score_name']} ({'higher' if row['higher_is_better'] else 'lower'} is better)"


def _table_lines(header: list[str], align: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(cells) + " |" for cells in (header, align, *body)]


def _ranked_table(rows: list[dict]) -> list[str]:
    main = rows[0]["main_score_name"]
    extras = sorted({n for r in rows for n in r["scores"] if n != main}, key=natural_key)[:MAX_EXTRA_SCORES]
    header = ["Rank", "Model", "Config", f"{escape_markdown(main)} (mean ± sd)", "Seeds", "Coverage",
              "Protocol", "n", *(escape_markdown(name) for name in extras)]
    align = ["---:", ":---", ":---", "---:", "---:", "---:", ":---", "---:"] + ["---:"] * len(extras)
    body = [[str(r["rank"]), _model_cell(r), _config_cell(r["config_hash"]),
             format_mean_sd(r["main_mean"], r["main_sd"]), str(r["n_seeds"]), format_coverage(r["coverage_mean"]),
             escape_markdown(r["protocol"]), MISSING if r["n_items"] is None else str(r["n_items"]),
             *(format_score(r["scores"].get(name)) for name in extras)] for r in rows]
    return _table_lines(header, align, body)


def _summary_grid(rows: list[dict], subsets: list[str]) -> list[str]:
    """Rows = model entries, columns = subsets, cell = main score mean (best per column in bold)."""
    cells: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        cells.setdefault((row["model"], row["model_argument"] or "", row["config_hash"]), {})[row["subset"]] = row
    best = {subset: min((rank_key(r) for r in rows if r["subset"] == subset))[0] for subset in subsets}
    body = []
    for entry in sorted(cells):
        line = [_model_cell(next(iter(cells[entry].values()))), _config_cell(entry[2])]
        for subset in subsets:
            row = cells[entry].get(subset)
            text = MISSING if row is None else format_score(row["main_mean"])
            line.append(f"**{text}**" if row is not None and rank_key(row)[0] == best[subset] else text)
        body.append(line)
    header = ["Model", "Config", *(escape_markdown(s) for s in subsets)]
    return _table_lines(header, [":---", ":---"] + ["---:"] * len(subsets), body)


def _group_by(rows: list[dict], key: Callable[[dict], Any]) -> dict[Any, list[dict]]:
    groups: dict[Any, list[dict]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def _main_table(rows: list[dict]) -> list[dict]:
    """The table the index reports: subset ``all`` if present, then split ``test``, then the most models."""
    tables = _group_by(rows, table_key)
    return tables[min(tables, key=lambda k: (k[3][0], k[4], -len(tables[k]), k))]


def _task_page(task: str, rows: list[dict]) -> str:
    groups = _group_by(rows, lambda r: (r["main_score_name"], not r["higher_is_better"]))
    kinds = sorted({r["task_kind"] for r in rows})
    models = {(r["model"], r["model_argument"]) for r in rows}
    lines = [f"# {escape_markdown(task)}", "",
             f"- Task kind: {escape_markdown(', '.join(kinds))}",
             f"- Main score: {escape_markdown('; '.join(_score_group(g[0]) for g in groups.values()))}",
             f"- Models: {len(models)} · result records: {sum(r['n_seeds'] for r in rows)}", "",
             "Scores are means over seeds ± sample standard deviation (no ± with a single seed). "
             "Coverage is the mean share of items the model covered (— where the task has none).", ""]
    for group_rows in groups.values():
        suffix = f" · {escape_markdown(_score_group(group_rows[0]))}" if len(groups) > 1 else ""
        sections = _group_by(group_rows, lambda r: (_split_key(r["split"]), r["protocol"]))
        for (_, protocol), section in sorted(sections.items()):
            split = section[0]["split"]
            subsets = sorted({r["subset"] for r in section}, key=_subset_key)
            if len(subsets) in GRID_SUBSETS:
                lines += [f"## Summary by subset: {escape_markdown(section[0]['main_score_name'])} · "
                          f"{escape_markdown(split)} · {escape_markdown(protocol)}{suffix}", "",
                          *_summary_grid(section, subsets), ""]
        for table in _group_by(group_rows, table_key).values():
            first = table[0]
            lines += [f"## {escape_markdown(first['subset'])} · {escape_markdown(first['split'])} · "
                      f"{escape_markdown(first['protocol'])}{suffix}", "",
                      *_ranked_table(sorted(table, key=rank_key)), ""]
    return "\n".join(lines)


def _index_page(tasks: list[dict], n_records: int) -> str:
    lines = ["# mmbench leaderboards", "",
             f"Built by `mmbench leaderboard` from {n_records} result records; do not edit by hand. "
             "Each task page ranks models by the mean main score over seeds (± sample standard deviation).", ""]
    if not tasks:
        return "\n".join(lines + ["No result records found.", ""])
    header = ["Task", "Kind", "Models", "Main subset", "Best model", "Score"]
    body = []
    for task in tasks:
        best = task["best"]
        body.append([f"[{escape_markdown(task['task'])}]({task['page']})", escape_markdown(", ".join(task["kinds"])),
                     str(task["n_models"]), f"{escape_markdown(best['subset'])} ({escape_markdown(best['split'])})",
                     f"{_model_cell(best)} {_config_cell(best['config_hash'])}",
                     f"{escape_markdown(best['main_score_name'])} {format_mean_sd(best['main_mean'], best['main_sd'])}"])
    return "\n".join(lines + _table_lines(header, [":---", ":---", "---:", ":---", ":---", "---:"], body) + [""])


def _csv_text(rows: list[dict]) -> str:
    score_names = sorted({name for r in rows for name in r["scores"]}, key=natural_key)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_FIELDS, *(f"score.{name}" for name in score_names)])

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return " ".join(str(v) for v in value)
        return repr(value) if isinstance(value, float) else str(value)

    for row in rows:
        writer.writerow([cell(row[name]) for name in CSV_FIELDS] + [cell(row["scores"].get(n)) for n in score_names])
    return buffer.getvalue()


# --- building ------------------------------------------------------------------------------------------------


def task_slug(task: str) -> str:
    """A safe, lower-case file stem for a task name (ASCII letters, digits, ``.``, ``_``, ``-``)."""
    ascii_name = unicodedata.normalize("NFKD", task).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9._-]+", "-", ascii_name.lower()).strip("-._")[:80] or "task"


def _assign_slugs(tasks: Iterable[str]) -> dict[str, str]:
    used, slugs = set(_RESERVED_SLUGS), {}
    for task in sorted(tasks):
        slug = task_slug(task)
        if slug in used:  # two names that slugify alike, or a reserved name: disambiguate by hash
            slug = f"{slug}-{hashlib.sha1(task.encode()).hexdigest()[:8]}"
        used.add(slug)
        slugs[task] = slug
    return slugs


def _write(output_dir: Path, name: str, text: str) -> Path:
    path = output_dir / name
    if path.resolve().parent != output_dir.resolve():
        raise MMBenchError(f"refusing to write {name!r} outside {output_dir}")
    temporary = output_dir / f".{name}.tmp"
    with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    os.replace(temporary, path)
    return path


def _previous_files(output_dir: Path) -> set[str]:
    """File names the last build wrote, read from its ``leaderboard.json`` (empty if unreadable)."""
    data, problem = _read_json(output_dir / JSON_NAME) if (output_dir / JSON_NAME).is_file() else (None, "")
    if problem is not None or not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        return set()
    names = {t.get(k) for t in data["tasks"] if isinstance(t, dict) for k in ("page", "csv")}
    return {n for n in names if isinstance(n, str) and _SAFE_FILE.fullmatch(n)}


def build_leaderboards(results_dir: Path, output_dir: Path) -> LeaderboardReport:
    """Write ``README.md``, one ``<task>.md`` and ``<task>.csv`` per task, and ``leaderboard.json``."""
    output_dir = Path(output_dir)
    records, warnings = load_records(results_dir, exclude=output_dir)
    rows = aggregate(records, warnings)
    assign_ranks(rows)
    by_task = _group_by(rows, lambda r: r["task"])
    slugs = _assign_slugs(by_task)
    tasks = []
    for task, task_rows in sorted(by_task.items()):
        if len({(r["main_score_name"], r["higher_is_better"]) for r in task_rows}) > 1:
            kinds = sorted({_score_group(r) for r in task_rows})
            warnings.append(f"task {task}: records use different main scores ({', '.join(kinds)});"
                            " they are ranked in separate tables")
        if len({r["task_kind"] for r in task_rows}) > 1:
            warnings.append(f"task {task}: records disagree on the task kind")
        main_table = sorted(_main_table(task_rows), key=rank_key)
        tasks.append({"task": task, "page": f"{slugs[task]}.md", "csv": f"{slugs[task]}.csv",
                      "kinds": sorted({r["task_kind"] for r in task_rows}),
                      "n_models": len({(r["model"], r["model_argument"]) for r in task_rows}),
                      "best": {k: main_table[0][k] for k in _BEST_FIELDS}})
    if not records:
        warnings.append(f"no result records found under {results_dir}")

    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MMBenchError(f"{output_dir}: cannot create output directory ({error.strerror or error})") from error
    stale = _previous_files(output_dir)
    report = LeaderboardReport(output_dir=output_dir, warnings=warnings, n_records=len(records),
                               n_rows=len(rows), n_tasks=len(tasks))
    for task in tasks:
        task_rows = by_task[task["task"]]
        report.files.append(_write(output_dir, task["page"], _task_page(task["task"], task_rows)))
        report.files.append(_write(output_dir, task["csv"], _csv_text(task_rows)))
    report.files.append(_write(output_dir, INDEX_NAME, _index_page(tasks, len(records))))
    summary = {"format": "mmbench-leaderboard", "format_version": 1, "n_records": len(records),
               "tasks": tasks, "rows": rows}
    text = json.dumps(summary, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    report.files.append(_write(output_dir, JSON_NAME, text))
    for name in sorted(stale - {path.name for path in report.files}):
        if (output_dir / name).is_file():
            (output_dir / name).unlink()
            report.removed.append(output_dir / name)
    return report
