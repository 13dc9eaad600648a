"""Visual BLI similarities, KNN voting, image dispersion and ranking against loop references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmbench.metrics import (
    image_dispersion,
    kmeans_centroids,
    knn_translation_scores,
    ranking_scores,
    scores_by_group,
    word_similarity_matrix,
)


# ---------------------------------------------------------------- reference
def ref_cos(a, b) -> float:
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return 0.0 if na == 0 or nb == 0 else sum(x * y for x, y in zip(a, b)) / (na * nb)


def ref_word_similarity(source_sets, target_sets, method):
    out = np.zeros((len(source_sets), len(target_sets)))
    for s, images_s in enumerate(source_sets):
        for t, images_t in enumerate(target_sets):
            if method == "avgmax":
                out[s, t] = np.mean([max(ref_cos(a, b) for b in images_t) for a in images_s])
            elif method == "maxmax":
                out[s, t] = max(ref_cos(a, b) for a in images_s for b in images_t)
            elif method == "cnn-mean":
                out[s, t] = ref_cos(np.mean(images_s, axis=0), np.mean(images_t, axis=0))
            else:
                out[s, t] = ref_cos(np.max(images_s, axis=0), np.max(images_t, axis=0))
    return out


def ref_knn(source_sets, target_sets, k, clusters=None, seed=0):
    unit = lambda v: v / np.linalg.norm(v)
    targets = [(t, unit(img)) for t, images in enumerate(target_sets) for img in images]
    out = np.zeros((len(source_sets), len(target_sets)))
    for s, images in enumerate(source_sets):
        points = [unit(img) for img in images]
        if clusters is not None:
            points = [unit(c) for c in kmeans_centroids(np.array(points), clusters, seed=seed)]
        votes, distance = {}, {}
        for p in points:
            sims = [float(p @ img) for _, img in targets]
            for j in sorted(range(len(targets)), key=lambda j: -sims[j])[:k]:  # stable: lower index first
                word = targets[j][0]
                votes[word] = votes.get(word, 0) + 1
                distance[word] = distance.get(word, 0.0) + 1 - sims[j]
        for word, count in votes.items():
            out[s, word] = count + (1 - distance[word] / count / 2) / 2
    return out


def ref_ranking(similarity, gold, ks, ties="pessimistic"):
    ranks = []
    for row, g in zip(similarity, gold):
        golds = {g} if isinstance(g, int) else set(g)
        wrong_first = ties == "pessimistic"
        order = sorted(range(len(row)), key=lambda t: (-row[t], (t in golds) == wrong_first))
        ranks.append(min(order.index(x) for x in golds))
    out = {"mrr": float(np.mean([1 / (r + 1) for r in ranks])) if ranks else 0.0}
    out.update({f"p{k}": 100.0 * np.mean([r < k for r in ranks]) if ranks else 0.0 for k in ks})
    out["n_queries"] = len(ranks)
    return out


def random_sets(seed: int, n_words: int, dim: int = 5, max_images: int = 4):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(rng.integers(1, max_images + 1), dim)) for _ in range(n_words)]


# ---------------------------------------------------------------- word similarity
@pytest.mark.parametrize("method", ["avgmax", "maxmax", "cnn-mean", "cnn-max"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_word_similarity_matches_reference(method, seed):
    source, target = random_sets(seed, 7), random_sets(seed + 10, 9)
    got = word_similarity_matrix(source, target, method)
    assert got.shape == (7, 9)
    np.testing.assert_allclose(got, ref_word_similarity(source, target, method), atol=1e-12)


def test_word_similarity_hand_computed():
    source = [np.array([[1.0, 0.0], [0.0, 1.0]])]
    target = [np.array([[1.0, 0.0], [1.0, 1.0]])]
    # cosines: image (1,0) -> (1, .707); image (0,1) -> (0, .707)
    assert word_similarity_matrix(source, target, "avgmax")[0, 0] == pytest.approx((1 + 1 / math.sqrt(2)) / 2)
    assert word_similarity_matrix(source, target, "maxmax")[0, 0] == pytest.approx(1.0)
    # means (.5, .5) and (1, .5); element-wise maxima (1, 1) and (1, 1)
    assert word_similarity_matrix(source, target, "cnn-mean")[0, 0] == pytest.approx(
        0.75 / (math.sqrt(0.5) * math.sqrt(1.25))
    )
    assert word_similarity_matrix(source, target, "cnn-max")[0, 0] == pytest.approx(1.0)


def test_avgmax_is_not_symmetric():
    a, b = [np.array([[1.0, 0.0], [0.0, 1.0]])], [np.array([[1.0, 0.0]])]
    assert word_similarity_matrix(a, b, "avgmax")[0, 0] == pytest.approx(0.5)
    assert word_similarity_matrix(b, a, "avgmax")[0, 0] == pytest.approx(1.0)


def test_empty_image_set_policy():
    sets = [np.ones((2, 3)), np.zeros((0, 3))]
    with pytest.raises(ValueError, match=r"target_sets\[1\]"):
        word_similarity_matrix(sets[:1], sets, "avgmax")
    for method in ("avgmax", "maxmax", "cnn-mean", "cnn-max"):
        got = word_similarity_matrix(sets, sets, method, empty_set="lowest")
        assert got[0, 0] == pytest.approx(1.0) and np.isneginf(got[1]).all() and np.isneginf(got[:, 1]).all()


def test_identical_image_sets_tie_exactly():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(3, 8))
    target = [shared, rng.normal(size=(2, 8)), shared.copy()]
    for method in ("avgmax", "maxmax", "cnn-mean", "cnn-max"):
        sims = word_similarity_matrix([rng.normal(size=(4, 8))], target, method)
        assert sims[0, 0] == sims[0, 2], method


def test_bad_input_raises():
    with pytest.raises(ValueError, match="method"):
        word_similarity_matrix([np.ones((1, 2))], [np.ones((1, 2))], "avg")
    with pytest.raises(ValueError, match="NaN"):
        word_similarity_matrix([np.full((1, 2), np.nan)], [np.ones((1, 2))], "avgmax")
    with pytest.raises(ValueError, match="dims"):
        word_similarity_matrix([np.ones((1, 2))], [np.ones((1, 3))], "avgmax")


# ---------------------------------------------------------------- KNN / KNN-C
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3, 50])
@pytest.mark.parametrize("clusters", [None, 1, 2])
def test_knn_scores_match_reference(seed, k, clusters):
    source, target = random_sets(seed, 6, max_images=5), random_sets(seed + 20, 8, max_images=5)
    got = knn_translation_scores(source, target, k=k, clusters=clusters)
    np.testing.assert_allclose(got, ref_knn(source, target, k, clusters), atol=1e-12)


def test_knn_hand_computed_votes_and_tie_break():
    source = [np.array([[1.0, 0.0], [1.0, 0.1]])]
    target = [np.array([[1.0, 0.05]]), np.array([[1.0, -0.2]]), np.array([[0.0, 1.0]])]
    got = knn_translation_scores(source, target, k=2)[0]
    # both source images vote for words 0 and 1 (their two nearest images): 2 votes each,
    # word 0 is nearer on average so it ranks first; word 2 gets no vote.
    assert got[0] > got[1] > 2.0 and got[2] == 0.0
    assert ranking_scores(got[None, :], [0])["p1"] == 100.0


def test_kmeans_is_deterministic_and_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    points = np.concatenate([c + rng.normal(scale=0.1, size=(5, 2)) for c in centres])
    found = kmeans_centroids(points, 3, seed=1)
    np.testing.assert_array_equal(found, kmeans_centroids(points, 3, seed=1))
    for c, group in zip(centres, points.reshape(3, 5, 2)):
        assert np.abs(found - group.mean(0)).sum(1).min() < 1e-9  # each cluster mean is a centroid
    assert kmeans_centroids(points[:2], 5).shape == (2, 2)  # capped at the number of points
    assert kmeans_centroids(np.ones((4, 2)), 3).shape == (1, 2)  # identical points: one centroid


# ---------------------------------------------------------------- image dispersion
@pytest.mark.parametrize("seed", [0, 1])
def test_image_dispersion_matches_reference(seed):
    images = np.random.default_rng(seed).normal(size=(6, 4))
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    want = sum(1 - ref_cos(images[i], images[j]) for i, j in pairs) / len(pairs)
    assert image_dispersion(images) == pytest.approx(want, abs=1e-12)


def test_image_dispersion_edge_cases():
    assert image_dispersion(np.array([[1.0, 2.0]])) == 0.0
    assert image_dispersion(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-12)
    assert image_dispersion(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least one image"):
        image_dispersion(np.zeros((0, 3)))


# ---------------------------------------------------------------- ranking
@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_scores_match_reference_with_ties(ties, seed):
    rng = np.random.default_rng(seed)
    sims = rng.integers(0, 4, size=(12, 15)).astype(float)  # many exact ties
    gold = [int(g) for g in rng.integers(0, 15, size=12)]
    gold[3] = [1, 2, 3]
    got = ranking_scores(sims, gold, ks=(1, 5, 10), ties=ties)
    want = ref_ranking(sims, gold, (1, 5, 10), ties)
    assert got == pytest.approx(want)


def test_ranking_scores_hand_computed_and_edge_cases():
    sims = np.array([[0.9, 0.1, 0.5], [0.2, 0.2, 0.2]])
    got = ranking_scores(sims, [2, 1])
    # row 0: gold 2 ranks second; row 1: all tied -> pessimistic rank 3
    assert got == pytest.approx({"mrr": (1 / 2 + 1 / 3) / 2, "p1": 0.0, "p10": 100.0, "n_queries": 2})
    assert ranking_scores(sims, [2, 1], ties="optimistic")["p1"] == 50.0
    assert ranking_scores(np.zeros((0, 3)), []) == {"mrr": 0.0, "p1": 0.0, "p10": 0.0, "n_queries": 0}
    assert ranking_scores(np.array([[5.0]]), [0])["mrr"] == 1.0
    with pytest.raises(ValueError, match="gold"):
        ranking_scores(sims, [0])
    with pytest.raises(ValueError, match="target indices"):
        ranking_scores(sims, [0, 3])


def test_scores_by_group_restricts_rows_not_targets():
    rng = np.random.default_rng(0)
    sims = rng.normal(size=(10, 8))
    gold = [int(g) for g in rng.integers(0, 8, size=10)]
    groups = ["N", "V", "N", "A", "N", "V", "N", "N", "A", "V"]
    got = scores_by_group(sims, gold, groups)
    assert list(got) == ["N", "V", "A"]
    for group in got:
        rows = [i for i, g in enumerate(groups) if g == group]
        assert got[group] == pytest.approx(ref_ranking(sims[rows], [gold[i] for i in rows], (1, 10)))


# ---------------------------------------------------------------- real word lists
def test_real_word_list_groups(shared_data):
    """Hartmann & Søgaard's en-de list: per-POS scores over a shared target vocabulary."""
    lines = (shared_data / "visual_bli" / "imgWords_en_de.txt").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines if line.strip()][:120]
    rng = np.random.default_rng(0)
    # Synthetic "images": each translation pair shares a prototype, so the gold should rank high.
    prototypes = rng.normal(size=(len(rows), 16))
    source = [p + rng.normal(scale=0.8, size=(3, 16)) for p in prototypes]
    target = [p + rng.normal(scale=0.8, size=(3, 16)) for p in prototypes]
    sims = word_similarity_matrix(source, target, "avgmax")
    groups = [r[2] for r in rows]
    got = scores_by_group(sims, list(range(len(rows))), groups)
    assert set(got) == set(groups)
    for group, scores in got.items():
        rows_in_group = [i for i, g in enumerate(groups) if g == group]
        assert scores == pytest.approx(ref_ranking(sims[rows_in_group], rows_in_group, (1, 10)))
        assert scores["p1"] > 50.0
