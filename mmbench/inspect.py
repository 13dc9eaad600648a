"""Error analysis from the per-item outputs of one result record (``mmbench inspect``).

A record's ``details.items`` (docs/results.md) say, item by item, what its score was computed from. This
module turns them into what a researcher looks at first: the word pairs whose model rank is furthest from
their gold rank, the gold-rank distribution of BLI queries and their worst source words, the recall@K
curve and the worst queries of retrieval, the misclassified documents. It reads records and, to name the
items, the task's data; it never runs a model.

Summary numbers are recomputed from the items with ``mmbench.leaderboard.stats.score_from_items`` (the
leaderboards' code) and shown beside the record's own, so a record whose items do not explain its scores is
visible; retrieval's medr and meanr, which that function does not compute, come from the metric's own
summary of the ranks. Items are named (word pairs, source words, captions) from the task card's data when
the card, its protocol and its data files are those the record was scored on; otherwise by position, and
the report says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MMBenchError
from .leaderboard.records import natural_key, read_json, record_problem
from .leaderboard.stats import Items, decode_items, score_from_items, weighted_average_ranks
from .results import items_problem

RECALL_KS = (1, 5, 10, 20, 50, 100, 500, 1000)  # recall@K curve points (those below the candidate count)
RANK_BUCKETS = ((1, 1), (2, 5), (6, 10), (11, 100), (101, 1000), (1001, math.inf))  # 1-based, inclusive
DIRECTIONS = {"i2t": "image", "t2i": "caption", "a2b": "a", "b2a": "b"}  # rank column -> what the query is
FILTERS = ("model", "task", "subset", "seed")  # record fields a results directory is searched by
IDENTITY = ("model", "config_hash", "seed", "task", "task_kind", "subset", "split", "protocol", "main_score_name",
            "main_score", "higher_is_better", "coverage", "n_items")  # record fields the report repeats


@dataclass
class Table:
    """One list of the report: ``rows`` are lists of plain values, one per column."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns,
                "rows": [dict(zip(self.columns, row)) for row in self.rows]}


@dataclass
class Report:
    """What ``mmbench inspect`` shows: the record's identity, recomputed scores, counts and lists."""

    path: str
    record: dict[str, Any]  # identity fields of the record
    unit: str
    n: int
    named: bool  # items carry names from the task data (else positions only)
    scores: list[dict[str, Any]]  # {"score", "record", "recomputed", "matches"}
    not_recomputed: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON data (a value that is not a finite number is null)."""
        return _plain({"path": self.path, "record": self.record, "unit": self.unit, "n": self.n, "named": self.named,
                       "scores": self.scores, "not_recomputed": self.not_recomputed, "summary": self.summary,
                       "tables": {table.key: table.as_json() for table in self.tables}, "notes": self.notes})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class AmbiguousRecord(MMBenchError):
    """Several records match the filters (``matches``: their paths and records); the user narrows down."""

    def __init__(self, message: str, matches: list[tuple[Path, dict]]):
        super().__init__(message)
        self.matches = matches


# -- finding and reading the record ----------------------------------------------------------------------
def read_record(path: Path) -> dict[str, Any]:
    """The record at ``path`` (schema 1 or 2), or an ``MMBenchError`` naming the file and the problem."""
    if not path.is_file():
        raise MMBenchError(f"no record at {path} (give a record .json file or a results directory)")
    data, problem = read_json(path)
    problem = problem or record_problem(data)
    if problem:
        raise MMBenchError(f"{path}: not a result record: {problem}")
    return data


def find_record(results_dir: Path, **filters: Any) -> tuple[Path, dict[str, Any]]:
    """The one record under ``results_dir`` whose ``model``, ``task``, ``subset`` and ``seed`` equal the
    filters given (None: any). No match: an error suggesting the values the records have; several: an
    :class:`AmbiguousRecord` listing them."""
    from .cards import suggest

    root = Path(results_dir)
    if not root.is_dir():
        raise MMBenchError(f"results directory not found: {root}")
    candidates = []
    for path in sorted(root.rglob("*.json"), key=lambda p: p.relative_to(root).as_posix()):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue  # checkpoints and logs (.runs), temp files of writers
        data, problem = read_json(path)
        if not (problem or record_problem(data)):
            candidates.append((path, data))
    if not candidates:
        raise MMBenchError(f"no result record under {root}")
    for name in FILTERS:
        wanted = filters.get(name)
        if wanted is None:
            continue
        kept = [(path, record) for path, record in candidates if record[name] == wanted]
        if not kept:
            known = sorted({str(record[name]) for _, record in candidates})
            raise MMBenchError(suggest(str(wanted), known, name, f"the matching records under {root} have "
                                       f"{name} {', '.join(known[:12])}{' …' if len(known) > 12 else ''}"))
        candidates = kept
    if len(candidates) > 1:
        differ = [f"--{name}" for name in FILTERS if len({record[name] for _, record in candidates}) > 1]
        how = f"narrow down with {', '.join(differ)} or give" if differ else "give"  # e.g. two config hashes
        raise AmbiguousRecord(f"{len(candidates)} records match; {how} one record file", candidates)
    return candidates[0]


def record_items(record: dict[str, Any], where: str) -> Items:
    """The record's decoded per-item outputs, or an ``MMBenchError`` saying why there are none."""
    details = record.get("details") if isinstance(record.get("details"), dict) else {}
    if record["schema_version"] == 1:
        raise MMBenchError(f"{where}: a schema-1 record has no per-item outputs (details.items); rerun its unit "
                           "with --overwrite to record them")
    if "items" not in details:
        if record["subset"] == "all" or "aggregate" in details:
            parts = details.get("subsets") or []
            shown = f" ({', '.join(map(str, parts))})" if parts else ""
            raise MMBenchError(f"{where}: subset {record['subset']!r} is the {details.get('aggregate', 'mean')} of "
                               f"the card's subsets{shown} and has no items of its own; inspect one of them (--subset)")
        raise MMBenchError(f"{where}: no per-item outputs (details.items): the {record['task_kind']} kind does not "
                           "record them")
    problem = items_problem(details["items"])
    if problem is None:
        try:
            items = decode_items(details["items"])
        except (TypeError, ValueError) as exc:
            problem = f"a value does not read as a number ({exc})"
        else:
            if any(np.isinf(column).any() for column in items.columns.values()):
                problem = "a value is infinite"
            else:
                return items
    raise MMBenchError(f"{where}: damaged per-item outputs (details.items): {problem}")


