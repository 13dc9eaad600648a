"""The caption-retrieval kind on real data: Multi30k task-1 translations and emoji CLDR names across languages.

The aligned texts are rebuilt here straight from the files (gzip lines, emoji tables) and every score is
recomputed with a NumPy loop (cosine in float64, a wrong text scoring >= the right one ranks before it).
Models: a bag-of-words model whose vectors file gives MUSE-dictionary translations a shared random vector
(a real text-only sanity model for Multi30k), name-only cnn-mean for emoji, and controls (oracle,
collapsed, shuffled pairing).
"""

from __future__ import annotations

import gzip
import json
import re
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from conftest import linked_groups, run_cli
from mmbench_plugins.cnn_mean import CnnMean, CnnMeanConfig
from mmbench_plugins.vectors import WordVectors

import mmbench
import mmbench.kinds.caption_retrieval as caption_module
from mmbench import plugins
from mmbench.cards import load_card, parse_card
from mmbench.cli import main
from mmbench.data.emoji import load_emoji
from mmbench.data.io import column_array
from mmbench.errors import DataError, MMBenchError
from mmbench.kinds import EvalContext
from mmbench.kinds.caption_retrieval import CaptionRetrieval
from mmbench.runner import RunOptions, resolve_model, run, select_cards

CARD = Path(__file__).resolve().parents[1] / "tasks" / "caption-xling.toml"
EMOJI_CARD = CARD.with_name("caption-xling-emoji.toml")
KIND = CaptionRetrieval()
TOKEN = re.compile(r"\w+")
SPLIT = "test_2016_flickr"
DIM = 64


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [line.strip() for line in handle]


def multi30k_pairs(data: Path, b: str) -> tuple[list[str], list[str]]:
    raw = data / "multi30k" / "task1" / "raw"
    return read_lines(raw / f"{SPLIT}.en.gz"), read_lines(raw / f"{SPLIT}.{b}.gz")


def emoji_pairs_reference(a: str, b: str, split: str = "test") -> tuple[list[str], list[str], int]:
    """Names of the split's concepts named in both languages (concept order) and the split's concept count."""
    emoji = load_emoji()
    concepts = set(column_array(emoji.images, "concept")[column_array(emoji.images, "split") == split])
    texts = emoji.texts
    rows = zip(*(column_array(texts, k) for k in ("concept", "language", "name")))
    names = {(lang, c): n for c, lang, n in rows if lang in (a, b)}
    both = sorted(c for c in concepts if (a, c) in names and (b, c) in names)
    return [names[(a, c)] for c in both], [names[(b, c)] for c in both], len(concepts)


def reference_scores(emb_a: np.ndarray, emb_b: np.ndarray) -> dict[str, float]:
    """R@1/5/10, medr, meanr both ways by a loop; the right target is row i, ties count against it."""

    def unit(m):
        m = np.asarray(m, dtype=np.float64)
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.where(norms > 0, norms, 1.0)

    out = {}
    for name, queries, targets in (("a2b", unit(emb_a), unit(emb_b)), ("b2a", unit(emb_b), unit(emb_a))):
        ranks = []
        for i, query in enumerate(queries):
            sims = targets @ query
            ranks.append(int(np.sum(sims >= sims[i])) - 1)
        ranks = np.array(ranks)
        for k in (1, 5, 10):
            out[f"{name}_r{k}"] = 100.0 * float(np.mean(ranks < k))
        out[f"{name}_medr"] = float(np.floor(np.median(ranks)) + 1)
        out[f"{name}_meanr"] = float(ranks.mean() + 1)
    out["rsum"] = sum(out[f"{d}_r{k}"] for d in ("a2b", "b2a") for k in (1, 5, 10))
    return out


# -- models -----------------------------------------------------------------------------------------
class TextVectors(WordVectors):
    """``vectors:PATH`` plus texts as the mean of their known lowercased words.

    Returns float64, so the kind scores in float64 and the float64 loop reference matches it exactly
    (float32 kernels may order near-ties differently from a float64 loop).
    """

    name = "test-text-vectors"
    capabilities = frozenset({mmbench.Capability.WORDS, mmbench.Capability.TEXT})

    def embed_texts(self, texts, language):
        out = np.zeros((len(texts), self._matrix.shape[1]), dtype=np.float64)
        for row, text in enumerate(texts):
            vectors, found = self.embed_words(TOKEN.findall(text.lower()), language)
            if found.any():
                out[row] = vectors[found].mean(axis=0)
        return out


