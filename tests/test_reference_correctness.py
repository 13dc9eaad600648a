"""Issue 15's reference-correctness points, each checked against the reference code's behaviour.

* ``oov="mean"`` fills a missing word with the mean of the model's *whole vocabulary*
  (word-embeddings-benchmarks ``evaluate_similarity``), not the mean of the pair list's found words.
* MUSE-protocol cards load a mixed-case ``vectors:`` file as MUSE does (lowercase, first occurrence).
* An unprefixed ``vectors:`` file (one vocabulary for every language) is refused on crosslingual kinds
  unless ``shared_vocabulary=true`` says so; that setting then enters the model's identity.
* Visual BLI can average MRR over (source, gold) pairs as the MMID reference does (``mrr = "per-pair"``).

Each test fails on the code before the fix. The NumPy references here are independent of mmbench.metrics.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
from mmbench_plugins.vectors import VectorsConfig, WordVectors

import mmbench
from mmbench.cards import load_card
from mmbench.config import build_config
from mmbench.kinds import EvalContext
from mmbench.kinds.bli import BilingualLexiconInduction
from mmbench.kinds.word_similarity import WordSimilarity
from mmbench.leaderboard.stats import decode_items, score_from_items
from mmbench.models import Incompatible

REPO = Path(__file__).resolve().parents[1]


def vectors_model(path: Path, text: str, **overrides) -> WordVectors:
    path.write_text(text, encoding="utf-8")
    model = WordVectors(build_config(VectorsConfig, overrides, model_name="vectors"), str(path))
    model.prepare(mmbench.RunContext())
    return model


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


# -- oov = "mean" ----------------------------------------------------------------------------------------


def wordsim_card(tmp_path: Path, oov: str, languages: str = '["en"]', lines: str = "") -> tuple:
    (tmp_path / "pairs.txt").write_text(lines, encoding="utf-8")
    (tmp_path / "card.toml").write_text(f"""
