"""The ws353-simrel and wordsim-{de,es,fr,it} cards on the real files, scored and checked independently.

Pair counts are counted here from the raw lines; scores are recomputed with NumPy/SciPy from a vectors
file this module writes (random vectors, some words left out, some German/English words written
lowercase so that only the case fallback finds them) and compared with the records the runner writes.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from mmbench import plugins
from mmbench.cards import load_card
from mmbench.data.wordsim import load_wordsim
from mmbench.runner import RunOptions, resolve_model, run, select_cards

TASKS_DIR = Path(str(importlib.resources.files("mmbench_tasks")))
CARDS = ("ws353-simrel", "wordsim-de", "wordsim-es", "wordsim-fr", "wordsim-it")
# Pairs per subset: one pair per non-blank line of the pinned files (the tests below count them again).
PAIR_COUNTS = {
    ("ws353-simrel", "sim"): 203,
    ("ws353-simrel", "rel"): 252,
    ("wordsim-de", "gur65"): 65,
    ("wordsim-de", "gur350"): 350,
    ("wordsim-de", "zg222"): 222,
    ("wordsim-de", "simlex-999"): 999,
    ("wordsim-de", "ws-353"): 350,
    ("wordsim-es", "mc-30"): 30,
    ("wordsim-es", "rg-65"): 65,
    ("wordsim-es", "ws-353"): 352,
    ("wordsim-fr", "rg-65"): 65,
    ("wordsim-it", "simlex-999"): 999,
    ("wordsim-it", "ws-353"): 349,
}


def read_pairs(path: Path) -> list[tuple[str, str, float]]:
    """Independent reader: every non-blank line is 'word word score' split on any whitespace."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            word1, word2, score = line.split()
            rows.append((word1, word2, float(score)))
    return rows


def subset_path(card_name: str, subset_name: str, data_dir: Path) -> tuple[str, Path]:
    card = load_card(TASKS_DIR / f"{card_name}.toml")
    subset = next(s for s in card.subsets if s.name == subset_name)
    (path,) = card.data_paths(subset, data_dir)
    return subset.languages[0], path


def test_cards_cover_exactly_the_listed_subsets() -> None:
    listed = {(name, s.name) for name in CARDS for s in load_card(TASKS_DIR / f"{name}.toml").subsets}
    assert listed == set(PAIR_COUNTS)


@pytest.mark.parametrize(("card_name", "subset_name"), sorted(PAIR_COUNTS))
def test_pair_counts_on_real_data(shared_data: Path, shared_cache: Path, card_name: str, subset_name: str) -> None:
    language, path = subset_path(card_name, subset_name, shared_data)
    raw = read_pairs(path)
    pairs = load_wordsim([path], languages=(language, language), cache_dir=shared_cache)
    assert len(pairs) == len(raw) == PAIR_COUNTS[(card_name, subset_name)]
    assert list(zip(pairs["word1"], pairs["word2"])) == [(a, b) for a, b, _ in raw]
    np.testing.assert_array_equal(np.asarray(pairs["score"]), [s for *_, s in raw])
    assert set(pairs["lang1"]) == set(pairs["lang2"]) == {language}


def test_spanish_rg65_portal_copy_is_the_muse_set_and_is_scored_once(shared_data: Path) -> None:
    """es.rg65.txt (multiSkip portal, 'es:' prefixes) holds the MUSE ES_RG-65 pairs, so no card lists it."""
    muse = read_pairs(shared_data / "wordsim/monolingual/es/ES_RG-65.txt")
    portal = [tuple(line.split("\t")) for line in
              (shared_data / "wordsim/monolingual/es/es.rg65.txt").read_text(encoding="utf-8").splitlines()]
    assert [(a.removeprefix("es:"), b.removeprefix("es:"), float(s)) for a, b, s in portal] == muse
    listed = {f.path for p in TASKS_DIR.glob("*.toml") for s in load_card(p).subsets for f in s.files}
    assert "wordsim/monolingual/es/ES_RG-65.txt" in listed
    assert "wordsim/monolingual/es/es.rg65.txt" not in listed


def test_ws353_split_overlap_is_why_there_is_no_mean(shared_data: Path) -> None:
    card = load_card(TASKS_DIR / "ws353-simrel.toml")
    assert card.aggregate is None and "seeds" in card.suites
    sim = {(a, b) for a, b, _ in read_pairs(subset_path("ws353-simrel", "sim", shared_data)[1])}
    rel = {(a, b) for a, b, _ in read_pairs(subset_path("ws353-simrel", "rel", shared_data)[1])}
    assert len(sim & rel) == 103  # the unrelated pairs of Agirre et al. (2009) are in both subsets
    assert all(load_card(TASKS_DIR / f"{n}.toml").aggregate == "mean" for n in CARDS if n != "ws353-simrel")


