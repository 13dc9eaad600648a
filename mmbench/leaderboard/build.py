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

from .fairness import annotate_tables
from .records import (
    aggregate,
    group_by,
    load_records,
    main_table,
    model_entries,
    read_json,
    table_key,
)
from .render import (
    csv_text,
    index_page,
    public_record,
    score_label,
    table_order,
    task_page,
)

INDEX_NAME = "README.md"
JSON_NAME = "leaderboard.json"
_BEST_FIELDS = ("subset", "split", "protocol", "model", "model_argument", "config_hash", "main_score_name",
                "higher_is_better", "main_mean", "main_sd", "main_ci", "coverage_mean", "rank", "n_seeds", "rank_by",
                "oov_penalised")
_RESERVED_SLUGS = {"readme", "leaderboard"}  # would clash with README.md / leaderboard.json
_SAFE_FILE = re.compile(r"[a-z0-9][a-z0-9._-]*\.(md|csv|png)")
RETRIEVAL_KINDS = ("retrieval", "caption-retrieval")
MAX_CURVES = 8  # models per recall@K plot (the best ranked ones): more lines are unreadable


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
    names |= {n for t in data["tasks"] if isinstance(t, dict) and isinstance(t.get("plots"), list) for n in t["plots"]}
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
        best = min(main_table(task_rows), key=table_order)
        tasks.append({"task": task, "page": f"{slugs[task]}.md", "csv": f"{slugs[task]}.csv",
                      "kinds": sorted({r["task_kind"] for r in task_rows}),
                      "n_models": model_entries(task_rows), "slug": slugs[task],
                      "best": {k: best[k] for k in _BEST_FIELDS}})
    return tasks


def _save_plot(output_dir: Path, name: str, draw) -> str:
    temporary = output_dir / f".{name}.tmp"
    draw(temporary)
    os.replace(temporary, output_dir / name)
    return name


def _task_plots(task: dict, rows: list[dict], records_by_id: dict, output_dir: Path) -> dict:
    """The plots of a task's main table: ``{table key: [(caption, file name), ...]}`` (deterministic PNGs)."""
    from . import plots
    from .render import display_value, score_unit
    from .stats import decode_items

    table = sorted(main_table(rows), key=table_order)
    first, slug = table[0], task["slug"]
    where = f"{task['task']} · {first['subset']} · {first['split']}"
    name = first["main_score_name"]
    made = [(f"{name} per model: 95% bootstrap interval (± seed sd where records hold no per-item outputs), coverage",
             _save_plot(output_dir, f"{slug}.score.png", lambda path: plots.score_plot(
                 table, path, where, scale=display_value, unit=score_unit(name))))]
    if first["task_kind"] in RETRIEVAL_KINDS:
        curves = {}
        for row in [r for r in table if r.get("rank") is not None][:MAX_CURVES]:
            raw = (records_by_id.get(row["record_ids"][0], {}).get("details") or {}).get("items")
            if isinstance(raw, dict) and "columns" in raw:
                items = decode_items(raw)
                curves[f"{row['model']} ({row['config_hash'][:6]})"] = {
                    column.removesuffix("_rank"): plots.recall_curve(values)
                    for column, values in items.columns.items() if column.endswith("_rank")}
        if curves:
            made.append(("recall@K per model (first seed)", _save_plot(
                output_dir, f"{slug}.recall.png", lambda path: plots.recall_curve_plot(curves, path, where))))
    if first["task_kind"] == "visual-bli" and any(k.startswith("p1_") for r in table for k in r["scores"]):
        made.append(("P@1 by part of speech", _save_plot(
            output_dir, f"{slug}.pos.png", lambda path: plots.pos_plot(table, path, where))))
    return {table_key(first): made}


def build_leaderboards(results_dir: Path, output_dir: Path) -> LeaderboardReport:
    """Write ``README.md``, one ``<task>.md`` and ``<task>.csv`` per task, and ``leaderboard.json``.

    Records are read as they are; what is published shows no local path (``public_record``).
    """
    output_dir = Path(output_dir)
    records, warnings = load_records(results_dir, exclude=output_dir)
    rows = aggregate([public_record(record) for record in records], warnings)
    annotate_tables(rows, {record["record_id"]: public_record(record) for record in records})
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
    records_by_id = {record["record_id"]: record for record in records}
    for task in tasks:
        task_rows = by_task[task["task"]]
        plots = _task_plots(task, task_rows, records_by_id, output_dir)
        task["plots"] = [name for files in plots.values() for _, name in files]
        report.files += [output_dir / name for name in task["plots"]]
        report.files.append(_write(output_dir, task["page"], task_page(task["task"], task_rows, plots)))
        report.files.append(_write(output_dir, task["csv"], csv_text(task_rows)))
    report.files.append(_write(output_dir, INDEX_NAME, index_page(tasks, len(records))))
    summary = {"format": "mmbench-leaderboard", "format_version": 2, "n_records": len(records),
               "tasks": tasks, "rows": rows}
    text = json.dumps(summary, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    report.files.append(_write(output_dir, JSON_NAME, text))
    for name in sorted(stale - {path.name for path in report.files}):
        if (output_dir / name).is_file():
            (output_dir / name).unlink()
            report.removed.append(output_dir / name)
    return report
