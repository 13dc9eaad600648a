"""Text of the leaderboard files: Markdown pages and CSV. Pure functions of aggregated rows.

Published files never show a local path: ``public_record`` reduces a model argument that is a path
(``vectors:/home/alice/x.vec``) to its base name before rows are built, as the runner already does for
the model's display name. Markdown does not show ``model_argument`` at all (the config hash already
tells models apart); CSV and JSON keep the base name for reference. CSV text cells that a spreadsheet
would run as a formula are neutralised (``csv_safe``).
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any

from .records import (
    group_by,
    model_entries,
    natural_key,
    rank_key,
    split_key,
    subset_key,
    table_key,
)

MAX_EXTRA_SCORES = 6  # sub-score columns per Markdown table; CSV and JSON keep all of them
GRID_SUBSETS = range(2, 13)  # a per-subset summary grid is drawn for 2..12 subsets
MISSING = "—"
CSV_FIELDS = ("task", "task_kind", "subset", "split", "protocol", "rank", "model", "model_argument",
              "config_hash", "main_score_name", "higher_is_better", "main_mean", "main_sd", "n_seeds",
              "seeds", "coverage_mean", "n_items", "languages", "record_ids", "mmbench_versions")
_MD_SPECIAL = re.compile(r"[\\|*_`\[\]<>~&$]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SAFE_CODE = re.compile(r"[0-9A-Za-z._-]+")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP "CSV injection": what a spreadsheet evaluates
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_PATH_SEPARATORS = re.compile(r"[/\\]+")
_LOCAL_PATH = re.compile(r"[/\\~]|[A-Za-z]:[/\\]|file:|\.\.?[/\\]", re.IGNORECASE)


# --- what may be published -------------------------------------------------------------------------------


def public_argument(argument: str | None) -> str | None:
    r"""A model argument as leaderboards show it: a local path becomes its base name (as in the runner's
    ``vectors:FILE_NAME`` display name); other arguments (``fasttext-en``, ``org/model``) are kept.

    A local path is absolute (``/``, ``~``, ``C:\``, ``\\server``, ``file:``) or starts with ``./`` or
    ``../``; a relative path such as ``emb/x.vec`` names no home or mount and is kept as given.

    >>> public_argument("/home/alice/secret/wiki.en.vec"), public_argument(r"C:\emb\x.vec")
    ('wiki.en.vec', 'x.vec')
    >>> public_argument("~/emb/"), public_argument("../x.vec"), public_argument("emb/x.vec")
    ('emb', 'x.vec', 'emb/x.vec')
    """
    if argument is None or not _LOCAL_PATH.match(argument):
        return argument
    parts = [part for part in _PATH_SEPARATORS.split(argument) if part]
    return parts[-1] if parts and parts[-1] not in ("~", ".", "..") else ""


def public_model(model: str) -> str:
    """``vectors:/x/y.vec`` -> ``vectors:y.vec`` (records written by hand or by old versions)."""
    name, sep, argument = model.partition(":")
    return f"{name}:{public_argument(argument)}" if sep and _SAFE_CODE.fullmatch(name) else model


def public_record(record: dict) -> dict:
    """A copy of ``record`` whose model name and argument carry no local path."""
    return {**record, "model": public_model(record["model"]),
            "model_argument": public_argument(record.get("model_argument"))}


def csv_safe(text: str) -> str:
    """Prefix ``'`` to a text cell a spreadsheet would run as a formula (OWASP); plain numbers stay.

    >>> csv_safe("=1+1"), csv_safe("@SUM(A1)"), csv_safe("-1+2"), csv_safe("-0.25"), csv_safe("en-de")
    ("'=1+1", "'@SUM(A1)", "'-1+2", '-0.25', 'en-de')
    """
    return "'" + text if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text) else text


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


def score_label(row: dict) -> str:
    """``spearman (higher is better)``."""
    return f"{row['main_score_name']} ({'higher' if row['higher_is_better'] else 'lower'} is better)"


def _config_cell(config_hash: str) -> str:
    return f"`{config_hash}`" if _SAFE_CODE.fullmatch(config_hash) else escape_markdown(config_hash)


def _table_lines(header: list[str], align: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(cells) + " |" for cells in (header, align, *body)]


# --- Markdown pages ------------------------------------------------------------------------------------------


def _ranked_table(rows: list[dict]) -> list[str]:
    main = rows[0]["main_score_name"]
    extras = sorted({n for r in rows for n in r["scores"] if n != main}, key=natural_key)[:MAX_EXTRA_SCORES]
    header = ["Rank", "Model", "Config", f"{escape_markdown(main)} (mean ± sd)", "Seeds", "Coverage",
              "Protocol", "n", *(escape_markdown(name) for name in extras)]
    align = ["---:", ":---", ":---", "---:", "---:", "---:", ":---", "---:"] + ["---:"] * len(extras)
    body = [[str(r["rank"]), escape_markdown(r["model"]), _config_cell(r["config_hash"]),
             format_mean_sd(r["main_mean"], r["main_sd"]), str(r["n_seeds"]), format_coverage(r["coverage_mean"]),
             escape_markdown(r["protocol"]), MISSING if r["n_items"] is None else str(r["n_items"]),
             *(format_score(r["scores"].get(name)) for name in extras)] for r in rows]
    return _table_lines(header, align, body)


def _summary_grid(rows: list[dict], subsets: list[str]) -> list[str]:
    """Rows = model entries, columns = subsets, cell = main score mean (best per column in bold)."""
    cells = group_by(rows, lambda r: (r["model"], r["config_hash"]))
    best = {subset: min(rank_key(r) for r in rows if r["subset"] == subset)[0] for subset in subsets}
    body = []
    for model, config_hash in sorted(cells):
        by_subset = {r["subset"]: r for r in cells[model, config_hash]}
        line = [escape_markdown(model), _config_cell(config_hash)]
        for subset in subsets:
            row = by_subset.get(subset)
            text = MISSING if row is None else format_score(row["main_mean"])
            line.append(f"**{text}**" if row is not None and rank_key(row)[0] == best[subset] else text)
        body.append(line)
    header = ["Model", "Config", *(escape_markdown(s) for s in subsets)]
    return _table_lines(header, [":---", ":---"] + ["---:"] * len(subsets), body)


def task_page(task: str, rows: list[dict]) -> str:
    """The Markdown page of one task: header, summary grids, one ranked table per subset/split/protocol."""
    groups = group_by(rows, lambda r: (r["main_score_name"], not r["higher_is_better"]))
    kinds = sorted({r["task_kind"] for r in rows})
    lines = [f"# {escape_markdown(task)}", "",
             f"- Task kind: {escape_markdown(', '.join(kinds))}",
             f"- Main score: {escape_markdown('; '.join(score_label(g[0]) for g in groups.values()))}",
             f"- Models: {model_entries(rows)} · result records: {sum(r['n_seeds'] for r in rows)}", "",
             ("Scores are means over seeds ± sample standard deviation (no ± with a single seed). "
             "Coverage is the mean share of items the model covered (— where the task has none)."), ""]
    for group_rows in groups.values():
        suffix = f" · {escape_markdown(score_label(group_rows[0]))}" if len(groups) > 1 else ""
        sections = group_by(group_rows, lambda r: (split_key(r["split"]), r["protocol"]))
        for (_, protocol), section in sorted(sections.items()):
            split = section[0]["split"]
            subsets = sorted({r["subset"] for r in section}, key=subset_key)
            if len(subsets) in GRID_SUBSETS:
                lines += [(f"## Summary by subset: {escape_markdown(section[0]['main_score_name'])} · "
                          f"{escape_markdown(split)} · {escape_markdown(protocol)}{suffix}"), "",
                          *_summary_grid(section, subsets), ""]
        for table in group_by(group_rows, table_key).values():
            first = table[0]
            lines += [(f"## {escape_markdown(first['subset'])} · {escape_markdown(first['split'])} · "
                      f"{escape_markdown(first['protocol'])}{suffix}"), "",
                      *_ranked_table(sorted(table, key=rank_key)), ""]
    return "\n".join(lines)


def index_page(tasks: list[dict], n_records: int) -> str:
    """The index: one line per task (``tasks`` as in ``leaderboard.json``) linking to its page."""
    lines = ["# mmbench leaderboards", "",
             (f"Built by `mmbench leaderboard` from {n_records} result records; do not edit by hand. "
             "Each task page ranks models by the mean main score over seeds (± sample standard deviation)."), ""]
    if not tasks:
        return "\n".join(lines + ["No result records found.", ""])
    header = ["Task", "Kind", "Models", "Main subset", "Best model", "Score"]
    body = []
    for task in tasks:
        best = task["best"]
        body.append([f"[{escape_markdown(task['task'])}]({task['page']})", escape_markdown(", ".join(task["kinds"])),
                     str(task["n_models"]), f"{escape_markdown(best['subset'])} ({escape_markdown(best['split'])})",
                     f"{escape_markdown(best['model'])} {_config_cell(best['config_hash'])}",
                     f"{escape_markdown(best['main_score_name'])} {format_mean_sd(best['main_mean'], best['main_sd'])}"])
    return "\n".join(lines + _table_lines(header, [":---", ":---", "---:", ":---", ":---", "---:"], body) + [""])


# --- CSV -------------------------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> str:
    """Numbers as numbers (``repr``: floats parse back exactly); text and lists through ``csv_safe``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return csv_safe(" ".join(str(v) for v in value))
    return csv_safe(str(value))


def csv_text(rows: list[dict]) -> str:
    """Every row, one column per field in ``CSV_FIELDS`` and one ``score.<name>`` column per sub-score."""
    score_names = sorted({name for r in rows for name in r["scores"]}, key=natural_key)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_FIELDS, *(csv_safe(f"score.{name}") for name in score_names)])
    for row in rows:
        writer.writerow([_csv_cell(row[name]) for name in CSV_FIELDS]
                        + [_csv_cell(row["scores"].get(name)) for name in score_names])
    return buffer.getvalue()
