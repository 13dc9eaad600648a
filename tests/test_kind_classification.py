"""Document-classification kind on the real RCV (Klementiev et al. 2012) and SIB-200 files.

The word vectors carry real, test-independent signal: each word's vector is its smoothed label
distribution in the *train* split of its language (words seen in one train document only are left
out, so coverage is below 1). The tests run the packaged ``rcv`` and ``sib200`` cards through the
harness and recompute tokens, idf, document vectors and coverage here from the raw files; the
classifier is the library's averaged perceptron, fed with the independently built vectors.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import math
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_validate_reports_param
from mmbench_plugins.vectors import VectorsConfig, WordVectors

import mmbench
import mmbench.kinds.classification as classification_module
from mmbench import plugins
from mmbench.cards import DataFile, load_card
from mmbench.errors import DataError, MMBenchError
from mmbench.kinds import EvalContext
from mmbench.metrics.classification import train_eval_linear
from mmbench.models import Incompatible
from mmbench.runner import (
    RunOptions,
    resolve_model,
    run,
    select_cards,
    validate_against_kind,
)

REPO = Path(__file__).resolve().parents[1]
RCV_LABELS = ("CCAT", "ECAT", "GCAT", "MCAT")
SIB_LABELS = ("entertainment", "geography", "health", "politics", "science/technology", "sports", "travel")
SIB_FOLDERS = {"en": "eng_Latn", "hi": "hin_Deva"}


def registry():
    """The plugin registry; the classification kind is a core (default) plugin."""
    assert classification_module.__name__ in plugins.DEFAULT_PLUGINS
    return plugins.load_plugins()[1]


# -- independent readers and reference computation ------------------------------------------------
def read_rcv(root: Path, language: str, split: str) -> tuple[list[list[str]], list[str]]:
    with gzip.open(root / f"rcv/{language}.{split}.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [r["text"].lower().split() for r in rows], [r["label"] for r in rows]


def strip_edges(token: str) -> str:
    keep = [unicodedata.category(ch)[0] not in "PS" for ch in token]
    if not any(keep):
        return ""
    first, last = keep.index(True), len(keep) - 1 - keep[::-1].index(True)
    return token[first : last + 1]


def read_sib(root: Path, folder: str, split: str) -> tuple[list[list[str]], list[str]]:
    with gzip.open(root / f"sib200/{folder}/{split}.tsv.gz", "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read()), delimiter="\t"))
    docs = [[t for t in (strip_edges(w) for w in r["text"].split()) if t] for r in rows]
    return [[t.lower() for t in d] for d in docs], [r["category"] for r in rows]


def label_vectors(docs: list[list[str]], labels: list[str], classes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Smoothed P(label | word) minus the uniform prior, on a 1/1024 grid; words in >= 2 documents."""
    counts: dict[str, np.ndarray] = {}
    for doc, label in zip(docs, labels):
        for word in set(doc):
            counts.setdefault(word, np.zeros(len(classes)))[classes.index(label)] += 1
    return {
        w: np.round(((c + 1) / (c.sum() + len(classes)) - 1 / len(classes)) * 1024) / 1024
        for w, c in counts.items() if c.sum() >= 2
    }