class ShuffledPairs(TextVectors):
    """The same vectors, but the non-English texts come back in a fixed shuffled order: pairs are broken."""

    name = "test-text-vectors-shuffled"

    def embed_texts(self, texts, language):
        out = super().embed_texts(texts, language)
        return out if language == "en" else out[np.random.default_rng(2).permutation(len(out))]


class Oracle(mmbench.Model):
    """A pair's two texts get the same random vector (``pair_of`` maps (language, text) -> pair id)."""

    name = "test-pair-oracle"
    capabilities = frozenset({mmbench.Capability.TEXT})
    pair_of: ClassVar[dict] = {}

    def embed_texts(self, texts, language):
        return np.stack([np.random.default_rng(self.pair_of[(language, t)]).standard_normal(8) for t in texts])


def _set(out, value):
    out = out.copy()
    out[7, 2] = value
    return out


# mode -> how the B-language texts are spoiled, and the error line for n pairs (B = de in the tests).
BROKEN = {
    "rows": (lambda o: o[:-2], lambda n: f"returned {n - 2} rows for {n} texts"),
    "extra rows": (lambda o: np.vstack([o, o]), lambda n: f"returned {2 * n} rows for {n} texts"),
    "ragged": (lambda o: [*o[:-1], o[-1][:3]],
               lambda n: f"returned a ragged array for {n} texts (rows of different lengths)"),
    "zero width": (lambda o: o[:, :0], lambda n: f"returned 0-wide vectors for {n} texts"),
    "3-d": (lambda o: o[:, :, None], lambda n: f"returned an array of shape ({n}, 8, 1) for {n} texts, not ({n}, d)"),
    "int dtype": (lambda o: o.astype(np.int16),
                  lambda n: "returned int16 values for texts, not floating-point numbers"),
    "object dtype": (lambda o: o.astype(object),
                     lambda n: "returned object values for texts, not floating-point numbers"),
    "str dtype": (lambda o: o.astype(str), lambda n: "returned <U32 values for texts, not floating-point numbers"),
    "nan": (lambda o: _set(o, np.nan), lambda n: f"returned NaN for 1 of {n} texts"),
    "inf": (lambda o: _set(o, np.inf), lambda n: f"returned +inf for 1 of {n} texts"),
    "-inf": (lambda o: _set(o, -np.inf), lambda n: f"returned -inf for 1 of {n} texts"),
}


class Collapsed(mmbench.Model):
    name = "test-collapsed-text"
    capabilities = frozenset({mmbench.Capability.TEXT})
    mode: ClassVar[str] = "same"

    def embed_texts(self, texts, language):
        out = np.ones((len(texts), 8), dtype=np.float32)
        if self.mode == "wider" and language != "en":
            return np.ones((len(texts), 9), dtype=np.float32)
        return BROKEN[self.mode][0](out) if self.mode in BROKEN and language != "en" else out


class NamesCnnMean(CnnMean):
    """cnn-mean from names only (``keywords=false``): a real emoji model that prepares in seconds.

    Its float32 vectors are handed over as float64, so the kind's scores match the float64 loop exactly.
    """

    name = "test-cnn-mean-names"

    def __init__(self, config=None, argument=None):
        super().__init__(CnnMeanConfig(keywords=False), argument)

    def embed_texts(self, texts, language):
        return super().embed_texts(texts, language).astype(np.float64)


@pytest.fixture(scope="module")
def registry():
    module = types.ModuleType("caption_retrieval_test_models")
    models = (TextVectors, ShuffledPairs, Oracle, Collapsed, NamesCnnMean)
    module.register_models = mmbench.hookimpl(lambda register: [register(m) for m in models])
    return plugins.load_plugins(extra_modules=(module,))[1]


