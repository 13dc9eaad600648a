"""The image-word-matching kind (1 gold + 99 seeded negatives) on the real emoji test split.

Every score the kind reports for cnn-mean is recomputed here with a plain NumPy loop: the subset is rebuilt
from the emoji tables, the candidate lists drawn by the documented procedure (one gold via
``rng.choice``, then negatives without replacement from the non-gold candidates) and each rank counted
with pessimistic ties. Controls: an oracle scores 100, a collapsed model 0, shuffled pairings ~chance (1%).
"""

from __future__ import annotations

import hashlib
import json
import re
import types
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from mmbench_plugins.cnn_mean import CnnMean, CnnMeanConfig

import mmbench
import mmbench.kinds.matching as matching_module
from mmbench import plugins
from mmbench.cards import load_card, parse_card
from mmbench.cli import main
from mmbench.data.emoji import load_emoji
from mmbench.data.io import column_array
from mmbench.errors import DataError, MMBenchError
from mmbench.kinds import EvalContext
from mmbench.kinds.matching import ImageWordMatching, matching_items
from mmbench.runner import RunOptions, resolve_model, run, select_cards

CARD = Path(__file__).resolve().parents[1] / "tasks" / "emoji-matching.toml"
KIND = ImageWordMatching()


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def reference_subset(language: str, split: str = "test", style: str = "noto"):
    """(features, names) of the split's concepts named in ``language``, in concept order, from the raw tables."""
    emoji = load_emoji()
    images, texts = emoji.images, emoji.texts
    keep = (column_array(images, "split") == split) & (column_array(images, "style") == style)
    row_of = {c: r for c, r in zip(column_array(images, "concept")[keep], np.flatnonzero(keep))}
    lang = column_array(texts, "language") == language
    name_of = dict(zip(column_array(texts, "concept")[lang], column_array(texts, "name")[lang]))
    concepts = sorted(c for c in row_of if c in name_of)
    return emoji.features_matrix()[[row_of[c] for c in concepts]], [name_of[c] for c in concepts], len(row_of)


def reference_direction(queries, candidates, gold_sets, seed, n_negatives=99):
    """P@1/5/10 and MRR by a loop: documented sampling, cosine in float64, pessimistic ties."""
    rng = np.random.default_rng(seed)
    queries, candidates = _unit(queries), _unit(candidates)
    ranks = []
    for query, golds in zip(queries, gold_sets):
        golds = sorted(golds)
        pool = np.array([c for c in range(len(candidates)) if c not in golds])
        gold = int(rng.choice(golds))
        negatives = rng.choice(pool, size=n_negatives, replace=False)
        gold_score = float(query @ candidates[gold])
        ranks.append(sum(float(query @ candidates[n]) >= gold_score for n in negatives))
    ranks = np.array(ranks)
    out = {f"p{k}": 100.0 * float(np.mean(ranks < k)) for k in (1, 5, 10)}
    out["mrr"] = float(np.mean(1.0 / (ranks + 1)))
    return out


def reference_scores(image_vectors, name_vectors_by_name, names, seed):
    distinct = list(dict.fromkeys(names))
    word_vectors = np.stack([name_vectors_by_name[n] for n in distinct])
    i2w = reference_direction(image_vectors, word_vectors, [[distinct.index(n)] for n in names], seed)
    w2i = reference_direction(word_vectors, image_vectors,
                              [[i for i, m in enumerate(names) if m == n] for n in distinct], seed)
    scores = {f"i2w_{k}": v for k, v in i2w.items()} | {f"w2i_{k}": v for k, v in w2i.items()}
    scores["mean_p1"] = (scores["i2w_p1"] + scores["w2i_p1"]) / 2
    return scores


# -- models -----------------------------------------------------------------------------------------
class FastCnnMean(CnnMean):
    """cnn-mean from names only (``keywords=false``), prepared once per test session.

    Its float32 vectors are handed over as float64, so the kind scores in float64 and the float64 loop
    reference matches it exactly (float32 kernels may order near-ties differently).
    """

    name = "test-cnn-mean-names"
    prepared: ClassVar[dict] = {}

    def __init__(self, config=None, argument=None):
        super().__init__(CnnMeanConfig(keywords=False), argument)

    def prepare(self, ctx=None):
        if not self.prepared:
            super().prepare(ctx)
            self.prepared.update(vars(self))
        vars(self).update(self.prepared)

    def embed_texts(self, texts, language):
        return super().embed_texts(texts, language).astype(np.float64)

    def embed_images(self, features, *, source):
        return super().embed_images(features, source=source).astype(np.float64)


