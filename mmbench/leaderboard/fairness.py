"""Coverage-fair ranks, intervals and significance for every leaderboard table (rows of one table_key).

The policy, stated on every page (``policy_text``), has two forms, chosen per table:

* Tables whose items a model can miss (word similarity pairs without vectors, BLI source words out of
  vocabulary) rank every model with per-item outputs by its **OOV-penalised score** over *all* items:
  an uncovered pair counts at similarity 0, an uncovered source word as a miss. This is the field's
  full-test-set convention (SemEval-2017 Task 2 scores an unanswered pair at the scale's neutral value)
  and needs no coverage floor: a model's coverage is priced into its score, so an open-vocabulary model
  that covers everything badly cannot push well-covering vocabulary models out of the ranks (a floor
  relative to the best coverage did exactly that once character-level models arrived). Significance is a
  paired bootstrap of the penalised scores over all items. The own score (on covered items) stays beside
  it, and the **common subset** score is given for the models covering at least ``COVERAGE_FLOOR`` of
  the rank-1 model's coverage, on the items all of them cover.
* Other tables (retrieval, classification: coverage, if any, is the data's) keep the floor policy: a row
  whose coverage is below ``COVERAGE_FLOOR`` of the best coverage is shown but not ranked; when every
  ranked row has per-item outputs, rows are ranked by their score on the common subset of the ranked
  rows, otherwise (records from before per-item outputs) by their own score; significance on shared items.
* Intervals: 95 % bootstrap percentile intervals over items (``N_RESAMPLES`` resamples, one draw shared
  by every row of the table, so they are paired), combined with the seed spread by also resampling seeds.
* Significance: a two-sided paired bootstrap test of each ranked row against the rank-1 row; ``p <
  ALPHA`` marks a real difference.

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
RANK_BY_PENALISED = "OOV-penalised score"
_INTERVALS = (f"Intervals are 95 % bootstrap intervals over items ({N_RESAMPLES} resamples, paired across models, "
              "seeds resampled too). ")
POLICY_PENALISED = (
    "Ranking policy: models are ranked by their OOV-penalised score over all items (an uncovered word pair "
    "counts at similarity 0, an uncovered source word as a miss: the full-test-set convention of "
    "SemEval-2017 Task 2), so coverage is priced into the rank and no model is left unranked for covering "
    "less. The own score (on covered items) stays beside it; the common-subset score is given for the models "
    f"covering at least {COVERAGE_FLOOR:.0%} of the rank-1 model's coverage, on the items all of them cover. "
    + _INTERVALS + "\"vs best\" is a two-sided paired bootstrap test of the OOV-penalised scores against the "
    f"rank-1 model: ▼ marks p < {ALPHA} (a real difference), ≈ a difference the items cannot tell apart.")
POLICY_FLOOR = (
    f"Ranking policy: a model covering less than {COVERAGE_FLOOR:.0%} of the best coverage in its table is "
    "shown but not ranked (rank —). Where every ranked model has per-item outputs, ranks use the score on "
    "the common subset (the items every ranked model covers); otherwise the model's own score. "
    + _INTERVALS + "\"vs best\" is a two-sided paired bootstrap test against the rank-1 model on "
    f"shared items: ▼ marks p < {ALPHA} (a real difference), ≈ a difference the items cannot tell apart.")
STAT_FIELDS = ("ranked", "rank_by", "main_ci", "common_mean", "common_ci", "common_n", "oov_penalised",
               "oov_penalised_ci", "p_vs_best", "differs_from_best")
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
               masks: list | None = None, penalise: bool = False) -> np.ndarray | None:
    """Seed-combined resampled score of a row: the mean over its parts (subsets of an ``all`` row)."""
    values = []
    for index, part_counts in enumerate(counts):
        mask = masks[index] if masks is not None else None
        part = resampled(name, [parts[index] for parts in seeds], part_counts, picks, mask, penalise)
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


def policy_text(rows: list[dict]) -> str:
    """The ranking policy a page states: the penalised form when any of its tables ranks by it."""
    return POLICY_PENALISED if any(r.get("rank_by") == RANK_BY_PENALISED for r in rows) else POLICY_FLOOR


def annotate_tables(rows: list[dict], records_by_id: dict[str, dict]) -> None:
    """Set ``rank`` (None when not ranked) and the ``STAT_FIELDS`` on every row, table by table."""
    by_subset = {_subset_key(r, r["subset"]): r for r in records_by_id.values()}
    for key, table in group_by(rows, table_key).items():
        _annotate(key, table, records_by_id, by_subset)


class _Table:
    """One table's decoded per-item outputs and its shared bootstrap draws."""

    def __init__(self, key: tuple, table: list[dict], records_by_id: dict[str, dict], by_subset: dict) -> None:
        items = {id(row): _row_items(row, records_by_id, by_subset) for row in table}
        signatures = Counter(tuple(p.n for p in seeds[0]) for seeds in items.values() if seeds)
        sizes = signatures.most_common(1)[0][0] if signatures else ()
        self.items = {k: v if v and tuple(p.n for p in v[0]) == sizes else None for k, v in items.items()}
        self.name = table[0]["main_score_name"]
        self.counts = [resample_counts(n, N_RESAMPLES, _seed(key, f"part{i}")) for i, n in enumerate(sizes)]
        self.picks = {id(row): seed_picks(row["n_seeds"], N_RESAMPLES, _seed(key, row["config_hash"] + row["model"]))
                      for row in table}

    def of(self, row: dict) -> list[list[Items]] | None:
        return self.items[id(row)]

    def boot(self, row: dict, masks=None, penalise: bool = False) -> np.ndarray | None:
        return _resampled(self.name, self.items[id(row)], self.counts, self.picks[id(row)], masks, penalise)

    def common(self, rows: list[dict]) -> list[np.ndarray] | None:
        """The items every row covers; None when too few, or when every row covers the same items (their
        own scores are then already comparable)."""
        common = _covered_by(rows, self.items)
        own_sets = [_covered_by([r], self.items) for r in rows]
        if (sum(int(m.sum()) for m in common) < MIN_COMMON_ITEMS or not all(m.any() for m in common)
                or all(all(np.array_equal(a, b) for a, b in zip(own, common)) for own in own_sets)):
            return None
        return common

    def score_common(self, rows: list[dict], common: list[np.ndarray]) -> dict[int, np.ndarray]:
        boots = {}
        for row in rows:
            row["common_mean"] = _mean_score(self.name, self.of(row), common)
            boots[id(row)] = self.boot(row, common)
            row["common_ci"] = list(percentile_interval(boots[id(row)]))
            row["common_n"] = sum(int(m.sum()) for m in common)
        return boots


