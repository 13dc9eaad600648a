"""Visual BLI task kind on the real CLDI / Bergsma-500 lists and the packaged emoji data.

The packaged ``visual-bli`` card runs through the harness with AVGMAX; its en-de record is recomputed
here from the raw word list with plain NumPy (queries, gold, POS groups, AVGMAX, pessimistic ranks).
Word -> image-set matching is checked against a brute-force scan of the raw CLDR texts.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import mmbench.kinds.visual_bli as kind_module
from mmbench import plugins
from mmbench.cards import load_card
from mmbench.cli import main
from mmbench.data.emoji import load_emoji
from mmbench.data.emoji_image_sets import build_image_set_index, image_set_index, normalize_term
from mmbench.data.io import column_array
from mmbench.errors import CardError, DataError, MMBenchError
from mmbench.kinds import EvalContext
from mmbench.models import Capability, Model
from mmbench.runner import RunOptions, resolve_model, run, select_cards, validate_against_kind

REPO = Path(__file__).resolve().parents[1]
CLDI_PAIRS = ("de", "es", "fr", "it", "ru")
KIND = kind_module.VisualBilingualLexiconInduction()


def registry():
    assert kind_module.__name__ in plugins.DEFAULT_PLUGINS
    return plugins.load_plugins()[1]


def cldi_card():
    return load_card(REPO / "tasks/visual-bli.toml")


def subset_of(card, name):
    return next(s for s in card.subsets if s.name == name)


class Delegate(Model):
    """A model whose score_image_sets is a plain function (for controls and bad outputs)."""

    name = "delegate"
    capabilities = frozenset({Capability.IMAGE_SETS})

    def __init__(self, function):
        super().__init__()
        self.function = function
        self.calls: list[tuple[list, list, str]] = []

    def score_image_sets(self, source_sets, target_sets, *, source):
        self.calls.append((list(source_sets), list(target_sets), source))
        return self.function(source_sets, target_sets)


# -- independent references ---------------------------------------------------------------------------
def ref_avgmax(source_sets, target_sets) -> np.ndarray:
    """AVGMAX in float64: for each source image, best cosine per target word; mean over source images."""
    def unit(sets):
        images = np.concatenate(sets).astype(np.float64)
        return images / np.linalg.norm(images, axis=1, keepdims=True)

    target = unit(target_sets)
    # Identical images must give identical columns (so identical sets tie exactly): compute each once.
    ids: dict[bytes, int] = {}
    inverse = np.array([ids.setdefault(image.tobytes(), len(ids)) for image in target])
    distinct = target[np.unique(inverse, return_index=True)[1]]  # ids follow first appearance
    cosines = (unit(source_sets) @ distinct.T)[:, inverse]
    best = np.maximum.reduceat(cosines, np.cumsum([0] + [len(s) for s in target_sets[:-1]]), axis=1)
    sizes = np.array([len(s) for s in source_sets])
    return np.add.reduceat(best, np.cumsum(np.r_[0, sizes[:-1]]), axis=0) / sizes[:, None]


def ref_ranks(sims: np.ndarray, gold: list[list[int]]) -> tuple[np.ndarray, int]:
    """0-based pessimistic rank of each row's best gold column, and how many rows have a near-tie."""
    ranks, near = [], 0
    for row, columns in enumerate(gold):
        best = sims[row, columns].max()
        wrong = np.delete(sims[row], columns)
        ranks.append(int((wrong >= best).sum()))
        near += bool((np.abs(wrong - best) < 1e-9).any() and not (wrong == best).any())
    return np.array(ranks), near


def ref_scores(ranks: np.ndarray) -> dict[str, float]:
    return {"p1": 100 * np.mean(ranks < 1), "p10": 100 * np.mean(ranks < 10), "mrr": float(np.mean(1 / (ranks + 1)))}


