"""matching_scores (gold + sampled negatives) against a loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmbench.metrics import matching_scores, sample_candidates


def ref_cos(a, b) -> float:
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return 0.0 if na == 0 or nb == 0 else sum(x * y for x, y in zip(a, b)) / (na * nb)


def ref_sample(gold, n_candidates, n_negatives, seed):
    """The documented procedure: per query, one gold via rng.choice, then negatives without replacement."""
    rng = np.random.default_rng(seed)
    lists = []
    for entry in gold:
        golds = sorted({entry} if isinstance(entry, int) else set(entry))
        pool = np.array([c for c in range(n_candidates) if c not in golds])
        g = int(rng.choice(golds))
        negatives = rng.choice(pool, size=len(pool) if n_negatives is None else n_negatives, replace=False)
        lists.append([g, *map(int, negatives)])
    return lists


def ref_matching(queries, candidates, gold, n_negatives, seed, ks, ties="pessimistic"):
    ranks = []
    for q, cand in zip(queries, ref_sample(gold, len(candidates), n_negatives, seed)):
        scores = [ref_cos(q, candidates[c]) for c in cand]
        # position 0 is the gold; wrong candidates with an equal score go first when pessimistic
        ranks.append(sum(s > scores[0] or (ties == "pessimistic" and s == scores[0]) for s in scores[1:]))
    out = {f"p{k}": 100.0 * np.mean([r < k for r in ranks]) if ranks else 0.0 for k in ks}
    out["mrr"] = float(np.mean([1 / (r + 1) for r in ranks])) if ranks else 0.0
    return out, ranks


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_negatives", [3, 20, None])
@pytest.mark.parametrize("multi_gold", [False, True])
def test_random_data_matches_reference(seed, n_negatives, multi_gold):
    rng = np.random.default_rng(seed)
    candidates = rng.normal(size=(30, 6))
    if multi_gold:
        offsets = rng.integers(1, 30, size=25)  # two distinct gold candidates per query
        gold = [{int(a), int((a + b) % 30)} for a, b in zip(rng.integers(0, 30, size=25), offsets)]
    else:
        gold = [int(g) for g in rng.integers(0, 30, size=25)]
    first = [next(iter(sorted(g))) if isinstance(g, set) else g for g in gold]
    queries = candidates[first] + rng.normal(scale=1.0, size=(25, 6))
    got = matching_scores(queries, candidates, gold, n_negatives=n_negatives, seed=seed)
    want, _ = ref_matching(queries, candidates, gold, n_negatives, seed, (1, 5, 10))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got["n_queries"] == 25
    assert got["n_candidates"] == 1 + (30 - (2 if multi_gold else 1) if n_negatives is None else n_negatives)


def test_sampling_is_seeded_disjoint_and_gold_first():
    gold = [{0, 1}, 5, {7}]
    lists = sample_candidates(gold, 50, n_negatives=10, seed=3)
    assert lists.shape == (3, 11)
    np.testing.assert_array_equal(lists, sample_candidates(gold, 50, n_negatives=10, seed=3))
    assert not np.array_equal(lists, sample_candidates(gold, 50, n_negatives=10, seed=4))
    assert lists[0, 0] in (0, 1) and lists[1, 0] == 5 and lists[2, 0] == 7
    for row, g in zip(lists, [{0, 1}, {5}, {7}]):
        assert not set(row[1:].tolist()) & g and len(set(row.tolist())) == 11
    assert lists.tolist() == ref_sample(gold, 50, 10, 3)


def test_hand_computed_and_ties():
    candidates = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    queries = np.array([[1.0, 0.1]])
    # all candidates are in the list (2 negatives); gold 0 is the nearest
    assert matching_scores(queries, candidates, [0], n_negatives=2, ks=(1,))["p1"] == 100.0
    assert matching_scores(queries, candidates, [1], n_negatives=2, ks=(1, 5))["mrr"] == pytest.approx(1 / 3)
    collapsed = matching_scores(np.ones((4, 3)), np.ones((10, 3)), [0, 1, 2, 3], n_negatives=9)
    assert collapsed["p1"] == collapsed["p5"] == 0.0 and collapsed["p10"] == 100.0
    optimistic = matching_scores(np.ones((4, 3)), np.ones((10, 3)), [0, 1, 2, 3], n_negatives=9, ties="optimistic")
    assert optimistic["p1"] == 100.0


def test_empty_and_single_query():
    empty = matching_scores(np.zeros((0, 3)), np.ones((5, 3)), [], n_negatives=2)
    assert empty == {"p1": 0.0, "p5": 0.0, "p10": 0.0, "mrr": 0.0, "n_queries": 0, "n_candidates": 3}
    single = matching_scores(np.array([[0.0, 1.0]]), np.eye(2), [1], n_negatives=1)
    assert single["p1"] == 100.0 and single["n_queries"] == 1


def test_bad_input_raises():
    with pytest.raises(ValueError, match="negatives requested"):
        matching_scores(np.ones((1, 2)), np.ones((5, 2)), [0])
    with pytest.raises(ValueError, match="candidate indices"):
        matching_scores(np.ones((1, 2)), np.ones((5, 2)), [7], n_negatives=2)
    with pytest.raises(ValueError, match="entries"):
        matching_scores(np.ones((2, 2)), np.ones((5, 2)), [0], n_negatives=2)
    with pytest.raises(ValueError, match="dims"):
        matching_scores(np.ones((1, 3)), np.ones((5, 2)), [0], n_negatives=2)
    with pytest.raises(ValueError, match="ties"):
        matching_scores(np.ones((1, 2)), np.ones((5, 2)), [0], n_negatives=2, ties="fair")


def test_real_features_match_reference(shared_data):
    features = np.load(shared_data / "multi30k" / "features" / "test_2016_flickr-resnet50-avgpool.npy")[:300, :64]
    candidates = features.astype(np.float64)
    rng = np.random.default_rng(0)
    gold = [int(g) for g in rng.integers(0, 300, size=60)]
    queries = candidates[gold] + rng.normal(scale=2 * candidates.std(), size=(60, 64))
    got = matching_scores(queries, candidates, gold)
    want, _ = ref_matching(queries, candidates, gold, 99, 0, (1, 5, 10))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
