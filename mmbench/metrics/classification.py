"""Cross-lingual document classification in the setting of Klementiev, Titov & Bhattarai (2012).

Documents are idf-weighted averages of word vectors; an averaged perceptron (10 epochs, as in the
original ``ApLearn`` runs) is trained on one language and tested on another.

The reference preprocessor (``CollectionPreprocessor.java``) sums ``count(w) * idf(w) * v(w)`` over
the distinct known words of a document but divides by the sum of ``idf(w)`` over distinct words,
not by ``sum(count * idf)``; ``weighting="klementiev"`` reproduces that, ``weighting="mean"`` gives
the exact tf-idf weighted mean. It also lowercases tokens: do that before calling, consistently
with the vector lookup.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ._common import MetricInputError

Weighting = Literal["klementiev", "mean"]


def idf_weights(token_lists: Sequence[Sequence[str]]) -> dict[str, float]:
    """``idf(w) = ln(n_documents / document_frequency(w))`` (natural log, as in Klementiev's idf tables)."""
    document_frequency: Counter[str] = Counter()
    for tokens in token_lists:
        document_frequency.update(set(tokens))
    n = len(token_lists)
    return {word: math.log(n / df) for word, df in document_frequency.items()}


def document_vectors(
    token_lists: Sequence[Sequence[str]],
    lookup: Mapping[str, Any],
    idf: Mapping[str, float] | None = None,
    *,
    weighting: Weighting = "klementiev",
    unknown_idf: float | None = None,
    dim: int | None = None,
) -> tuple[np.ndarray, float]:
    """(documents x dims) float32 matrix and coverage (share of tokens that entered a vector).

    A token counts when it has a vector and a weight: with ``idf`` given, a word missing from it is
    skipped as in the reference code unless ``unknown_idf`` supplies a weight; ``idf=None`` weighs
    every word 1. A document with no such token (or zero total weight) is the zero vector.
    """
    if weighting not in ("klementiev", "mean"):
        raise MetricInputError(f"weighting must be 'klementiev' or 'mean', got {weighting!r}")
    if dim is None:
        first = next(iter(lookup.values()), None)
        if first is None:
            raise MetricInputError("document_vectors: the vector lookup is empty and no dim was given")
        dim = int(np.asarray(first).shape[-1])
    columns: dict[str, int] = {}
    rows, cols, values = [], [], []
    used_tokens = all_tokens = 0
    for row, tokens in enumerate(token_lists):
        counts = Counter(tokens)
        all_tokens += sum(counts.values())
        weights = {}
        for word, count in counts.items():
            weight = 1.0 if idf is None else idf.get(word, unknown_idf)
            if weight is not None and word in lookup:
                weights[word] = (count, float(weight))
        used_tokens += sum(count for count, _ in weights.values())
        if weighting == "klementiev":
            norm = sum(weight for _, weight in weights.values())
        else:
            norm = sum(count * weight for count, weight in weights.values())
        if norm == 0:
            continue
        for word, (count, weight) in weights.items():
            rows.append(row)
            cols.append(columns.setdefault(word, len(columns)))
            values.append(count * weight / norm)
    table = np.zeros((len(columns), dim), dtype=np.float64)
    for word, column in columns.items():
        vector = np.asarray(lookup[word], dtype=np.float64)
        if vector.shape != (dim,) or not np.isfinite(vector).all():
            raise MetricInputError(f"vector of {word!r}: expected {dim} finite values, got shape {vector.shape}")
        table[column] = vector
    from scipy.sparse import csr_matrix  # imported only when documents are scored

    weights_matrix = csr_matrix((values, (rows, cols)), shape=(len(token_lists), len(columns)))
    matrix = np.asarray(weights_matrix @ table, dtype=np.float32).reshape(len(token_lists), dim)
    return matrix, (used_tokens / all_tokens if all_tokens else 0.0)


def _with_bias(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D (documents x features) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise MetricInputError(f"{name}: contains NaN or infinite values")
    return np.hstack([x, np.ones((x.shape[0], 1))])


def fit_averaged_perceptron(x: Any, y: Sequence[int], n_classes: int, *, epochs: int = 10, seed: int = 0) -> np.ndarray:
    """Multiclass averaged perceptron; returns (classes x features+1) weights, the last column a bias.

    Each epoch visits the examples in an order drawn from ``np.random.default_rng(seed)``; a mistake
    adds the example to the true class and subtracts it from the predicted one (argmax, lowest class
    on ties). The result is the mean of the weights after every example of every epoch.
    """
    features = _with_bias(x, "train_x")
    labels = np.asarray(y, dtype=np.int64)
    weights = np.zeros((n_classes, features.shape[1]))
    # Mean of the weights over all steps = final weights - sum((step - 1) * update) / steps.
    correction = np.zeros_like(weights)
    rng = np.random.default_rng(seed)
    step = 0
    for _ in range(epochs):
        for i in rng.permutation(len(labels)):
            step += 1
            predicted = int(np.argmax(weights @ features[i]))
            if predicted != labels[i]:
                for cls, sign in ((labels[i], 1.0), (predicted, -1.0)):
                    weights[cls] += sign * features[i]
                    correction[cls] += sign * (step - 1) * features[i]
    return weights - correction / max(step, 1)


def train_eval_linear(
    train_x: Any,
    train_y: Sequence[Hashable],
    test_x: Any,
    test_y: Sequence[Hashable],
    *,
    seed: int = 0,
    epochs: int = 10,
) -> dict[str, float | int]:
    """Train an averaged perceptron on (train_x, train_y), return test ``accuracy`` (percent) and counts.

    Labels may be any sortable values; a test label never seen in training is always an error.
    Deterministic for a given ``seed``.
    """
    if len(train_y) == 0:
        raise MetricInputError("train_eval_linear: no training documents")
    classes = sorted(set(train_y))
    index = {label: i for i, label in enumerate(classes)}
    train = np.asarray(train_x)
    if train.ndim != 2 or train.shape[0] != len(train_y):
        raise MetricInputError(f"train_x has shape {train.shape} for {len(train_y)} labels")
    test = np.asarray(test_x)
    if len(test_y) == 0:
        return {"accuracy": 0.0, "n_train": len(train_y), "n_test": 0, "n_classes": len(classes),
                "correct": np.zeros(0, dtype=bool)}
    if test.ndim != 2 or test.shape != (len(test_y), train.shape[1]):
        raise MetricInputError(f"test_x has shape {test.shape}, expected ({len(test_y)}, {train.shape[1]})")
    weights = fit_averaged_perceptron(
        train, [index[label] for label in train_y], len(classes), epochs=epochs, seed=seed
    )
    predicted = np.argmax(_with_bias(test, "test_x") @ weights.T, axis=1)
    correct = [classes[p] == label for p, label in zip(predicted, test_y)]
    return {
        "accuracy": 100.0 * float(np.mean(correct)),
        "n_train": len(train_y),
        "n_test": len(test_y),
        "n_classes": len(classes),
        "correct": np.asarray(correct, dtype=bool),  # per test document: the per-item output of a record
    }
