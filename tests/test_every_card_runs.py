"""Every packaged task card runs end to end on the real data with a cheap model.

For each card in ``tasks/`` the first subset (and the ``all`` aggregate, when the card has one) goes
through the harness into a fresh results directory, and every record must carry the card's protocol,
a finite main score, a coverage in [0, 1] and exactly the kind's score names. The model comes from
``CHEAP_MODELS`` (kind -> factory): word-level kinds get a ``vectors:FILE`` of random vectors written
here for the words the subset looks up, with a known share left out, so the coverage is checked too;
emoji tasks get ``cnn-mean``; Multi30k retrieval gets ``precomputed:DIR`` with random embeddings of
exactly the task's inputs. A card whose kind has no entry fails; a card whose data is not here is
skipped only if it is listed in ``KNOWN_ABSENT_DATA``, and the skip names the missing file.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mmbench_plugins.precomputed import write_images, write_texts

from mmbench import plugins
from mmbench.cards import Subset, TaskCard, load_card
from mmbench.runner import RunOptions, resolve_model, run, validate_against_kind

PACKAGED_DIR = Path(str(importlib.resources.files("mmbench_tasks")))
PACKAGED_CARDS = sorted(PACKAGED_DIR.glob("*.toml"))

# Cards whose data cannot be had in shared/data: card name -> why. Any other card with missing data fails.
_NO_COCO = "COCO/Karpathy captions and image features are not in shared/data (see its README)"
KNOWN_ABSENT_DATA = {"coco-1k": _NO_COCO, "coco-5k": _NO_COCO}

# cnn-mean without keyword lists and with one image style: the same model, built in 0.2 s instead of 10 s.
CNN_MEAN_CHEAP = ("keywords=false", 'styles=["noto"]')


@dataclasses.dataclass
class CheapModel:
    spec: str
    set_options: tuple[str, ...] = ()
    coverage: float | None = None  # the coverage every record must show, where this test can know it


# -- words a word-level kind looks up, and the coverage it reports for a given set of known words ----
Found = Callable[[str, str], bool]


@dataclasses.dataclass
class WordUse:
    words: dict[str, set[str]]  # language -> words the kind asks the model for
    coverage: Callable[[Found], float]


def wordsim_use(card: TaskCard, subset: Subset, data_dir: Path) -> WordUse:
    from mmbench.data.wordsim import load_wordsim

    languages = subset.languages if len(subset.languages) == 2 else subset.languages * 2
    pairs = load_wordsim(card.data_paths(subset, data_dir), languages=tuple(languages))
    rows = list(zip(pairs["lang1"], pairs["word1"], pairs["lang2"], pairs["word2"]))
    words: dict[str, set[str]] = defaultdict(set)
    for lang1, word1, lang2, word2 in rows:
        words[lang1].add(word1)
        words[lang2].add(word2)
    return WordUse(words, lambda found: sum(found(a, w) and found(b, v) for a, w, b, v in rows) / len(rows))


def bli_use(card: TaskCard, subset: Subset, data_dir: Path) -> WordUse:
    from mmbench.data.muse import load_muse_dictionary

    src, tgt = subset.languages
    targets_of: dict[str, set[str]] = defaultdict(set)
    for path in card.data_paths(subset, data_dir):
        dictionary = load_muse_dictionary(path)
        for source, target in zip(dictionary["source"], dictionary["target"]):
            targets_of[source].add(target)
    words = {src: set(targets_of), tgt: set().union(*targets_of.values())}

    def coverage(found: Found) -> float:  # sources that become queries: known, with a known translation
        return sum(found(src, s) and any(found(tgt, t) for t in ts) for s, ts in targets_of.items()) / len(targets_of)

    return WordUse(words, coverage)


def classification_use(card: TaskCard, subset: Subset, data_dir: Path) -> WordUse:
    from mmbench.data.rcv import load_rcv
    from mmbench.data.sib200 import load_sib200
    from mmbench.kinds.classification import DEFAULTS, data_languages, tokenize

    params = {**DEFAULTS, **card.params}
    load = load_rcv if params["dataset"] == "rcv" else load_sib200
    folders, problems = data_languages(card, subset)
    assert not problems, problems

    def tokens(folder: str, split: str) -> list[str]:
        texts = load(data_dir, folder)[split]["text"]
        return [t for text in texts for t in tokenize(text, params["tokenizer"], params["case"])]

    train_lang, test_lang = subset.languages[0], subset.languages[-1]
    test_tokens = Counter(tokens(folders[-1], "test"))
    words: dict[str, set[str]] = defaultdict(set)
    words[train_lang].update(tokens(folders[0], "train"))
    words[test_lang].update(test_tokens)
    total = sum(test_tokens.values())
    return WordUse(words, lambda found: sum(n for t, n in test_tokens.items() if found(test_lang, t)) / total)


WORD_USES: dict[str, Callable[[TaskCard, Subset, Path], WordUse]] = {
    "word-similarity": wordsim_use,
    "bli": bli_use,
    "document-classification": classification_use,
}


def is_left_out(language: str, word: str) -> bool:
    """About one word in six, decided by its lowercase form so every case variant shares the fate."""
    return zlib.crc32(f"{language}:{word.lower()}".encode()) % 6 == 0


def word_vectors(card: TaskCard, subset: Subset, data_dir: Path, work: Path) -> CheapModel:
    """Random language-prefixed vectors for the subset's words, minus the left-out ones.

    Words are left out by their lowercase form, so no case policy finds one through another spelling;
    words with a space (Persian multi-word terms) cannot be written in the format and count as unknown.
    """
    use = WORD_USES[card.kind](card, subset, data_dir)

    def found(language: str, word: str) -> bool:
        return not is_left_out(language, word) and not any(ch.isspace() for ch in word)

    rng = np.random.default_rng(zlib.crc32(card.name.encode()))
    path = work / f"{card.name}.vec"
    kept = [f"{lang}:{word}" for lang in sorted(use.words) for word in sorted(use.words[lang]) if found(lang, word)]
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{w} " + " ".join(str(v) for v in rng.integers(-32, 33, 8) / 16) + "\n" for w in kept)
    coverage = use.coverage(found)
    assert 0 < coverage < 1, f"{card.name}: the vectors should leave out some items, not all ({coverage})"
    return CheapModel(f"vectors:{path}", coverage=coverage)


def retrieval_model(card: TaskCard, subset: Subset, data_dir: Path, work: Path) -> CheapModel:
    """Emoji: cnn-mean. Otherwise random embeddings of exactly the task's inputs, read by precomputed:DIR."""
    from mmbench.kinds.retrieval_sources import load_retrieval_data, merged_params

    data = load_retrieval_data(card, subset, data_dir)
    coverage = data.n_images / data.n_total
    if merged_params(card, subset)["source"] == "emoji":
        return CheapModel("cnn-mean", CNN_MEAN_CHEAP, coverage)
    rng = np.random.default_rng(0)
    directory = work / "precomputed"
    write_texts(directory, data.language, data.captions, rng.standard_normal((len(data.captions), 16)))
    write_images(directory, data.feature_source, data.features, rng.standard_normal((data.n_images, 16)))
    return CheapModel(f"precomputed:{directory}", coverage=coverage)