name = "toy-wordsim"
kind = "word-similarity"
description = "toy"
license = "none"
citation = "none"
protocol = "toy"
main_score = "spearman"
splits = ["test"]
[params]
oov = "{oov}"
case = "exact"
[[subsets]]
name = "toy"
languages = {languages}
files = [{{ path = "pairs.txt" }}]
""", encoding="utf-8")
    card = load_card(tmp_path / "card.toml")
    return card, card.subsets[0]


def test_oov_mean_fills_with_the_whole_vocabulary_mean(tmp_path: Path) -> None:
    # The vocabulary has two words (far, near) that occur in no pair: they pull its mean away from the
    # mean of the found words, so the two policies give different similarities for the missing word.
    vocabulary = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 1.0], "d": [1.0, -1.0],
                  "far": [-8.0, -1.0], "near": [-2.0, 5.0]}
    text = "".join(f"{w} {x} {y}\n" for w, (x, y) in vocabulary.items())
    model = vectors_model(tmp_path / "v.txt", text)
    pairs = [("a", "b", 1.0), ("a", "c", 3.0), ("zzz", "d", 2.0), ("b", "c", 4.0), ("c", "d", 0.5)]
    card, subset = wordsim_card(tmp_path, "mean", lines="".join(f"{a}\t{b}\t{s}\n" for a, b, s in pairs))
    score = WordSimilarity().evaluate(model, card, subset, EvalContext(data_dir=tmp_path))

    mean = np.mean(list(vocabulary.values()), axis=0)  # word-embeddings-benchmarks: np.mean(w.vectors, axis=0)

    def vec(word):
        return np.asarray(vocabulary[word]) if word in vocabulary else mean

    def cos(u, v):
        return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))

    sims = [cos(vec(a), vec(b)) for a, b, _ in pairs]
    assert score.scores["spearman"] == pytest.approx(spearman(sims, [s for *_, s in pairs]), abs=1e-12)
    assert score.details["oov_fill"] == "vocabulary-mean" and score.coverage == pytest.approx(0.8)
    # The per-item outputs reproduce the score (what leaderboards bootstrap) and mark the uncovered pair.
    items = decode_items(score.details["items"])
    assert items.covered().tolist() == [True, True, False, True, True]
    assert score_from_items("spearman", items) == pytest.approx(score.scores["spearman"], abs=1e-4)


# -- MUSE case handling --------------------------------------------------------------------------------------


def muse_reference_p1(lines: list[str], pairs: list[tuple[str, str]], max_vocab: int) -> float:
    """MUSE read_txt_embeddings (lowercase, first occurrence, max_vocab distinct words) + NN P@1."""
    tables = {}
    for line in lines:
        token, *values = line.split()
        language, word = token.split(":", 1)
        table = tables.setdefault(language, {})
        if len(table) < max_vocab:
            table.setdefault(word.lower(), np.asarray(values, dtype=float))
    words = {lang: list(t) for lang, t in tables.items()}
    unit = {lang: np.array([t[w] for w in words[lang]]) for lang, t in tables.items()}
    unit = {lang: m / np.linalg.norm(m, axis=1, keepdims=True) for lang, m in unit.items()}
    gold = {}
    for s, t in pairs:
        if s in tables["en"] and t in tables["de"]:
            gold.setdefault(s, set()).add(words["de"].index(t))
    hits = [int(np.argmax(unit["en"][words["en"].index(s)] @ unit["de"].T)) in g for s, g in gold.items()]
    return 100 * float(np.mean(hits))


def test_muse_cards_load_mixed_case_vocabularies_as_muse_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pairs = [(f"w{i}", f"v{i}") for i in range(40)]
    lines = []
    for i, (s, t) in enumerate(pairs):
        shared = rng.normal(size=8)
        lines.append(f"en:{s} " + " ".join(f"{x:.4f}" for x in shared + 0.3 * rng.normal(size=8)))
        target = shared + 0.3 * rng.normal(size=8)
        if i % 3 == 0:  # a capitalised spelling first, then a lowercase one: MUSE keeps the first
            lines.append(f"de:{t.capitalize()} " + " ".join(f"{x:.4f}" for x in target))
            lines.append(f"de:{t} " + " ".join(f"{x:.4f}" for x in rng.normal(size=8)))
        elif i % 3 == 1:  # a lowercase spelling first, then a capitalised distractor close to the source
            lines.append(f"de:{t} " + " ".join(f"{x:.4f}" for x in target))
            lines.append(f"de:{t.upper()} " + " ".join(f"{x:.4f}" for x in shared))
        else:
            lines.append(f"de:{t} " + " ".join(f"{x:.4f}" for x in target))
    model = vectors_model(tmp_path / "v.vec", "\n".join(lines) + "\n")
    with gzip.open(tmp_path / "dict.txt.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(f"{s} {t}\n" for s, t in pairs)
    card = load_card(REPO / "tasks/muse-bli-nn.toml")
    assert card.params["case"] == "muse"  # the packaged MUSE cards follow the reference by default
    subset = dataclasses.replace(card.subsets[0], files=[dataclasses.replace(card.subsets[0].files[0],
                                 path="dict.txt.gz", sha256=None)])
    card = dataclasses.replace(card, subsets=[subset])
    score = BilingualLexiconInduction().evaluate(model, card, subset, EvalContext(data_dir=tmp_path))
    assert score.details["case_policy"] == "muse"
    assert score.details["target_vocab_size"] == 40  # duplicates of a lowercased word leave the search space
    assert score.scores["p1"] == pytest.approx(muse_reference_p1(lines, pairs, 200000), abs=1e-9)
    items = decode_items(score.details["items"])
    assert items.n == 40 and score_from_items("p1", items) == pytest.approx(score.scores["p1"], abs=1e-9)
    assert score_from_items("mrr", items) == pytest.approx(score.scores["mrr"], abs=1e-9)


# -- one vocabulary for all languages --------------------------------------------------------------------------


def test_unprefixed_vectors_are_refused_on_crosslingual_tasks(tmp_path: Path) -> None:
    text = "chat 1 0\nchien 0 1\ncat 1 0.1\ndog 0.1 1\n"
    card, subset = wordsim_card(tmp_path, "drop", '["en", "fr"]', "en:cat\tfr:chat\t4\nen:dog\tfr:chien\t3\n")
    plain = vectors_model(tmp_path / "v.txt", text)
    with pytest.raises(Incompatible, match="one vocabulary for all languages.*shared_vocabulary"):
        WordSimilarity().evaluate(plain, card, subset, EvalContext(data_dir=tmp_path))
    bli_card = load_card(REPO / "tasks/muse-bli.toml")
    with pytest.raises(Incompatible, match="one vocabulary for all languages"):
        BilingualLexiconInduction().evaluate(plain, bli_card, bli_card.subsets[0], EvalContext(data_dir=tmp_path))

    shared = vectors_model(tmp_path / "v.txt", text, shared_vocabulary="true")
    score = WordSimilarity().evaluate(shared, card, subset, EvalContext(data_dir=tmp_path))
    assert score.coverage == 1.0
    assert shared.identity()["shared_vocabulary"] is True and "shared_vocabulary" not in plain.identity()
    # A monolingual task is unaffected.
    mono_card, mono_subset = wordsim_card(tmp_path, "drop", '["en"]', "cat\tdog\t1\nchat\tchien\t2\ncat\tchat\t3\n")
    assert WordSimilarity().evaluate(plain, mono_card, mono_subset, EvalContext(data_dir=tmp_path)).coverage == 1.0


# -- visual BLI MRR variants ---------------------------------------------------------------------------------


def mmid_mrr(similarity: np.ndarray, gold: list[list[int]]) -> float:
    """MMID-style MRR: every (source, gold) pair, the gold's 1-based position in the row's ranking
    (ties pessimistic: every other column scoring at least as high ranks before it)."""
    reciprocal = []
    for row, targets in enumerate(gold):
        for target in targets:
            others = np.delete(similarity[row], target)
            reciprocal.append(1.0 / (1 + int((others >= similarity[row, target]).sum())))
    return float(np.mean(reciprocal))


def test_visual_bli_offers_the_mmid_per_pair_mrr() -> None:
    from mmbench.metrics.visual_bli import ranking_scores

    rng = np.random.default_rng(5)
    similarity = rng.normal(size=(30, 25))
    gold = [sorted(rng.choice(25, size=1 + i % 3, replace=False).tolist()) for i in range(30)]
    per_pair = ranking_scores(similarity, gold, (1, 10), mrr="per-pair")
    best = ranking_scores(similarity, gold, (1, 10))
    assert per_pair["mrr"] == pytest.approx(mmid_mrr(similarity, gold), abs=1e-12)
    assert per_pair["mrr"] < best["mrr"]  # the second gold of a word is ranked below its first
    assert per_pair["p1"] == best["p1"]  # P@k is unchanged
    for name in ("visual-bli", "visual-bli-bergsma500"):
        card = load_card(REPO / f"tasks/{name}.toml")
        assert card.params["mrr"] == "best-gold"  # the card says which MRR its scores use