# -- naming the items from the task data ------------------------------------------------------------------
def _wordsim_names(card, subset, ctx) -> dict[str, list[str]]:
    from .data.wordsim import load_wordsim
    from .kinds import limit_rows

    languages = subset.languages if len(subset.languages) == 2 else subset.languages * 2
    pairs = limit_rows(load_wordsim(card.data_paths(subset, ctx.data_dir), languages=tuple(languages)), ctx)
    return {"item": [f"{a} / {b}" for a, b in zip(pairs["word1"], pairs["word2"])]}


def _bli_names(card, subset, ctx) -> dict[str, list[str]]:
    from .data.io import column_array
    from .data.muse import load_muse_dictionary

    sources: list[str] = []
    for path in card.data_paths(subset, ctx.data_dir):
        sources += column_array(load_muse_dictionary(path), "source").tolist()
    if ctx.limit is not None:  # as the kind: the first N distinct source words
        sources = list(dict.fromkeys(sources))[:ctx.limit]
    return {"item": sorted(set(sources))}


def _visual_bli_names(card, subset, ctx) -> dict[str, list[str]]:
    from .kinds.visual_bli import DEFAULTS, build_queries

    return {"item": build_queries(card, subset, ctx.data_dir, {**DEFAULTS, **card.params}).source_words}


def _retrieval_names(card, subset, ctx) -> dict[str, list[str]]:
    from .kinds import limit_retrieval
    from .kinds.retrieval_sources import load_retrieval_data

    data = limit_retrieval(load_retrieval_data(card, subset, ctx.data_dir), ctx)
    return {"image": list(data.captions[::data.captions_per_image]), "caption": list(data.captions)}


def _caption_names(card, subset, ctx) -> dict[str, list[str]]:
    from .kinds import limit_rows
    from .kinds.caption_retrieval import load_translation_pairs

    pairs = load_translation_pairs(card, subset, ctx.data_dir)
    return {"a": list(limit_rows(pairs.texts_a, ctx)), "b": list(limit_rows(pairs.texts_b, ctx))}


NAMERS: dict[str, Callable] = {"word-similarity": _wordsim_names, "bli": _bli_names, "visual-bli": _visual_bli_names,
                               "retrieval": _retrieval_names, "caption-retrieval": _caption_names}


