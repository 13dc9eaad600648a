"""word_similarity against a hand-written average-rank Spearman and explicit OOV loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from mmbench.metrics import word_similarity


# ---------------------------------------------------------------- reference
def ref_average_ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for position in range(i, j + 1):
            ranks[order[position]] = (i + j) / 2 + 1  # mean of the 1-based positions i+1 .. j+1
        i = j + 1
    return ranks


def ref_pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def ref_cosine(a, b) -> float:
    na, nb = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
    return 0.0 if na == 0 or nb == 0 else sum(p * q for p, q in zip(a, b)) / (na * nb)


def ref_word_similarity(v1, v2, gold, found, oov, fill=None):
    """``fill``: the (first-word, second-word) vectors that stand in for a missing word under oov='mean'."""
    n = len(gold)
    per_word = [(bool(f[0]), bool(f[1])) if np.ndim(f) else (bool(f), bool(f)) for f in found]
    mean1, mean2 = fill if fill is not None else (None, None)
    sims, scored_gold = [], []
    for i in range(n):
        both = per_word[i][0] and per_word[i][1]
        if both:
            sims.append(ref_cosine(v1[i], v2[i]))
        elif oov == "zero":
            sims.append(0.0)
        elif oov == "mean":
            left = v1[i] if per_word[i][0] else mean1
            right = v2[i] if per_word[i][1] else mean2
            sims.append(ref_cosine(left, right))
        else:
            continue
        scored_gold.append(gold[i])
    n_found = sum(a and b for a, b in per_word)
    if len(sims) < 2 or len(set(sims)) == 1 or len(set(scored_gold)) == 1:
        rho, r, degenerate = 0.0, 0.0, True
    else:
        rho = ref_pearson(ref_average_ranks(sims), ref_average_ranks(scored_gold))
        r, degenerate = ref_pearson(sims, scored_gold), False
    return {
        "spearman": rho,
        "pearson": r,
        "coverage": n_found / n if n else 0.0,
        "n_pairs": n,
        "n_found": n_found,
        "n_scored": len(sims),
        "oov_policy": oov,
        "degenerate": degenerate,
    }


def assert_matches(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-12), key
        else:
            assert got[key] == value, key


def random_pairs(seed: int, n: int, dim: int = 6, oov_rate: float = 0.3, per_word: bool = False):
    rng = np.random.default_rng(seed)
    v1, v2 = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    gold = rng.integers(0, 5, size=n).astype(float)  # integer ratings: many ties
    found = rng.random((n, 2) if per_word else n) > oov_rate
    # Rows of missing words are arbitrary, even NaN.
    if per_word:
        v1[~found[:, 0]] = np.nan
        v2[~found[:, 1]] = np.nan
    else:
        v1[~found] = np.nan
    return v1, v2, gold, found


# ---------------------------------------------------------------- random data vs reference
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [5, 40])
@pytest.mark.parametrize("oov", ["drop", "zero", "mean"])
@pytest.mark.parametrize("per_word", [False, True])
def test_random_pairs_match_reference(seed, n, oov, per_word):
    v1, v2, gold, found = random_pairs(seed, n, per_word=per_word)
    fill = np.random.default_rng(seed + 100).normal(size=(2, v1.shape[1]))  # stand-ins for two vocabulary means
    want = ref_word_similarity(v1.tolist(), v2.tolist(), gold.tolist(), found.tolist(), oov, fill.tolist())
    got = word_similarity(v1, v2, gold, found, oov=oov, vocabulary_mean=(fill[0], fill[1]))
    assert_matches(got, want)


def test_spearman_equals_scipy_with_ties():
    v1, v2, gold, _ = random_pairs(3, 60, oov_rate=0.0)
    v1[:10], v2[:10] = v1[0], v2[0]  # ten identical pairs: exactly tied similarities
    sims = [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(v1, v2)]
    got = word_similarity(v1, v2, gold, np.ones(60, dtype=bool))
    assert got["spearman"] == pytest.approx(spearmanr(sims, gold).statistic, abs=1e-12)


# ---------------------------------------------------------------- hand-computed and edge cases
def test_hand_computed_perfect_and_inverted():
    v1 = np.array([[1.0, 0.0]] * 3)
    v2 = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cosines 1, .707, 0
    found = np.ones(3, dtype=bool)
    assert word_similarity(v1, v2, [3.0, 2.0, 1.0], found)["spearman"] == pytest.approx(1.0)
    assert word_similarity(v1, v2, [1.0, 2.0, 3.0], found)["spearman"] == pytest.approx(-1.0)
    # gold ties: ranks (1.5, 1.5, 3) vs similarity ranks (3, 2, 1) -> rho = -0.866
    assert word_similarity(v1, v2, [1.0, 1.0, 2.0], found)["spearman"] == pytest.approx(-math.sqrt(3) / 2)


def test_oov_policies_by_hand():
    v1 = np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, np.nan], [0.0, 2.0]])
    v2 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    gold = np.array([4.0, 1.0, 2.0, 3.0])
    found = np.array([[True, True], [True, True], [False, True], [True, True]])
    drop = word_similarity(v1, v2, gold, found, oov="drop")
    assert (drop["n_scored"], drop["n_found"], drop["coverage"]) == (3, 3, 0.75)
    zero = word_similarity(v1, v2, gold, found, oov="zero")
    assert zero["n_scored"] == 4 and zero["coverage"] == 0.75
    # zero: similarities (1, 0, 0, 1) vs gold (4, 1, 2, 3): average ranks (3.5, 1.5, 1.5, 3.5) vs (4, 1, 2, 3)
    assert zero["spearman"] == pytest.approx(ref_pearson([3.5, 1.5, 1.5, 3.5], [4, 1, 2, 3]))
    # mean: missing word -> the vocabulary mean (1, -1): cosine with (0, 1) = -.707,
    # so similarities (1, 0, -.707, 1): ranks (3.5, 2, 1, 3.5) vs gold ranks (4, 1, 2, 3)
    mean = word_similarity(v1, v2, gold, found, oov="mean", vocabulary_mean=np.array([1.0, -1.0]))
    assert mean["spearman"] == pytest.approx(ref_pearson([3.5, 2, 1, 3.5], [4, 1, 2, 3]))


def test_mean_fill_is_the_vocabulary_mean_not_the_found_words_mean():
    """word-embeddings-benchmarks fills a missing word with ``np.mean(w.vectors, axis=0)`` (the whole
    vocabulary). The old code used the mean of the found first words, (1/3, 1), giving cosine .949."""
    v1 = np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, np.nan], [0.0, 2.0]])
    v2 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    found = np.array([[True, True], [True, True], [False, True], [True, True]])
    got = word_similarity(v1, v2, [4.0, 1.0, 2.0, 3.0], found, oov="mean", vocabulary_mean=np.array([1.0, -1.0]),
                          return_similarities=True)
    assert got["similarities"][2] == pytest.approx(-math.sqrt(0.5), abs=1e-12)
    with pytest.raises(ValueError, match="vocabulary_mean"):
        word_similarity(v1, v2, [4.0, 1.0, 2.0, 3.0], found, oov="mean")


def test_per_pair_mask_mean_replaces_both_words():
    v1 = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    v2 = np.array([[1.0, 0.0], [1.0, 1.0], [7.0, 7.0]])
    got = word_similarity(v1, v2, [1.0, 2.0, 3.0], np.array([True, True, False]), oov="mean",
                          vocabulary_mean=(np.array([0.5, 0.5]), np.array([1.0, 0.5])))
    # pair 3 -> (.5, .5) vs (1, .5): cosine .9487; sims (1, .707, .949) vs gold (1, 2, 3)
    assert got["spearman"] == pytest.approx(ref_pearson([3, 1, 2], [1, 2, 3]))


@pytest.mark.parametrize("oov", ["drop", "zero", "mean"])
def test_empty_input_is_defined(oov):
    got = word_similarity(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, dtype=bool), oov=oov,
                          vocabulary_mean=np.zeros(3))
    assert got == {
        "spearman": 0.0,
        "pearson": 0.0,
        "coverage": 0.0,
        "n_pairs": 0,
        "n_found": 0,
        "n_scored": 0,
        "oov_policy": oov,
        "degenerate": True,
    }


def test_single_pair_and_all_oov_are_degenerate():
    single = word_similarity(np.ones((1, 2)), np.ones((1, 2)), [3.0], [True])
    assert single["degenerate"] and single["spearman"] == 0.0 and single["coverage"] == 1.0
    none = word_similarity(np.ones((4, 2)), np.ones((4, 2)), [1.0, 2, 3, 4], np.zeros(4, dtype=bool))
    assert none["degenerate"] and none["n_scored"] == 0 and none["coverage"] == 0.0


def test_collapsed_model_and_constant_gold_are_degenerate():
    collapsed = word_similarity(np.ones((5, 3)), np.ones((5, 3)), np.arange(5.0), np.ones(5, dtype=bool))
    assert collapsed["degenerate"] and collapsed["spearman"] == 0.0
    rng = np.random.default_rng(0)
    constant = word_similarity(
        rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), np.full(5, 2.0), np.ones(5, dtype=bool)
    )
    assert constant["degenerate"] and constant["pearson"] == 0.0
    zero_vectors = word_similarity(np.zeros((3, 2)), np.ones((3, 2)), [1.0, 2, 3], np.ones(3, dtype=bool))
    assert zero_vectors["degenerate"]  # all similarities 0 (never NaN)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.ones((3, 2)), np.ones((3, 2)), [1.0, 2.0], np.ones(3, dtype=bool)), "shape"),
        ((np.ones((3, 2)), np.ones((3, 3)), [1.0, 2.0, 3.0], np.ones(3, dtype=bool)), "shape"),
        ((np.ones((3, 2)), np.ones((3, 2)), [1.0, 2.0, 3.0], np.ones((3, 3), dtype=bool)), "found"),
        ((np.ones((3, 2)), np.ones((3, 2)), [1.0, np.nan, 3.0], np.ones(3, dtype=bool)), "gold"),
        ((np.full((3, 2), np.nan), np.ones((3, 2)), [1.0, 2.0, 3.0], np.ones(3, dtype=bool)), "found words"),
    ],
)
def test_bad_input_raises(args, message):
    with pytest.raises(ValueError, match=message):
        word_similarity(*args)


def test_unknown_policy_raises():
    with pytest.raises(ValueError, match="oov"):
        word_similarity(np.ones((2, 2)), np.ones((2, 2)), [1.0, 2.0], [True, True], oov="ignore")


# ---------------------------------------------------------------- real data
def test_real_simlex_pairs_against_reference(shared_data):
    """SimLex-999 with spelling-based vectors: only the protocol is checked, not a good score."""
    lines = (
        (shared_data / "wordsim" / "monolingual" / "en" / "EN-SIMLEX-999.txt").read_text(encoding="utf-8").splitlines()
    )
    rows = [line.split() for line in lines if line.strip()][:300]
    words = sorted({w for r in rows for w in r[:2]})
    rng = np.random.default_rng(0)
    table = {w: rng.normal(size=16) for w in words if hash(w) % 5 != 0 or len(w) > 6}  # some words OOV
    found = np.array([[r[0] in table, r[1] in table] for r in rows])
    v1 = np.array([table.get(r[0], np.zeros(16)) for r in rows])
    v2 = np.array([table.get(r[1], np.zeros(16)) for r in rows])
    gold = np.array([float(r[2]) for r in rows])
    vocabulary_mean = np.mean(list(table.values()), axis=0)
    for oov in ("drop", "zero", "mean"):
        want = ref_word_similarity(v1.tolist(), v2.tolist(), gold.tolist(), found.tolist(), oov,
                                   [vocabulary_mean.tolist()] * 2)
        assert_matches(word_similarity(v1, v2, gold, found, oov=oov, vocabulary_mean=vocabulary_mean), want)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1000])
def test_average_ranks_equal_scipy_rankdata_value_for_value(n):
    from scipy.stats import rankdata

    from mmbench.metrics.wordsim import average_ranks

    rng = np.random.default_rng(n)
    for values in (rng.normal(size=n), rng.integers(0, 4, size=n).astype(float), np.round(rng.normal(size=n), 1)):
        got, want = average_ranks(values), rankdata(values)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_metrics_import_does_not_import_scipy_stats():
    import subprocess
    import sys

    code = "import sys, mmbench.metrics; print('scipy.stats' in sys.modules, 'scipy.sparse' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
