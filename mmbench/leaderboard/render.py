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

from .fairness import RANK_BY_PENALISED, policy_text
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
              "config_hash", "main_score_name", "higher_is_better", "main_mean", "main_sd", "main_ci", "n_seeds",
              "seeds", "coverage_mean", "n_items", "n_scored", "ranked", "rank_by", "common_mean", "common_ci",
              "common_n", "oov_penalised", "oov_penalised_ci", "p_vs_best", "differs_from_best", "languages", "record_ids",
              "mmbench_versions")
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

_PERCENT = re.compile(r"^(p\d+|.*_r\d+|r\d+|accuracy|mean_p\d+|rsum)(_[A-Z]+)?$")
_RANK = re.compile(r"^.*_(medr|meanr)$")
_MRR = re.compile(r"^(.*_)?mrr(_[A-Z]+)?$")


def score_unit(name: str) -> str:
    """The unit a score is shown in: ``%`` (MRR too, x100, so a family such as P@k + MRR shares one unit),
    ``rank`` or ``0-1`` (correlations and anything else)."""
    if name == "rsum" or name.endswith("_rsum"):
        return "sum of 6 %"
    if _PERCENT.match(name) or _MRR.match(name):
        return "%"
    return "rank" if _RANK.match(name) else "0-1"


def display_value(name: str, value: float | None) -> float | None:
    """A score as pages show it: MRR (stored as a fraction) times 100, everything else as stored."""
    return None if value is None else value * 100 if _MRR.match(name) else value


def score_header(name: str) -> str:
    return f"{escape_markdown(name)} ({score_unit(name)})"


def format_interval(name: str, interval: list[float] | None) -> str:
    if not interval:
        return MISSING
    low, high = (display_value(name, v) for v in interval)
    return f"[{format_score(low)}, {format_score(high)}]"


def format_versus_best(row: dict) -> str:
    if row.get("rank") == 1:
        return "best"
    p = row.get("p_vs_best")
    if p is None:
        return MISSING
    return f"{'▼' if row.get('differs_from_best') else '≈'} p={p:.3f}"


def format_n(row: dict) -> str:
    scored, total = row.get("n_scored"), row["n_items"]
    if total is None:
        return MISSING
    return str(total) if scored is None or scored == total else f"{scored} / {total}"


def split_label(row: dict) -> str:
    """The split as the protocol defines it: ``dev+test`` when the protocol joins halves under one split."""
    match = _JOINED_SPLITS.search(row["protocol"])
    return match.group(1) if match and row["split"] in match.group(1).split("+") else row["split"]


_JOINED_SPLITS = re.compile(r"(?:^|/)((?:train|dev|val|test)(?:\+(?:train|dev|val|test))+)(?:/|$)")


def table_order(row: dict) -> tuple:
    """Ranked rows by rank, then the unranked ones by their own score."""
    return (row.get("rank") is None, row.get("rank") or 0, rank_key(row))


def _ranked_table(rows: list[dict]) -> list[str]:
    main = rows[0]["main_score_name"]
    extras = sorted({n for r in rows for n in r["scores"] if n != main}, key=natural_key)[:MAX_EXTRA_SCORES]
    has_coverage = any(r["coverage_mean"] is not None for r in rows)
    common_n = next((r["common_n"] for r in rows if r.get("common_n")), None)
    has_oov = any(r.get("oov_penalised") is not None for r in rows)
    by_oov = any(r.get("rank_by") == RANK_BY_PENALISED for r in rows)  # the ranking score goes first
    oov_header = ["OOV-penalised [95% CI]"] if has_oov else []
    header = ["Rank", "Model", "Config", *(oov_header if by_oov else []), f"{score_header(main)} mean ± sd", "95% CI"]
    header += [f"Common subset (n={common_n})"] if common_n else []
    header += ["vs best"] + (["Coverage"] if has_coverage else []) + ([] if by_oov else oov_header)
    header += ["n scored / total", "Seeds", *(score_header(name) for name in extras)]
    body = []
    for r in rows:
        mean, sd = display_value(main, r["main_mean"]), display_value(main, r["main_sd"])
        penalised = display_value(main, r.get("oov_penalised"))
        oov = [MISSING if penalised is None else
               f"{format_score(penalised)} {format_interval(main, r.get('oov_penalised_ci'))}"] if has_oov else []
        line = [MISSING if r.get("rank") is None else str(r["rank"]), escape_markdown(r["model"]),
                _config_cell(r["config_hash"]), *(oov if by_oov else []), format_mean_sd(mean, sd),
                format_interval(main, r.get("main_ci"))]
        if common_n:
            common = display_value(main, r.get("common_mean"))
            line.append(MISSING if common is None else
                        f"{format_score(common)} {format_interval(main, r.get('common_ci'))}")
        line.append(format_versus_best(r))
        line += [format_coverage(r["coverage_mean"])] if has_coverage else []
        line += [] if by_oov else oov
        line += [format_n(r), str(r["n_seeds"]),
                 *(format_score(display_value(name, r["scores"].get(name))) for name in extras)]
        body.append(line)
    align = ["---:", ":---", ":---"] + ["---:"] * (len(header) - 3)
    return _table_lines(header, align, body)


def _grid_cell(row: dict | None, best: bool) -> str:
    if row is None:
        return MISSING
    text = format_score(display_value(row["main_score_name"], row["main_mean"]))
    text = f"**{text}**" if best else text
    notes = [] if row["coverage_mean"] is None else [format_coverage(row["coverage_mean"])]
    notes += ["unranked"] if row.get("ranked") is False else []
    return f"{text} ({', '.join(notes)})" if notes else text