def ref_queries(path: Path, source_lang: str, target_lang: str):
    """Queries, candidates, gold and POS straight from the raw file and the (separately checked) index."""
    source_index = image_set_index(source_lang, "noto")
    target_index = image_set_index(target_lang, "emojione")
    lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    triples = [(normalize_term(s), normalize_term(t), p.strip()) for s, t, p in lines]
    candidates = sorted({t for _, t, _ in triples if target_index.image_rows(t)})
    gold, pos, listed = defaultdict(set), defaultdict(set), defaultdict(set)
    for s, t, p in triples:
        listed[p].add(s)
        if source_index.image_rows(s) and t in candidates:
            gold[s].add(candidates.index(t))
            pos[s].add(p)
    queries = sorted(gold)
    return {
        "queries": queries, "candidates": candidates, "gold": [sorted(gold[q]) for q in queries],
        "pos": [pos[q] for q in queries], "listed": {p: len(w) for p, w in listed.items()},
        "n_sources": len({s for s, _, _ in triples}),
        "source_sets": [source_index.image_set(q) for q in queries],
        "target_sets": [target_index.image_set(c) for c in candidates],
    }


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def records(shared_data: Path, tmp_path_factory) -> dict[str, dict]:
    """The packaged cldi card, every subset, scored by visual-bli-avgmax through the harness."""
    reg = registry()
    results = tmp_path_factory.mktemp("visual-bli-results")
    outcomes = run(reg, [resolve_model(reg, "visual-bli-avgmax")], select_cards(reg, ["visual-bli"], []),
                   RunOptions(results_dir=results, data_dir=shared_data))
    assert {(o.subset, o.status) for o in outcomes} == {(s, "done") for s in (*(f"en-{p}" for p in CLDI_PAIRS), "all")}
    return {o.subset: json.loads(o.path.read_text()) for o in outcomes}


@pytest.fixture(scope="module")
def en_de(shared_data: Path):
    data = ref_queries(shared_data / "visual_bli/imgWords_en_de.txt", "en", "de")
    data["avgmax"] = ref_avgmax(data["source_sets"], data["target_sets"])
    return data


# -- image sets -------------------------------------------------------------------------------------------
def test_image_sets_match_a_scan_of_the_raw_cldr_texts(en_de) -> None:
    emoji = load_emoji()
    style, concept = column_array(emoji.images, "style"), column_array(emoji.images, "concept")
    row_of = {c: r for r, (c, s) in enumerate(zip(concept, style)) if s == "noto"}
    english = np.flatnonzero(column_array(emoji.texts, "language") == "en")
    texts = emoji.texts.select(english)

    def words_of(text: str) -> str:
        return " ".join(re.findall(r"\w+", text.lower()))

    rows = [(c, f" {words_of(n)} ", {words_of(k) for k in ks})
            for c, n, ks in zip(texts["concept"], texts["name"], texts["keywords"]) if c in row_of]
    index = image_set_index("en", "noto")
    for word in en_de["queries"][::3] + ["ice cream", "T-Shirt", "face", "Dog", "qwertyuiop"]:
        key = words_of(word)
        expected = {row_of[c] for c, name, keywords in rows if f" {key} " in name or key in keywords}
        assert set(index.image_rows(word)) == expected, word
    assert len(index.image_rows("ice cream")) >= 1 and index.image_rows("qwertyuiop") == ()
    assert index.image_rows("dog") == index.image_rows("DOG") != ()


def test_image_set_rules_on_a_small_table() -> None:
    concept = np.array(["a", "a", "b", "c", "d"])
    style = np.array(["noto", "emojione", "noto", "noto", "noto"])
    split = np.array(["train", "train", "test", "train", "train"])
    index = build_image_set_index(
        concept, style, split,
        np.array(["a", "b", "c", "x"]),
        np.array(["Soft Ice-Cream", "ice", "cafe\u0301", "ice"]),  # x has no image: ignored
        [["dessert", "sweet treat"], [], [], ["ice"]],
        style="noto", split="all",
    )
    assert index["ice"] == (0, 2) and index["ice cream"] == (0,) and index["soft ice cream"] == (0,)
    assert index["sweet treat"] == (0,) and "treat" not in index  # keywords are not split
    assert index[normalize_term("Café")] == (3,)  # NFC: a combining accent equals the precomposed letter
    assert "soft cream" not in index  # name parts must be contiguous
    only_test = build_image_set_index(concept, style, split, np.array(["a", "b"]), np.array(["ice", "ice"]),
                                      [[], []], style="noto", split="test")
    assert only_test == {"ice": (2,)}
    with pytest.raises(DataError, match="split 'dev'"):
        build_image_set_index(concept, style, split, concept, concept, [[]] * 5, style="noto", split="dev")
    with pytest.raises(DataError, match="no images in style 'paint'"):
        image_set_index("en", "paint")
    with pytest.raises(DataError, match="no names in language 'xx'"):
        image_set_index("xx", "noto")


