"""Bootstrap intervals, the paired significance test and common-subset scores, against independent NumPy.

The independent side expands each resample into an explicit list of item indices (``np.repeat``) and
scores it with SciPy / plain NumPy, so the weighted-count implementation in mmbench.leaderboard.stats is
checked draw by draw on fixed seeds. Tolerance 1e-9: both sides are float64 sums of at most a few
thousand terms in different orders.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from mmbench.leaderboard.stats import (
    Items,
    decode_items,
    item_scores,
    paired_p_value,
    percentile_interval,
    resample_counts,
    resampled,
    score_from_items,
    seed_picks,
    weighted_average_ranks,
)
from mmbench.results import encode_column, encode_items, items_problem

TOL = 1e-9


def wordsim_items(seed: int, n: int = 80, oov: float = 0.3) -> Items:
    rng = np.random.default_rng(seed)
    similarity = np.round(rng.normal(size=n), 2)  # rounded: ties
    similarity[rng.random(n) < oov] = np.nan
    gold = rng.integers(0, 6, size=n).astype(float)
    return Items("pair", n, {"similarity": similarity, "gold": gold,
                             "covered": np.isfinite(similarity).astype(float)})


def rank_items(seed: int, n: int = 120, oov: float = 0.25) -> Items:
    rng = np.random.default_rng(seed)
    rank = rng.geometric(0.4, size=n).astype(float) - 1
    rank[rng.random(n) < oov] = np.nan
    return Items("source-word", n, {"rank": rank})


def expanded(counts_row: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(counts_row)), counts_row)


def test_resample_counts_are_multinomial_draws_of_n() -> None:
    counts = resample_counts(50, 200, seed=7)
    assert counts.shape == (200, 50) and (counts.sum(axis=1) == 50).all()
    assert np.array_equal(counts, resample_counts(50, 200, seed=7))  # fixed seed, fixed draws
    assert abs(counts.mean() - 1) < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_ranks_equal_rankdata_of_the_expanded_sample(seed: int) -> None:
    from scipy.stats import rankdata

    values = np.round(np.random.default_rng(seed).normal(size=40), 1)
    counts = resample_counts(40, 5, seed)
    ranks = weighted_average_ranks(values, counts.astype(float))
    for row in range(5):
        picked = expanded(counts[row])
        want = rankdata(values[picked])
        got = ranks[row][picked]
        np.testing.assert_allclose(got, want, atol=TOL)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("penalise", [False, True])
def test_spearman_and_pearson_per_resample(seed: int, penalise: bool) -> None:
    items = wordsim_items(seed)
    counts = resample_counts(items.n, 30, seed)
    got_rho = item_scores("spearman", items, counts, penalise_missing=penalise)
    got_r = item_scores("pearson", items, counts, penalise_missing=penalise)
    sims = items.columns["similarity"]
    sims = np.where(np.isfinite(sims), sims, 0.0) if penalise else sims
    for row in range(30):
        picked = [i for i in expanded(counts[row]) if np.isfinite(sims[i])]
        x, y = sims[picked], items.columns["gold"][picked]
        assert got_rho[row] == pytest.approx(spearmanr(x, y).statistic, abs=TOL)
        assert got_r[row] == pytest.approx(pearsonr(x, y).statistic, abs=TOL)


@pytest.mark.parametrize("penalise", [False, True])
def test_precision_and_mrr_per_resample(penalise: bool) -> None:
    items = rank_items(5)
    counts = resample_counts(items.n, 25, 5)
    rank = items.columns["rank"]
    for name, k in (("p1", 1), ("p5", 5), ("mrr", None)):
        got = item_scores(name, items, counts, penalise_missing=penalise)
        for row in range(25):
            picked = [i for i in expanded(counts[row]) if penalise or np.isfinite(rank[i])]
            r = rank[picked]
            want = np.mean(np.where(np.isfinite(r), 1 / (np.nan_to_num(r) + 1), 0)) if k is None else \
                100 * np.mean(np.isfinite(r) & (np.nan_to_num(r, nan=1e9) < k))
            assert got[row] == pytest.approx(want, abs=TOL)


def test_rsum_resamples_images_with_their_captions() -> None:
    rng = np.random.default_rng(6)
    i2t, t2i = rng.integers(0, 30, size=20), rng.integers(0, 30, size=100)
    items = decode_items(encode_items("image", 20, {"i2t_rank": encode_column(i2t), "t2i_rank": encode_column(t2i)},
                                      per_item={"t2i_rank": 5}))
    counts = resample_counts(20, 10, 6)
    got = item_scores("rsum", items, counts)
    for row in range(10):
        images = expanded(counts[row])
        captions = np.concatenate([np.arange(5 * i, 5 * i + 5) for i in images])
        want = sum(100 * np.mean(i2t[images] < k) + 100 * np.mean(t2i[captions] < k) for k in (1, 5, 10))
        assert got[row] == pytest.approx(want, abs=TOL)


def test_seed_combined_interval_against_an_independent_two_level_bootstrap() -> None:
    seeds = [wordsim_items(10 + s, n=60) for s in range(3)]
    counts, picks = resample_counts(60, 400, 11), seed_picks(3, 400, 12)
    got = resampled("spearman", seeds, counts, picks)
    want = []
    for row in range(400):
        indices = expanded(counts[row])
        per_seed = []
        for s in picks[row]:
            sims, gold = seeds[s].columns["similarity"], seeds[s].columns["gold"]
            keep = [i for i in indices if np.isfinite(sims[i])]
            per_seed.append(spearmanr(sims[keep], gold[keep]).statistic)
        want.append(np.mean(per_seed))
    np.testing.assert_allclose(got, want, atol=TOL)
    low, high = percentile_interval(got)
    assert (low, high) == pytest.approx(tuple(np.percentile(want, [2.5, 97.5])), abs=TOL)
    assert low < np.mean([score_from_items("spearman", s) for s in seeds]) < high


def test_paired_test_against_an_independent_count() -> None:
    best, other = rank_items(20, n=300, oov=0), rank_items(21, n=300, oov=0)
    other.columns["rank"] = other.columns["rank"] + 1  # clearly worse
    counts = resample_counts(300, 999, 3)
    b, o = item_scores("p1", best, counts), item_scores("p1", other, counts)
    difference = b - o
    want = min(1.0, 2 * (min((difference <= 0).sum(), (difference >= 0).sum()) + 1) / 1000)
    assert paired_p_value(b, o) == pytest.approx(want) and want < 0.01
    same = item_scores("p1", best, counts)
    assert paired_p_value(b, same) == 1.0  # identical models: no difference


def test_common_subset_score_equals_scoring_the_intersection_by_hand() -> None:
    a, b = wordsim_items(30), wordsim_items(31)
    b.columns["gold"] = a.columns["gold"]  # one pair list
    common = a.covered() & b.covered()
    for items in (a, b):
        keep = np.flatnonzero(common)
        want = spearmanr(items.columns["similarity"][keep], items.columns["gold"][keep]).statistic
        assert score_from_items("spearman", items, common) == pytest.approx(want, abs=TOL)


def test_item_encoding_round_trip_and_checks() -> None:
    column = encode_column([0.123456, None, float("nan"), -0.0, 2.5], decimals=4)
    assert column == "0.1235 - - 0 2.5"
    items = encode_items("pair", 5, {"similarity": column, "gold": encode_column([1, 2, 3, 4, 5])})
    assert items_problem(items) is None
    decoded = decode_items(items)
    assert np.isnan(decoded.columns["similarity"][1]) and decoded.columns["gold"][4] == 5
    assert "4 values for 5" in items_problem({**items, "columns": {"gold": "1 2 3 4"}})
    assert items_problem({"format": "other"}) is not None
    assert score_from_items("medr", decoded) is None  # not recomputable: no interval rather than a wrong one


@pytest.mark.parametrize("name", ["spearman", "pearson"])
def test_no_scored_item_is_a_defined_zero(name: str) -> None:
    items = Items("pair", 3, {"similarity": np.full(3, np.nan), "gold": np.arange(3.0)})
    assert item_scores(name, items, resample_counts(3, 4, 0)).tolist() == [0.0] * 4
