"""Step-drawn auxiliary batches: skip-gram context pairs and translation pairs are pure functions of
(seed, step), stay inside their sentence and window, follow word2vec's subsampling and noise
distributions, and translation pairs come from distinct groups."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.errors import DataError
from mmbench.train.streams import ContextCorpus, TranslationGroups

SENTENCES = [[0, 1, 2, 3, 4, 5], [6, 7], [8], [9, 0, 0, 0, 0, 1, 2]]


def sentence_of(corpus: ContextCorpus) -> np.ndarray:
    return np.searchsorted(np.unique(corpus.start), np.arange(len(corpus)), side="right") - 1


def test_context_pairs_are_a_pure_function_of_seed_and_step() -> None:
    corpus = ContextCorpus(SENTENCES, n_rows=10, subsample=0)
    one, again = corpus.sample(5, 64, seed=1), corpus.sample(5, 64, seed=1)
    for field in ("centres", "contexts", "negatives", "weight"):
        assert np.array_equal(getattr(one, field), getattr(again, field))
    assert not np.array_equal(one.centres, corpus.sample(6, 64, seed=1).centres)
    assert not np.array_equal(one.centres, corpus.sample(5, 64, seed=2).centres)


def test_contexts_stay_in_the_sentence_and_window() -> None:
    sentences = [list(range(start, start + 12)) for start in range(0, 120, 12)]  # row = position
    corpus = ContextCorpus(sentences, n_rows=120, subsample=0)
    drawn = corpus.sample(1, 20_000, seed=0, window=3)
    kept = drawn.weight == 1
    assert kept.mean() > 0.95  # mirrored offsets: only a few draws are dropped
    distance = np.abs(drawn.contexts[kept] - drawn.centres[kept])
    assert distance.min() >= 1 and distance.max() <= 3
    assert np.array_equal(drawn.contexts[kept] // 12, drawn.centres[kept] // 12)  # same sentence
    # word2vec's shrunk window: distance d is drawn with weight (window - d + 1), so 1 : 2 : 3 = 3 : 2 : 1
    shares = np.bincount(distance, minlength=4)[1:] / len(distance)
    np.testing.assert_allclose(shares, np.array([3, 2, 1]) / 6, atol=0.02)


def test_one_word_sentences_are_never_centres() -> None:
    corpus = ContextCorpus(SENTENCES, n_rows=10, subsample=0)
    drawn = corpus.sample(3, 5000, seed=0)
    assert 8 not in drawn.centres  # row 8 is the one-word sentence


def test_frequent_words_are_subsampled_and_noise_follows_unigram_to_the_0_75() -> None:
    rng = np.random.default_rng(0)
    counts = np.array([5000, 500, 50, 50])
    tokens = rng.permutation(np.repeat(np.arange(4), counts))
    corpus = ContextCorpus([tokens.tolist()], n_rows=4, subsample=1e-2)
    drawn = corpus.sample(1, 200_000, seed=0, negatives=2)
    frequency = counts / counts.sum()
    keep = np.minimum(1, (np.sqrt(frequency / 1e-2) + 1) * 1e-2 / frequency)
    expected = counts * keep / (counts * keep).sum()
    np.testing.assert_allclose(np.bincount(drawn.centres, minlength=4) / 200_000, expected, atol=0.005)
    noise = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(np.bincount(drawn.negatives.ravel(), minlength=4) / drawn.negatives.size, noise,
                               atol=0.005)


def test_a_corpus_without_two_word_sentences_is_refused() -> None:
    with pytest.raises(DataError, match="two words"):
        ContextCorpus([[1], [2]], n_rows=3)
    with pytest.raises(DataError, match="no token"):
        ContextCorpus([[], []], n_rows=3)


def test_translation_pairs_are_two_members_of_distinct_groups() -> None:
    groups = [[0, 1, 2, 3], [4, 5], [6], [7, 8, 9]]  # the one-member group can give no pair
    translations = TranslationGroups(groups)
    assert len(translations) == 3
    group_of = {member: g for g, members in enumerate(groups) for member in members}
    seen = set()
    for step in range(1, 200):
        a, b = translations.sample(step, 3, seed=0)
        assert len(a) == 3 and len({group_of[x] for x in a}) == 3  # no other row is a translation
        assert all(group_of[x] == group_of[y] and x != y for x, y in zip(a, b))
        seen.update(zip(a.tolist(), b.tolist()))
    assert len(seen) == 12 + 2 + 6  # every ordered pair of members appears
    first, again = translations.sample(7, 2, seed=3), translations.sample(7, 2, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