def item_names(record: dict[str, Any], items: Items, data_dir: Path,
               tasks_dirs: Sequence[Path] = ()) -> tuple[dict[str, list[str]] | None, str | None]:
    """``(names, None)``: the items' names by role (``item``; ``image``/``caption``; ``a``/``b``), read from
    the task data exactly as the kind reads it; or ``(None, why not)`` when the card, its protocol or its
    data files are not those the record was scored on, or the data is not installed."""
    from .cards import discover_cards, verify_files
    from .kinds import EvalContext

    namer = NAMERS.get(record["task_kind"])
    if namer is None:
        return None, f"{record['task_kind']} records identify items by position only"
    card = discover_cards(tasks_dirs)[0].get(record["task"])
    subset = next((s for s in card.subsets if s.name == record["subset"]), None) if card else None
    if subset is None:
        return None, f"no task card {record['task']!r} with subset {record['subset']!r} (--tasks-dir?)"
    protocol = record["protocol"]
    if protocol != card.protocol and not protocol.startswith(card.protocol + "+"):
        return None, f"the card's protocol {card.protocol!r} is not the record's {protocol!r}"
    limit = (record.get("details") or {}).get("limit")
    context = EvalContext(data_dir=Path(data_dir), limit=limit if isinstance(limit, int) else None)
    try:
        files = verify_files(card, subset, data_dir)
        if files != (record.get("provenance") or {}).get("data", files):
            return None, "the task's data files are not those the record was scored on"
        names = namer(card, subset, context)
    except (MMBenchError, OSError) as exc:
        return None, f"the task data cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    for role, values in names.items():
        expected = items.n * (items.per_item.get("t2i_rank", 1) if role == "caption" else 1)
        if len(values) != expected:
            return None, f"the task data has {len(values)} {role}s where the record has {expected}"
    return names, None


# -- the report ----------------------------------------------------------------------------------------------
def inspect_record(record: dict[str, Any], path: Path | str, *, top: int = 10, names: bool = True,
                   data_dir: Path | None = None, tasks_dirs: Sequence[Path] = ()) -> Report:
    """The error analysis of one record (``top`` rows per list of worst items). ``names``: look the items'
    names up in the task data (``data_dir``, cards from ``tasks_dirs`` too)."""
    items = record_items(record, str(path))
    report = Report(path=str(path), record={k: record.get(k) for k in IDENTITY}, unit=items.unit or "item",
                    n=items.n, named=False, scores=[], not_recomputed=[])
    named: dict[str, list[str]] | None = None
    if names:
        from .data.root import data_root

        named, why = item_names(record, items, data_root(data_dir), tasks_dirs)
        if named is None:
            report.notes.append(f"items are shown by position (0-based, in the task's order): {why}")
    else:
        report.notes.append("items are shown by position (0-based, in the task's order): --no-names was given")
    report.named = named is not None
    details = record.get("details") if isinstance(record.get("details"), dict) else {}
    if isinstance(details.get("limit"), int):
        report.notes.append(f"a --limit {details['limit']} smoke run: only the first items were scored")
    columns = set(items.columns)
    pos = details["items"].get("pos")  # visual BLI: each source word's parts of speech ("NV", "-")
    tags = pos.split(" ") if isinstance(pos, str) and len(pos.split(" ")) == items.n else None
    extra: dict[str, float] = {}
    if {"similarity", "gold"} <= columns:
        _word_similarity(report, items, named, top)
    elif "rank" in columns:
        _ranking(report, items, named, top, tags)
    elif columns & {f"{d}_rank" for d in DIRECTIONS}:
        extra = _retrieval(report, items, named, top, folds=details.get("folds") or 1, languages=record["languages"])
    elif "correct" in columns:
        _classification(report, items, top)
    else:
        report.summary["columns"] = sorted(columns)
    # score_from_items' MRR is the best-gold one; visual BLI's "per-pair" variant cannot be recomputed.
    skip = {"mrr"} if details.get("mrr_variant") == "per-pair" else set()
    masks = {tag: np.array([tag in word_tags for word_tags in tags]) for tag in set("".join(tags or [])) - {"-"}}
    _compare_scores(report, record, items, extra, skip, masks)
    return report


def _recompute(name: str, items: Items, skip: set[str], masks: dict[str, np.ndarray]) -> float | None:
    """``name`` from the items, or None; ``<score>_<POS>`` (visual BLI) over the queries of that part of speech."""
    base, _, tag = name.rpartition("_")
    if tag in masks and base not in skip:
        return score_from_items(base, items, mask=masks[tag])
    return None if name in skip else score_from_items(name, items)


