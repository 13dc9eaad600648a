"""Coverage-fair leaderboards from schema-2 records with per-item outputs (and schema-1 records beside them).

Records are built here from known per-pair similarities, so the OOV-penalised ranks, the common-subset
score, the coverage floor, the intervals and the significance marks are checked against hand computation
with SciPy.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from test_leaderboard import make_record, tables

from mmbench.leaderboard import build_leaderboards
from mmbench.leaderboard.fairness import COVERAGE_FLOOR, RANK_BY_PENALISED
from mmbench.results import RecordKey, encode_column, encode_items, record_problem

N_PAIRS = 200
GOLD = np.round(np.random.default_rng(0).uniform(0, 10, size=N_PAIRS), 2)


def similarities(noise: float, coverage: float, seed: int) -> np.ndarray:
    """Gold plus noise (lower noise: a better model), NaN for uncovered pairs (the same pairs per model)."""
    rng = np.random.default_rng(seed)
    values = np.round(GOLD / 10 + noise * rng.normal(size=N_PAIRS), 5)
    covered = np.random.default_rng(hash(coverage) % 1000).random(N_PAIRS) < coverage
    return np.where(covered, values, np.nan)


def wordsim_record(model: str, noise: float, coverage: float, seed: int, **overrides) -> dict:
    sims = similarities(noise, coverage, seed * 100 + int(noise * 1000))
    scored = np.isfinite(sims)
    rho = float(spearmanr(sims[scored], GOLD[scored]).statistic)
    details = {"n_scored": int(scored.sum()), "items": encode_items("pair", N_PAIRS, {
        "similarity": encode_column(sims.tolist(), decimals=5), "gold": encode_column(GOLD.tolist(), decimals=4),
        "covered": encode_column(scored.astype(int).tolist())})}
    return make_record(schema_version=2, model=model, seed=seed, main_score=rho, scores={"spearman": rho},
                       coverage=float(scored.mean()), n_items=N_PAIRS, details=details,
                       config_hash=hashlib.sha256(model.encode()).hexdigest()[:12], **overrides)


# noise, coverage; "wide" is an open-vocabulary model: every pair covered, badly (LIWE on word similarity).
MODELS = {"good": (0.05, 0.9), "twin": (0.055, 0.9), "close": (0.055, 0.8), "poor": (0.3, 0.85),
          "tiny": (0.0, 0.3), "wide": (1.0, 1.0)}


def write_records(folder: Path, records: list[dict]) -> Path:
    folder.mkdir()
    for record in records:
        (folder / f"{record['record_id']}.json").write_text(json.dumps(record), encoding="utf-8")
    return folder


@pytest.fixture
def results(tmp_path: Path) -> Path:
    records = [wordsim_record(m, noise, cov, seed) for m, (noise, cov) in MODELS.items() for seed in (0, 1)]
    records.append(make_record(model="legacy", main_score=0.5, scores={"spearman": 0.5}, coverage=0.85,
                               config_hash="0123456789ab"))  # schema 1: no per-item outputs
    return write_records(tmp_path / "results", records)


def rows_of(out: Path) -> dict[str, dict]:
    summary = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    return {row["model"]: row for row in summary["rows"]}


def seed_similarities(model: str, seed: int) -> np.ndarray:
    noise, coverage = MODELS[model]
    return similarities(noise, coverage, seed * 100 + int(noise * 1000))


def penalised_by_hand(model: str) -> float:
    """SciPy's Spearman over all pairs, an uncovered pair at similarity 0, averaged over the two seeds."""
    return float(np.mean([spearmanr(np.nan_to_num(seed_similarities(model, s), nan=0.0), GOLD).statistic
                          for s in (0, 1)]))


def test_word_tables_rank_by_the_oov_penalised_score(results: Path, tmp_path: Path) -> None:
    build_leaderboards(results, tmp_path / "out")
    rows = rows_of(tmp_path / "out")
    with_items = [m for m in MODELS]
    for model in with_items:
        assert rows[model]["oov_penalised"] == pytest.approx(penalised_by_hand(model), abs=1e-9)
        assert rows[model]["rank_by"] == RANK_BY_PENALISED and rows[model]["ranked"] is True
        low, high = rows[model]["oov_penalised_ci"]
        assert low <= rows[model]["oov_penalised"] <= high
    by_hand = sorted(with_items, key=penalised_by_hand, reverse=True)
    assert [rows[m]["rank"] for m in by_hand] == list(range(1, len(with_items) + 1))
    # The regression: an open-vocabulary model covering every pair badly no longer pushes the vocabulary
    # models out of the ranks (a floor relative to the best coverage did), and it does not rank first.
    assert rows["good"]["rank"] == 1 and rows["wide"]["rank"] > rows["good"]["rank"]
    assert rows["tiny"]["rank"] is not None  # low coverage is priced into its score, not a reason to hide it
    assert rows["legacy"]["ranked"] is False and rows["legacy"]["rank"] is None  # no per-item outputs
    # Significance on the penalised scores over all pairs.
    assert rows["wide"]["differs_from_best"] is True and rows["wide"]["p_vs_best"] < 0.05
    assert rows["twin"]["differs_from_best"] is False  # same pairs, 0.05 vs 0.055 noise: the items cannot tell
    page = (tmp_path / "out" / "rg65-xling.md").read_text(encoding="utf-8")
    assert "OOV-penalised score over all items" in page and "SemEval-2017" in page
    (table,) = tables(page)
    assert table[0][3] == "OOV-penalised [95% CI]"  # the score the table ranks by comes first
    by_model = {row[1]: row for row in table[1:]}
    versus = table[0].index("vs best")
    assert by_model["good"][versus] == "best" and by_model["wide"][versus].startswith("▼")
    assert by_model["twin"][versus].startswith("≈") and by_model["legacy"][0] == "—"
    assert by_model["good"][table[0].index("n scored / total")] == f"{rows['good']['n_scored']} / {N_PAIRS}"
    index = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert f"OOV-penalised {rows['good']['oov_penalised']:.3f}" in index