def write_vectors(tables: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for language, table in tables.items():
            handle.writelines(
                f"{language}:{word} " + " ".join(repr(float(x)) for x in vector) + "\n" for word, vector in table.items()
            )
    return path


def reference_idf(docs: list[list[str]]) -> dict[str, float]:
    df = Counter(w for doc in docs for w in set(doc))
    return {w: math.log(len(docs) / n) for w, n in df.items()}


def reference_documents(docs, table, idf, weighting: str) -> np.ndarray:
    """Per document: sum(count * idf * v) / norm over distinct words with a vector and an idf."""
    words = sorted(table)
    column = {w: i for i, w in enumerate(words)}
    matrix = np.array([table[w] for w in words])
    rows, columns, weights = [], [], []
    for row, doc in enumerate(docs):
        counts = {w: c for w, c in Counter(doc).items() if w in table and w in idf}
        norm = sum(idf[w] * (1 if weighting == "klementiev" else c) for w, c in counts.items())
        for w, c in counts.items():
            rows.append(row)
            columns.append(column[w])
            weights.append(c * idf[w] / norm)
    out = np.zeros((len(docs), matrix.shape[1]))
    np.add.at(out, np.array(rows), np.array(weights)[:, None] * matrix[np.array(columns)])
    return out.astype(np.float32)


def reference(train, test, test_idf_docs, tables, train_lang, test_lang, weighting="klementiev", seed=0):
    (train_docs, train_labels), (test_docs, test_labels) = train, test
    train_x = reference_documents(train_docs, tables[train_lang], reference_idf(train_docs), weighting)
    test_x = reference_documents(test_docs, tables[test_lang], reference_idf(test_idf_docs), weighting)
    result = train_eval_linear(train_x, train_labels, test_x, test_labels, seed=seed, epochs=10)
    n_tokens = sum(len(d) for d in test_docs)
    result["coverage"] = sum(1 for d in test_docs for t in d if t in tables[test_lang]) / n_tokens
    return result


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rcv(shared_data: Path) -> dict[tuple[str, str], tuple[list[list[str]], list[str]]]:
    return {(lang, split): read_rcv(shared_data, lang, split) for lang in ("en", "de") for split in ("train", "test")}


@pytest.fixture(scope="module")
def rcv_tables(rcv) -> dict[str, dict[str, np.ndarray]]:
    return {lang: label_vectors(*rcv[(lang, "train")], RCV_LABELS) for lang in ("en", "de")}


@pytest.fixture(scope="module")
def rcv_vectors(rcv_tables, tmp_path_factory) -> Path:
    return write_vectors(rcv_tables, tmp_path_factory.mktemp("rcv") / "en-de.vec")


def run_card(shared_data: Path, vectors: Path, card_name: str, directory: Path) -> tuple[dict, dict]:
    reg = registry()
    outcomes = run(reg, [resolve_model(reg, f"vectors:{vectors}")], select_cards(reg, [card_name], []),
                   RunOptions(results_dir=directory, data_dir=shared_data))
    done = {o.subset: json.loads(o.path.read_text()) for o in outcomes if o.status == "done"}
    status = {o.subset: o.status for o in outcomes}
    return done, status


@pytest.fixture(scope="module")
def rcv_records(shared_data: Path, rcv_vectors: Path, tmp_path_factory) -> dict[str, dict]:
    done, status = run_card(shared_data, rcv_vectors, "rcv", tmp_path_factory.mktemp("rcv-results"))
    # Languages the vectors lack are skips; no 'all' record because not every subset was scored.
    assert set(done) == {"en", "de", "en-de", "de-en"}, status
    assert sorted(s for s, v in status.items() if v == "skipped") == ["da", "es", "fr", "it", "sv"]
    return done


# -- RCV ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("subset", "train_lang", "test_lang"),
                         [("en", "en", "en"), ("de", "de", "de"), ("en-de", "en", "de"), ("de-en", "de", "en")])