def _compare_scores(report: Report, record: dict[str, Any], items: Items, extra: dict[str, float],
                    skip: set[str], masks: dict[str, np.ndarray]) -> None:
    main = record["main_score_name"]
    for name in sorted(record["scores"], key=lambda s: (s != main, natural_key(s))):
        value = record["scores"][name]
        again = extra[name] if name in extra else _recompute(name, items, skip, masks)
        if again is None or value is None:
            report.not_recomputed.append(name)
            continue
        report.scores.append({"score": name, "record": value, "recomputed": again,
                              "matches": math.isclose(again, value, rel_tol=1e-9, abs_tol=1e-9)})
    differ = [s["score"] for s in report.scores if not s["matches"]]
    if differ:
        report.notes.append(f"the items do not reproduce the record's {', '.join(differ)}: the record may have "
                            "been edited or written by another version")


def _worst(values: np.ndarray, candidates: np.ndarray, top: int) -> np.ndarray:
    """The ``top`` indices of ``candidates`` with the largest ``values`` (ties: lower index first)."""
    order = np.lexsort((candidates, -values[candidates]))
    return candidates[order][:top]


def _name(named: dict[str, list[str]] | None, role: str, index: int) -> list[str]:
    """The item's name as a one-cell list, or no cell when items are not named."""
    return [named[role][index]] if named else []


