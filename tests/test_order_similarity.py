"""A model declares the similarity its embeddings are meant for (``Model.similarity()``); retrieval kinds
use it and the record's protocol says so (``+sim=order``), so order-embedding rows never mix with cosine."""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

import numpy as np
import pytest

import mmbench
from mmbench.cards import load_card
from mmbench.errors import MMBenchError
from mmbench.kinds import EvalContext, model_similarity, protocol_suffix
from mmbench.kinds.caption_retrieval import CaptionRetrieval
from mmbench.leaderboard.stats import decode_items, score_from_items
from mmbench.metrics.retrieval import retrieval_scores

TASKS = Path(str(importlib.resources.files("mmbench_tasks")))


class HashedTexts(mmbench.Model):
    """Non-negative random vectors per text (order embeddings live in the positive orthant)."""

    name = "test-order-texts"
    capabilities = frozenset({mmbench.Capability.TEXT})
    declared: str | None = "order"

    def similarity(self):
        return self.declared

    def embed_texts(self, texts, language):
        return np.stack([np.abs(np.random.default_rng(list(hashlib.sha256(f"{language}|{t}".encode()).digest())).normal(size=6))
                         for t in texts]).astype(np.float32)


def test_the_declared_similarity_is_used_and_named_in_the_protocol(tmp_path: Path) -> None:
    card = load_card(TASKS / "caption-xling-emoji.toml")
    subset = card.subsets[0]
    model = HashedTexts()
    assert model_similarity(model, "cosine") == "order" and protocol_suffix(model, card) == "+sim=order"
    score = CaptionRetrieval().evaluate(model, card, subset, EvalContext(data_dir=tmp_path))
    assert score.details["similarity"] == "order"
    # The same texts scored with the order similarity directly (the kind's own texts, via a second call).
    from mmbench.kinds.caption_retrieval import load_translation_pairs

    pairs = load_translation_pairs(card, subset, tmp_path)
    a, b = subset.languages
    direct = retrieval_scores(model.embed_texts(pairs.texts_a, a), model.embed_texts(pairs.texts_b, b),
                              captions_per_image=1, similarity="order")
    assert score.scores["rsum"] == pytest.approx(direct["rsum"], abs=1e-9)
    assert score_from_items("rsum", decode_items(score.details["items"])) == pytest.approx(direct["rsum"], abs=1e-9)
    cosine = retrieval_scores(model.embed_texts(pairs.texts_a, a), model.embed_texts(pairs.texts_b, b),
                              captions_per_image=1, similarity="cosine")
    assert cosine["rsum"] != pytest.approx(direct["rsum"])  # the declaration changed the scores


def test_no_declaration_keeps_the_card_similarity_and_protocol() -> None:
    card = load_card(TASKS / "caption-xling-emoji.toml")
    plain = HashedTexts()
    plain.declared = None
    assert mmbench.Model().similarity() is None  # the contract's default
    assert model_similarity(plain, "cosine") == "cosine" and protocol_suffix(plain, card) == ""
    same = HashedTexts()
    same.declared = "cosine"
    assert protocol_suffix(same, card) == ""  # declaring the card's own similarity changes nothing
    assert protocol_suffix(HashedTexts(), load_card(TASKS / "muse-bli.toml")) == ""  # not a retrieval kind
    wrong = HashedTexts()
    wrong.declared = "euclid"
    with pytest.raises(MMBenchError, match="similarity\\(\\) returned 'euclid'"):
        model_similarity(wrong, "cosine")
