"""Visual bilingual lexicon induction: translate words by comparing the images tagged with them.

The setting of Bergsma & Van Durme (2011), Kiela, Vulić & Clark (2015) and Hartmann & Søgaard (2018),
with the packaged ``emoji`` data in place of web image search (:mod:`mmbench.data.emoji_image_sets`):

* Every word becomes a *set* of image feature vectors: the emoji whose CLDR name (as a token) or
  keyword list in its language contains it. Source words use images in ``source_style`` (default
  ``noto``), target words in a different ``target_style`` (default ``emojione``), so the same concept
  is never matched by identical pixels; the two styles must differ.
* ``split`` (default ``"all"``) restricts the emoji concepts. Lexicon induction from image sets is
  training-free, so all concepts are used; a trained model should be scored with ``"test"``.
* Word lists: ``dataset = "cldi"`` (Hartmann & Søgaard: ``imgWords_en_xx.txt``, with part of speech) or
  ``"bergsma500"`` (Bergsma & Van Durme's 500 concrete nouns, ``pictureWords.{lang}.txt``).
* Words are compared by their normalised term (lowercased tokens), so ``Orange``/``orange`` are one word.
  Candidates are all target words of the list that have images (H&S rank over the list's targets,
  not a vocabulary). Queries are the source words with images and at least one gold translation
  with images; the gold set is all of those translations, whatever their part of speech (a word
  listed as noun and verb is one query; it counts in both POS groups). Coverage = queries / unique
  source words of the list; per-POS coverage divides by the unique source words listed with that POS.
* The model scores all (query, candidate) pairs with ``score_image_sets``: an ``(S, T)`` matrix of finite
  floats (checked by :func:`mmbench.kinds.model_embeddings`; NaN and +-inf are errors); P@1, P@10 (percent) and MRR
  with pessimistic ties (a wrong candidate tied with the gold ranks first), overall and per part of
  speech (``p1_N``, ``mrr_V``, ...; a POS without queries has no score).
* MRR (``mrr`` parameter, recorded in ``details.mrr_variant``): ``"best-gold"`` (default) takes each
  query's best-ranked gold translation, like P@k; ``"per-pair"`` averages over (source, gold) pairs with
  each gold ranked by itself, as the MMID reference code (Hewitt et al. 2018) does.
* ``details`` also holds the mean image dispersion (Kiela et al. 2014) of the queries' source sets per
  POS, and scores of the low- and high-dispersion halves of the queries (sorted by dispersion, then
  word; the low half is the first ``n // 2``): concrete, low-dispersion words should translate better.
  Dispersion needs two images (one image has dispersion 0 by definition, whatever the word), so it is
  measured on queries with >= 2 source images; single-image queries are scored as their own group.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cards import Subset, TaskCard
from ..data import EMOJI_SPLITS
from ..errors import DataError
from ..hookspecs import hookimpl
from ..models import Capability, Model
from ..results import encode_column, encode_items
from . import EvalContext, Score, TaskKind, check_params, model_embeddings

STYLES = ("noto", "emojione", "symbola")
PARAMS: dict[str, tuple] = {
    "dataset": ("cldi", "bergsma500"),
    "source_style": STYLES,
    "target_style": STYLES,
    "split": ("all", *EMOJI_SPLITS),
    "mrr": ("best-gold", "per-pair"),
}
DEFAULTS = {"dataset": "cldi", "source_style": "noto", "target_style": "emojione", "split": "all", "mrr": "best-gold"}
POS_TAGS = ("A", "N", "V")
KS = (1, 10)
SCORE_NAMES = ("p1", "p10", "mrr")
CLDI_FILE = re.compile(r"^imgWords_([A-Za-z_]+)_([A-Za-z_]+)\.txt$")
MANIFEST = "manifest.json"


@dataclass
class WordList:
    """Translation pairs of one subset, in file order; ``pos`` is None when the list has no POS."""

    sources: list[str]
    targets: list[str]
    pos: list[str] | None


@dataclass
class VisualBliQueries:
    """What a model is asked to score for one subset, and the gold answers."""

    query_words: list[str]  # normalised source terms, sorted
    candidate_words: list[str]  # normalised target terms, sorted
    source_sets: list[np.ndarray]
    target_sets: list[np.ndarray]
    gold: list[list[int]]  # candidate indices per query, sorted
    query_pos: list[tuple[str, ...]]  # POS of the gold pairs per query (empty without POS)
    n_source_total: int
    source_words: list[str]  # every unique normalised source term of the list, sorted (the items of a record)
    n_source_total_by_pos: dict[str, int]
    n_pairs: int


def _subset_file(subset: Subset, predicate) -> list:
    return [f for f in subset.files if predicate(Path(f.path).name)]


def _cldi_files(subset: Subset) -> list:
    return _subset_file(subset, lambda name: CLDI_FILE.match(name) is not None)


def _bergsma_names(subset: Subset) -> list[str]:
    return [f"pictureWords.{lang}.txt" for lang in subset.languages]


class VisualBilingualLexiconInduction(TaskKind):
    name = "visual-bli"
    description = "translate words by their emoji image sets (Bergsma & Van Durme 2011; Hartmann & Søgaard 2018)"
    requires = frozenset({Capability.IMAGE_SETS})
    scores = {name: True for name in SCORE_NAMES} | {f"{s}_{p}": True for p in POS_TAGS for s in SCORE_NAMES}
    supports_limit = False  # every word's image set is a candidate for every query: a --limit run skips it

    def validate(self, card: TaskCard) -> list[str]:
        problems = check_params(card.params, PARAMS)
        params = {**DEFAULTS, **card.params}
        if params["source_style"] == params["target_style"]:
            problems.append(f"params.target_style: must differ from source_style {params['source_style']!r} "
                            "(the same drawing would match pixel for pixel)")
        for subset in card.subsets:
            where = f"subsets.{subset.name}"
            problems += [f"{where}.params.{key}: set it on the card (it defines the protocol)" for key in subset.params]
            if len(subset.languages) != 2 or subset.languages[0] == subset.languages[1]:
                problems.append(f"{where}.languages: give the pair [source, target]")
                continue
            if len(_subset_file(subset, lambda name: name == MANIFEST)) != 1:
                problems.append(f"{where}.files: list the emoji artifact's {MANIFEST} once "
                                '(path = "data/emoji/artifact/manifest.json", base = "package")')
            if params["dataset"] == "cldi":
                files = _cldi_files(subset)
                wanted = "imgWords_{}_{}.txt".format(*subset.languages)
                if len(files) != 1 or Path(files[0].path).name != wanted:
                    problems.append(f"{where}.files: a cldi subset lists exactly one word list, {wanted}")
            else:
                names = _bergsma_names(subset)
                for name in names:
                    if len(_subset_file(subset, lambda n, name=name: n == name)) != 1:
                        problems.append(f"{where}.files: a bergsma500 subset lists {name} once")
                found = _subset_file(subset, lambda n, names=names: n in names)
                if len({(f.base, str(Path(f.path).parent)) for f in found}) > 1:
                    problems.append(f"{where}.files: the pictureWords files must be in one folder")
        return problems

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        from ..metrics.visual_bli import (
            MetricInputError,
            image_dispersion,
            ranking_scores,
        )
        from .retrieval_sources import EMOJI_FEATURE_SOURCE

        params = {**DEFAULTS, **card.params}
        data = build_queries(card, subset, ctx.data_dir, params)
        if not data.query_words:
            raise DataError(f"task {card.name!r} subset {subset.name!r}: no source word has images and a "
                            "translation with images")
        returned = model.score_image_sets(data.source_sets, data.target_sets, source=EMOJI_FEATURE_SOURCE)
        # (S, T) finite floats: NaN and +-inf would rank as best or worst candidates, not as errors.
        scores = model_embeddings(returned, len(data.source_sets), "source words", model, call="score_image_sets",
                                  width=len(data.target_sets), columns="target words").astype(np.float64)

        def rank(rows: list[int]) -> dict[str, float]:
            try:
                result = ranking_scores(scores[rows], [data.gold[i] for i in rows], KS, ties="pessimistic",
                                        mrr=params["mrr"])
            except MetricInputError as exc:  # pragma: no cover - inputs are built above
                raise DataError(f"task {card.name!r} subset {subset.name!r}: {exc}") from None
            return {name: float(result[name]) for name in SCORE_NAMES}

        everyone = list(range(len(data.query_words)))
        result = rank(everyone)
        # Dispersion of one image is 0 by definition, not a measurement: only sets of >= 2 images count.
        dispersion = [image_dispersion(s) if len(s) > 1 else None for s in data.source_sets]
        measured = [i for i in everyone if dispersion[i] is not None]

        def mean_dispersion(rows: list[int]) -> float | None:
            return _mean([dispersion[i] for i in rows if dispersion[i] is not None])

        details: dict[str, Any] = {
            "dataset": params["dataset"], "source_style": params["source_style"],
            "target_style": params["target_style"], "split": params["split"], "feature_source": EMOJI_FEATURE_SOURCE,
            "ties": "pessimistic", "mrr_variant": params["mrr"], "n_queries": len(everyone), "n_source_total": data.n_source_total,
            "n_candidates": len(data.candidate_words), "n_pairs": data.n_pairs,
            "source_images_per_query": _mean([len(s) for s in data.source_sets]),
            "target_images_per_candidate": _mean([len(s) for s in data.target_sets]),
            "mean_dispersion": mean_dispersion(everyone),
        }
        if data.n_source_total_by_pos:
            by_pos: dict[str, Any] = {}
            for pos in POS_TAGS:
                rows = [i for i in everyone if pos in data.query_pos[i]]
                total = data.n_source_total_by_pos.get(pos, 0)
                entry = {"n_queries": len(rows), "n_source_total": total,
                         "coverage": len(rows) / total if total else None,
                         "mean_dispersion": mean_dispersion(rows)}
                if rows:
                    pos_scores = rank(rows)
                    result.update({f"{name}_{pos}": value for name, value in pos_scores.items()})
                    entry.update(pos_scores)
                by_pos[pos] = entry
            details["by_pos"] = by_pos
        order = sorted(measured, key=lambda i: (dispersion[i], data.query_words[i]))
        groups = {"low": order[: len(order) // 2], "high": order[len(order) // 2 :],
                  "single_image": [i for i in everyone if dispersion[i] is None]}
        details["dispersion_groups"] = {
            name: {"n_queries": len(rows), "mean_dispersion": mean_dispersion(rows), **(rank(rows) if rows else {})}
            for name, rows in groups.items()
        }
        ranks = ranking_scores(scores, data.gold, KS, ties="pessimistic", return_ranks=True)["ranks"].tolist()
        rank_of = dict(zip(data.query_words, ranks))
        pos_of: dict[str, str] = {}
        for word, tags in zip(data.query_words, data.query_pos):
            pos_of[word] = "".join(tags)
        # Per unique source word (sorted): best-gold rank ("-": no images or no gold with images) and POS.
        details["items"] = encode_items("source-word", len(data.source_words), {
            "rank": encode_column([rank_of.get(word) for word in data.source_words]),
        }, pos=" ".join(pos_of.get(word) or "-" for word in data.source_words))
        return Score(scores=result, n_items=data.n_source_total, coverage=len(everyone) / data.n_source_total,
                     details=details)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def read_word_list(card: TaskCard, subset: Subset, data_dir: Path, dataset: str) -> WordList:
    """The subset's translation pairs (source column = ``subset.languages[0]``)."""
    from ..data.visual_bli import load_bergsma500, load_cldi_pairs

    if dataset == "cldi":
        (word_file,) = _cldi_files(subset)
        pairs = load_cldi_pairs(word_file.resolve(card.directory, data_dir))
        return WordList(list(pairs["source"]), list(pairs["target"]), list(pairs["pos"]))
    source, target = subset.languages
    first = next(f for f in subset.files if Path(f.path).name == f"pictureWords.{source}.txt")
    folder = first.resolve(card.directory, data_dir).parent
    table = load_bergsma500(folder, languages=[source, target])
    return WordList(list(table[source]), list(table[target]), None)