def _value(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _rank(value: float) -> float | int | None:
    """A rank for display: an int when whole (average ranks of ties are halves)."""
    if not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else float(value)


def _word_similarity(report: Report, items: Items, named, top: int) -> None:
    similarity, gold = items.columns["similarity"], items.columns["gold"]
    covered, scored = items.covered(), np.isfinite(similarity)
    report.summary.update({"pairs": items.n, "covered": int(covered.sum()), "uncovered": int((~covered).sum()),
                           "scored": int(scored.sum())})
    rows = np.flatnonzero(scored)
    # Average ranks among the scored pairs (1 = least similar), as Spearman ranks them.
    model_rank, gold_rank = np.full(items.n, np.nan), np.full(items.n, np.nan)
    model_rank[rows] = weighted_average_ranks(similarity[rows], np.ones((1, len(rows))))[0]
    gold_rank[rows] = weighted_average_ranks(gold[rows], np.ones((1, len(rows))))[0]
    difference = model_rank - gold_rank
    table = Table("worst_pairs", f"pairs whose model rank is furthest from their gold rank, of {len(rows)} scored "
                  "(rank 1 = least similar; diff > 0: the model finds the pair too similar)",
                  ["index", *(["pair"] if named else []), "gold", "similarity", "gold rank", "model rank",
                   "rank diff"], [])
    for i in _worst(np.abs(difference), rows, top).tolist():
        table.rows.append([i, *_name(named, "item", i), _value(gold[i]), _value(similarity[i]),
                           _rank(gold_rank[i]), _rank(model_rank[i]), _rank(difference[i])])
    report.tables.append(table)
    uncovered = np.flatnonzero(~covered)
    if len(uncovered):
        report.tables.append(Table("uncovered", f"uncovered pairs (a word without a vector), the first {top}",
                                   ["index", *(["pair"] if named else []), "gold"],
                                   [[i, *_name(named, "item", i), _value(gold[i])] for i in uncovered[:top].tolist()]))


def _distribution(ranks: np.ndarray) -> list[list[Any]]:
    """Rows ``[rank, queries, share %]`` of 1-based rank buckets over the 0-based ``ranks``."""
    rows = []
    for low, high in RANK_BUCKETS:
        count = int(((ranks + 1 >= low) & (ranks + 1 <= high)).sum())
        label = str(low) if low == high else (f"{low}-{high}" if math.isfinite(high) else f">{low - 1}")
        rows.append([label, count, 100 * count / len(ranks) if len(ranks) else None])
    return rows


def _ranking(report: Report, items: Items, named, top: int, tags: list[str] | None) -> None:
    """BLI and visual BLI: one best-gold rank per source word ("-": not a query)."""
    rank = items.columns["rank"]
    queried = np.isfinite(rank)
    not_queried = int((~queried).sum())
    report.summary.update({
        "source_words": items.n, "queries": int(queried.sum()), "not_queried": not_queried,
        "not_queried_share": not_queried / items.n if items.n else None,
        # P@k over every source word, a non-query counting as a miss (the record's P@k is over the queries).
        **{f"p{k}_all_words": score_from_items(f"p{k}", items, penalise_missing=True) for k in (1, 5, 10)},
    })
    report.tables.append(Table("rank_distribution", "rank of the best gold translation per query (1 = first)",
                               ["rank", "queries", "share %"], _distribution(rank[queried])))
    columns = ["index", *(["source word"] if named else []), *(["pos"] if tags else []), "rank"]
    report.tables.append(Table("worst_queries", "queries whose best gold translation ranks lowest", columns, [
        [i, *_name(named, "item", i), *([tags[i]] if tags else []), _rank(rank[i] + 1)]
        for i in _worst(rank, np.flatnonzero(queried), top).tolist()]))
    if not_queried:
        report.tables.append(Table(
            "not_queried", f"source words that were not queries (the model could not score them), the first {top}",
            ["index", *(["source word"] if named else [])],
            [[i, *_name(named, "item", i)] for i in np.flatnonzero(~queried)[:top].tolist()]))


NAME_COLUMNS = {"i2t": "image (first caption)", "t2i": "caption", "a2b": "text a", "b2a": "text b"}


def _retrieval(report: Report, items: Items, named, top: int, folds: int, languages: list[str]) -> dict[str, float]:
    """Image-text and caption-caption retrieval: a rank per query in each direction. Returns medr and meanr
    (averaged over the folds like the record's) for the score comparison."""
    from .metrics.retrieval import rank_summary  # the metric's own medr/meanr, not a copy

    directions = [d for d in DIRECTIONS if f"{d}_rank" in items.columns]
    queries = {d: len(items.columns[f"{d}_rank"]) for d in directions}
    recomputed: dict[str, float] = {}
    for d in directions:
        ranks = items.columns[f"{d}_rank"]
        if not np.isfinite(ranks).all():
            report.notes.append(f"{d}: some queries have no rank; medr and meanr are not recomputed")
            continue
        parts = [rank_summary(part, d) for part in np.array_split(ranks.astype(np.int64), folds)]
        for metric in ("medr", "meanr"):
            recomputed[f"{d}_{metric}"] = float(np.mean([part[f"{d}_{metric}"] for part in parts]))
    report.summary.update({**{f"{d}_queries": queries[d] for d in directions},
                           **{name: value for name, value in recomputed.items() if name.endswith("medr")}})
    # A query's candidates are the other direction's queries (within a fold): the curve stops below them.
    opposite = {"i2t": "t2i", "t2i": "i2t", "a2b": "b2a", "b2a": "a2b"}
    candidates = min(queries.get(opposite[d], queries[d]) // folds for d in directions)
    report.tables.append(Table(
        "recall_at_k", "recall@K: % of queries whose match ranks within the first K", ["K", *directions],
        [[k, *[score_from_items(f"{d}_r{k}", items) for d in directions]]
         for k in RECALL_KS if k <= 10 or k < candidates]))
    for d in directions:
        ranks, per_image = items.columns[f"{d}_rank"], items.per_item.get(f"{d}_rank", 1)
        columns = ["index", *(["image"] if per_image > 1 else []), *([NAME_COLUMNS[d]] if named else []), "rank"]
        rows = [[i, *([i // per_image] if per_image > 1 else []), *_name(named, DIRECTIONS[d], i), _rank(ranks[i] + 1)]
                for i in _worst(ranks, np.arange(len(ranks)), top).tolist()]
        report.tables.append(Table(f"worst_{d}", f"{d}: {_queries(d, languages)} whose match ranks lowest "
                                   "(rank 1 = first)", columns, rows))
    return recomputed


def _queries(direction: str, languages: list[str]) -> str:
    """What the queries of ``direction`` are, in words."""
    if direction in ("a2b", "b2a") and len(languages) == 2:
        return f"{languages[direction == 'b2a']} texts"
    return {"i2t": "images", "t2i": "captions", "a2b": "texts a", "b2a": "texts b"}[direction]


def _classification(report: Report, items: Items, top: int) -> None:
    correct = items.columns["correct"] == 1
    report.summary.update({"documents": items.n, "correct": int(correct.sum()), "wrong": int((~correct).sum())})
    report.tables.append(Table("misclassified", f"misclassified documents (data order), the first {top}",
                               ["index"], [[i] for i in np.flatnonzero(~correct)[:top].tolist()]))
    report.notes.append("records keep whether each document was classified correctly, not the predicted class: "
                        "no confusion counts")