@pytest.fixture(scope="module")
def vectors_file(shared_data, tmp_path_factory) -> Path:
    """en/de/fr/cs words of the test captions; words linked by the MUSE dictionaries share one random vector."""
    def links():
        for b in ("de", "fr", "cs"):
            english, other = multi30k_pairs(shared_data, b)
            vocab_en = {w for t in english for w in TOKEN.findall(t.lower())}
            vocab_b = {w for t in other for w in TOKEN.findall(t.lower())}
            for line in read_lines(shared_data / "muse" / "dictionaries" / f"en-{b}.txt.gz"):
                source, target = line.split()
                if source in vocab_en and target in vocab_b:
                    yield ("en", source), (b, target)

    root_of = linked_groups(links())
    rng = np.random.default_rng(0)
    groups = {root: rng.standard_normal(DIM) for root in sorted(set(root_of.values()))}
    path = tmp_path_factory.mktemp("vectors") / "muse-dictionary-bow.vec"
    lines = [f"{lang}:{word} " + " ".join(f"{x:.5f}" for x in groups[root_of[(lang, word)]])
             for lang, word in sorted(root_of)]
    path.write_text(f"{len(lines)} {DIM}\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def text_vectors(registry, vectors_file, shared_data):
    resolved = resolve_model(registry, f"test-text-vectors:{vectors_file}")
    resolved.model.prepare(mmbench.RunContext(data_dir=shared_data))
    return resolved.model


def _evaluate(model, subset_name: str, data_dir: Path, **params):
    card = load_card(EMOJI_CARD if subset_name.startswith("emoji-") else CARD)
    card.params = {**card.params, **params}
    subset = next(s for s in card.subsets if s.name == subset_name)
    return KIND.evaluate(model, card, subset, EvalContext(data_dir=data_dir))


def _assert_matches(scores: dict, expected: dict) -> None:
    assert scores.keys() == expected.keys()
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, abs=1e-9), key


