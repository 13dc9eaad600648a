"""BLI task kind on the real MUSE en-de / de-en test dictionaries, checked against a brute-force NumPy reference.

The vectors file gives every connected group of dictionary words (words linked by translation pairs) a
shared random direction plus per-word noise, adds many random distractor words and a few "hub" words
near the centre of all groups (which fool nearest-neighbour retrieval, not CSLS), leaves some
dictionary words out and writes some German words capitalised. The test recomputes coverage and the
ranks of the gold translations over the full vocabularies with plain NumPy and compares them with the
records the runner writes for the packaged ``muse-bli`` (CSLS) and ``muse-bli-nn`` cards.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_validate_reports_param, linked_groups
from mmbench_plugins.vectors import VectorsConfig, WordVectors

import mmbench
import mmbench.kinds.bli as bli_module
from mmbench import plugins
from mmbench.cards import load_card
from mmbench.errors import CardError, MMBenchError
from mmbench.kinds import EvalContext
from mmbench.models import Incompatible
from mmbench.runner import (
    RunOptions,
    resolve_model,
    run,
    select_cards,
    validate_against_kind,
)

REPO = Path(__file__).resolve().parents[1]
CARDS = ("muse-bli", "muse-bli-nn")
DIM = 48
N_DISTRACTORS = 1500
N_HUBS = 40
COMMON, NOISE, HUB_NOISE = 1.2, 1.0, 0.2


def registry():
    """The plugin registry; the bli kind is a core (default) plugin."""
    assert bli_module.__name__ in plugins.DEFAULT_PLUGINS
    return plugins.load_plugins()[1]


def read_dictionary(path: Path) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [tuple(line.split()) for line in handle if line.strip()]


@dataclasses.dataclass
class Synthetic:
    vectors: dict[tuple[str, str], np.ndarray]  # (language, word as the dictionary spells it) -> float64 vector
    spelling: dict[tuple[str, str], str]  # how the file writes each word that is present
    order: list[tuple[str, str]]  # file order of the present words
    path: Path


def make_vectors(pairs: list[tuple[str, str]], directory: Path) -> Synthetic:
    """en/de vectors for one dictionary: shared group directions + noise, distractors, hubs, gaps."""
    rng = np.random.default_rng(11)
    root_of = linked_groups((("en", source), ("de", target)) for source, target in pairs)
    groups = sorted(set(root_of.values()))
    direction = {group: rng.standard_normal(DIM) for group in groups}
    common = rng.standard_normal(DIM)  # shared by every dictionary word: what makes hubs possible
    vectors = {}
    for node in sorted(root_of):
        vectors[node] = direction[root_of[node]] + COMMON * common + NOISE * rng.standard_normal(DIM)
    for i in range(N_HUBS):
        # Close to the common component: a hub is every query's fairly near neighbour.
        vectors[("de", f"hub{i}")] = common + HUB_NOISE * rng.standard_normal(DIM)
    for language in ("en", "de"):
        for i in range(N_DISTRACTORS):
            vectors[(language, f"zz{language}{i}")] = rng.standard_normal(DIM) * 1.2
    # Round to values that float32 and the text file represent exactly.
    vectors = {k: np.round(v * 4096) / 4096 for k, v in vectors.items()}
    spelling = {}
    for index, (language, word) in enumerate(sorted(vectors)):
        if not word.startswith(("zz", "hub")) and index % 11 == 3:
            continue  # out of vocabulary
        written = word.capitalize() if language == "de" and index % 7 == 2 else word
        spelling[(language, word)] = written
    order = list(spelling)
    rng.shuffle(order)
    lines = [f"{len(order)} {DIM}"]
    lines += [f"{lang}:{spelling[(lang, w)]} " + " ".join(map(repr, vectors[(lang, w)].tolist())) for lang, w in order]
    path = directory / "en-de.vec"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Synthetic(vectors, spelling, order, path)


def reference_bli(data: Synthetic, pairs, src: str, tgt: str, method: str, case: str, max_vocab=None, k=10):
    """Brute-force float64 BLI over the full vocabularies (independent of mmbench.metrics)."""
    by_language = {lang: [(w, data.spelling[(l, w)]) for l, w in data.order if l == lang] for lang in (src, tgt)}
    if max_vocab is not None:
        by_language = {lang: words[:max_vocab] for lang, words in by_language.items()}

    def row_of(lang):
        written = {spelled: i for i, (_, spelled) in enumerate(by_language[lang])}
        rows = {}
        for word in {p[0] if lang == src else p[1] for p in pairs}:
            for variant in ([word] if case == "exact" else [word, word.capitalize()]):
                if variant in written:
                    rows[word] = written[variant]
                    break
        return rows

    def unit(lang):
        m = np.array([data.vectors[(lang, w)] for w, _ in by_language[lang]])
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    source_rows, target_rows = row_of(src), row_of(tgt)
    gold: dict[int, set[int]] = {}
    for s, t in pairs:
        if s in source_rows and t in target_rows:
            gold.setdefault(source_rows[s], set()).add(target_rows[t])
    S, T = unit(src), unit(tgt)
    queries = sorted(gold)
    sims = S[queries] @ T.T
    if method == "csls":
        r_t = np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)
        r_s = np.partition(T @ S.T, -k, axis=1)[:, -k:].mean(axis=1)
        sims = 2 * sims - r_t[:, None] - r_s[None, :]
    ranks, near_ties = [], 0
    for row, q in enumerate(queries):
        golds = sorted(gold[q])
        best = sims[row, golds].max()
        wrong = np.delete(sims[row], golds)
        ranks.append(int((wrong >= best).sum()))  # ties count against the query (pessimistic)
        near_ties += bool((np.abs(wrong - best) < 1e-6).any())
    ranks = np.array(ranks)
    return {
        "p1": 100 * np.mean(ranks < 1), "p5": 100 * np.mean(ranks < 5), "p10": 100 * np.mean(ranks < 10),
        "mrr": float(np.mean(1 / (ranks + 1))), "n_queries": len(queries),
        "n_source_total": len({s for s, _ in pairs}), "near_ties": near_ties,
        "source_vocab": len(by_language[src]), "target_vocab": len(by_language[tgt]),
    }


@pytest.fixture(scope="module")
def dictionaries(shared_data: Path) -> dict[str, list[tuple[str, str]]]:
    return {name: read_dictionary(shared_data / f"muse/dictionaries/{name}.5000-6500.txt.gz")
            for name in ("en-de", "de-en")}


@pytest.fixture(scope="module")
def synthetic(dictionaries, tmp_path_factory) -> Synthetic:
    return make_vectors(dictionaries["en-de"] + [(t, s) for s, t in dictionaries["de-en"]],
                        tmp_path_factory.mktemp("bli-vectors"))


@pytest.fixture(scope="module")
def records(synthetic: Synthetic, shared_data: Path, tmp_path_factory) -> dict[tuple[str, str], dict]:
    """Both packaged cards run through the harness with the synthetic en/de vectors file."""
    reg = registry()
    cards = select_cards(reg, list(CARDS), [])
    results = tmp_path_factory.mktemp("bli-results")
    outcomes = run(reg, [resolve_model(reg, f"vectors:{synthetic.path}")], cards,
                   RunOptions(results_dir=results, data_dir=shared_data))
    by_status: dict[str, set] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.status, set()).add((outcome.task, outcome.subset))
    # Only en<->de can be scored; every other pair is a skip (no vocabulary), never an error.
    assert by_status.get("done") == {(c, s) for c in CARDS for s in ("en-de", "de-en")}, by_status
    assert len(by_status["skipped"]) == 2 * 10 and "error" not in by_status
    return {(o.task, o.subset): json.loads(o.path.read_text()) for o in outcomes if o.status == "done"}


def test_synthetic_premise(synthetic: Synthetic) -> None:
    capitalised = [k for k, v in synthetic.spelling.items() if v != k[1]]
    assert len(capitalised) > 200
    assert len(synthetic.spelling) < len(synthetic.vectors)


@pytest.mark.parametrize("card", CARDS)
@pytest.mark.parametrize("pair", ["en-de", "de-en"])
def test_records_match_brute_force_reference(records, synthetic, dictionaries, card: str, pair: str) -> None:
    record = records[(card, pair)]
    method = "csls" if card == "muse-bli" else "nn"
    src, tgt = pair.split("-")
    # The synthetic file has no two spellings of one lowercased word, so MUSE's lowercase-first load
    # finds exactly the words the exact-then-capitalised fallback finds.
    expected = reference_bli(synthetic, dictionaries[pair], src, tgt, method, "fallback")
    details = record["details"]
    assert record["main_score_name"] == "p1" and record["languages"] == [src, tgt]
    assert record["protocol"] == load_card(REPO / f"tasks/{card}.toml").protocol
    assert details["method"] == method and details["case_policy"] == "muse" and details["max_vocab"] == 200000
    assert details["csls_k"] == (10 if method == "csls" else None)
    assert details["n_queries"] == expected["n_queries"]
    assert details["n_source_total"] == expected["n_source_total"] == record["n_items"] == 1500
    assert details["source_vocab_size"] == expected["source_vocab"]
    assert details["target_vocab_size"] == expected["target_vocab"]
    assert record["coverage"] == pytest.approx(expected["n_queries"] / 1500, abs=1e-15)
    # Float32 (mmbench) and float64 (here) can only disagree on queries with a near-tie.
    slack = 100 * expected["near_ties"] / expected["n_queries"]
    for key in ("p1", "p5", "p10"):
        assert record["scores"][key] == pytest.approx(expected[key], abs=slack + 1e-9), key
    mrr_slack = expected["near_ties"] / expected["n_queries"] + 1e-6
    assert record["scores"]["mrr"] == pytest.approx(expected["mrr"], abs=mrr_slack)
    assert 20 < record["scores"]["p1"] < 99  # real signal, not a trivial task


def test_csls_beats_nn_when_hubs_are_present(records) -> None:
    for pair in ("en-de", "de-en"):
        csls, nn = records[("muse-bli", pair)]["scores"], records[("muse-bli-nn", pair)]["scores"]
        assert csls["p1"] > nn["p1"] + 5


def test_exact_case_and_max_vocab(synthetic, dictionaries, shared_data: Path) -> None:
    model = WordVectors(VectorsConfig(), str(synthetic.path))
    model.prepare(mmbench.RunContext())
    card = load_card(REPO / "tasks/muse-bli-nn.toml")
    subset = next(s for s in card.subsets if s.name == "en-de")
    kind = bli_module.BilingualLexiconInduction()
    ctx = EvalContext(data_dir=shared_data)
    tuned = dataclasses.replace(card, params={**card.params, "case": "exact", "max_vocab": 2000})
    score = kind.evaluate(model, tuned, subset, ctx)
    expected = reference_bli(synthetic, dictionaries["en-de"], "en", "de", "nn", "exact", max_vocab=2000)
    fallback = reference_bli(synthetic, dictionaries["en-de"], "en", "de", "nn", "fallback", max_vocab=2000)
    assert expected["n_queries"] < fallback["n_queries"]  # capitalised German words need the fallback
    assert score.details["n_queries"] == expected["n_queries"]
    assert score.details["target_vocab_size"] == score.details["source_vocab_size"] == 2000
    assert score.coverage == pytest.approx(expected["n_queries"] / 1500, abs=1e-15)
    slack = 100 * expected["near_ties"] / expected["n_queries"] + 1e-9
    assert score.scores["p1"] == pytest.approx(expected["p1"], abs=slack)
    assert score.scores["p10"] == pytest.approx(expected["p10"], abs=slack)


def test_unknown_language_is_incompatible(synthetic, shared_data: Path) -> None:
    model = WordVectors(VectorsConfig(), str(synthetic.path))
    model.prepare(mmbench.RunContext())
    card = load_card(REPO / "tasks/muse-bli.toml")
    subset = next(s for s in card.subsets if s.name == "en-fr")
    with pytest.raises(Incompatible, match="'fr'"):
        bli_module.BilingualLexiconInduction().evaluate(model, card, subset, EvalContext(data_dir=shared_data))


def test_cards_validate_and_bad_params_are_reported() -> None:
    reg = registry()
    for name in CARDS:
        card = load_card(REPO / f"tasks/{name}.toml")
        validate_against_kind(reg, card)
        assert len(card.subsets) == 12 and card.main_score == "p1" and "seeds" in card.suites
    protocols = {load_card(REPO / f"tasks/{name}.toml").protocol for name in CARDS}
    assert len(protocols) == 2  # NN and CSLS records can never be confused
    card = load_card(REPO / "tasks/muse-bli.toml")
    kind = bli_module.BilingualLexiconInduction()
    bad = dataclasses.replace(card, params={"method": "cosine", "csls_k": 0, "max_vocab": True})
    problems = kind.validate(bad)
    assert any(p.startswith("params.method: 'cosine' is not one of") for p in problems)
    assert "params.csls_k: expected a positive integer, got 0" in problems
    assert "params.max_vocab: expected a positive integer, got True" in problems
    one = dataclasses.replace(card.subsets[0], languages=("en",), files=(), params={"method": "nn"})
    problems = kind.validate(dataclasses.replace(card, subsets=[one]))
    assert "subsets.en-de.params.method: set it on the card (it defines the protocol)" in problems
    assert "subsets.en-de.languages: give the pair [source, target]" in problems
    assert "subsets.en-de.files: a bli subset needs its dictionary file(s)" in problems
    with pytest.raises(CardError, match="params.method"):
        validate_against_kind(reg, bad)


def test_query_construction() -> None:
    rows = bli_module.resolve_rows(["paris", "hund", "emu"], {"paris": 0, "Hund": 1}, "fallback")
    assert rows == {"paris": 0, "hund": 1}
    assert bli_module.resolve_rows(["hund"], {"Hund": 1}, "exact") == {}
    queries, total = bli_module.bli_queries(
        ["a", "a", "b", "c", "c"], ["x", "y", "x", "z", "w"], {"a": 0, "b": 1, "c": 2}, {"x": 5, "y": 6}
    )
    assert queries == {0: {5, 6}, 1: {5}} and total == 3  # c has no in-vocabulary translation


def test_cli_validate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    monkeypatch.setattr(plugins, "_CACHED", None)
    assert_validate_reports_param(capsys, tmp_path, ("muse-bli", "muse-bli-nn"),
                                  'method = "csls"', 'method = "cosine"', "params.method")


# -- every model output is checked before scoring ----------------------------------------------------
class BadVocabulary(mmbench.Model):
    """en: cat, dog, emu (emu not found), de: katze, hund; ``corrupt`` spoils the en answers."""

    name = "bad-vocab"
    capabilities = frozenset({mmbench.Capability.WORDS})
    table = {"en": {"cat": [1.0, 0, 0], "dog": [0, 1.0, 0]}, "de": {"katze": [1.0, 0.1, 0], "hund": [0, 1.0, 0.1]}}

    def __init__(self, corrupt=None, vocabulary=None):
        super().__init__()
        self.corrupt = corrupt or (lambda v, f: (v, f))
        self.words = vocabulary

    def vocabulary(self, language):
        if language == "en":
            return self.words if self.words is not None else ["cat", "dog", "emu", "cat"]  # a repeat: 3 distinct
        return list(self.table[language])

    def embed_words(self, words, language):
        found = np.array([w in self.table[language] for w in words], dtype=bool)
        vectors = np.array([self.table[language].get(w, [0, 0, 0]) for w in words], dtype=np.float32)
        return self.corrupt(vectors, found) if language == "en" else (vectors, found)


def _spoil(v, row, value):
    v = v.copy()
    v[row, 0] = value
    return v


BAD_BLI_OUTPUTS = {
    "short rows": (lambda v, f: (v[:-1], f[:-1]), {}, "embed_words(en) returned 2 rows for 3 words"),
    "extra rows (the raw vocabulary with its repeat)": (
        lambda v, f: (np.vstack([v, v[:1]]), np.r_[f, f[:1]]), {}, "embed_words(en) returned 4 rows for 3 words"),
    "zero width": (lambda v, f: (v[:, :0], f), {}, "embed_words(en) returned 0-wide vectors for 3 words"),
    "ragged": (lambda v, f: ([v[0], v[1][:2], v[2]], f), {}, "embed_words(en) returned a ragged array"),
    "int dtype": (lambda v, f: (v.astype(np.int32), f), {}, "embed_words(en) returned int32 values for words"),
    "object dtype": (lambda v, f: (v.astype(object), f), {}, "embed_words(en) returned object values for words"),
    "NaN": (lambda v, f: (_spoil(v, 1, np.nan), f), {}, "embed_words(en) returned NaN for 1 of 3 words"),
    "+inf": (lambda v, f: (_spoil(v, 0, np.inf), f), {}, "embed_words(en) returned +inf for 1 of 3 words"),
    "-inf": (lambda v, f: (_spoil(v, 0, -np.inf), f), {}, "embed_words(en) returned -inf for 1 of 3 words"),
    "found mask short": (lambda v, f: (v, f[:2]), {},
                         "embed_words(en) returned a found mask of shape (2,) for 3 words"),
    "found mask int": (lambda v, f: (v, f.astype(int)), {}, "embed_words(en) returned a found mask of int64 values"),
    "vocabulary is a string": (None, {"vocabulary": "cat dog"}, "vocabulary(en) returned str, not a list of words"),
    "vocabulary is a number": (None, {"vocabulary": 0}, "vocabulary(en) returned int, not a list of words"),
    "vocabulary holds a non-word": (None, {"vocabulary": ["cat", None]},
                                    "vocabulary(en) returned a NoneType (None) among its words, not only str"),
}


@pytest.mark.parametrize("case", BAD_BLI_OUTPUTS, ids=list(BAD_BLI_OUTPUTS))
def test_bad_model_output_is_one_line_naming_model_and_method(case: str, tmp_path: Path) -> None:
    corrupt, kwargs, message = BAD_BLI_OUTPUTS[case]
    card = load_card(REPO / "tasks/muse-bli.toml")
    subset = next(s for s in card.subsets if s.name == "en-de")
    # The vocabularies are embedded and checked before any dictionary is read: no data needed.
    with pytest.raises(MMBenchError) as info:
        bli_module.BilingualLexiconInduction().evaluate(BadVocabulary(corrupt, **kwargs), card, subset,
                                                        EvalContext(data_dir=tmp_path))
    assert str(info.value).startswith(f"model 'bad-vocab' {message}")
    assert "\n" not in str(info.value) and not isinstance(info.value, Incompatible)


def test_source_and_target_vocabularies_of_different_widths(tmp_path: Path) -> None:
    card = load_card(REPO / "tasks/muse-bli.toml")
    subset = next(s for s in card.subsets if s.name == "en-de")
    wider = BadVocabulary(lambda v, f: (np.hstack([v, v]), f))
    with pytest.raises(MMBenchError, match=r"^model 'bad-vocab' returned 6-d vectors from embed_words\(en\) "
                                           r"but 3-d vectors from embed_words\(de\)$"):
        bli_module.BilingualLexiconInduction().evaluate(wider, card, subset, EvalContext(data_dir=tmp_path))


def test_limit_scores_only_the_first_source_words(synthetic, dictionaries, shared_data: Path) -> None:
    """--limit N: the first N distinct source words of the dictionary, each with all its translations."""
    model = WordVectors(VectorsConfig(), str(synthetic.path))
    model.prepare(mmbench.RunContext())
    card = load_card(REPO / "tasks/muse-bli-nn.toml")
    subset = next(s for s in card.subsets if s.name == "en-de")
    score = bli_module.BilingualLexiconInduction().evaluate(model, card, subset,
                                                            EvalContext(data_dir=shared_data, limit=7))
    assert score.n_items == 7 and score.details["n_queries"] <= 7
    full = bli_module.BilingualLexiconInduction().evaluate(model, card, subset, EvalContext(data_dir=shared_data))
    assert full.n_items == 1500
