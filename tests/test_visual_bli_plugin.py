"""The ``visual-bli-*`` models: registration, config checks, the metric they wrap, and real en-de scores."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from mmbench_plugins.visual_bli import VARIANTS, VisualBli, VisualBliConfig

import mmbench
from mmbench import plugins
from mmbench.cards import load_card
from mmbench.errors import ConfigError, DataError
from mmbench.kinds import EvalContext
from mmbench.kinds.visual_bli import DEFAULTS, VisualBilingualLexiconInduction, build_queries
from mmbench.metrics.visual_bli import knn_translation_scores, word_similarity_matrix
from mmbench.runner import resolve_model

REPO = Path(__file__).resolve().parents[1]
METHODS = ("avgmax", "maxmax", "cnn-mean", "cnn-max", "knn", "knn-c")


def model(method: str, seed: int = 0, **config) -> VisualBli:
    instance = VisualBli(VisualBliConfig(method=method, **config))
    instance.prepare(mmbench.RunContext(seed=seed))
    return instance


def random_sets(rng, n_words: int, dim: int, most: int = 6) -> list[np.ndarray]:
    return [rng.normal(size=(int(rng.integers(1, most + 1)), dim)).astype(np.float32) for _ in range(n_words)]


def test_variants_are_registered_training_free_models() -> None:
    registry = plugins.load_plugins()[1]
    assert set(VARIANTS) == {"visual-bli", *(f"visual-bli-{m}" for m in METHODS)}
    for name in VARIANTS:
        entry = registry.model(name)
        assert entry.cls is VisualBli and entry.capabilities == {mmbench.Capability.IMAGE_SETS}
        resolved = resolve_model(registry, name)
        expected = "avgmax" if name == "visual-bli" else name.removeprefix("visual-bli-")
        assert resolved.model.config.method == expected
    assert resolve_model(registry, "visual-bli").config == resolve_model(registry, "visual-bli-avgmax").config
    assert resolve_model(registry, "visual-bli-knn-c").model.config == VisualBliConfig("knn-c", k=10, clusters=3)
    for bad in (["k=0"], ["clusters=0"], ["method=cosine"]):
        with pytest.raises(ConfigError):
            resolve_model(registry, "visual-bli", bad)


@pytest.mark.parametrize("method", METHODS)
def test_wraps_the_metric_for_any_feature_space(method: str) -> None:
    rng = np.random.default_rng(3)
    source, target = random_sets(rng, 7, 12), random_sets(rng, 9, 12)
    got = model(method, seed=5).score_image_sets(source, target, source="my-space/raw")
    if method.startswith("knn"):
        expected = knn_translation_scores(source, target, k=10, clusters=3 if method == "knn-c" else None, seed=5)
    else:
        expected = word_similarity_matrix(source, target, method)
    assert got.shape == (7, 9) and got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    # Cosine between images: rescaling the feature space (by 4, exact in floating point) changes nothing.
    rescaled = model(method, seed=5).score_image_sets([4 * s for s in source], [4 * t for t in target], source="x")
    np.testing.assert_array_equal(rescaled, got)


def test_knn_c_follows_the_run_seed() -> None:
    rng = np.random.default_rng(1)
    source = [rng.normal(size=(30, 8)).astype(np.float32) for _ in range(6)]
    target = random_sets(rng, 40, 8, most=4)
    by_seed = {seed: model("knn-c", seed=seed, k=3).score_image_sets(source, target, source="x") for seed in (0, 7)}
    assert not np.array_equal(by_seed[0], by_seed[7])  # the data makes k-means depend on its seed
    np.testing.assert_array_equal(by_seed[7], knn_translation_scores(source, target, k=3, clusters=3, seed=7))
    np.testing.assert_array_equal(model("knn-c", seed=7, k=3).score_image_sets(source, target, source="x"), by_seed[7])


def test_bad_image_sets_are_one_line_errors() -> None:
    good = [np.ones((2, 4), dtype=np.float32)]
    with pytest.raises(DataError, match=r"visual-bli: image sets from 'emoji/x': target_sets\[1\]: word has no images"):
        model("avgmax").score_image_sets(good, good + [np.zeros((0, 4), np.float32)], source="emoji/x")
    nan = [np.array([[np.nan, 1.0]], dtype=np.float32)]
    with pytest.raises(DataError, match="NaN") as info:
        model("knn").score_image_sets(nan, good, source="x")
    assert "\n" not in str(info.value)


# -- real data ------------------------------------------------------------------------------------------
def chance_scores(gold: list[list[int]], n_candidates: int) -> tuple[float, float]:
    """Expected P@1 (percent) and MRR of a uniformly random ranking, for each query's number of golds."""
    p1, mrr = [], []
    for columns in gold:
        g = len(columns)
        # P(best gold at position r) = C(n - r, g - 1) / C(n, g)
        mrr.append(sum(math.comb(n_candidates - r, g - 1) / r for r in range(1, n_candidates - g + 2))
                   / math.comb(n_candidates, g))
        p1.append(g / n_candidates)
    return 100 * float(np.mean(p1)), float(np.mean(mrr))


@pytest.fixture(scope="module")
def en_de(shared_data: Path):
    card = load_card(REPO / "tasks/visual-bli.toml")
    subset = next(s for s in card.subsets if s.name == "en-de")
    queries = build_queries(card, subset, shared_data, {**DEFAULTS, **card.params})
    nouns = [g for g, tags in zip(queries.gold, queries.query_pos) if "N" in tags]
    return card, subset, chance_scores(nouns, len(queries.candidate_words))


@pytest.mark.parametrize("method", METHODS)
def test_every_variant_beats_chance_on_en_de_nouns(method: str, en_de, shared_data: Path) -> None:
    card, subset, (chance_p1, chance_mrr) = en_de
    assert 0 < chance_p1 < 1 and 0 < chance_mrr < 0.05
    score = VisualBilingualLexiconInduction().evaluate(model(method), card, subset, EvalContext(data_dir=shared_data))
    assert score.details["by_pos"]["N"]["n_queries"] > 300
    factor = 20 if method in ("avgmax", "maxmax", "cnn-mean") else 10
    assert score.scores["p1_N"] > factor * chance_p1, score.scores
    assert score.scores["mrr_N"] > 8 * chance_mrr, score.scores
    assert score.scores["p10_N"] > score.scores["p1_N"]
