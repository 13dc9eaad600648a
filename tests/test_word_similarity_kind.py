"""Word-similarity task kind end to end on the real crosslingual RG-65 files, checked independently.

The tests write a vectors file for the words of ``wordsim/crosslingual/en+de.rg65.{dev,test}.txt``
in which each pair's gold score leaks into a coordinate of its own (so the model has real signal),
leave some words out and spell some German words capitalised; then they recompute coverage,
Spearman and Pearson here from the raw files with NumPy/SciPy and compare with the kind's Score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

import mmbench
import mmbench.data.io as data_io
from mmbench import plugins
from mmbench.cards import load_card, parse_card
from mmbench.errors import MMBenchError
from mmbench.kinds import EvalContext
from mmbench.kinds.word_similarity import WordSimilarity, embed_vocabulary, lookup_variants
from mmbench.runner import RunOptions, resolve_model, run, select_cards
from mmbench_plugins.vectors import VectorsConfig, WordVectors

TASKS_DIR = Path(str(importlib.resources.files("mmbench_tasks")))
RG65_CARD = TASKS_DIR / "rg65-xling.toml"
EN_DE_FILES = ("wordsim/crosslingual/en+de.rg65.dev.txt", "wordsim/crosslingual/en+de.rg65.test.txt")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep the loaders' Arrow cache out of the user's cache directory.
    cache = tmp_path_factory.getbasetemp() / "arrow-cache"
    monkeypatch.setattr(data_io, "default_cache_dir", lambda: cache)


def read_pairs(paths: list[Path]) -> list[tuple[str, str, str, str, float]]:
    """Independent reader for 'en:cord<TAB>de:lächeln<TAB>0.01' lines."""
    pairs = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            left, right, score = line.split("\t")
            lang1, word1 = left.split(":", 1)
            lang2, word2 = right.split(":", 1)
            pairs.append((lang1, word1, lang2, word2, float(score)))
    return pairs


@dataclasses.dataclass
class Synthetic:
    pairs: list[tuple[str, str, str, str, float]]
    vectors: dict[tuple[str, str], np.ndarray]  # (language, data spelling) -> vector
    spelling: dict[tuple[str, str], str]  # spelling in the vectors file, for words that are written
    path: Path


def make_vectors(shared_data: Path, directory: Path) -> Synthetic:
    pairs = read_pairs([shared_data / p for p in EN_DE_FILES])
    words = sorted({(l1, w1) for l1, w1, _, _, _ in pairs} | {(l2, w2) for _, _, l2, w2, _ in pairs})
    rng = np.random.default_rng(7)
    dim = len(pairs) + 8
    # Values on a 1/1024 grid: exact in float32, so the file and this test see identical numbers.
    vectors = {w: rng.integers(-40, 41, size=dim).astype(np.float64) / 1024 for w in words}
    for i, (l1, w1, l2, w2, score) in enumerate(pairs):
        vectors[(l1, w1)][i] += 1.0
        vectors[(l2, w2)][i] += round(score * 256) / 1024  # gold score leaks into coordinate i
    spelling = {}
    for index, (language, word) in enumerate(words):
        if index % 6 == 5:
            continue  # out of vocabulary
        if language == "de" and index % 4 == 0 and word != word.capitalize():
            spelling[(language, word)] = word.capitalize()  # German nouns as a cased model writes them
        else:
            spelling[(language, word)] = word
    lines = [f"{len(spelling)} {dim}"]
    for (language, word), written in spelling.items():
        values = " ".join(repr(float(np.float32(v))) for v in vectors[(language, word)])
        lines.append(f"{language}:{written} {values}")
    path = directory / "en-de.vec"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Synthetic(pairs, vectors, spelling, path)


def expected_scores(data: Synthetic, case: str, oov: str = "drop") -> dict[str, float]:
    """Coverage, Spearman and Pearson computed directly from the pairs and the vectors we wrote."""

    def present(language: str, word: str) -> bool:
        written = data.spelling.get((language, word))
        if written is None:
            return False
        return written == word if case == "exact" else True  # fallback also tries the capitalised form

    found = np.array([present(l1, w1) and present(l2, w2) for l1, w1, l2, w2, _ in data.pairs])
    gold = np.array([s for *_, s in data.pairs])
    sims = np.zeros(len(data.pairs))
    for i, (l1, w1, l2, w2, _) in enumerate(data.pairs):
        if found[i]:
            a, b = data.vectors[(l1, w1)], data.vectors[(l2, w2)]
            sims[i] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    keep = found if oov == "drop" else np.ones(len(found), dtype=bool)
    return {
        "coverage": found.sum() / len(found),
        "n_found": int(found.sum()),
        "n_scored": int(keep.sum()),
        "spearman": spearmanr(sims[keep], gold[keep]).statistic,
        "pearson": pearsonr(sims[keep], gold[keep]).statistic,
    }


@pytest.fixture(scope="module")
def synthetic(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    return make_vectors(shared_data, tmp_path_factory.mktemp("vectors"))


@pytest.fixture(scope="module")
def model(synthetic: Synthetic) -> WordVectors:
    vectors = WordVectors(VectorsConfig(), str(synthetic.path))
    vectors.prepare(mmbench.RunContext())
    return vectors


def en_de(card):
    return next(s for s in card.subsets if s.name == "en-de")


def with_params(card, **params):
    return dataclasses.replace(card, params={**card.params, **params})


def test_synthetic_vectors_have_missing_and_capitalised_words(synthetic: Synthetic) -> None:
    # Guards the premise of the tests below.
    assert len(synthetic.pairs) == 125
    capitalised = [w for (l, w), s in synthetic.spelling.items() if s != w]
    assert len(capitalised) >= 5
    assert len(synthetic.spelling) < len(synthetic.vectors)


@pytest.mark.parametrize("case", ["fallback", "exact"])
def test_rg65_en_de_matches_independent_computation(
    model: WordVectors, synthetic: Synthetic, shared_data: Path, case: str
) -> None:
    card = with_params(load_card(RG65_CARD), case=case)
    score = WordSimilarity().evaluate(model, card, en_de(card), EvalContext(data_dir=shared_data))
    expected = expected_scores(synthetic, case)
    assert score.n_items == 125
    assert score.coverage == pytest.approx(expected["coverage"], abs=1e-12)
    assert score.details["n_pairs"] == 125
    assert score.details["n_found"] == expected["n_found"]
    assert score.details["n_scored"] == expected["n_scored"]  # oov=drop: only pairs with both words
    assert score.details["oov_policy"] == "drop" and score.details["case_policy"] == case
    assert score.details["degenerate"] is False
    assert score.scores["spearman"] == pytest.approx(expected["spearman"], abs=1e-9)
    assert score.scores["pearson"] == pytest.approx(expected["pearson"], abs=1e-9)
    assert score.scores["spearman"] > 0.5  # the leaked gold scores are real signal


def test_fallback_finds_capitalised_spellings_exact_does_not(
    model: WordVectors, synthetic: Synthetic, shared_data: Path
) -> None:
    card = load_card(RG65_CARD)
    ctx = EvalContext(data_dir=shared_data)
    fallback = WordSimilarity().evaluate(model, with_params(card, case="fallback"), en_de(card), ctx)
    exact = WordSimilarity().evaluate(model, with_params(card, case="exact"), en_de(card), ctx)
    assert fallback.coverage > exact.coverage
    # Every pair lost under 'exact' has a word that the file spells capitalised.
    lost = expected_scores(synthetic, "fallback")["n_found"] - expected_scores(synthetic, "exact")["n_found"]
    assert fallback.details["n_found"] - exact.details["n_found"] == lost > 0


def test_oov_zero_scores_every_pair(model: WordVectors, synthetic: Synthetic, shared_data: Path) -> None:
    card = with_params(load_card(RG65_CARD), oov="zero")
    score = WordSimilarity().evaluate(model, card, en_de(card), EvalContext(data_dir=shared_data))
    expected = expected_scores(synthetic, "fallback", oov="zero")
    assert score.details["n_scored"] == 125
    assert score.coverage == pytest.approx(expected["coverage"])
    assert score.scores["spearman"] == pytest.approx(expected["spearman"], abs=1e-9)


def test_capitalised_data_word_found_lowercase_in_vectors(tmp_path: Path) -> None:
    # The reverse case: the data spells 'Paris', the vectors file only has 'paris'.
    pairs = "en:Paris\tfr:ville\t2.5\nen:cat\tfr:chat\t3.9\nen:dog\tfr:Chat\t1.0\nen:Berlin\tfr:ville\t2.0\n"
    data = tmp_path / "pairs.txt"
    data.write_text(pairs, encoding="utf-8")
    vectors = tmp_path / "v.vec"
    vectors.write_text(
        "en:paris 1 0 0\nen:cat 0 1 0\nen:dog 0 0 1\nfr:ville 1 0.5 0\nfr:chat 0 1 0.2\n", encoding="utf-8"
    )
    model = WordVectors(VectorsConfig(), str(vectors))
    model.prepare(mmbench.RunContext())
    card_dict = {
        "name": "mini", "kind": "word-similarity", "description": "d", "main_score": "spearman",
        "protocol": "p", "license": "l", "citation": "c", "splits": ["test"], "base": "card",
        "subsets": [{"name": "en-fr", "languages": ["en", "fr"],
                     "files": [{"path": "pairs.txt", "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}]}],
    }
    card = parse_card(card_dict, "mini.toml", path=tmp_path / "mini.toml")
    ctx = EvalContext(data_dir=tmp_path / "unused")

    def evaluate(case: str):
        tuned = with_params(card, case=case)
        return WordSimilarity().evaluate(model, tuned, tuned.subsets[0], ctx)

    # fallback: Paris -> paris, Chat -> chat; Berlin is missing in every spelling.
    fallback = evaluate("fallback")
    assert fallback.details["n_found"] == 3 and fallback.coverage == pytest.approx(3 / 4)
    sims = [1 / np.sqrt(1.25), 1 / np.sqrt(1.04), 0.2 / np.sqrt(1.04)]
    assert fallback.scores["spearman"] == pytest.approx(spearmanr(sims, [2.5, 3.9, 1.0]).statistic)
    lower = evaluate("lower")
    assert lower.details["n_found"] == 3
    exact = evaluate("exact")
    assert exact.details["n_found"] == 1 and exact.coverage == pytest.approx(1 / 4)  # only cat/chat


def test_monolingual_subset_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    card = load_card(TASKS_DIR / "wordsim-en.toml")
    subset = next(s for s in card.subsets if s.name == "mc-30")
    (path,) = card.data_paths(subset, shared_data)
    rows = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    words = sorted({w for r in rows for w in r[:2]})
    rng = np.random.default_rng(3)
    table = {w: rng.integers(-50, 51, size=6) / 64 for w in words[1:]}  # words[0] is left out
    vec_path = tmp_path / "mc.txt"
    vec_path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in table.items()), encoding="utf-8")
    model = WordVectors(VectorsConfig(), str(vec_path))
    model.prepare(mmbench.RunContext())
    score = WordSimilarity().evaluate(model, card, subset, EvalContext(data_dir=shared_data))

    keep = [r for r in rows if r[0] in table and r[1] in table]
    sims = [table[a] @ table[b] / (np.linalg.norm(table[a]) * np.linalg.norm(table[b])) for a, b, _ in keep]
    assert score.n_items == len(rows) == 30
    assert score.coverage == pytest.approx(len(keep) / len(rows))
    assert len(keep) < len(rows)
    assert score.scores["spearman"] == pytest.approx(spearmanr(sims, [float(r[2]) for r in keep]).statistic, abs=1e-9)


# -- pieces ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "case", "variants"),
    [
        ("Paris", "exact", ["Paris"]),
        ("Paris", "lower", ["paris"]),
        ("paris", "fallback", ["paris", "Paris"]),
        ("PARIS", "fallback", ["PARIS", "paris", "Paris"]),
        ("new-york", "fallback", ["new-york", "New-york", "New-York"]),
        ("lächeln", "fallback", ["lächeln", "Lächeln"]),
    ],
)
def test_lookup_variants(word: str, case: str, variants: list[str]) -> None:
    assert lookup_variants(word, case) == variants


class SpyModel(mmbench.Model):
    """Knows a fixed table of words; records every embed_words call."""

    def __init__(self, known: dict[tuple[str, str], list[float]]):
        super().__init__()
        self.known = known
        self.calls: list[tuple[str, list[str]]] = []

    def embed_words(self, words, language):
        self.calls.append((language, list(words)))
        found = np.array([(language, w) in self.known for w in words], dtype=bool)
        vectors = np.array([self.known.get((language, w), [0.0, 0.0]) for w in words], dtype=np.float32)
        return vectors.reshape(len(words), 2), found


def test_embed_vocabulary_queries_each_word_once_per_spelling() -> None:
    model = SpyModel({("en", "cat"): [1, 0], ("en", "Dog"): [0, 1], ("de", "Katze"): [1, 1]})
    table = embed_vocabulary(model, {"en": {"cat", "dog", "emu"}, "de": {"katze"}}, "fallback")
    assert set(table) == {("en", "cat"), ("en", "dog"), ("en", "emu"), ("de", "katze")}
    np.testing.assert_array_equal(table[("en", "cat")], [1, 0])
    np.testing.assert_array_equal(table[("en", "dog")], [0, 1])
    np.testing.assert_array_equal(table[("de", "katze")], [1, 1])
    assert table[("en", "emu")] is None
    queried = [(lang, w) for lang, words in model.calls for w in words]
    assert len(queried) == len(set(queried))  # no spelling asked twice
    assert ("en", "cat") in queried and ("en", "Cat") not in queried  # found words are not retried
    assert ("en", "Emu") in queried


def test_validate_packaged_and_bad_cards() -> None:
    kind = WordSimilarity()
    for name in ("rg65-xling", "rg65-xling-extra", "wordsim-en"):
        assert kind.validate(load_card(TASKS_DIR / f"{name}.toml")) == []
    card = load_card(RG65_CARD)
    bad = dataclasses.replace(card, params={"oov": "ignore", "cased": True})
    problems = kind.validate(bad)
    assert any(p.startswith("params.oov: 'ignore' is not one of") for p in problems)
    assert any(p.startswith("params.cased: unknown parameter") for p in problems)
    three = dataclasses.replace(card.subsets[0], languages=("en", "de", "fr"), files=())
    problems = kind.validate(dataclasses.replace(card, subsets=[three]))
    assert "subsets.en-de.files: a word-similarity subset needs data files" in problems
    assert "subsets.en-de.languages: give one language or a pair" in problems


# -- every embed_words answer is checked before scoring ------------------------------------------------
MINI_PAIRS = "en:cat\tfr:chat\t3.9\nen:dog\tfr:chien\t3.1\nen:cat\tfr:ville\t0.4\nen:emu\tfr:chien\t1.0\n"
MINI_TABLE = {("en", "cat"): [1, 0, 0], ("en", "dog"): [0, 1, 0], ("fr", "chat"): [1, 0.1, 0],
              ("fr", "chien"): [0, 1, 0.2], ("fr", "ville"): [0, 0, 1]}  # en:emu is not found


class BadWords(mmbench.Model):
    """Embeds MINI_TABLE (en: cat, dog, emu -> found [T, T, F]); ``corrupt`` spoils the en answer."""

    name = "bad-words"
    capabilities = frozenset({mmbench.Capability.WORDS})

    def __init__(self, corrupt):
        super().__init__()
        self.corrupt = corrupt

    def embed_words(self, words, language):
        found = np.array([(language, w) in MINI_TABLE for w in words], dtype=bool)
        vectors = np.array([MINI_TABLE.get((language, w), [0, 0, 0]) for w in words], dtype=np.float32)
        return self.corrupt(vectors, found, language)


def _with(v, row, value):
    v = v.copy()
    v[row, 1] = value
    return v


def _evaluate_mini(model, tmp_path: Path):
    data = tmp_path / "pairs.txt"
    data.write_text(MINI_PAIRS, encoding="utf-8")
    card = parse_card({
        "name": "mini", "kind": "word-similarity", "description": "d", "main_score": "spearman", "protocol": "p",
        "license": "l", "citation": "c", "splits": ["test"], "base": "card", "params": {"case": "exact"},
        "subsets": [{"name": "en-fr", "languages": ["en", "fr"],
                     "files": [{"path": "pairs.txt", "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}]}],
    }, "mini.toml", path=tmp_path / "mini.toml")
    return WordSimilarity().evaluate(model, card, card.subsets[0], EvalContext(data_dir=tmp_path))


def en_only(spoil):
    return lambda v, f, language: spoil(v, f) if language == "en" else (v, f)


BAD_WORD_OUTPUTS = {
    "short rows": (lambda v, f: (v[:-1], f[:-1]), "returned 2 rows for 3 words"),
    "extra rows": (lambda v, f: (np.vstack([v, v[:1]]), f), "returned 4 rows for 3 words"),
    "zero width": (lambda v, f: (np.zeros((3, 0), np.float32), f), "returned 0-wide vectors for 3 words"),
    "ragged": (lambda v, f: ([v[0], v[1], v[2][:2]], f), "returned a ragged array for 3 words"),
    "one-dimensional": (lambda v, f: (v[:, 0], f), "returned an array of shape (3,) for 3 words, not (3, d)"),
    "int dtype": (lambda v, f: (v.astype(np.int64), f), "returned int64 values for words, not floating-point"),
    "object dtype": (lambda v, f: (v.astype(object), f), "returned object values for words, not floating-point"),
    "str dtype": (lambda v, f: (v.astype(str), f), "returned <U32 values for words, not floating-point"),
    "NaN": (lambda v, f: (_with(v, 0, np.nan), f), "returned NaN for 1 of 3 words"),
    "+inf": (lambda v, f: (_with(v, 1, np.inf), f), "returned +inf for 1 of 3 words"),
    "-inf": (lambda v, f: (_with(v, 0, -np.inf), f), "returned -inf for 1 of 3 words"),
    "NaN and -inf": (lambda v, f: (_with(_with(v, 0, np.nan), 1, -np.inf), f),
                     "returned NaN and -inf for 2 of 3 words"),
    "found mask short": (lambda v, f: (v, f[:-1]), "returned a found mask of shape (2,) for 3 words, not (3,)"),
    "found mask 2-d": (lambda v, f: (v, f[:, None]), "returned a found mask of shape (3, 1) for 3 words"),
    "found mask int": (lambda v, f: (v, f.astype(np.int64)), "returned a found mask of int64 values, not bool"),
    "found mask float": (lambda v, f: (v, f.astype(np.float32)), "returned a found mask of float32 values, not bool"),
    "no found mask": (lambda v, f: v, "returned ndarray, not a (vectors, found) pair"),
}


@pytest.mark.parametrize("case", BAD_WORD_OUTPUTS, ids=list(BAD_WORD_OUTPUTS))
def test_bad_embed_words_output_is_one_line_naming_model_and_method(case: str, tmp_path: Path) -> None:
    spoil, message = BAD_WORD_OUTPUTS[case]
    with pytest.raises(MMBenchError) as info:
        _evaluate_mini(BadWords(en_only(spoil)), tmp_path)
    assert str(info.value).startswith("model 'bad-words' embed_words(en) ")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_languages_of_different_widths_are_an_error(tmp_path: Path) -> None:
    wider = BadWords(lambda v, f, language: (np.hstack([v, v[:, :1]]) if language == "fr" else v, f))
    with pytest.raises(MMBenchError, match=r"^model 'bad-words' returned 3-d vectors from embed_words\(en\) "
                       r"but 4-d vectors from embed_words\(fr\)$"):
        _evaluate_mini(wider, tmp_path)


def test_rows_of_words_not_found_are_not_read_so_any_value_is_accepted(tmp_path: Path) -> None:
    # The documented choice: only found rows must be finite (emu, row 2, is not found).
    clean = _evaluate_mini(BadWords(lambda v, f, language: (v, f)), tmp_path)
    for value in (np.nan, np.inf, -np.inf):
        score = _evaluate_mini(BadWords(en_only(lambda v, f, value=value: (_with(v, 2, value), f))), tmp_path)
        assert score.scores == clean.scores and score.coverage == clean.coverage == 3 / 4


class ShortRows(mmbench.Model):
    """The reported defect: every embed_words answer is one row short (the last word is missing)."""

    name = "test-short-rows"
    capabilities = frozenset({mmbench.Capability.WORDS})

    def embed_words(self, words, language):
        return np.ones((len(words) - 1, 4), dtype=np.float32), np.ones(len(words) - 1, dtype=bool)


def test_short_rows_on_rg65_are_an_error_line_not_a_record(shared_data: Path, tmp_path: Path) -> None:
    module = types.ModuleType("short_rows_test_models")
    module.register_models = mmbench.hookimpl(lambda register: register(ShortRows))
    registry = plugins.load_plugins(extra_modules=(module,))[1]
    cards = select_cards(registry, ["rg65-xling"], [])
    outcomes = run(registry, [resolve_model(registry, "test-short-rows")], cards,
                   RunOptions(results_dir=tmp_path / "results", data_dir=shared_data))
    assert outcomes and {o.status for o in outcomes} == {"error"}
    en_de = next(o for o in outcomes if o.subset == "en-de")
    assert en_de.message == "model 'test-short-rows' embed_words(en) returned 47 rows for 48 words"
    assert not list((tmp_path / "results").rglob("*.json"))


def test_limit_scores_the_first_pairs_only(tmp_path):
    """--limit N keeps the first N pairs of the subset's files (EvalContext.limit), so coverage and n_items
    describe those N."""
    data = tmp_path / "sim.txt"
    data.write_text("cat\tdog\t8\ncar\tbus\t6\ncat\tcar\t2\nsun\tmoon\t5\n", encoding="utf-8")
    card_path = tmp_path / "tiny.toml"
    card_path.write_text(
        'name = "tiny"\nkind = "word-similarity"\ndescription = "d"\nmain_score = "spearman"\n'
        'protocol = "p"\nlicense = "l"\ncitation = "c"\nsplits = ["test"]\nbase = "card"\n'
        '[[subsets]]\nname = "en"\nlanguages = ["en"]\nfiles = ["sim.txt"]\n', encoding="utf-8")
    card = load_card(card_path)

    class Letters:
        name = "letters"

        def embed_words(self, words, language):
            vectors = np.array([[len(w), ord(w[0]) % 7 + 1.0] for w in words], dtype=np.float32)
            return vectors, np.ones(len(words), dtype=bool)

    limited = WordSimilarity().evaluate(Letters(), card, card.subsets[0], EvalContext(data_dir=tmp_path, limit=3))
    full = WordSimilarity().evaluate(Letters(), card, card.subsets[0], EvalContext(data_dir=tmp_path))
    assert limited.n_items == 3 and full.n_items == 4