def test_the_common_subset_is_that_of_models_covering_half_the_leaders_coverage(results: Path, tmp_path: Path) -> None:
    build_leaderboards(results, tmp_path / "out")
    rows = rows_of(tmp_path / "out")
    members = [m for m in MODELS if MODELS[m][1] >= COVERAGE_FLOOR * MODELS["good"][1]]
    assert "tiny" not in members and "wide" in members
    common = np.logical_and.reduce([np.isfinite(seed_similarities(m, s)) for m in members for s in (0, 1)])
    for model in members:
        assert rows[model]["common_n"] == int(common.sum())
        by_hand = np.mean([spearmanr(seed_similarities(model, s)[common], GOLD[common]).statistic for s in (0, 1)])
        assert rows[model]["common_mean"] == pytest.approx(by_hand, abs=1e-9)
    assert rows["tiny"]["common_mean"] is None and rows["legacy"]["common_mean"] is None


def test_tables_without_per_item_outputs_keep_the_coverage_floor(tmp_path: Path) -> None:
    folder = write_records(tmp_path / "results", [
        make_record(model=model, main_score=score, scores={"spearman": score}, coverage=coverage,
                    config_hash=hashlib.sha256(model.encode()).hexdigest()[:12])
        for model, score, coverage in (("wide", 0.1, 1.0), ("narrow", 0.8, 0.3), ("middle", 0.5, 0.6))])
    build_leaderboards(folder, tmp_path / "out")
    rows = rows_of(tmp_path / "out")
    assert rows["narrow"]["ranked"] is False and rows["narrow"]["rank"] is None  # 30% < half of 100%
    assert [rows[m]["rank"] for m in ("middle", "wide")] == [1, 2]
    assert rows["middle"]["rank_by"] == "own score" and rows["middle"]["oov_penalised"] is None
    assert "shown but not ranked" in (tmp_path / "out" / "rg65-xling.md").read_text(encoding="utf-8")


def test_output_is_byte_identical_whatever_the_file_order(results: Path, tmp_path: Path) -> None:
    build_leaderboards(results, tmp_path / "a")
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    paths = sorted(results.glob("*.json"))
    random.Random(4).shuffle(paths)
    for index, path in enumerate(paths):
        shutil.copy(path, shuffled / f"{index:03d}.json")
    build_leaderboards(shuffled, tmp_path / "b")
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_record_items_are_checked_and_version_one_stays_intact() -> None:
    key = RecordKey("m", "abc", 0, "t", "s", "test", "p")
    base = {"schema_version": 2, "record_id": key.record_id, "model": "m", "config_hash": "abc", "seed": 0,
            "task": "t", "subset": "s", "split": "test", "protocol": "p", "scores": {"a": 1.0},
            "main_score_name": "a", "main_score": 1.0, "coverage": None, "languages": [], "provenance": {},
            "config": {}, "n_items": 2, "created_at": "x", "wall_time_s": 0.1,
            "details": {"items": encode_items("pair", 2, {"rank": "0 1"})}}
    assert record_problem(base, key) is None
    assert record_problem({**base, "schema_version": 1}, key) is None  # old records are not recomputed
    damaged = {**base, "details": {"items": encode_items("pair", 2, {"rank": "0"})}}
    assert "details.items" in record_problem(damaged, key)


def test_a_1000_image_retrieval_record_grows_by_less_than_100_kb() -> None:
    rng = np.random.default_rng(1)
    i2t, t2i = rng.integers(0, 5000, size=1000), rng.integers(0, 1000, size=5000)  # worst-case widths
    items = encode_items("image", 1000, {"i2t_rank": encode_column(i2t.tolist()),
                                         "t2i_rank": encode_column(t2i.tolist())}, per_item={"t2i_rank": 5})
    size = len(json.dumps({"items": items}, indent=2, ensure_ascii=False).encode())
    assert size < 40_000


def test_an_all_row_is_bootstrapped_from_its_subsets(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    for model, (noise, cov) in (("good", MODELS["good"]), ("poor", MODELS["poor"])):
        parts = [wordsim_record(model, noise, cov, 0, subset=subset) for subset in ("en-de", "en-fr")]
        mean = float(np.mean([p["main_score"] for p in parts]))
        total = make_record(schema_version=2, model=model, seed=0, subset="all", main_score=mean,
                            scores={"spearman": mean}, coverage=parts[0]["coverage"], n_items=2 * N_PAIRS,
                            config_hash=parts[0]["config_hash"],
                            details={"aggregate": "mean", "subsets": ["en-de", "en-fr"]})
        for record in (*parts, total):
            (folder / f"{record['record_id']}.json").write_text(json.dumps(record), encoding="utf-8")
    build_leaderboards(folder, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "leaderboard.json").read_text(encoding="utf-8"))
    rows = {(r["model"], r["subset"]): r for r in summary["rows"]}
    for model in ("good", "poor"):
        whole = rows[(model, "all")]
        assert whole["main_ci"] is not None and whole["rank_by"] == RANK_BY_PENALISED
        for field in ("common_mean", "oov_penalised"):
            assert whole[field] == pytest.approx(np.mean([rows[(model, s)][field] for s in ("en-de", "en-fr")]),
                                                 abs=1e-12)
    assert rows[("poor", "all")]["differs_from_best"] is True
    index = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "| good " in index and "[" in index.split("| good ")[1]  # the index shows the interval
