"""``column_array`` converts each column once per table; ``cnn-mean``'s word vectors, built from the emoji
texts without a per-row vector loop, equal bit for bit what the per-row loop (the earlier code) gives."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from mmbench.data.emoji import load_emoji
from mmbench.data.io import column_array
from mmbench.text import tokenize
from mmbench_plugins.cnn_mean import CnnMean, CnnMeanConfig


def test_column_array_is_converted_once_and_read_only():
    texts = load_emoji().texts
    first = column_array(texts, "language")
    assert column_array(texts, "language") is first
    assert not first.flags.writeable
    with pytest.raises(ValueError):
        first[0] = "xx"
    assert first.tolist() == texts.data.column("language").to_pylist()


def per_row_loop_vectors(model: CnnMean, config: CnnMeanConfig, languages: set[str]) -> dict[str, dict[str, np.ndarray]]:
    """The earlier ``prepare``: one float32 vector addition per (text row, word), restricted to ``languages``."""
    emoji = load_emoji()
    images, texts = emoji.images, emoji.texts
    features = emoji.features_matrix()
    features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    keep = np.isin(column_array(images, "style"), list(config.styles)) & (column_array(images, "split") == config.split)
    concept_rows: dict[str, list[int]] = defaultdict(list)
    for row, concept in zip(np.flatnonzero(keep), column_array(images, "concept")[keep]):
        concept_rows[concept].append(row)
    concept_vectors = {c: features[rows].mean(axis=0) for c, rows in concept_rows.items()}
    sums: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    keyword_lists = texts.data.column("keywords").to_pylist()
    columns = [column_array(texts, name) for name in ("concept", "language", "name")]
    for concept, language, name, keywords in zip(*columns, keyword_lists):
        vector = concept_vectors.get(concept)
        if vector is None or language not in languages:
            continue
        words = set(tokenize(name))
        if config.keywords:
            words.update(token for keyword in keywords for token in tokenize(keyword))
        for word in words:
            sums[language][word] = sums[language][word] + vector if word in sums[language] else vector.copy()
            counts[language][word] += 1
    return {lang: {w: (v / counts[lang][w]).astype(np.float32) for w, v in table.items()} for lang, table in sums.items()}


@pytest.mark.parametrize("config", [CnnMeanConfig(), CnnMeanConfig(keywords=False, styles=("noto",))])
def test_cnn_mean_word_vectors_equal_the_per_row_loop_bit_for_bit(config):
    model = CnnMean(config)
    model.prepare(None)
    languages = {"en", "de", "ja", "yo"}
    want = per_row_loop_vectors(model, config, languages)
    for language in sorted(languages):
        words = model.vocabulary(language)
        assert words == sorted(want[language])
        vectors, found = model.embed_words(words, language)
        assert found.all() and vectors.dtype == np.float32
        assert np.array_equal(vectors, np.stack([want[language][w] for w in words]))


def test_tokenize_many_equals_tokenize_on_every_emoji_name_and_keyword():
    from mmbench_plugins.cnn_mean import _tokenize_many

    texts = load_emoji().texts
    strings = column_array(texts, "name").tolist()
    strings += sorted({k for keywords in texts.data.column("keywords").to_pylist() for k in keywords})
    strings += ["", "  ", "ΟΔΟΣ ΣΟΦΟΣ", "a\x01b", "İstanbul"]
    assert _tokenize_many(strings) == [tokenize(s) for s in strings]
    assert _tokenize_many(strings[:-2]) == [tokenize(s) for s in strings[:-2]]  # without the separator fallback
    assert _tokenize_many([]) == []
