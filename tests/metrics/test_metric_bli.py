"""bli_scores / alignment_ratio against a NumPy reference of MUSE's word-translation evaluation."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch

from mmbench.metrics import alignment_ratio, bli_ranks, bli_scores


# ---------------------------------------------------------------- reference
def ref_unit(rows: np.ndarray) -> np.ndarray:
    out = np.zeros_like(rows, dtype=np.float64)
    for i, row in enumerate(rows):
        norm = math.sqrt(float(row @ row))
        if norm > 0:
            out[i] = row / norm
    return out


def ref_mean_top(similarities: np.ndarray, k: int) -> float:
    return float(np.mean(sorted(similarities, reverse=True)[:k]))


def ref_bli(source, target, queries, method="csls", k=10, ks=(1, 5, 10)):
    """Per query: score every target, sort (wrong before gold on equal scores), take the first gold."""
    src, tgt = ref_unit(np.asarray(source, float)), ref_unit(np.asarray(target, float))
    if method == "csls":
        r_source = [ref_mean_top(src @ y, k) for y in tgt]  # r_S(y) over the full source vocabulary
    ranks = []
    for s, golds in queries.items():
        cos = np.array([float(t @ src[s]) for t in tgt])  # row by row: equal rows tie exactly
        scores = 2 * cos - ref_mean_top(cos, k) - np.array(r_source) if method == "csls" else cos
        order = sorted(range(len(tgt)), key=lambda t: (-scores[t], t in golds))
        ranks.append(min(order.index(g) for g in golds))
    out = {f"p{c}": 100.0 * np.mean([r < c for r in ranks]) if ranks else 0.0 for c in ks}
    out["mrr"] = float(np.mean([1 / (r + 1) for r in ranks])) if ranks else 0.0
    return out, ranks


def random_problem(seed: int, n_source: int = 40, n_target: int = 50, dim: int = 8, golds_max: int = 3):
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(n_target, dim))
    mapping = rng.integers(0, n_target, size=n_source)
    source = target[mapping] + rng.normal(scale=1.2, size=(n_source, dim))
    queries = {}
    for s in rng.choice(n_source, size=n_source // 2, replace=False):
        extra = rng.integers(0, n_target, size=rng.integers(0, golds_max))
        queries[int(s)] = {int(mapping[s]), *map(int, extra)}
    return source, target, queries


# ---------------------------------------------------------------- random data vs reference
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("method", ["nn", "csls"])
@pytest.mark.parametrize("csls_k", [1, 3, 10])
@pytest.mark.parametrize("chunk_size", [4, 4096])
def test_random_vocabularies_match_reference(seed, method, csls_k, chunk_size):
    source, target, queries = random_problem(seed)
    want, want_ranks = ref_bli(source, target, queries, method, csls_k)
    got = bli_scores(source, target, queries, method=method, csls_k=csls_k, chunk_size=chunk_size)
    assert (
        bli_ranks(source, target, queries, method=method, csls_k=csls_k, chunk_size=chunk_size).tolist() == want_ranks
    )
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got["n_queries"] == len(queries) and got["coverage"] is None


@pytest.mark.parametrize("method", ["nn", "csls"])
def test_precision_equals_muse_topk_membership(method):
    """Without ties, P@k is exactly MUSE's 'any gold among topk(k)' averaged over source words."""
    source, target, queries = random_problem(7, n_source=60, n_target=80, dim=12)
    src = torch.nn.functional.normalize(torch.from_numpy(source), dim=1)
    tgt = torch.nn.functional.normalize(torch.from_numpy(target), dim=1)
    rows = torch.tensor(list(queries))
    scores = src[rows] @ tgt.T
    if method == "csls":
        r_t = (src @ tgt.T).topk(10, dim=1).values.mean(1)
        r_s = (tgt @ src.T).topk(10, dim=1).values.mean(1)
        scores = 2 * scores - r_t[rows, None] - r_s[None, :]
    top = scores.topk(10, dim=1).indices
    got = bli_scores(source, target, queries, method=method)
    for k in (1, 5, 10):
        hits = [bool(set(top[i, :k].tolist()) & golds) for i, golds in enumerate(queries.values())]
        assert got[f"p{k}"] == pytest.approx(100 * np.mean(hits))


# ---------------------------------------------------------------- hand-computed and edge cases
def test_hand_computed_hub_fools_nn_but_not_csls():
    # Sources at 0 and 90 degrees; target 0 (45 degrees) is a hub at cosine .707 to both; the
    # golds sit at -50 and 140 degrees (cosine .643 to their source, -.766 to the other).
    source = np.array([[1.0, 0.0], [0.0, 1.0]])
    angles = np.radians([45.0, -50.0, 140.0])
    target = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    queries = {0: {1}, 1: {2}}
    nn = bli_scores(source, target, queries, method="nn")
    assert nn["p1"] == 0.0 and nn["p5"] == 100.0 and nn["mrr"] == 0.5
    # csls_k = 2: r_S(hub) = .707, r_S(gold) = (.643 - .766) / 2; CSLS(x, hub) = .707 - r_T(x)
    # against CSLS(x, gold) = 1.286 + .0615 - r_T(x): the gold wins.
    csls = bli_scores(source, target, queries, method="csls", csls_k=2)
    assert csls["p1"] == 100.0 and csls["mrr"] == 1.0