def _annotate(key: tuple, table: list[dict], records_by_id: dict[str, dict], by_subset: dict) -> None:
    for row in table:
        row.update({name: None for name in STAT_FIELDS})
    data = _Table(key, table, records_by_id, by_subset)
    for row in table:
        if data.of(row):
            row["main_ci"] = list(percentile_interval(data.boot(row)))
        if data.of(row) and any("similarity" in p.columns or "rank" in p.columns for p in data.of(row)[0]):
            # Only where a model can miss items (word pairs, source words); retrieval coverage is the data's.
            row["oov_penalised"] = _mean_score(data.name, data.of(row), penalise=True)
            row["oov_penalised_ci"] = list(percentile_interval(data.boot(row, penalise=True)))
    if any(row["oov_penalised"] is not None for row in table):
        _rank_by_penalised(table, data)
    else:
        _rank_with_floor(table, data)


def _signed(row: dict, value: float) -> float:
    return value if row["higher_is_better"] else -value


def _rank_by_penalised(table: list[dict], data: _Table) -> None:
    """Every row with a penalised score is ranked by it; rows without per-item outputs are shown unranked."""
    ranked = [row for row in table if row["oov_penalised"] is not None]

    def order(row: dict) -> tuple:
        return (-_signed(row, row["oov_penalised"]), row["model"], row["config_hash"])

    for row in table:
        row["ranked"] = row["oov_penalised"] is not None
        row["rank_by"] = RANK_BY_PENALISED
        row["rank"] = 1 + sum(order(o)[0] < order(row)[0] for o in ranked) if row["ranked"] else None
    best = min(ranked, key=order)
    best_coverage = best["coverage_mean"] or 0.0
    members = [row for row in ranked if (row["coverage_mean"] or 0.0) >= COVERAGE_FLOOR * best_coverage]
    common = data.common(members) if len(members) > 1 else None
    if common is not None:
        data.score_common(members, common)
    best_values = data.boot(best, penalise=True)
    for row in ranked:
        if row is not best:
            row["p_vs_best"] = paired_p_value(best_values, data.boot(row, penalise=True))
            row["differs_from_best"] = row["p_vs_best"] < ALPHA


def _rank_with_floor(table: list[dict], data: _Table) -> None:
    """Rows below the coverage floor are unranked; the rest rank on their common subset when all have
    per-item outputs, else on their own score."""
    coverages = [r["coverage_mean"] for r in table if r["coverage_mean"] is not None]
    best_coverage = max(coverages, default=None)
    for row in table:
        row["ranked"] = (row["coverage_mean"] is None or not best_coverage
                         or row["coverage_mean"] >= COVERAGE_FLOOR * best_coverage)
    ranked = [row for row in table if row["ranked"]]
    common = None
    if ranked and all(data.of(r) for r in ranked) and any(r["coverage_mean"] is not None for r in ranked):
        common = data.common(ranked)
    common_boot = data.score_common(ranked, common) if common is not None else {}
    by_common = common is not None and all(r["common_mean"] is not None for r in ranked)

    def order(row: dict) -> tuple:
        if not by_common:
            return rank_key(row)
        return (-_signed(row, row["common_mean"]), row["model"], row["config_hash"])

    for row in table:
        row["rank_by"] = "common subset" if by_common else "own score"
        row["rank"] = 1 + sum(order(o)[0] < order(row)[0] for o in ranked) if row["ranked"] else None
    if not ranked:
        return
    best = min(ranked, key=order)
    for row in ranked:
        if row is best or not data.of(row) or not data.of(best):
            continue
        if by_common:
            best_values, values = common_boot[id(best)], common_boot[id(row)]
        else:
            shared = _covered_by([row, best], data.items)
            if sum(int(m.sum()) for m in shared) < MIN_COMMON_ITEMS or not all(m.any() for m in shared):
                continue
            best_values, values = data.boot(best, shared), data.boot(row, shared)
        row["p_vs_best"] = paired_p_value(best_values, values)
        row["differs_from_best"] = row["p_vs_best"] < ALPHA


def _covered_by(rows: list[dict], items: dict) -> list[np.ndarray]:
    """Per part, the items every seed of every row in ``rows`` covers."""
    n_parts = len(items[id(rows[0])][0])
    return [np.logical_and.reduce([parts[i].covered() for r in rows for parts in items[id(r)]])
            for i in range(n_parts)]