def test_model_gets_source_and_target_words_in_different_drawings(shared_data, en_de) -> None:
    emoji = load_emoji()
    styles = column_array(emoji.images, "style")
    style_of = {image.tobytes(): style for image, style in zip(emoji.features_matrix(), styles)}
    model = Delegate(lambda s, t: np.zeros((len(s), len(t))))
    _evaluate(model, shared_data)
    sources, targets, _ = model.calls[0]
    source_images = {image.tobytes() for images in sources for image in images}
    target_images = {image.tobytes() for images in targets for image in images}
    assert {style_of[image] for image in source_images} == {"noto"}
    assert {style_of[image] for image in target_images} == {"emojione"}
    assert not source_images & target_images  # no image is compared with its own pixels
    for got, expected in zip(sources + targets, en_de["source_sets"] + en_de["target_sets"]):
        np.testing.assert_array_equal(got, expected)


# -- the harness records ----------------------------------------------------------------------------------
def test_en_de_record_matches_brute_force_reference(records, en_de) -> None:
    record = records["en-de"]
    details = record["details"]
    ranks, near = ref_ranks(en_de["avgmax"], en_de["gold"])
    assert record["protocol"] == cldi_card().protocol == "cldi/emoji-v1/noto->emojione/all"
    assert record["main_score_name"] == "p1" and record["languages"] == ["en", "de"]
    assert details["n_queries"] == len(en_de["queries"]) > 300
    assert details["n_candidates"] == len(en_de["candidates"]) > 300
    assert record["n_items"] == details["n_source_total"] == en_de["n_sources"]
    assert record["coverage"] == pytest.approx(len(en_de["queries"]) / en_de["n_sources"], abs=1e-15)
    assert (details["source_style"], details["target_style"], details["split"]) == ("noto", "emojione", "all")
    slack = 100 * near / len(ranks) + 1e-9
    expected = ref_scores(ranks)
    for key in ("p1", "p10"):
        assert record["scores"][key] == pytest.approx(expected[key], abs=slack)
    assert record["scores"]["mrr"] == pytest.approx(expected["mrr"], abs=near / len(ranks) + 1e-9)
    assert record["main_score"] == record["scores"]["p1"]
    for pos in ("A", "N", "V"):
        rows = [i for i, tags in enumerate(en_de["pos"]) if pos in tags]
        entry = details["by_pos"][pos]
        assert entry["n_queries"] == len(rows) > 0 and entry["n_source_total"] == en_de["listed"][pos]
        assert entry["coverage"] == pytest.approx(len(rows) / en_de["listed"][pos])
        pos_expected = ref_scores(ranks[rows])
        for key in ("p1", "p10", "mrr"):
            assert record["scores"][f"{key}_{pos}"] == pytest.approx(pos_expected[key], abs=slack * 10)
    # The finding of Hartmann & Søgaard: nouns are covered far better than verbs and adjectives.
    by_pos = details["by_pos"]
    assert by_pos["N"]["coverage"] > 2 * by_pos["V"]["coverage"] and by_pos["N"]["n_queries"] > 300


@pytest.mark.parametrize("pair", CLDI_PAIRS)
def test_queries_and_gold_match_the_raw_lists(shared_data, pair: str) -> None:
    card = cldi_card()
    built = kind_module.build_queries(card, subset_of(card, f"en-{pair}"), shared_data,
                                      {**kind_module.DEFAULTS, **card.params})
    expected = ref_queries(shared_data / f"visual_bli/imgWords_en_{pair}.txt", "en", pair)
    assert built.query_words == expected["queries"] and built.candidate_words == expected["candidates"]
    assert built.gold == expected["gold"] and [set(p) for p in built.query_pos] == expected["pos"]
    assert built.n_source_total_by_pos == expected["listed"] and built.n_pairs == 1771
    if pair == "ru":  # the one query with two gold translations: the fruit and the colour
        gold = built.gold[built.query_words.index("orange")]
        assert sorted(built.candidate_words[i] for i in gold) == ["апельсин", "оранжевый"]


def test_dispersion_groups_partition_the_queries(records, en_de) -> None:
    groups = records["en-de"]["details"]["dispersion_groups"]
    sizes = [len(s) for s in en_de["source_sets"]]
    assert groups["single_image"]["n_queries"] == sizes.count(1)
    assert groups["low"]["n_queries"] == (len(sizes) - sizes.count(1)) // 2
    assert sum(g["n_queries"] for g in groups.values()) == len(sizes)
    assert groups["low"]["mean_dispersion"] < groups["high"]["mean_dispersion"]
    assert groups["single_image"]["mean_dispersion"] is None