# Scores a kind declares but writes only for some cards: kind -> predicate on the score name.
OPTIONAL_SCORES: dict[str, Callable[[str], bool]] = {
    "visual-bli": lambda name: "_" in name,  # per-POS p1_N, mrr_V, ...: only word lists tagged with a POS
}


def fixed(spec: str, set_options: tuple[str, ...] = ()) -> Callable[..., CheapModel]:
    return lambda card, subset, data_dir, work: CheapModel(spec, set_options)


# kind -> how to get a cheap model for (card, first subset, data root, work dir)
CHEAP_MODELS: dict[str, Callable[[TaskCard, Subset, Path, Path], CheapModel]] = {
    "word-similarity": word_vectors,
    "bli": word_vectors,
    "document-classification": word_vectors,
    "retrieval": retrieval_model,
    "visual-bli": fixed("visual-bli-avgmax"),
    "image-word-matching": fixed("cnn-mean", CNN_MEAN_CHEAP),
    "caption-retrieval": fixed("cnn-mean", CNN_MEAN_CHEAP),
}


@pytest.fixture(scope="module")
def registry():
    return plugins.load_plugins()[1]


def test_every_packaged_kind_has_a_cheap_model() -> None:
    kinds = {load_card(path).kind for path in PACKAGED_CARDS}
    assert kinds <= set(CHEAP_MODELS), f"add a cheap model to CHEAP_MODELS for kind(s) {kinds - set(CHEAP_MODELS)}"


@pytest.mark.parametrize("path", PACKAGED_CARDS, ids=lambda p: p.stem)
def test_card_runs_end_to_end(path: Path, registry, shared_data: Path, tmp_path: Path) -> None:
    card = validate_against_kind(registry, load_card(path))
    if card.kind not in CHEAP_MODELS:
        pytest.fail(f"{path.name}: kind {card.kind!r} has no cheap model in CHEAP_MODELS")
    subset = card.subsets[0]
    missing = [f.path for f in subset.files if not f.resolve(card.directory, shared_data).is_file()]
    if missing:
        if card.name not in KNOWN_ABSENT_DATA:
            pytest.fail(f"{path.name}: {missing[0]} is not in the shared data; fix the card or the data, or "
                        "list the card in KNOWN_ABSENT_DATA with the reason")
        pytest.skip(f"{card.name}: needs {missing[0]}, which is not here: {KNOWN_ABSENT_DATA[card.name]}")

    first = dataclasses.replace(card, subsets=[subset])  # the runner has no subset selection
    cheap = CHEAP_MODELS[card.kind](first, subset, shared_data, tmp_path)
    model = resolve_model(registry, cheap.spec, cheap.set_options)
    outcomes = run(registry, [model], [first], RunOptions(results_dir=tmp_path / "results", data_dir=shared_data))

    wanted = [subset.name, *(["all"] if card.aggregate else [])]
    assert [(o.subset, o.status) for o in outcomes] == [(name, "done") for name in wanted], [
        (o.subset, o.status, o.message) for o in outcomes
    ]
    kind = registry.task_kind(card.kind)
    records = {o.subset: json.loads(o.path.read_text()) for o in outcomes}
    for name, record in records.items():
        assert record["task"] == card.name and record["task_kind"] == card.kind, name
        assert record["protocol"] == card.protocol, name
        assert record["main_score_name"] == card.main_score and math.isfinite(record["main_score"]), name
        optional = OPTIONAL_SCORES.get(card.kind, lambda score: False)
        assert {n for n in kind.scores if not optional(n)} <= set(record["scores"]) <= set(kind.scores), name
        assert all(math.isfinite(v) for v in record["scores"].values()), name
        assert record["coverage"] is not None and 0 <= record["coverage"] <= 1, name
        if cheap.coverage is not None:
            assert record["coverage"] == pytest.approx(cheap.coverage, abs=1e-12), name
    if card.aggregate:  # the mean over one subset is that subset
        assert records["all"]["scores"] == pytest.approx(records[subset.name]["scores"], abs=1e-12)