class ShuffledPairs(FastCnnMean):
    """cnn-mean with the image rows permuted: every image gets another concept's vector."""

    name = "test-shuffled-images"

    def embed_images(self, features, *, source):
        vectors = super().embed_images(features, source=source)
        return vectors[np.random.default_rng(5).permutation(len(vectors))]


def _concept_vector(concept: str) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(concept.encode())).standard_normal(16).astype(np.float32)


class Oracle(mmbench.Model):
    """Knows each test image's and each name's concept: a pair gets identical vectors.

    Images are looked up among the Noto test images only: some flags are drawn identically (Norway and
    Bouvet Island), but never two within one split and style.
    """

    name = "test-oracle"
    capabilities = frozenset({mmbench.Capability.TEXT, mmbench.Capability.IMAGES})

    def prepare(self, ctx):
        emoji = load_emoji()
        images = emoji.images
        rows = np.flatnonzero((column_array(images, "split") == "test") & (column_array(images, "style") == "noto"))
        features = emoji.features_matrix()[rows]
        self.by_image = {hashlib.sha1(row.tobytes()).digest(): c
                         for row, c in zip(features, column_array(images, "concept")[rows])}
        assert len(self.by_image) == len(rows)
        texts = emoji.texts
        self.by_name = {(lang, name): c for c, lang, name in zip(
            *(column_array(texts, k) for k in ("concept", "language", "name")))}

    def embed_texts(self, texts, language):
        return np.stack([_concept_vector(self.by_name[(language, t)]) for t in texts])

    def embed_images(self, features, *, source):
        rows = np.asarray(features, dtype=np.float32)
        return np.stack([_concept_vector(self.by_image[hashlib.sha1(r.tobytes()).digest()]) for r in rows])


class Collapsed(mmbench.Model):
    """Every image and every name is the same vector."""

    name = "test-collapsed"
    capabilities = frozenset({mmbench.Capability.TEXT, mmbench.Capability.IMAGES})

    def embed_texts(self, texts, language):
        return np.ones((len(texts), 8), dtype=np.float32)

    def embed_images(self, features, *, source):
        return np.ones((len(features), 8), dtype=np.float32)


def _set(out, value):
    out = out.copy()
    out[3, 1] = value
    return out


# mode -> (method it spoils, how, the error line). Names: 365 distinct en test names; images: 365.
BROKEN = {
    "rows": ("texts", lambda o: o[:-1], "embed_texts(en) returned 364 rows for 365 names"),
    "extra rows": ("texts", lambda o: np.vstack([o, o[:1]]), "embed_texts(en) returned 366 rows for 365 names"),
    "ragged": ("texts", lambda o: [*o[:-1], o[-1][:4]],
               "embed_texts(en) returned a ragged array for 365 names (rows of different lengths)"),
    "zero width": ("texts", lambda o: o[:, :0], "embed_texts(en) returned 0-wide vectors for 365 names"),
    "flat": ("texts", lambda o: o[:, 0],
             "embed_texts(en) returned an array of shape (365,) for 365 names, not (365, d)"),
    "int dtype": ("texts", lambda o: o.astype(np.int64),
                  "embed_texts(en) returned int64 values for names, not floating-point numbers"),
    "object dtype": ("texts", lambda o: o.astype(object),
                     "embed_texts(en) returned object values for names, not floating-point numbers"),
    "str dtype": ("texts", lambda o: o.astype(str),
                  "embed_texts(en) returned <U32 values for names, not floating-point numbers"),
    "nan": ("texts", lambda o: _set(o, np.nan), "embed_texts(en) returned NaN for 1 of 365 names"),
    "+inf": ("texts", lambda o: _set(o, np.inf), "embed_texts(en) returned +inf for 1 of 365 names"),
    "-inf": ("texts", lambda o: _set(o, -np.inf), "embed_texts(en) returned -inf for 1 of 365 names"),
    "image rows": ("images", lambda o: o[1:],
                   "embed_images(emoji/efficientnet-lite0) returned 364 rows for 365 images"),
    "image +inf": ("images", lambda o: _set(o, np.inf),
                   "embed_images(emoji/efficientnet-lite0) returned +inf for 1 of 365 images"),
    "image bool": ("images", lambda o: o > 0,
                   "embed_images(emoji/efficientnet-lite0) returned bool values for images, "
                   "not floating-point numbers"),
    "widths differ": ("texts", lambda o: o[:, :6],
                      "returned 8-d images from embed_images(emoji/efficientnet-lite0) "
                      "but 6-d names from embed_texts(en)"),
}


class Broken(Collapsed):
    """Misbehaves as ``mode`` (a key of ``BROKEN``) says."""

    name = "test-broken"
    mode: ClassVar[str] = "rows"

    def _spoiled(self, method, out):
        target, spoil, _ = BROKEN[self.mode]
        return spoil(out) if target == method else out

    def embed_texts(self, texts, language):
        return self._spoiled("texts", super().embed_texts(texts, language))

    def embed_images(self, features, *, source):
        return self._spoiled("images", super().embed_images(features, source=source))