def test_any_gold_translation_counts():
    source = np.array([[1.0, 0.0]])
    target = np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1]])
    assert bli_scores(source, target, {0: [0]}, method="nn")["p1"] == 0.0
    assert bli_scores(source, target, {0: [0, 1]}, method="nn")["p1"] == 100.0
    assert bli_scores(source, target, {0: [2, 0]}, method="nn")["mrr"] == 0.5


def test_collapsed_embeddings_score_zero_with_pessimistic_ties():
    source, target = np.ones((5, 4)), np.ones((6, 4))
    got = bli_scores(source, target, {0: {1}, 3: {4}})
    assert got["p1"] == got["p5"] == 0.0 and got["p10"] == 100.0
    assert got["mrr"] == pytest.approx(1 / 6)


def test_duplicate_target_vectors_tie_exactly():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(30, 16))
    target[17] = target[3]  # the gold's exact duplicate must rank before it
    source = target[[3]] + 0.01
    assert bli_ranks(source, target, {0: {3}}, method="nn").tolist() == [1]
    assert bli_ranks(source, target, {0: {3, 17}}, method="nn").tolist() == [0]


def test_zero_vectors_are_scored_not_nan():
    source = np.array([[0.0, 0.0], [1.0, 0.0]])
    target = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    got = bli_scores(source, target, {0: {0}, 1: {1}}, method="csls", csls_k=2)
    want, _ = ref_bli(source, target, {0: {0}, 1: {1}}, "csls", 2)
    assert {k: got[k] for k in want} == pytest.approx(want)


def test_empty_queries_give_zeros_not_nan():
    got = bli_scores(np.ones((3, 2)), np.ones((3, 2)), {}, n_source_total=10)
    assert got == {"p1": 0.0, "p5": 0.0, "p10": 0.0, "mrr": 0.0, "n_queries": 0, "coverage": 0.0}
    assert alignment_ratio(np.ones((3, 2)), np.ones((3, 2)), {}) == 0.0


def test_single_query_and_coverage():
    got = bli_scores(np.eye(3), np.eye(3), {2: [2]}, n_source_total=4, ks=(1,))
    assert got == {"p1": 100.0, "mrr": 1.0, "n_queries": 1, "coverage": 0.25}


def test_csls_k_larger_than_vocabulary_is_capped():
    source, target, queries = random_problem(3, n_source=6, n_target=5)
    want, _ = ref_bli(source, target, queries, "csls", 5)
    got = bli_scores(source, target, queries, csls_k=50)
    assert got["p1"] == pytest.approx(want["p1"]) and got["mrr"] == pytest.approx(want["mrr"])


def test_alignment_ratio_is_top1_share():
    source, target, queries = random_problem(4)
    for method in ("nn", "csls"):
        assert alignment_ratio(source, target, queries, method=method) == pytest.approx(
            bli_scores(source, target, queries, method=method)["p1"] / 100
        )


@pytest.mark.parametrize(
    ("queries", "message"),
    [({9: [0]}, "source row 9"), ({0: [7]}, "gold row"), ({0: []}, "no gold"), ({-1: [0]}, "source row -1")],
)
def test_bad_queries_raise(queries, message):
    with pytest.raises(ValueError, match=message):
        bli_scores(np.ones((3, 2)), np.ones((3, 2)), queries)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="dims"):
        bli_scores(np.ones((3, 2)), np.ones((3, 4)), {0: [0]})
    with pytest.raises(ValueError, match="method"):
        bli_scores(np.ones((3, 2)), np.ones((3, 2)), {0: [0]}, method="invsm")
    with pytest.raises(ValueError, match="NaN"):
        bli_scores(np.full((3, 2), np.nan), np.ones((3, 2)), {0: [0]})
    with pytest.raises(ValueError, match="n_source_total"):
        bli_scores(np.eye(3), np.eye(3), {0: [0], 1: [1]}, n_source_total=1)


# ---------------------------------------------------------------- real dictionary
def char_trigram_vectors(words: list[str], dim: int = 64) -> np.ndarray:
    """Hashed character-trigram counts, randomly projected: a spelling-only embedding (cognates are
    neighbours) without the exact cosine ties that raw integer counts produce between different words."""
    out = np.zeros((len(words), 256))
    for i, word in enumerate(words):
        padded = f"<{word}>"
        for j in range(len(padded) - 2):
            out[i, sum(ord(c) * 31**n for n, c in enumerate(padded[j : j + 3])) % 256] += 1
    return out @ np.random.default_rng(0).normal(size=(256, dim))


def test_real_muse_dictionary_against_reference(shared_data):
    path = shared_data / "muse" / "dictionaries" / "en-fr.5000-6500.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        pairs = [line.split() for line in handle if line.strip()][:400]
    source_words = sorted({s for s, _ in pairs})
    target_words = sorted({t for _, t in pairs})
    s_index = {w: i for i, w in enumerate(source_words)}
    t_index = {w: i for i, w in enumerate(target_words)}
    queries: dict[int, set[int]] = {}
    for s, t in pairs:
        queries.setdefault(s_index[s], set()).add(t_index[t])
    source, target = char_trigram_vectors(source_words), char_trigram_vectors(target_words)
    for method in ("nn", "csls"):
        want, _ = ref_bli(source, target, queries, method)
        got = bli_scores(source, target, queries, method=method, chunk_size=64, n_source_total=len(source_words) + 10)
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-12), (method, key)
        # Many en-fr test pairs are cognates or identical strings: far above chance (1 / 399 targets).
        assert got["p1"] > 40.0
        assert got["coverage"] == pytest.approx(len(source_words) / (len(source_words) + 10))
