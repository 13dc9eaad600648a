"""Klementiev-style document vectors, idf and the averaged perceptron against loop references."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from mmbench.metrics import (
    document_vectors,
    fit_averaged_perceptron,
    idf_weights,
    train_eval_linear,
)


# ---------------------------------------------------------------- reference
def ref_idf(docs):
    df = {}
    for doc in docs:
        for word in set(doc):
            df[word] = df.get(word, 0) + 1
    return {w: math.log(len(docs) / d) for w, d in df.items()}


def ref_document_vectors(docs, lookup, idf, weighting, unknown_idf, dim):
    """As CollectionPreprocessor.computeDocumentRepr: per distinct word count * idf * v / norm."""
    out, used, total = np.zeros((len(docs), dim)), 0, 0
    for row, doc in enumerate(docs):
        counts = {}
        for token in doc:
            counts[token] = counts.get(token, 0) + 1
        total += len(doc)
        known = {}
        for word, count in counts.items():
            weight = 1.0 if idf is None else idf.get(word, unknown_idf)
            if word in lookup and weight is not None:
                known[word] = (count, weight)
                used += count
        if weighting == "klementiev":
            norm = sum(w for _, w in known.values())
        else:
            norm = sum(c * w for c, w in known.values())
        if norm != 0:
            for word, (count, weight) in known.items():
                out[row] += weight * np.asarray(lookup[word]) * count / norm
    return out, (used / total if total else 0.0)


def ref_averaged_perceptron(x, y, n_classes, epochs, seed):
    features = np.hstack([np.asarray(x, float), np.ones((len(x), 1))])
    weights = np.zeros((n_classes, features.shape[1]))
    running_sum, steps = np.zeros_like(weights), 0
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for i in rng.permutation(len(y)):
            scores = [float(weights[c] @ features[i]) for c in range(n_classes)]
            predicted = scores.index(max(scores))  # first maximum
            if predicted != y[i]:
                weights[y[i]] += features[i]
                weights[predicted] -= features[i]
            running_sum += weights
            steps += 1
    return running_sum / steps


# ---------------------------------------------------------------- idf and document vectors
def test_idf_hand_computed():
    idf = idf_weights([["a", "b", "a"], ["a"], ["c"], []])
    assert idf == pytest.approx({"a": math.log(4 / 2), "b": math.log(4), "c": math.log(4)})
    assert idf_weights([]) == {}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighting", ["klementiev", "mean"])
@pytest.mark.parametrize("idf_mode", ["none", "train", "train+unknown"])
def test_document_vectors_match_reference(seed, weighting, idf_mode):
    rng = np.random.default_rng(seed)
    vocabulary = [f"w{i}" for i in range(30)]
    docs = [list(rng.choice(vocabulary, size=rng.integers(0, 12))) for _ in range(15)]
    lookup = {w: rng.normal(size=5) for w in vocabulary[:22]}  # w22..w29 have no vector
    idf = None if idf_mode == "none" else ref_idf(docs[:8])  # words only in docs 8.. have no idf
    unknown = 3.0 if idf_mode == "train+unknown" else None
    got, coverage = document_vectors(docs, lookup, idf, weighting=weighting, unknown_idf=unknown)
    want, want_coverage = ref_document_vectors(docs, lookup, idf, weighting, unknown, 5)
    assert got.dtype == np.float32 and got.shape == (15, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert coverage == pytest.approx(want_coverage)


def test_document_vectors_hand_computed():
    lookup = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    idf = {"a": 1.0, "b": 3.0, "c": 2.0}
    docs = [["a", "a", "b", "c"], ["c", "zzz"], []]
    klementiev, coverage = document_vectors(docs, lookup, idf)
    # (2 * 1 * a + 1 * 3 * b) / (1 + 3): the reference divides by idf over distinct words
    np.testing.assert_allclose(klementiev[0], [0.5, 0.75])
    np.testing.assert_array_equal(klementiev[1:], 0.0)  # no known token -> zero vector
    assert coverage == pytest.approx(3 / 6)
    mean, _ = document_vectors(docs, lookup, idf, weighting="mean")
    np.testing.assert_allclose(mean[0], [0.4, 0.6])  # (2a + 3b) / 5


def test_document_vectors_bad_input():
    with pytest.raises(ValueError, match="empty"):
        document_vectors([["a"]], {})
    matrix, coverage = document_vectors([], {}, dim=4)
    assert matrix.shape == (0, 4) and coverage == 0.0
    with pytest.raises(ValueError, match="'a'"):
        document_vectors([["a", "b"]], {"b": np.ones(3), "a": np.ones(2)})
    with pytest.raises(ValueError, match="weighting"):
        document_vectors([["a"]], {"a": np.ones(2)}, weighting="sum")


# ---------------------------------------------------------------- averaged perceptron
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("epochs", [1, 10])
def test_averaged_perceptron_matches_reference(seed, epochs):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 5))
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0.5)
    got = fit_averaged_perceptron(x, y.tolist(), 4, epochs=epochs, seed=seed)
    np.testing.assert_allclose(got, ref_averaged_perceptron(x, y.tolist(), 4, epochs, seed), atol=1e-9)


def test_train_eval_hand_computed_and_deterministic():
    x = np.array([[2.0, 0.0], [3.0, 1.0], [-2.0, 0.0], [-3.0, -1.0]])
    labels = ["pos", "pos", "neg", "neg"]
    result = train_eval_linear(x, labels, np.array([[5.0, 0.0], [-5.0, 0.0]]), ["pos", "neg"])
    correct = result.pop("correct")
    assert result == {"accuracy": 100.0, "n_train": 4, "n_test": 2, "n_classes": 2}
    assert correct.tolist() == [True, True]
    unseen = train_eval_linear(x, labels, np.array([[5.0, 0.0]]), ["other"])
    assert unseen["accuracy"] == 0.0
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(50, 3)), rng.integers(0, 3, size=50).tolist()
    first, again = train_eval_linear(xs, ys, xs, ys, seed=4), train_eval_linear(xs, ys, xs, ys, seed=4)
    assert np.array_equal(first.pop("correct"), again.pop("correct")) and first == again


def test_train_eval_edge_cases():
    assert train_eval_linear(np.ones((2, 2)), [0, 1], np.zeros((0, 2)), [])["n_test"] == 0
    assert train_eval_linear(np.ones((1, 2)), [7], np.ones((1, 2)), [7])["accuracy"] == 100.0  # single item
    with pytest.raises(ValueError, match="no training"):
        train_eval_linear(np.zeros((0, 2)), [], np.ones((1, 2)), [0])
    with pytest.raises(ValueError, match="test_x"):
        train_eval_linear(np.ones((2, 2)), [0, 1], np.ones((1, 3)), [0])
    with pytest.raises(ValueError, match="NaN"):
        train_eval_linear(np.full((2, 2), np.nan), [0, 1], np.ones((1, 2)), [0])


# ---------------------------------------------------------------- real data
def read_rcv(path, stride):
    """Every ``stride``-th document (the files are sorted by label)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for i, line in enumerate(handle) if i % stride == 0]
    return [row["text"].lower().split() for row in rows], [row["label"] for row in rows]


def test_real_rcv_documents(shared_data):
    train_docs, train_labels = read_rcv(shared_data / "rcv" / "en.train.jsonl.gz", 3)
    test_docs, test_labels = read_rcv(shared_data / "rcv" / "en.test.jsonl.gz", 25)
    rng = np.random.default_rng(0)
    vocabulary = sorted({w for doc in train_docs for w in doc})
    lookup = {w: rng.normal(size=64) for w in vocabulary}  # random word vectors: a random projection of BoW
    idf = idf_weights(train_docs)
    train_x, coverage = document_vectors(train_docs, lookup, idf)
    want, _ = ref_document_vectors(train_docs[:30], lookup, idf, "klementiev", None, 64)
    np.testing.assert_allclose(train_x[:30], want, rtol=1e-4, atol=1e-5)
    assert coverage == 1.0
    test_x, test_coverage = document_vectors(test_docs, lookup, idf)
    assert 0.5 < test_coverage < 1.0
    result = train_eval_linear(train_x, train_labels, test_x, test_labels)
    assert result["n_classes"] == 4 and result["accuracy"] > 40.0  # chance is about 25%
