"""Writing the leaderboard folder: ``README.md``, one page and CSV per task, ``leaderboard.json``.

Output is deterministic: the same records give byte-identical files whatever the order (or names)
of their files, and nothing depends on the clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mmbench.errors import MMBenchError

from .records import (
    aggregate,
    assign_ranks,
    group_by,
    load_records,
    main_table,
    model_entries,
    rank_key,
    read_json,
)
from .render import csv_text, index_page, public_record, score_label, task_page

INDEX_NAME = "README.md"
JSON_NAME = "leaderboard.json"
_BEST_FIELDS = ("subset", "split", "protocol", "model", "model_argument", "config_hash", "main_score_name",
                "higher_is_better", "main_mean", "main_sd", "n_seeds")
_RESERVED_SLUGS = {"readme", "leaderboard"}  # would clash with README.md / leaderboard.json
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
    data, problem = read_json(output_dir / JSON_NAME) if (output_dir / JSON_NAME).is_file() else (None, "")
    if problem is not None or not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        return set()
    names = {t.get(k) for t in data["tasks"] if isinstance(t, dict) for k in ("page", "csv")}
    return {n for n in names if isinstance(n, str) and _SAFE_FILE.fullmatch(n)}


def _task_summaries(by_task: dict[str, list[dict]], warnings: list[str]) -> list[dict]:
    """One entry per task for the index and ``leaderboard.json``; warns about inconsistent tasks."""
    slugs = _assign_slugs(by_task)
    tasks = []
    for task, task_rows in sorted(by_task.items()):
        if len({(r["main_score_name"], r["higher_is_better"]) for r in task_rows}) > 1:
            labels = sorted({score_label(r) for r in task_rows})
            warnings.append(f"task {task}: records use different main scores ({', '.join(labels)});"
                            " they are ranked in separate tables")
        if len({r["task_kind"] for r in task_rows}) > 1:
            warnings.append(f"task {task}: records disagree on the task kind")
        best = min(main_table(task_rows), key=rank_key)
        tasks.append({"task": task, "page": f"{slugs[task]}.md", "csv": f"{slugs[task]}.csv",
                      "kinds": sorted({r["task_kind"] for r in task_rows}),
                      "n_models": model_entries(task_rows),
                      "best": {k: best[k] for k in _BEST_FIELDS}})
    return tasks


def build_leaderboards(results_dir: Path, output_dir: Path) -> LeaderboardReport:
    """Write ``README.md``, one ``<task>.md`` and ``<task>.csv`` per task, and ``leaderboard.json``.

    Records are read as they are; what is published shows no local path (``public_record``).
    """
    output_dir = Path(output_dir)
    records, warnings = load_records(results_dir, exclude=output_dir)
    rows = aggregate([public_record(record) for record in records], warnings)
    assign_ranks(rows)
    by_task = group_by(rows, lambda r: r["task"])
    tasks = _task_summaries(by_task, warnings)
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
        report.files.append(_write(output_dir, task["page"], task_page(task["task"], task_rows)))
        report.files.append(_write(output_dir, task["csv"], csv_text(task_rows)))
    report.files.append(_write(output_dir, INDEX_NAME, index_page(tasks, len(records))))
    summary = {"format": "mmbench-leaderboard", "format_version": 1, "n_records": len(records),
               "tasks": tasks, "rows": rows}
    text = json.dumps(summary, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    report.files.append(_write(output_dir, JSON_NAME, text))
    for name in sorted(stale - {path.name for path in report.files}):
        if (output_dir / name).is_file():
            (output_dir / name).unlink()
            report.removed.append(output_dir / name)
    return report