def test_rcv_records_match_reference(rcv_records, rcv, rcv_tables, subset, train_lang, test_lang) -> None:
    record = rcv_records[subset]
    expected = reference(rcv[(train_lang, "train")], rcv[(test_lang, "test")], rcv[(test_lang, "train")][0],
                         rcv_tables, train_lang, test_lang)
    details = record["details"]
    assert record["languages"] == ([train_lang] if train_lang == test_lang else [train_lang, test_lang])
    assert record["main_score_name"] == "accuracy" and record["protocol"] == load_card(REPO / "tasks/rcv.toml").protocol
    assert details["train_language"] == train_lang and details["test_language"] == test_lang
    assert details["n_train"] == 1000 and details["n_test"] == record["n_items"] == expected["n_test"] == 5000
    assert details["n_classes"] == 4 and details["weighting"] == "klementiev" and details["epochs"] == 10
    assert record["coverage"] == pytest.approx(expected["coverage"], abs=1e-15)
    assert 0.8 < record["coverage"] < 1.0  # words seen in a single train document have no vector
    assert record["scores"]["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)
    assert record["scores"]["accuracy"] > 60  # chance is 25% (four labels)


def test_language_the_model_lacks_is_incompatible(rcv_vectors, shared_data: Path) -> None:
    model = WordVectors(VectorsConfig(), str(rcv_vectors))
    model.prepare(mmbench.RunContext())
    card = load_card(REPO / "tasks/rcv.toml")
    subset = next(s for s in card.subsets if s.name == "fr")
    with pytest.raises(Incompatible, match="'fr'"):
        classification_module.DocumentClassification().evaluate(model, card, subset, EvalContext(data_dir=shared_data))


# -- SIB-200 -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sib(shared_data: Path) -> dict:
    return {(lang, split): read_sib(shared_data, folder, split)
            for lang, folder in SIB_FOLDERS.items() for split in ("train", "test")}


@pytest.fixture(scope="module")
def sib_tables(sib) -> dict[str, dict[str, np.ndarray]]:
    return {lang: label_vectors(*sib[(lang, "train")], SIB_LABELS) for lang in SIB_FOLDERS}


@pytest.fixture(scope="module")
def sib_vectors(sib_tables, tmp_path_factory) -> Path:
    return write_vectors(sib_tables, tmp_path_factory.mktemp("sib") / "en-hi.vec")


def test_sib200_records_match_reference(sib, sib_tables, sib_vectors, shared_data: Path, tmp_path: Path) -> None:
    done, status = run_card(shared_data, sib_vectors, "sib200", tmp_path)
    assert set(done) == {"en", "hi"} and list(status.values()).count("skipped") == 18
    for lang in SIB_FOLDERS:
        record = done[lang]
        expected = reference(sib[(lang, "train")], sib[(lang, "test")], sib[(lang, "train")][0], sib_tables, lang, lang)
        assert record["details"]["n_train"] == 701 and record["n_items"] == 204 and record["details"]["n_classes"] == 7
        assert record["details"]["tokenizer"] == "words"
        assert record["coverage"] == pytest.approx(expected["coverage"], abs=1e-15)
        assert record["scores"]["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)
        assert record["scores"]["accuracy"] > 40  # chance is 1/7 = 14%


@pytest.mark.parametrize("seed", [0, 5])
def test_mean_weighting_and_seed_match_reference(sib, sib_tables, sib_vectors, shared_data: Path, seed: int) -> None:
    model = WordVectors(VectorsConfig(), str(sib_vectors))
    model.prepare(mmbench.RunContext())
    card = load_card(REPO / "tasks/sib200.toml")
    card = dataclasses.replace(card, params={**card.params, "weighting": "mean"})
    subset = next(s for s in card.subsets if s.name == "en")
    score = classification_module.DocumentClassification().evaluate(
        model, card, subset, EvalContext(data_dir=shared_data, seed=seed))
    expected = reference(sib[("en", "train")], sib[("en", "test")], sib[("en", "train")][0], sib_tables,
                         "en", "en", weighting="mean", seed=seed)
    assert score.details["weighting"] == "mean"
    assert score.scores["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)


# -- cards and pieces --------------------------------------------------------------------------------
def test_cards_validate() -> None:
    reg = registry()
    rcv = validate_against_kind(reg, load_card(REPO / "tasks/rcv.toml"))
    assert [s.name for s in rcv.subsets] == ["en", "de", "fr", "es", "it", "da", "sv", "en-de", "de-en"]
    sib = validate_against_kind(reg, load_card(REPO / "tasks/sib200.toml"))
    assert len(sib.subsets) == 20 and all(len(s.files) == 3 for s in sib.subsets)
    assert "seeds" in rcv.suites and "seeds" in sib.suites


def test_bad_cards_are_reported(shared_data: Path) -> None:
    kind = classification_module.DocumentClassification()
    card = load_card(REPO / "tasks/rcv.toml")
    transfer = next(s for s in card.subsets if s.name == "en-de")
    short = dataclasses.replace(transfer, files=transfer.files[:3])  # de.test left out
    problems = kind.validate(dataclasses.replace(card, subsets=[short], params={**card.params, "weighting": "max",
                                                                                 "epochs": 0}))
    assert "subsets.en-de.files: missing rcv/de.test.jsonl.gz (the rcv loader reads it)" in problems
    assert any(p.startswith("params.weighting: 'max' is not one of") for p in problems)
    assert "params.epochs: expected a positive integer, got 0" in problems
    assert "params.dataset: required, one of 'rcv', 'sib200'" in kind.validate(dataclasses.replace(card, params={}))
    three = dataclasses.replace(transfer, languages=("en",), params={"epochs": 3})
    problems = kind.validate(dataclasses.replace(card, subsets=[three]))
    assert "subsets.en-de.params: set parameters on the card (they define the protocol)" in problems
    assert "subsets.en-de.files: files name 2 data language(s) ['en', 'de'] for 1 subset language(s)" in problems
    stray = dataclasses.replace(transfer, files=(*transfer.files, DataFile("rcv/notes.txt", None, "data")))
    problems = kind.validate(dataclasses.replace(card, subsets=[stray]))
    assert problems == [
        "subsets.en-de.files: 'rcv/notes.txt' is not a rcv file under the data root (rcv/{language}.{split}.jsonl.gz)"
    ]
    with pytest.raises(DataError, match="notes.txt"):
        kind.evaluate(None, dataclasses.replace(card, subsets=[stray]), stray, EvalContext(data_dir=shared_data))


@pytest.mark.parametrize(
    ("text", "tokenizer", "case", "tokens"),
    [
        ("Der Euro fiel .", "whitespace", "lower", ["der", "euro", "fiel", "."]),
        ("Der Euro fiel .", "whitespace", "exact", ["Der", "Euro", "fiel", "."]),
        ('"Paris," said (Reuters) 12.5% ...', "words", "lower", ["paris", "said", "reuters", "12.5"]),
        ("मुस्कुराता चेहरा।", "words", "lower", ["मुस्कुराता", "चेहरा"]),
        ("l'homme «vite»", "words", "fallback", ["l'homme", "vite"]),
    ],
)
def test_tokenize(text: str, tokenizer: str, case: str, tokens: list[str]) -> None:
    assert classification_module.tokenize(text, tokenizer, case) == tokens


def test_cli_validate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    monkeypatch.setattr(plugins, "_CACHED", None)
    assert_validate_reports_param(capsys, tmp_path, ("rcv", "sib200"),
                                  'dataset = "rcv"', 'dataset = "reuters"', "params.dataset")


# -- every embed_words answer is checked before scoring ----------------------------------------------
TINY_RCV = {
    "train": [("CCAT", "shares rose in early trading"), ("ECAT", "inflation data surprised the bank"),
              ("GCAT", "the minister met the press"), ("MCAT", "gold prices fell in trading")],
    "test": [("CCAT", "shares fell"), ("GCAT", "the minister spoke")],
}
TINY_WORDS = sorted({w for docs in TINY_RCV.values() for _, text in docs for w in text.split()})


def _spoil(v, value):
    v = v.copy()
    v[1, 2] = value
    return v


# name -> (spoils (vectors, found), the error line's tail for n = len(TINY_WORDS) words)
BAD_WORDS = {
    "short rows": (lambda v, f: (v[:-1], f[:-1]), lambda n: f"returned {n - 1} rows for {n} words"),
    "extra rows": (lambda v, f: (np.vstack([v, v]), f), lambda n: f"returned {2 * n} rows for {n} words"),
    "ragged": (lambda v, f: ([*v[:-1], v[-1][:1]], f),
               lambda n: f"returned a ragged array for {n} words (rows of different lengths)"),
    "zero width": (lambda v, f: (v[:, :0], f), lambda n: f"returned 0-wide vectors for {n} words"),
    "int dtype": (lambda v, f: (v.astype(np.int64), f),
                  lambda n: "returned int64 values for words, not floating-point numbers"),
    "object dtype": (lambda v, f: (v.astype(object), f),
                     lambda n: "returned object values for words, not floating-point numbers"),
    "NaN": (lambda v, f: (_spoil(v, np.nan), f), lambda n: f"returned NaN for 1 of {n} words"),
    "+inf": (lambda v, f: (_spoil(v, np.inf), f), lambda n: f"returned +inf for 1 of {n} words"),
    "-inf": (lambda v, f: (_spoil(v, -np.inf), f), lambda n: f"returned -inf for 1 of {n} words"),
    "found mask long": (lambda v, f: (v, np.r_[f, True]),
                        lambda n: f"returned a found mask of shape ({n + 1},) for {n} words, not ({n},)"),
    "found mask int": (lambda v, f: (v, f.astype(np.uint8)),
                       lambda n: "returned a found mask of uint8 values, not bool"),
}


class BadWords(mmbench.Model):
    name = "test-bad-words"
    capabilities = frozenset({mmbench.Capability.WORDS})

    def __init__(self, case):
        super().__init__()
        self.case = case

    def embed_words(self, words, language):
        rng = np.random.default_rng(len(words))
        return BAD_WORDS[self.case][0](rng.standard_normal((len(words), 4)).astype(np.float32),
                                       np.ones(len(words), dtype=bool))


@pytest.mark.parametrize("case", BAD_WORDS, ids=list(BAD_WORDS))
def test_bad_embed_words_output_is_one_line_naming_model_and_method(case: str, tmp_path: Path) -> None:
    for split, docs in TINY_RCV.items():
        (tmp_path / "rcv").mkdir(exist_ok=True)
        with gzip.open(tmp_path / f"rcv/en.{split}.jsonl.gz", "wt", encoding="utf-8") as handle:
            handle.writelines(json.dumps({"id": str(i), "label": label, "text": text}) + "\n"
                              for i, (label, text) in enumerate(docs))
    card = load_card(REPO / "tasks/rcv.toml")
    subset = next(s for s in card.subsets if s.name == "en")
    with pytest.raises(MMBenchError) as info:
        classification_module.DocumentClassification().evaluate(BadWords(case), card, subset,
                                                                 EvalContext(data_dir=tmp_path))
    assert str(info.value) == f"model 'test-bad-words' embed_words(en) {BAD_WORDS[case][1](len(TINY_WORDS))}"