# -- scoring, checked against an independent computation -------------------------------------------
def case_variants(word: str) -> list[str]:
    """The card's case='fallback' policy, restated: as written, lowercase, capitalised, title case."""
    return list(dict.fromkeys([word, word.lower(), word.capitalize(), word.title()]))


@pytest.fixture(scope="module")
def vectors(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One language-prefixed vectors file for every word of the five cards, and its table as written."""
    words: dict[tuple[str, str], None] = {}
    for card_name, subset_name in sorted(PAIR_COUNTS):
        language, path = subset_path(card_name, subset_name, shared_data)
        for word1, word2, _ in read_pairs(path):
            words.setdefault((language, word1))
            words.setdefault((language, word2))
    rng = np.random.default_rng(11)
    lines, table = [], {}
    for index, (language, word) in enumerate(words):
        if index % 7 == 3:
            continue  # out of vocabulary (unless another spelling of it is in the file)
        written = word.lower() if index % 5 == 1 and word != word.lower() else word
        vector = rng.integers(-64, 65, size=12) / 64  # exact in float32 and in the text file
        lines.append(f"{language}:{written} " + " ".join(repr(float(v)) for v in vector))
        table.setdefault((language, written), vector)  # the vectors plugin keeps a word's first vector
    path = tmp_path_factory.mktemp("wordsim-cards") / "all.vec"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, table


def expected(table: dict, language: str, rows: list[tuple[str, str, float]]) -> dict[str, float]:
    def lookup(word: str):
        return next((table[(language, v)] for v in case_variants(word) if (language, v) in table), None)

    sims, gold = [], []
    for word1, word2, score in rows:
        a, b = lookup(word1), lookup(word2)
        if a is not None and b is not None:
            sims.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
            gold.append(score)
    return {
        "coverage": len(sims) / len(rows), "n_found": len(sims),
        "spearman": spearmanr(sims, gold).statistic, "pearson": pearsonr(sims, gold).statistic,
    }


@pytest.fixture(scope="module")
def records(vectors, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    """All five cards through the harness with the vectors model."""
    reg = plugins.load_plugins()[1]
    outcomes = run(reg, [resolve_model(reg, f"vectors:{vectors[0]}")], select_cards(reg, list(CARDS), []),
                   RunOptions(results_dir=tmp_path_factory.mktemp("wordsim-results"), data_dir=shared_data))
    assert {o.status for o in outcomes} == {"done"}, [(o.task, o.subset, o.message) for o in outcomes]
    return {(o.task, o.subset): json.loads(o.path.read_text()) for o in outcomes}


@pytest.mark.parametrize(("card_name", "subset_name"), sorted(PAIR_COUNTS))
def test_records_match_independent_scores(records, vectors, shared_data: Path, card_name: str, subset_name: str) -> None:
    record = records[(card_name, subset_name)]
    language, path = subset_path(card_name, subset_name, shared_data)
    rows = read_pairs(path)
    reference = expected(vectors[1], language, rows)
    assert 0.5 < reference["coverage"] < 1  # some pairs are dropped, most are scored
    assert record["protocol"] == load_card(TASKS_DIR / f"{card_name}.toml").protocol
    assert record["languages"] == [language] and record["main_score_name"] == "spearman"
    assert record["n_items"] == len(rows) and record["details"]["n_found"] == reference["n_found"]
    assert record["coverage"] == pytest.approx(reference["coverage"], abs=1e-12)
    assert record["scores"]["spearman"] == pytest.approx(reference["spearman"], abs=1e-6)
    assert record["scores"]["pearson"] == pytest.approx(reference["pearson"], abs=1e-6)


def test_case_fallback_matters_for_german(vectors, shared_data: Path) -> None:
    # Guards the premise: some German data words are only in the file lowercased.
    _, table = vectors
    _, path = subset_path("wordsim-de", "gur350", shared_data)
    data_words = {w for a, b, _ in read_pairs(path) for w in (a, b)}
    assert any(("de", w) not in table and ("de", w.lower()) in table for w in data_words)


@pytest.mark.parametrize("card_name", [c for c in CARDS if c != "ws353-simrel"])
def test_all_record_is_the_mean_over_sets(records, card_name: str) -> None:
    subsets = [s.name for s in load_card(TASKS_DIR / f"{card_name}.toml").subsets]
    mean = np.mean([records[(card_name, s)]["scores"]["spearman"] for s in subsets])
    assert records[(card_name, "all")]["scores"]["spearman"] == pytest.approx(mean, abs=1e-12)
    assert records[(card_name, "all")]["details"]["subsets"] == subsets


def test_no_all_record_for_ws353_simrel(records) -> None:
    assert {s for c, s in records if c == "ws353-simrel"} == {"sim", "rel"}