# -- tests ------------------------------------------------------------------------------------------
def test_default_plugin_and_card(capsys):
    assert caption_module.__name__ in plugins.DEFAULT_PLUGINS
    assert main(["validate", str(CARD), str(EMOJI_CARD)]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
    card, emoji_card = load_card(CARD), load_card(EMOJI_CARD)
    assert card.suites == ["seeds"] and card.aggregate == "mean" and card.main_score == "rsum"
    assert emoji_card.suites == ["default"] and emoji_card.aggregate == "mean"
    # One source per card, so each 'all' averages like with like (1000 Multi30k captions vs ~365 names).
    assert {s.name for s in card.subsets} == {"multi30k-en-de", "multi30k-en-fr", "multi30k-en-cs"}
    assert {s.name for s in emoji_card.subsets} >= {"emoji-en-de", "emoji-en-fr", "emoji-en-es", "emoji-en-ru",
                                                     "emoji-en-ja", "emoji-en-zh"}
    assert all(s.evaluates_on == ("multi30k:test_2016_flickr",) for s in card.subsets)
    assert all(s.evaluates_on == ("emoji:test",) for s in emoji_card.subsets)
    assert all(f.sha256 for c in (card, emoji_card) for s in c.subsets for f in s.files)


@pytest.mark.parametrize("b", ["de", "cs"])
def test_multi30k_dictionary_model_matches_reference_far_above_chance(text_vectors, shared_data, b):
    score = _evaluate(text_vectors, f"multi30k-en-{b}", shared_data)
    english, other = multi30k_pairs(shared_data, b)
    expected = reference_scores(text_vectors.embed_texts(english, "en"), text_vectors.embed_texts(other, b))
    _assert_matches(score.scores, expected)
    assert score.n_items == 1000 and score.coverage == 1.0
    assert score.details["a"] == "en" and score.details["b"] == b and score.details["source"] == "multi30k"
    # chance: R@10 = 1% of 1000 candidates, rsum 3.2; word-by-word dictionary translation finds most
    assert score.scores["a2b_r10"] > 70 and score.scores["b2a_r10"] > 70 and score.scores["rsum"] > 350


def test_emoji_names_cnn_mean_matches_reference(shared_data):
    model = NamesCnnMean()
    model.prepare(None)
    score = _evaluate(model, "emoji-en-ar", shared_data)
    english, arabic, n_concepts = emoji_pairs_reference("en", "ar")
    expected = reference_scores(model.embed_texts(english, "en"), model.embed_texts(arabic, "ar"))
    _assert_matches(score.scores, expected)
    assert score.n_items == len(english) == 364 and n_concepts == 365
    assert score.coverage == pytest.approx(364 / 365)
    assert score.scores["rsum"] > 60  # chance 8.8 (R@10 = 2.7% of 364)


def test_shuffled_pairing_is_near_chance(registry, vectors_file, text_vectors, shared_data):
    shuffled = resolve_model(registry, f"test-text-vectors-shuffled:{vectors_file}").model
    shuffled.prepare(None)
    scores = _evaluate(shuffled, "multi30k-en-fr", shared_data).scores
    real = _evaluate(text_vectors, "multi30k-en-fr", shared_data).scores
    assert scores["rsum"] < 15 and real["rsum"] > 350  # chance 3.2
    assert scores["a2b_medr"] > 250 and scores["b2a_medr"] > 250  # chance ~500


def test_oracle_scores_600_and_collapsed_scores_0(shared_data, monkeypatch):
    english, german = multi30k_pairs(shared_data, "de")
    names_en, names_ja, _ = emoji_pairs_reference("en", "ja")
    pair_of = {("en", t): i for i, t in enumerate(english)} | {("de", t): i for i, t in enumerate(german)}
    pair_of |= {("en", t): 10_000 + i for i, t in enumerate(names_en)}
    pair_of |= {("ja", t): 10_000 + i for i, t in enumerate(names_ja)}
    monkeypatch.setattr(Oracle, "pair_of", pair_of)
    for subset in ("multi30k-en-de", "emoji-en-ja"):
        scores = _evaluate(Oracle(), subset, shared_data).scores
        assert scores["rsum"] == 600.0 and scores["a2b_medr"] == scores["b2a_medr"] == 1.0, subset
    collapsed = _evaluate(Collapsed(), "multi30k-en-de", shared_data).scores
    assert collapsed["rsum"] == 0.0 and collapsed["a2b_medr"] == collapsed["b2a_medr"] == 1000.0
    assert _evaluate(Collapsed(), "multi30k-en-de", shared_data, ties="optimistic").scores["rsum"] == 600.0


def test_cli_runs_the_packaged_cards_and_records_protocol_coverage_main_score(shared_data, tmp_path):
    result = run_cli(["run", "--model", "cnn-mean", "--set", "keywords=false", "--task", "caption-xling",
                      "--task", "caption-xling-emoji", "--data-dir", shared_data, "--output-dir", tmp_path])
    assert result.returncode == 0, result.stdout + result.stderr
    everything = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    for card in (load_card(CARD), load_card(EMOJI_CARD)):
        records = {r["subset"]: r for r in everything if r["task"] == card.name}
        assert set(records) == {s.name for s in card.subsets} | {"all"}
        for name, record in records.items():
            assert record["protocol"] == card.protocol and record["task_kind"] == "caption-retrieval"
            assert record["main_score_name"] == "rsum" and record["main_score"] == record["scores"]["rsum"]
            assert record["coverage"] is not None and record["main_score"] > 3.2, name
        subset_scores = [records[s.name]["main_score"] for s in card.subsets]
        assert records["all"]["main_score"] == pytest.approx(sum(subset_scores) / len(subset_scores))
    records = {r["subset"]: r for r in everything}
    assert records["multi30k-en-fr"]["n_items"] == 1000 and records["multi30k-en-fr"]["coverage"] == 1.0
    assert records["multi30k-en-fr"]["split"] == SPLIT and records["emoji-en-de"]["split"] == "test"
    assert records["emoji-en-ar"]["coverage"] == pytest.approx(364 / 365)
    assert records["emoji-en-ja"]["details"]["duplicate_texts_b"] == 0


@pytest.mark.parametrize(("mode", "message"), [
    ("rows", "model 'test-collapsed-text' embed_texts(de) returned 998 rows for 1000 texts"),
    ("nan", "model 'test-collapsed-text' embed_texts(de) returned NaN for 1 of 1000 texts"),
])
def test_bad_model_output_is_one_clear_line(registry, shared_data, tmp_path, monkeypatch, mode, message):
    monkeypatch.setattr(Collapsed, "mode", mode)
    with pytest.raises(MMBenchError, match=re.escape(message)):
        _evaluate(Collapsed(), "multi30k-en-de", shared_data)
    resolved = resolve_model(registry, "test-collapsed-text")
    cards = select_cards(registry, ["caption-xling"], [], [])
    cards[0].subsets = cards[0].subsets[:1]
    (outcome,) = run(registry, [resolved], cards, RunOptions(results_dir=tmp_path, data_dir=shared_data))
    assert outcome.status == "error" and outcome.message == message


@pytest.mark.parametrize("mode", [*BROKEN, "wider"])
def test_every_bad_output_is_one_line_naming_model_and_method(monkeypatch, tmp_path, mode):
    n = len(emoji_pairs_reference("en", "de")[0])
    expected = ("returned 8-d texts from embed_texts(en) but 9-d texts from embed_texts(de)" if mode == "wider"
                else f"embed_texts(de) {BROKEN[mode][1](n)}")
    monkeypatch.setattr(Collapsed, "mode", mode)
    with pytest.raises(MMBenchError) as info:
        _evaluate(Collapsed(), "emoji-en-de", tmp_path)
    assert str(info.value) == f"model 'test-collapsed-text' {expected}"


def test_missing_multi30k_file_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"test_2016_flickr\.txt"):
        _evaluate(Collapsed(), "multi30k-en-cs", tmp_path)


