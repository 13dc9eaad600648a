"""Coverage-fair leaderboards from schema-2 records with per-item outputs (and schema-1 records beside them).

Records are built here from known per-pair similarities, so the common-subset score, the coverage floor,
the intervals and the significance marks are checked against hand computation with SciPy.
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
from mmbench.leaderboard.fairness import COVERAGE_FLOOR
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


MODELS = {"good": (0.05, 0.9), "close": (0.055, 0.8), "poor": (0.3, 0.85), "tiny": (0.0, 0.3)}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    records = [wordsim_record(m, noise, cov, seed) for m, (noise, cov) in MODELS.items() for seed in (0, 1)]
    records.append(make_record(model="legacy", main_score=0.5, scores={"spearman": 0.5}, coverage=0.85,
                               config_hash="0123456789ab"))  # schema 1: no per-item outputs
    folder = tmp_path / "results"
    folder.mkdir()
    for record in records:
        (folder / f"{record['record_id']}.json").write_text(json.dumps(record), encoding="utf-8")
    return folder


def rows_of(out: Path) -> dict[str, dict]:
    summary = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    return {row["model"]: row for row in summary["rows"]}


def test_coverage_floor_common_subset_and_significance(results: Path, tmp_path: Path) -> None:
    # legacy (schema 1) is ranked: without items for every ranked row the ranks use the own score...
    build_leaderboards(results, tmp_path / "out")
    rows = rows_of(tmp_path / "out")
    assert rows["tiny"]["ranked"] is False and rows["tiny"]["rank"] is None  # 30% < half of 90%
    assert rows["tiny"]["coverage_mean"] < COVERAGE_FLOOR * rows["good"]["coverage_mean"]
    assert rows["legacy"]["main_ci"] is None and rows["good"]["rank_by"] == "own score"
    # ...so drop it, and the three ranked models with items are ranked on their common subset.
    for path in results.glob("*.json"):
        if json.loads(path.read_text())["model"] == "legacy":
            path.unlink()
    build_leaderboards(results, tmp_path / "out2")
    rows = rows_of(tmp_path / "out2")
    assert rows["good"]["rank_by"] == "common subset"
    common = np.logical_and.reduce([np.isfinite(similarities(MODELS[m][0], MODELS[m][1], s * 100 + int(MODELS[m][0] * 1000)))
                                    for m in ("good", "close", "poor") for s in (0, 1)])
    assert rows["good"]["common_n"] == int(common.sum())
    for model in ("good", "close", "poor"):
        noise, cov = MODELS[model]
        by_hand = np.mean([spearmanr(similarities(noise, cov, s * 100 + int(noise * 1000))[common], GOLD[common]).statistic
                           for s in (0, 1)])
        assert rows[model]["common_mean"] == pytest.approx(by_hand, abs=1e-9)
        low, high = rows[model]["main_ci"]
        assert low <= rows[model]["main_mean"] <= high
    assert [rows[m]["rank"] for m in ("good", "close", "poor")] == [1, 2, 3]
    assert rows["poor"]["differs_from_best"] is True and rows["poor"]["p_vs_best"] < 0.05
    assert rows["close"]["differs_from_best"] is False  # 0.05 vs 0.055 noise: the items cannot tell
    page = (tmp_path / "out2" / "rg65-xling.md").read_text(encoding="utf-8")
    assert "Ranking policy" in page
    (table,) = tables(page)
    by_model = {row[1]: row for row in table[1:]}
    versus = table[0].index("vs best")
    assert by_model["good"][versus] == "best" and by_model["poor"][versus].startswith("▼")
    assert by_model["close"][versus].startswith("≈") and by_model["tiny"][0] == "—"
    assert by_model["good"][table[0].index("n scored / total")] == f"{rows['good']['n_scored']} / {N_PAIRS}"


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
        assert whole["main_ci"] is not None and whole["rank_by"] == "common subset"
        assert whole["common_mean"] == pytest.approx(
            np.mean([rows[(model, s)]["common_mean"] for s in ("en-de", "en-fr")]), abs=1e-12)
    assert rows[("poor", "all")]["differs_from_best"] is True
    index = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "| good " in index and "[" in index.split("| good ")[1]  # the index shows the interval
