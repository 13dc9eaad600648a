"""What the command line prints: its consoles, listing tables, run summaries and ``inspect`` reports.

Also the options and exit codes that the command modules (:mod:`mmbench.cli`, :mod:`mmbench.cli_data`) share.
rich's tables are imported by the functions that draw them.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

CONTEXT = {"help_option_names": ["-h", "--help"]}
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, however long
_state = {"debug": bool(os.environ.get("MMBENCH_DEBUG")), "argv": []}

# Exit codes (docs/guarantees.md): 0 every requested unit was scored or already had an intact record;
# 1 a unit or the command failed (user error: unknown model/task/suite, bad value; broken model, bad data);
# 2 usage error (unknown option, missing argument) or a task-card error; 3 nothing was scored because every
# requested unit was skipped (capability, contamination, missing data); 130 interrupted (Ctrl-C).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_SCORED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

TaskOpt = Annotated[Optional[list[str]], typer.Option("--task", "-t", help="Task card name; repeatable.")]
DataOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Benchmark data root (default $MMBENCH_DATA, else the user cache).")]
TasksDirOpt = Annotated[Optional[list[Path]], typer.Option("--tasks-dir", help="Extra directory of task cards; repeatable.")]


def _table(title: str | None = None):
    """A listing table: no vertical rules, so narrow terminals keep the room for the text."""
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)


# -- run summary ----------------------------------------------------------------------------------
def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}%" if percent else f"{value:.4g}"


HEADERS = ("task", "subset", "main score", "status", "coverage")


def _score(value: float) -> str:
    """A main score as the table shows it: 4 decimals below 10 (correlations, fractions), else 2 (percent sums)."""
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


STATUS_WORDS = {"done": "scored", "exists": "found", "skipped": "skipped", "error": "error"}
STATUS_STYLES = {"done": "green", "exists": "cyan", "skipped": "yellow", "error": "red"}


def summary_lines(outcomes, width: int) -> list[tuple[str, str | None]]:
    """The results table as plain lines ``(text, status)`` (status: the outcome's, for colour; None for
    headers). Task, subset and main score are never cut: the status and coverage columns are dropped when
    the line would be wider than ``width``, and when even task, subset and score do not fit side by side,
    each unit takes two lines (``task / subset``, then the score). Rows are grouped under one
    ``model · seed N`` line per model and seed."""
    groups: dict[tuple[str, int], list] = {}
    for o in outcomes:
        groups.setdefault((o.model, o.seed), []).append(o)
    cells = []
    for o in outcomes:
        score = f"{o.main_score_name}={_score(o.main_score)}" if o.main_score is not None else "—"
        coverage = _fmt(o.coverage, percent=True) if o.coverage is not None else ""
        cells.append((o, [o.task, o.subset, score, STATUS_WORDS.get(o.status, o.status), coverage]))
    widths = [max([len(h)] + [len(c[1][i]) for c in cells]) for i, h in enumerate(HEADERS)]
    gap = 2
    required = widths[0] + widths[1] + widths[2] + 2 * gap
    shown = [0, 1, 2]
    for optional in (3, 4):
        if any(c[1][optional] for c in cells) and required + gap + widths[optional] <= width:
            shown.append(optional)
            required += gap + widths[optional]
    stacked = widths[0] + widths[1] + widths[2] + 2 * gap > width
    lines: list[tuple[str, str | None]] = []
    by_outcome = {id(o): c for o, c in cells}
    for (model, seed), members in groups.items():
        lines.append((f"{model} · seed {seed}", None))
        if not stacked:
            header = [HEADERS[i].ljust(widths[i]) for i in shown]
            lines.append(((" " * gap).join(header).rstrip(), None))
        for o in members:
            row = by_outcome[id(o)]
            if stacked:
                lines.append((f"{row[0]} / {row[1]}", None))
                rest = [row[2], row[3], row[4] + " coverage" if row[4] else ""]
                lines.append(("    " + (" " * gap).join(x for x in rest if x), o.status))
            else:
                lines.append(((" " * gap).join(row[i].ljust(widths[i]) for i in shown).rstrip(), o.status))
    return lines


def _summary(outcomes, output_dir: Path, fmt: str = "table") -> None:
    notes: dict[tuple[str, str, str], list[str]] = {}
    for o in outcomes:
        if o.message:
            notes.setdefault((o.status, o.model, o.message), []).append(f"{o.task}/{o.subset}")
        if o.traceback and _state["debug"]:
            err.print(o.traceback)
    existing = sum(o.status == "exists" for o in outcomes)
    done = sum(o.status == "done" for o in outcomes)
    errors = sum(o.status == "error" for o in outcomes)
    # In csv/json mode stdout is data only; the counts and notes go to stderr.
    talk = out if fmt == "table" else err
    if fmt == "csv":
        _summary_csv(outcomes)
    elif fmt == "json":
        _summary_json(outcomes)
    elif outcomes:
        for text, status in summary_lines(outcomes, out.width):
            if status is None:
                out.print(escape(text), style="bold" if "·" in text else None, soft_wrap=True)
            else:
                word = STATUS_WORDS.get(status, status)
                styled = escape(text).replace(word, f"[{STATUS_STYLES.get(status, '')}]{word}[/]", 1)
                out.print(styled, soft_wrap=True)
    for (status, model, message), units in notes.items():
        where = units[0] if len(units) == 1 else f"{len(units)} units"
        colour = "red" if status == "error" else "yellow"
        err.print(f"[{colour}]{status}:[/] {escape(model)} ({escape(where)}): {escape(message)}")
    if existing:
        talk.print(f"{existing} record(s) already existed in {escape(str(output_dir))} and were not recomputed "
                   "(use --overwrite).", soft_wrap=True)
    talk.print(f"{done} record(s) written to {escape(str(output_dir))}, {errors} error(s).", soft_wrap=True)


SUMMARY_FIELDS = ("model", "seed", "task", "subset", "split", "protocol", "status", "main_score_name", "main_score",
                  "coverage", "n_items", "message", "path")


def _summary_row(o) -> dict:
    record = o.record or {}
    return {"model": o.model, "seed": o.seed, "task": o.task, "subset": o.subset, "split": record.get("split"),
            "protocol": record.get("protocol"), "status": o.status, "main_score_name": o.main_score_name,
            "main_score": o.main_score, "coverage": o.coverage, "n_items": record.get("n_items"),
            "message": o.message or None, "path": str(o.path) if o.path else None}


def _summary_csv(outcomes) -> None:
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for o in outcomes:
        writer.writerow({k: ("" if v is None else v) for k, v in _summary_row(o).items()})
    sys.stdout.flush()


def _summary_json(outcomes) -> None:
    import json

    rows = [{**_summary_row(o), "record": o.record} for o in outcomes]
    sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# -- inspect report -------------------------------------------------------------------------------
def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _print_report(report) -> None:
    """``mmbench inspect`` as text: identity, recomputed scores, counts, then one table per list."""
    r = report.record
    out.print(f"[bold]{escape(r['task'])} / {escape(r['subset'])}[/] · {escape(r['model'])} ({r['config_hash']}) · "
              f"seed {r['seed']} · {escape(r['split'])} · {escape(r['protocol'])}", soft_wrap=True)
    out.print(f"{report.n} items (one per {escape(report.unit)}) · {escape(report.path)}", soft_wrap=True)
    table = _table()
    for column in ("score", "record", "from items", ""):
        table.add_column(column, justify="left" if column == "score" else "right")
    for row in report.scores:
        table.add_row(escape(row["score"]), _score(row["record"]), _score(row["recomputed"]),
                      "[green]=[/]" if row["matches"] else "[red]differs[/]")
    out.print(table)
    if report.not_recomputed:
        out.print(f"[dim]not recomputable from the items: {escape(', '.join(report.not_recomputed))}[/]",
                  soft_wrap=True)
    if report.summary:
        out.print(" · ".join(f"{escape(key.replace('_', ' '))} {_cell(value)}" for key, value in report.summary.items()),
                  soft_wrap=True)
    for item_table in report.tables:
        out.print(f"[bold]{escape(item_table.title)}[/]", soft_wrap=True)
        shown = _table()
        for column in item_table.columns:
            text = column in ("pair", "source word", "caption", "text a", "text b", "image (first caption)")
            shown.add_column(escape(column), justify="left" if text else "right", overflow="fold")
        for row in item_table.rows:
            shown.add_row(*(escape(_cell(value)) for value in row))
        out.print(shown)
    for note in report.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