def _problems(params: dict, languages=("en", "de"), split="test", subset_params=None) -> list[str]:
    raw = {"name": "t", "kind": "caption-retrieval", "description": "d", "main_score": "rsum", "protocol": "p",
           "license": "l", "citation": "c", "splits": [split], "params": params,
           "subsets": [{"name": "s", "languages": list(languages), **({"params": subset_params} if subset_params else {})}]}
    return KIND.validate(parse_card(raw, "t.toml"))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"params": {"source": "emoji", "style": "noto"}}, "params.style: unknown parameter"),
        ({"params": {"source": "flickr"}}, "params.source: 'flickr' is not one of"),
        ({"params": {}}, "subsets.s.params.source: required"),
        ({"params": {"source": "emoji", "similarity": "order"}}, "params.similarity: 'order' is not one of"),
        ({"params": {"source": "emoji"}, "languages": ("en",)}, "give two different languages"),
        ({"params": {"source": "emoji"}, "languages": ("en", "en")}, "give two different languages"),
        ({"params": {"source": "emoji"}, "split": "dev"}, "emoji splits are train, val, test"),
        ({"params": {"source": "multi30k"}, "split": SPLIT, "languages": ("en", "es")},
         "Multi30k task 1 has en, de, fr, cs, not 'es'"),
        ({"params": {"source": "multi30k"}, "split": "test_2016"}, "use a Multi30k task-1 split"),
        ({"params": {"source": "emoji"}, "subset_params": {"ties": "random"}}, "subsets.s.params.ties: 'random'"),
    ],
)
def test_validate_reports_bad_params(kwargs, problem):
    problems = _problems(**kwargs)
    assert any(problem in p for p in problems), problems


def test_validate_accepts_both_sources():
    assert _problems({"source": "emoji", "similarity": "dot"}, languages=("ja", "zh"), split="val") == []
    assert _problems({"ties": "optimistic"}, split=SPLIT, languages=("fr", "cs"),
                     subset_params={"source": "multi30k"}) == []


def test_limit_keeps_the_first_pairs(shared_data):
    model = NamesCnnMean()
    model.prepare(None)
    card = load_card(EMOJI_CARD)
    subset = next(s for s in card.subsets if s.name == "emoji-en-ar")
    score = KIND.evaluate(model, card, subset, EvalContext(data_dir=shared_data, limit=25))
    english, arabic, _ = emoji_pairs_reference("en", "ar")
    expected = reference_scores(model.embed_texts(english[:25], "en"), model.embed_texts(arabic[:25], "ar"))
    _assert_matches(score.scores, expected)
    assert score.n_items == 25 and score.coverage == pytest.approx(25 / 365)


def test_caption_xling_mini_pairs_are_the_task1_translations_of_the_mini_test_images(shared_data):
    """The multi30k-mini source, read independently: the raw task-1 lines of the 200 test photos."""
    import gzip

    from mmbench.cards import discover_cards
    from mmbench.data.multi30k_mini import multi30k_mini_split_ids
    from mmbench.kinds.caption_retrieval import load_translation_pairs

    card = discover_cards()[0]["caption-xling-mini"]
    assert card.subsets[0].evaluates_on == ("multi30k-mini-v1:test",)
    base = shared_data / "multi30k/task1"
    images = (base / "image_splits/test_2016_flickr.txt").read_text().split()
    test_images = multi30k_mini_split_ids(shared_data)["test"]
    assert len(test_images) == 200
    for subset in card.subsets:
        a, b = subset.languages
        lines = {lang: gzip.open(base / f"raw/test_2016_flickr.{lang}.gz", "rt", encoding="utf-8").read().splitlines()
                 for lang in (a, b)}
        rows = [images.index(name) for name in test_images]
        pairs = load_translation_pairs(card, subset, shared_data)
        assert pairs.texts_a == [lines[a][r].strip() for r in rows]
        assert pairs.texts_b == [lines[b][r].strip() for r in rows]
