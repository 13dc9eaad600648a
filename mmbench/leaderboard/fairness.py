"""Coverage-fair ranks, intervals and significance for every leaderboard table (rows of one table_key).

The policy, stated on every page (``POLICY``):

* Coverage floor: a row whose coverage is below ``COVERAGE_FLOOR`` (half) of the best coverage in its
  table is shown but not ranked: its score is measured on too few of the items the others answer.
* Common subset: when every ranked row has per-item outputs, each is also scored on the items *all*
  ranked rows cover (word pairs with vectors, source words with a gold translation in vocabulary), and
  rows are ranked by that score; otherwise (records from before per-item outputs) by their own score.
* Intervals: 95 % bootstrap percentile intervals over items (``N_RESAMPLES`` resamples, one draw shared
  by every row of the table, so they are paired), combined with the seed spread by also resampling seeds.
* Significance: a two-sided paired bootstrap test of each ranked row against the rank-1 row on the items
  both are scored on (the common subset when ranking by it); ``p < ALPHA`` marks a real difference.
* OOV-penalised score: word similarity with uncovered pairs at similarity 0, precision/MRR with uncovered
  source words counted as misses.

Everything is seeded from the table's key, so the same records give the same numbers.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np

from .records import group_by, rank_key, table_key
from .stats import (
    ALPHA,
    N_RESAMPLES,
    Items,
    decode_items,
    paired_p_value,
    percentile_interval,
    resample_counts,
    resampled,
    score_from_items,
    seed_picks,
)

COVERAGE_FLOOR = 0.5
MIN_COMMON_ITEMS = 10
POLICY = (f"Ranking policy: a model covering less than {COVERAGE_FLOOR:.0%} of the best coverage in its table is "
          "shown but not ranked (rank —). Where every ranked model has per-item outputs, ranks use the score on "
          "the common subset (the items every ranked model covers); otherwise the model's own score. "
          f"Intervals are 95 % bootstrap intervals over items ({N_RESAMPLES} resamples, paired across models, "
          "seeds resampled too). \"vs best\" is a two-sided paired bootstrap test against the rank-1 model on "
          f"shared items: ▼ marks p < {ALPHA} (a real difference), ≈ a difference the items cannot tell apart.")
STAT_FIELDS = ("ranked", "rank_by", "main_ci", "common_mean", "common_ci", "common_n", "oov_penalised",
               "p_vs_best", "differs_from_best")
_TOLERANCE = 1e-6  # items are exact; a recomputed score differs only by summation order (float64)


def _seed(key: tuple, salt: str = "") -> int:
    return int.from_bytes(hashlib.sha256(repr((key, salt)).encode()).digest()[:8], "little")


def _close(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= _TOLERANCE * max(1.0, abs(target))


def _decoded(record: dict | None) -> Items | None:
    details = (record or {}).get("details")
    raw = details.get("items") if isinstance(details, dict) else None
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict):
        return None
    try:
        return decode_items(raw)
    except (ValueError, KeyError, TypeError):
        return None


def _row_items(row: dict, records_by_id: dict[str, dict], by_subset: dict[tuple, dict]) -> list[list[Items]] | None:
    """Per seed, the decoded ``Items`` of each part: the record itself, or for an aggregate (``all``)
    record the records of its subsets (its score is their mean). None when a seed lacks them or they do
    not reproduce its score."""
    name, seeds = row["main_score_name"], []
    for record_id in row["record_ids"]:
        record = records_by_id.get(record_id) or {}
        details = record.get("details") if isinstance(record.get("details"), dict) else {}
        subsets = details.get("subsets") if details.get("aggregate") == "mean" else None
        if isinstance(subsets, list) and subsets:
            parts = [_decoded(by_subset.get(_subset_key(record, subset))) for subset in subsets]
        else:
            parts = [_decoded(record)]
        if any(part is None for part in parts):
            return None
        scores = [score_from_items(name, part) for part in parts]
        if any(v is None for v in scores) or not _close(math.fsum(scores) / len(scores), record["main_score"]):
            return None
        seeds.append(parts)
    signatures = {tuple((p.n, p.unit) for p in parts) for parts in seeds}
    return seeds if seeds and len(signatures) == 1 else None


def _subset_key(record: dict, subset: str) -> tuple:
    return (record["task"], record["model"], record["config_hash"], record["seed"], record["split"],
            record["protocol"], record["main_score_name"], subset)


def _resampled(name: str, seeds: list[list[Items]], counts: list[np.ndarray], picks: np.ndarray,
               masks: list | None = None) -> np.ndarray | None:
    """Seed-combined resampled score of a row: the mean over its parts (subsets of an ``all`` row)."""
    values = []
    for index, part_counts in enumerate(counts):
        mask = masks[index] if masks is not None else None
        part = resampled(name, [parts[index] for parts in seeds], part_counts, picks, mask)
        if part is None:
            return None
        values.append(part)
    return np.mean(values, axis=0)


def _mean_score(name: str, seeds: list[list[Items]], masks: list | None = None, penalise: bool = False) -> float | None:
    values = [score_from_items(name, part, None if masks is None else masks[i], penalise)
              for parts in seeds for i, part in enumerate(parts)]
    if any(v is None for v in values):
        return None
    n_parts = len(seeds[0])
    return math.fsum(values) / (len(seeds) * n_parts)


def annotate_tables(rows: list[dict], records_by_id: dict[str, dict]) -> None:
    """Set ``rank`` (None when not ranked) and the ``STAT_FIELDS`` on every row, table by table."""
    by_subset = {_subset_key(r, r["subset"]): r for r in records_by_id.values()}
    for key, table in group_by(rows, table_key).items():
        _annotate(key, table, records_by_id, by_subset)


def _annotate(key: tuple, table: list[dict], records_by_id: dict[str, dict], by_subset: dict) -> None:
    for row in table:
        row.update({name: None for name in STAT_FIELDS})
    coverages = [r["coverage_mean"] for r in table if r["coverage_mean"] is not None]
    best_coverage = max(coverages, default=None)
    for row in table:
        row["ranked"] = (row["coverage_mean"] is None or not best_coverage
                         or row["coverage_mean"] >= COVERAGE_FLOOR * best_coverage)
    items = {id(row): _row_items(row, records_by_id, by_subset) for row in table}
    signatures = Counter(tuple(p.n for p in seeds[0]) for seeds in items.values() if seeds)
    sizes = signatures.most_common(1)[0][0] if signatures else ()
    items = {k: v if v and tuple(p.n for p in v[0]) == sizes else None for k, v in items.items()}
    name = table[0]["main_score_name"]
    counts = [resample_counts(n, N_RESAMPLES, _seed(key, f"part{i}")) for i, n in enumerate(sizes)]
    picks = {id(row): seed_picks(row["n_seeds"], N_RESAMPLES, _seed(key, row["config_hash"] + row["model"]))
             for row in table}

    def boot(row: dict, masks=None) -> np.ndarray | None:
        return _resampled(name, items[id(row)], counts, picks[id(row)], masks)

    own = {id(row): boot(row) if items[id(row)] else None for row in table}
    for row in table:
        if own[id(row)] is not None:
            row["main_ci"] = list(percentile_interval(own[id(row)]))
        if items[id(row)] and any("similarity" in p.columns or "rank" in p.columns for p in items[id(row)][0]):
            # Only where a model can miss items (word pairs, source words); retrieval coverage is the data's.
            row["oov_penalised"] = _mean_score(name, items[id(row)], penalise=True)

    ranked = [row for row in table if row["ranked"]]
    common = None
    if ranked and all(items[id(r)] for r in ranked) and any(r["coverage_mean"] is not None for r in ranked):
        common = _covered_by(ranked, items)
        own_sets = [_covered_by([r], items) for r in ranked]
        if (sum(int(m.sum()) for m in common) < MIN_COMMON_ITEMS or not all(m.any() for m in common)
                or all(all(np.array_equal(a, b) for a, b in zip(own, common)) for own in own_sets)):
            common = None  # too small, or every model covers the same items: the own score is the fair one
    common_boot = {}
    if common is not None:
        for row in ranked:
            row["common_mean"] = _mean_score(name, items[id(row)], common)
            common_boot[id(row)] = boot(row, common)
            row["common_ci"] = list(percentile_interval(common_boot[id(row)]))
            row["common_n"] = sum(int(m.sum()) for m in common)
    by_common = common is not None and all(r["common_mean"] is not None for r in ranked)

    def order(row: dict) -> tuple:
        if not by_common:
            return rank_key(row)
        value = row["common_mean"] if row["higher_is_better"] else -row["common_mean"]
        return (-value, row["model"], row["config_hash"])

    for row in table:
        row["rank_by"] = "common subset" if by_common else "own score"
        row["rank"] = 1 + sum(order(o)[0] < order(row)[0] for o in ranked) if row["ranked"] else None
    if not ranked:
        return
    best = min(ranked, key=order)
    for row in ranked:
        if row is best or not items[id(row)] or not items[id(best)]:
            continue
        if by_common:
            best_values, values = common_boot[id(best)], common_boot[id(row)]
        else:
            shared = _covered_by([row, best], items)
            if sum(int(m.sum()) for m in shared) < MIN_COMMON_ITEMS or not all(m.any() for m in shared):
                continue
            best_values, values = boot(best, shared), boot(row, shared)
        row["p_vs_best"] = paired_p_value(best_values, values)
        row["differs_from_best"] = row["p_vs_best"] < ALPHA


def _covered_by(rows: list[dict], items: dict) -> list[np.ndarray]:
    """Per part, the items every seed of every row in ``rows`` covers."""
    n_parts = len(items[id(rows[0])][0])
    return [np.logical_and.reduce([parts[i].covered() for r in rows for parts in items[id(r)]])
            for i in range(n_parts)]