def _summary_grid(rows: list[dict], subsets: list[str]) -> list[str]:
    """Rows = model entries, columns = subsets, cell = main score mean (coverage); rank 1 per column in bold."""
    cells = group_by(rows, lambda r: (r["model"], r["config_hash"]))
    body = []
    for model, config_hash in sorted(cells):
        by_subset = {r["subset"]: r for r in cells[model, config_hash]}
        line = [escape_markdown(model), _config_cell(config_hash)]
        line += [_grid_cell(by_subset.get(s), by_subset.get(s, {}).get("rank") == 1) for s in subsets]
        body.append(line)
    header = ["Model", "Config", *(escape_markdown(s) for s in subsets)]
    return _table_lines(header, [":---", ":---"] + ["---:"] * len(subsets), body)


def task_page(task: str, rows: list[dict], plots: dict | None = None) -> str:
    """The Markdown page of one task: header, policy, summary grids, one ranked table per subset/split/protocol.

    ``plots``: ``{table key: [(caption, file name), ...]}`` images shown under their table."""
    groups = group_by(rows, lambda r: (r["main_score_name"], not r["higher_is_better"]))
    kinds = sorted({r["task_kind"] for r in rows})
    lines = [f"# {escape_markdown(task)}", "",
             f"- Task kind: {escape_markdown(', '.join(kinds))}",
             f"- Main score: {escape_markdown('; '.join(score_label(g[0]) for g in groups.values()))}",
             f"- Models: {model_entries(rows)} · result records: {sum(r['n_seeds'] for r in rows)}", "",
             ("Scores are means over seeds ± sample standard deviation (no ± with a single seed), in the unit "
              "named in each column header (% = percent, MRR included as percent; 0-1 = correlation). "
              "Coverage is the mean share of items the model covered (— where the task has none); "
              "n counts the items scored of all items. — in an interval column: the records hold no per-item "
              "outputs (written before schema 2)."), "", policy_text(rows), ""]
    for group_rows in groups.values():
        suffix = f" · {escape_markdown(score_label(group_rows[0]))}" if len(groups) > 1 else ""
        sections = group_by(group_rows, lambda r: (split_key(r["split"]), r["protocol"]))
        for (_, protocol), section in sorted(sections.items()):
            subsets = sorted({r["subset"] for r in section}, key=subset_key)
            if len(subsets) in GRID_SUBSETS:
                lines += [(f"## Summary by subset: {escape_markdown(section[0]['main_score_name'])} · "
                           f"{escape_markdown(split_label(section[0]))}{suffix}"), "",
                          f"Protocol: {_code(protocol)}", "", *_summary_grid(section, subsets), ""]
        for key, table in group_by(group_rows, table_key).items():
            first = table[0]
            lines += [(f"## {escape_markdown(first['subset'])} · {escape_markdown(split_label(first))}{suffix}"), "",
                      f"Protocol: {_code(first['protocol'])}", "", *_ranked_table(sorted(table, key=table_order)), ""]
            for caption, name in (plots or {}).get(key, []):
                lines += [f"![{escape_markdown(caption)}]({name})", ""]
    return "\n".join(lines)


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text and not _CONTROL.search(text) else escape_markdown(text)


def index_page(tasks: list[dict], n_records: int) -> str:
    """The index: one line per task (``tasks`` as in ``leaderboard.json``) linking to its page."""
    lines = ["# mmbench leaderboards", "",
             (f"Built by `mmbench leaderboard` from {n_records} result records; do not edit by hand. "
              "Each task page ranks models by the mean main score over seeds (± sample standard deviation), "
              "with 95 % bootstrap intervals and a significance test against the best model where the records "
              "hold per-item outputs. The best model here is the rank-1 model of the main table under the "
              "coverage policy stated on each page; its coverage is shown beside its score."), ""]
    if not tasks:
        return "\n".join(lines + ["No result records found.", ""])
    header = ["Task", "Kind", "Models", "Main subset", "Best model", "Score", "95% CI", "Coverage", "Ranked by"]
    body = []
    for task in tasks:
        best = task["best"]
        name = best["main_score_name"]
        body.append([f"[{escape_markdown(task['task'])}]({task['page']})", escape_markdown(", ".join(task["kinds"])),
                     str(task["n_models"]), f"{escape_markdown(best['subset'])} ({escape_markdown(split_label(best))})",
                     f"{escape_markdown(best['model'])} {_config_cell(best['config_hash'])}",
                     (f"{score_header(name)} "
                      f"{format_mean_sd(display_value(name, best['main_mean']), display_value(name, best['main_sd']))}"),
                     format_interval(name, best.get("main_ci")), format_coverage(best.get("coverage_mean")),
                     _ranked_by(best)])
    align = [":---", ":---", "---:", ":---", ":---", "---:", "---:", "---:", ":---"]
    return "\n".join(lines + _table_lines(header, align, body) + [""])


def _ranked_by(row: dict) -> str:
    if row.get("rank_by") == RANK_BY_PENALISED:
        return f"OOV-penalised {format_score(display_value(row['main_score_name'], row.get('oov_penalised')))}"
    return escape_markdown(row.get("rank_by") or MISSING)


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
        writer.writerow([_csv_cell(row.get(name)) for name in CSV_FIELDS]
                        + [_csv_cell(row["scores"].get(name)) for name in score_names])
    return buffer.getvalue()