def build_queries(card: TaskCard, subset: Subset, data_dir: Path, params: dict[str, Any]) -> VisualBliQueries:
    """Image sets, candidates and gold of one subset, exactly as the kind hands them to a model."""
    from ..data.emoji_image_sets import image_set_index, normalize_term

    words = read_word_list(card, subset, Path(data_dir), params["dataset"])
    if not words.sources:
        raise DataError(f"task {card.name!r} subset {subset.name!r}: empty word list")
    manifest = next(f for f in subset.files if Path(f.path).name == MANIFEST)
    artifact = manifest.resolve(card.directory, Path(data_dir)).parent
    source_lang, target_lang = subset.languages
    source_index = image_set_index(source_lang, params["source_style"], params["split"], artifact)
    target_index = image_set_index(target_lang, params["target_style"], params["split"], artifact)

    # A word with no word characters keeps its lowercased spelling as key: it counts, but has no images.
    sources = [normalize_term(w) or w.lower() for w in words.sources]
    targets = [normalize_term(w) or w.lower() for w in words.targets]
    pos = words.pos or [""] * len(sources)
    candidates = sorted({t for t in targets if target_index.rows.get(t)})
    column = {term: i for i, term in enumerate(candidates)}
    gold: dict[str, set[int]] = defaultdict(set)
    gold_pos: dict[str, set[str]] = defaultdict(set)
    listed_pos: dict[str, set[str]] = defaultdict(set)
    for source, target, tag in zip(sources, targets, pos):
        listed_pos[tag].add(source)
        if source_index.rows.get(source) and target in column:
            gold[source].add(column[target])
            gold_pos[source].add(tag)
    queries = sorted(gold)
    return VisualBliQueries(
        query_words=queries,
        candidate_words=candidates,
        source_sets=[source_index.features[list(source_index.rows[q])] for q in queries],
        target_sets=[target_index.features[list(target_index.rows[c])] for c in candidates],
        gold=[sorted(gold[q]) for q in queries],
        query_pos=[tuple(sorted(gold_pos[q] - {""})) for q in queries],
        n_source_total=len(set(sources)),
        source_words=sorted(set(sources)),
        n_source_total_by_pos={tag: len(listed) for tag, listed in sorted(listed_pos.items()) if tag},
        n_pairs=len(sources),
    )


@hookimpl
def register_task_kinds(register):
    register(VisualBilingualLexiconInduction())