@pytest.fixture(scope="module")
def registry():
    module = types.ModuleType("matching_test_models")
    models = (FastCnnMean, ShuffledPairs, Oracle, Collapsed, Broken)
    module.register_models = mmbench.hookimpl(lambda register: [register(m) for m in models])
    return plugins.load_plugins(extra_modules=(module,))[1]


@pytest.fixture(scope="module")
def cnn_mean():
    model = FastCnnMean()
    model.prepare()
    return model


def _card(**params):
    card = load_card(CARD)
    card.params = {**card.params, **params}
    return card


def _subset(card, name):
    return next(s for s in card.subsets if s.name == name)


def _evaluate(model, language="en", **params):
    card = _card(**params)
    return KIND.evaluate(model, card, _subset(card, language), EvalContext(data_dir=Path(".")))


# -- tests ------------------------------------------------------------------------------------------
def test_default_plugin_and_card_validates(capsys):
    assert matching_module.__name__ in plugins.DEFAULT_PLUGINS
    assert plugins.load_plugins()[1].task_kind("image-word-matching").requires == KIND.requires
    assert main(["validate", str(CARD)]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
    card = load_card(CARD)
    assert card.params["seed"] == 0 and card.main_score == "mean_p1" and card.aggregate == "mean"
    retrieval = load_card(CARD.parent / "emoji-retrieval.toml")
    assert [s.languages for s in card.subsets] == [s.languages for s in retrieval.subsets]


@pytest.mark.parametrize("seed", [0, 1])
def test_cnn_mean_scores_match_brute_force_reference(cnn_mean, seed):
    score = _evaluate(cnn_mean, seed=seed)
    features, names, n_concepts = reference_subset("en")
    images = cnn_mean.embed_images(features, source=matching_module.EMOJI_FEATURE_SOURCE)
    words = dict(zip(names, cnn_mean.embed_texts(names, "en")))
    expected = reference_scores(images, words, names, seed)
    assert score.scores.keys() == expected.keys()
    for key, value in expected.items():
        assert score.scores[key] == pytest.approx(value, abs=1e-9), key
    assert score.n_items == len(names) == 365 and score.coverage == len(names) / n_concepts
    assert score.details["seed"] == seed and score.details["n_negatives"] == 99
    # far above chance (1%) with a name-only visual baseline
    assert score.scores["i2w_p1"] > 8 and score.scores["w2i_p10"] > 30


def test_shared_names_are_one_candidate_and_every_carrier_is_gold(cnn_mean, monkeypatch):
    """CLDR names are unique per locale, so shared names are made here: 40 concepts share 20 names."""
    features, names, n_concepts = reference_subset("en")
    names = [names[i - 1] if 100 <= i < 140 and i % 2 else n for i, n in enumerate(names)]
    monkeypatch.setattr(matching_module, "emoji_pairs", lambda lang, split, style: (features, names, n_concepts))
    score = _evaluate(cnn_mean)
    images = cnn_mean.embed_images(features, source=matching_module.EMOJI_FEATURE_SOURCE)
    words = dict(zip(names, cnn_mean.embed_texts(names, "en")))
    expected = reference_scores(images, words, names, 0)
    for key, value in expected.items():
        assert score.scores[key] == pytest.approx(value, abs=1e-9), key
    assert score.details["n_names"] == 345 and score.details["shared_names"] == 20

    distinct, image_gold, word_gold = matching_items(["a", "b", "a", "c", "b"])
    assert distinct == ["a", "b", "c"] and image_gold == [0, 1, 0, 2, 1]
    assert word_gold == [[0, 2], [1, 4], [3]]


def test_shuffled_pairs_score_near_chance(cnn_mean):
    shuffled = ShuffledPairs()
    shuffled.prepare()
    scores = _evaluate(shuffled).scores
    real = _evaluate(cnn_mean).scores
    # chance: P@1 = 1%, P@10 = 10%
    assert scores["i2w_p1"] < 4 and scores["w2i_p1"] < 4 and scores["mean_p1"] < real["mean_p1"] / 4
    assert scores["i2w_p10"] < 18 and scores["w2i_p10"] < 18


def test_oracle_scores_100_and_collapsed_scores_0():
    oracle = Oracle()
    oracle.prepare(None)
    perfect = _evaluate(oracle, language="ja").scores
    assert all(perfect[f"{d}_p{k}"] == 100.0 for d in ("i2w", "w2i") for k in (1, 5, 10))
    assert perfect["i2w_mrr"] == perfect["w2i_mrr"] == 1.0 and perfect["mean_p1"] == 100.0
    # all 100 candidates tie: the gold one ranks last when ties are pessimistic
    collapsed = _evaluate(Collapsed()).scores
    assert collapsed["mean_p1"] == 0.0 and collapsed["i2w_p10"] == collapsed["w2i_p10"] == 0.0
    assert collapsed["i2w_mrr"] == pytest.approx(0.01)
    optimistic = _evaluate(Collapsed(), ties="optimistic").scores
    assert optimistic["mean_p1"] == 100.0


def test_runner_records_protocol_seed_coverage_and_the_same_candidates_for_every_run_seed(registry, tmp_path):
    resolved = resolve_model(registry, "test-cnn-mean-names")
    cards = select_cards(registry, ["emoji-matching"], [], [])
    cards[0].subsets = [s for s in cards[0].subsets if s.name in ("en", "yo")]
    outcomes = run(registry, [resolved], cards, RunOptions(results_dir=tmp_path, data_dir=tmp_path, seeds=(0, 3)))
    records = {(o.seed, o.subset): json.loads(o.path.read_text()) for o in outcomes}
    assert all(o.status == "done" for o in outcomes) and len(records) == 6
    english = records[(0, "en")]
    assert english["protocol"] == "emoji-v1/noto/test/1+99/seed0" and english["task_kind"] == "image-word-matching"
    assert english["main_score_name"] == "mean_p1" and english["coverage"] == 1.0
    assert english["main_score"] == (english["scores"]["i2w_p1"] + english["scores"]["w2i_p1"]) / 2
    assert english["details"]["seed"] == 0 and english["details"]["n_negatives"] == 99
    yoruba = records[(0, "yo")]
    assert yoruba["n_items"] == 246 and yoruba["coverage"] == pytest.approx(246 / 365)
    for subset in ("en", "yo", "all"):  # the run seed does not change the candidate lists
        assert records[(0, subset)]["scores"] == records[(3, subset)]["scores"]
    assert records[(0, "all")]["main_score"] == pytest.approx((english["main_score"] + yoruba["main_score"]) / 2)


@pytest.mark.parametrize("mode", BROKEN, ids=list(BROKEN))
def test_bad_model_output_is_one_clear_line(registry, tmp_path, monkeypatch, mode):
    message = f"model 'test-broken' {BROKEN[mode][2]}"
    monkeypatch.setattr(Broken, "mode", mode)
    with pytest.raises(MMBenchError, match=f"^{re.escape(message)}$"):
        _evaluate(Broken())
    resolved = resolve_model(registry, "test-broken")
    cards = select_cards(registry, ["emoji-matching"], [], [])
    cards[0].subsets = cards[0].subsets[:1]
    (outcome,) = run(registry, [resolved], cards, RunOptions(results_dir=tmp_path, data_dir=tmp_path))
    assert outcome.status == "error" and message in outcome.message and "\n" not in outcome.message


def test_too_few_names_for_the_negatives_is_a_data_error(cnn_mean):
    with pytest.raises(DataError, match=r"emoji en test \(noto\): 365 distinct names; 1 \+ 400 candidates"):
        _evaluate(cnn_mean, n_negatives=400)


def _problems(params: dict, languages=("en",), split="test", subset_params=None) -> list[str]:
    raw = {"name": "t", "kind": "image-word-matching", "description": "d", "main_score": "mean_p1",
           "protocol": "p", "license": "l", "citation": "c", "splits": [split], "params": params,
           "subsets": [{"name": "s", "languages": list(languages), **({"params": subset_params} if subset_params else {})}]}
    return KIND.validate(parse_card(raw, "t.toml"))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"params": {"negatives": 9}}, "params.negatives: unknown parameter"),
        ({"params": {"seed": -1}}, "params.seed: expected an integer >= 0"),
        ({"params": {"seed": "0"}}, "params.seed: expected an integer >= 0"),
        ({"params": {"n_negatives": 0}}, "params.n_negatives: expected a positive integer"),
        ({"params": {"style": "apple"}}, "params.style: 'apple' is not one of"),
        ({"params": {}, "subset_params": {"seed": 2}}, "subsets.s.params.seed: set it on the card"),
        ({"params": {}, "languages": ("en", "de")}, "subsets.s.languages: give exactly one language"),
        ({"params": {}, "split": "dev"}, "subsets.s.split: emoji splits are train, val, test"),
    ],
)
def test_validate_reports_bad_params(kwargs, problem):
    problems = _problems(**kwargs)
    assert any(problem in p for p in problems), problems


def test_validate_accepts_a_well_formed_card():
    assert _problems({"seed": 7, "n_negatives": 49, "style": "symbola"}, subset_params={"style": "emojione"}) == []