def test_all_pairs_and_aggregate(records) -> None:
    for pair in CLDI_PAIRS:
        record = records[f"en-{pair}"]
        assert 0.15 < record["coverage"] < 0.5 and record["scores"]["p1"] > 5
        assert set(record["details"]["by_pos"]) == {"A", "N", "V"}
    aggregate = records["all"]
    assert aggregate["scores"]["p1"] == pytest.approx(np.mean([records[f"en-{p}"]["scores"]["p1"] for p in CLDI_PAIRS]))
    assert {"p1", "p10", "mrr", "p1_N", "mrr_N"} <= set(aggregate["scores"])


# -- controls and bad inputs ------------------------------------------------------------------------------
def _evaluate(model, shared_data, card=None, subset="en-de"):
    card = card or cldi_card()
    return KIND.evaluate(model, card, subset_of(card, subset), EvalContext(data_dir=shared_data))


def test_shuffled_target_sets_destroy_performance(shared_data, records, en_de) -> None:
    """Control: the same AVGMAX scores with the candidates' image sets dealt out at random."""
    order = np.random.default_rng(0).permutation(len(en_de["candidates"]))

    def shuffled(source_sets, target_sets):
        assert len(target_sets) == len(order)
        return en_de["avgmax"][:, order]  # == ref_avgmax(source_sets, [target_sets[i] for i in order])

    score = _evaluate(Delegate(shuffled), shared_data)
    chance_p1 = 100 * np.mean([len(g) for g in en_de["gold"]]) / len(en_de["candidates"])
    assert records["en-de"]["scores"]["p1"] > 30 * chance_p1
    assert score.scores["p1"] < 5 * chance_p1 + 100 * 3 / len(en_de["queries"])
    assert score.scores["mrr"] < records["en-de"]["scores"]["mrr"] / 4


def test_model_receives_float32_sets_and_the_feature_source(shared_data, en_de) -> None:
    model = Delegate(lambda s, t: np.zeros((len(s), len(t))))
    score = _evaluate(model, shared_data)
    sources, targets, feature_source = model.calls[0]
    assert feature_source == "emoji/efficientnet-lite0"
    assert all(a.dtype == np.float32 and a.ndim == 2 and len(a) for a in sources + targets)
    assert [len(a) for a in sources] == [len(a) for a in en_de["source_sets"]]
    assert score.scores["p1"] == 0.0  # all tied: pessimistic ties rank every wrong candidate first


def _one(s, t, value):
    scores = np.zeros((len(s), len(t)))
    scores[0, 1] = value
    return scores


# Each: what the model returns for (source sets, target sets), and the message for (S, T).
BAD_SCORES = {
    "short rows": (lambda s, t: np.zeros((len(s) - 1, len(t))),
                   lambda S, T: f"returned {S - 1} rows for {S} source words"),
    "extra rows": (lambda s, t: np.zeros((len(s) + 1, len(t))),
                   lambda S, T: f"returned {S + 1} rows for {S} source words"),
    "short columns": (lambda s, t: np.zeros((len(s), len(t) - 1)),
                      lambda S, T: f"returned {T - 1} columns for {T} target words"),
    "extra columns": (lambda s, t: np.zeros((len(s), len(t) + 1)),
                      lambda S, T: f"returned {T + 1} columns for {T} target words"),
    "transposed (T, S)": (lambda s, t: np.zeros((len(t), len(s))),
                          lambda S, T: f"returned {T} rows for {S} source words"),
    "flat": (lambda s, t: np.zeros(len(s) * len(t)),
             lambda S, T: f"returned an array of shape ({S * T},) for {S} source words, not ({S}, d)"),
    "ragged": (lambda s, t: [[0.0] * len(t)] * (len(s) - 1) + [[0.0]],
               lambda S, T: f"returned a ragged array for {S} source words (rows of different lengths)"),
    "int dtype": (lambda s, t: np.zeros((len(s), len(t)), dtype=np.int64),
                  lambda S, T: "returned int64 values for source words, not floating-point numbers"),
    "object dtype": (lambda s, t: np.zeros((len(s), len(t)), dtype=object),
                     lambda S, T: "returned object values for source words, not floating-point numbers"),
    "str dtype": (lambda s, t: np.full((len(s), len(t)), "0.5"),
                  lambda S, T: "returned <U3 values for source words, not floating-point numbers"),
    "NaN matrix": (lambda s, t: np.full((len(s), len(t)), np.nan),
                   lambda S, T: f"returned NaN for {S} of {S} source words"),
    "+inf matrix": (lambda s, t: np.full((len(s), len(t)), np.inf),
                    lambda S, T: f"returned +inf for {S} of {S} source words"),
    "one +inf": (lambda s, t: _one(s, t, np.inf), lambda S, T: f"returned +inf for 1 of {S} source words"),
    "one -inf": (lambda s, t: _one(s, t, -np.inf), lambda S, T: f"returned -inf for 1 of {S} source words"),
}


@pytest.mark.parametrize("case", BAD_SCORES, ids=list(BAD_SCORES))
def test_bad_model_output_is_one_line_error(shared_data, en_de, case) -> None:
    output, message = BAD_SCORES[case]
    S, T = len(en_de["queries"]), len(en_de["candidates"])
    assert S != T  # so a transposed matrix is caught by its row count
    with pytest.raises(MMBenchError) as info:
        _evaluate(Delegate(output), shared_data)
    assert str(info.value) == f"model 'delegate' score_image_sets {message(S, T)}"


def test_cards_validate_and_bad_params_are_reported(shared_data) -> None:
    reg = registry()
    for name, languages in (("visual-bli", CLDI_PAIRS), ("visual-bli-bergsma500", ("de", "es", "fr", "it", "nl"))):
        card = load_card(REPO / f"tasks/{name}.toml")
        validate_against_kind(reg, card)
        assert [s.languages for s in card.subsets] == [("en", lang) for lang in languages]
        assert card.main_score == "p1" and card.suites == ["seeds"] and card.aggregate == "mean"
        for subset in card.subsets:
            assert all(f.sha256 for f in subset.files)
            assert {f.base for f in subset.files} == {"data", "package"}
    card = cldi_card()
    bad = dataclasses.replace(card, params={**card.params, "style": "noto", "target_style": "noto"})
    problems = KIND.validate(bad)
    assert any(p.startswith("params.style: unknown parameter") for p in problems)
    assert any(p.startswith("params.target_style: must differ from source_style 'noto'") for p in problems)
    with pytest.raises(CardError, match="params.style"):
        validate_against_kind(reg, bad)
    de = subset_of(card, "en-de")
    broken = dataclasses.replace(de, languages=("de", "en"), files=de.files[:1], params={"split": "test"})
    problems = KIND.validate(dataclasses.replace(card, subsets=[broken]))
    assert "subsets.en-de.params.split: set it on the card (it defines the protocol)" in problems
    assert any(p.startswith("subsets.en-de.files: list the emoji artifact's manifest.json once") for p in problems)
    assert "subsets.en-de.files: a cldi subset lists exactly one word list, imgWords_de_en.txt" in problems


def test_cli_validate_rejects_unknown_param(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setattr(plugins, "_CACHED", None)
    path = REPO / "tasks/visual-bli.toml"
    assert main(["validate", str(path), str(REPO / "tasks/visual-bli-bergsma500.toml")]) == 0
    capsys.readouterr()
    broken = tmp_path / "broken.toml"
    broken.write_text(path.read_text(encoding="utf-8").replace('split = "all"', 'split = "all"\nsize = 3'),
                      encoding="utf-8")
    assert main(["validate", str(broken)]) == 1
    assert "params.size: unknown parameter" in capsys.readouterr().err


def test_bergsma_card_through_the_cli(monkeypatch, capsys, shared_data, tmp_path) -> None:
    monkeypatch.setattr(plugins, "_CACHED", None)
    out = tmp_path / "res"
    code = main(["run", "--model", "visual-bli-cnn-mean", "--task", "visual-bli-bergsma500", "--output-dir", str(out),
                 "--data-dir", str(shared_data), "--device", "cpu"])
    assert code == 0, capsys.readouterr()
    records = {p.name.split("__")[0]: json.loads(p.read_text()) for p in out.rglob("*.json") if ".runs" not in p.parts}
    assert set(records) == {"en-de", "en-es", "en-fr", "en-it", "en-nl", "all"}
    for name, record in records.items():
        assert record["protocol"] == "bergsma500/emoji-v1/noto->emojione/all"
        assert record["main_score_name"] == "p1" and 0.25 < record["coverage"] < 0.6
        if name != "all":
            details = record["details"]
            assert "by_pos" not in details and record["n_items"] == 500
            chance = 100 / details["n_candidates"]
            assert record["scores"]["p1"] > 30 * chance
            assert {d["path"].rsplit("/", 1)[-1] for d in record["provenance"]["data"]} == {
                "pictureWords.en.txt", f"pictureWords.{name[3:]}.txt", "manifest.json"}
