"""Caption<->caption crosslingual retrieval: text ``i`` in language A translates text ``i`` in language B.

A subset's ``languages`` are ``[A, B]``; the card (or subset) param ``source`` says where the pairs come from:

* ``multi30k`` — Multi30k task 1, whose captions are translations aligned line by line: the subset's
  ``split`` (e.g. ``test_2016_flickr``, 1000 pairs) in two of en, de, fr, cs.
* ``multi30k-mini`` — the task-1 translations of mmbench's own multi30k-mini-v1 split (700/100/200
  test_2016 photos; not the official protocol), for models trained on its train photos.
* ``emoji`` — the CLDR names of the ``split`` concepts of the packaged emoji data in A and in B; only
  concepts named in both languages take part (coverage = named in both / concepts in the split).

Scoring is :func:`mmbench.metrics.retrieval.retrieval_scores` with one "caption" per "image": A texts play
the images and B texts the captions, so ``a2b_*`` are its ``i2t_*`` and ``b2a_*`` its ``t2i_*`` scores
(R@1/5/10 in percent, medr, meanr, ``rsum``). Ties are pessimistic by default, so a collapsed model
scores 0. A text that occurs twice in one language is kept (and counted in ``details``): a model cannot
tell the copies apart, so with pessimistic ties neither pair reaches R@1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cards import Subset, TaskCard
from ..data import EMOJI_SPLITS
from ..errors import DataError
from ..hookspecs import hookimpl
from ..models import Capability, Model
from ..results import encode_column, encode_items
from . import (
    EvalContext,
    Score,
    TaskKind,
    check_params,
    check_widths,
    limit_rows,
    model_embeddings,
    model_similarity,
)
from .retrieval_sources import emoji_names

CAPTION_PARAMS: dict[str, tuple] = {
    "source": ("multi30k", "multi30k-mini", "emoji"),
    "ties": ("pessimistic", "optimistic"),
    "similarity": ("cosine", "dot"),
}
DEFAULTS = {"ties": "pessimistic", "similarity": "cosine"}
DIRECTION_NAMES = {"i2t": "a2b", "t2i": "b2a"}  # retrieval_scores' names -> this kind's


@dataclass
class TranslationPairs:
    texts_a: list[str]
    texts_b: list[str]  # texts_b[i] translates texts_a[i]
    n_total: int  # pairs the source has for this split (coverage = pairs used / n_total)
    details: dict[str, Any] = field(default_factory=dict)


def caption_params(card: TaskCard, subset: Subset) -> dict[str, Any]:
    return {**DEFAULTS, **card.params, **subset.params}


# -- multi30k ---------------------------------------------------------------------------------------
def _check_multi30k(subset: Subset) -> list[str]:
    from ..data.multi30k import TASK1_SPLITS
    from .retrieval_sources import TASK1_LANGUAGES

    where = f"subsets.{subset.name}"
    problems = [f"{where}.languages: Multi30k task 1 has {', '.join(TASK1_LANGUAGES)}, not {lang!r}"
                for lang in subset.languages if lang not in TASK1_LANGUAGES]
    if subset.split not in TASK1_SPLITS:
        problems.append(f"{where}.split: use a Multi30k task-1 split ({', '.join(TASK1_SPLITS)})")
    return problems


def _load_multi30k(subset: Subset, data_dir: Path) -> TranslationPairs:
    from ..data.io import column_array
    from ..data.multi30k import load_multi30k

    a, b = subset.languages
    rows = load_multi30k(data_dir, task=1, split=subset.split, languages=[a, b], features=False)
    texts_a = column_array(rows, f"caption_{a}").tolist()
    texts_b = column_array(rows, f"caption_{b}").tolist()
    return TranslationPairs(texts_a, texts_b, len(rows), {"data": "multi30k", "multi30k_task": 1})


# -- multi30k-mini (mmbench's own 700/100/200 split of the test_2016 photos; task-1 translations) ------
def _check_multi30k_mini(subset: Subset) -> list[str]:
    from .retrieval_sources import TASK1_LANGUAGES

    where = f"subsets.{subset.name}"
    problems = [f"{where}.languages: multi30k-mini has {', '.join(TASK1_LANGUAGES)}, not {lang!r}"
                for lang in subset.languages if lang not in TASK1_LANGUAGES]
    if subset.split not in ("train", "val", "test"):
        problems.append(f"{where}.split: multi30k-mini splits are train, val, test, not {subset.split!r}")
    return problems


def _load_multi30k_mini(subset: Subset, data_dir: Path) -> TranslationPairs:
    from ..data.io import column_array
    from ..data.multi30k_mini import load_multi30k_mini

    a, b = subset.languages
    rows = load_multi30k_mini(data_dir)[subset.split]
    texts_a = column_array(rows, f"caption_{a}").tolist()
    texts_b = column_array(rows, f"caption_{b}").tolist()
    return TranslationPairs(texts_a, texts_b, len(rows), {"data": "multi30k-mini-v1", "multi30k_task": 1})


# -- emoji ------------------------------------------------------------------------------------------
def _check_emoji(subset: Subset) -> list[str]:
    if subset.split not in EMOJI_SPLITS:
        return [f"subsets.{subset.name}.split: emoji splits are {', '.join(EMOJI_SPLITS)}, not {subset.split!r}"]
    return []


def emoji_split_names(languages: tuple[str, ...], split: str) -> tuple[list[str], list[list[str]], int]:
    """Concepts of ``split`` named in every language (sorted), their names per language, and the split's size."""
    from ..data.emoji import load_emoji
    from ..data.io import column_array

    emoji = load_emoji()
    in_split = column_array(emoji.images, "split") == split
    concepts = sorted(set(column_array(emoji.images, "concept")[in_split].tolist()))
    if not concepts:
        raise DataError(f"emoji: no concepts in split {split!r}")
    names_by_language = [emoji_names(language) for language in languages]
    named = [c for c in concepts if all(c in names for names in names_by_language)]
    return named, [[names[c] for c in named] for names in names_by_language], len(concepts)


def _load_emoji(subset: Subset, data_dir: Path) -> TranslationPairs:
    _, (texts_a, texts_b), n_concepts = emoji_split_names(subset.languages, subset.split)
    return TranslationPairs(texts_a, texts_b, n_concepts, {"data": "emoji CLDR names"})


@dataclass(frozen=True)
class Source:
    check: Callable[[Subset], list[str]]
    load: Callable[[Subset, Path], TranslationPairs]


SOURCES = {
    "multi30k": Source(_check_multi30k, _load_multi30k),
    "multi30k-mini": Source(_check_multi30k_mini, _load_multi30k_mini),
    "emoji": Source(_check_emoji, _load_emoji),
}


def load_translation_pairs(card: TaskCard, subset: Subset, data_dir: Path) -> TranslationPairs:
    """The aligned texts of one subset, exactly as the kind hands them to a model."""
    source = caption_params(card, subset).get("source")
    if source not in SOURCES:
        raise DataError(f"task {card.name!r}: unknown caption-retrieval source {source!r}")
    return SOURCES[source].load(subset, Path(data_dir))


class CaptionRetrieval(TaskKind):
    name = "caption-retrieval"
    description = "crosslingual caption<->caption retrieval of translations (R@1/5/10, medr, rsum)"
    requires = frozenset({Capability.TEXT})
    scores = {
        **{f"{d}_r{k}": True for d in ("a2b", "b2a") for k in (1, 5, 10)},
        **{f"{d}_{m}": False for d in ("a2b", "b2a") for m in ("medr", "meanr")},
        "rsum": True,
    }
    needs_files = False

    def validate(self, card: TaskCard) -> list[str]:
        problems = check_params(card.params, CAPTION_PARAMS)
        for subset in card.subsets:
            where = f"subsets.{subset.name}"
            problems += check_params(subset.params, CAPTION_PARAMS, f"{where}.params")
            source = caption_params(card, subset).get("source")
            if source is None:
                problems.append(f"{where}.params.source: required (on the card or the subset): "
                                f"{', '.join(SOURCES)}")
            if len(subset.languages) != 2 or len(set(subset.languages)) != 2:
                problems.append(f"{where}.languages: give two different languages [A, B]")
            elif source in SOURCES:
                problems += SOURCES[source].check(subset)
        return list(dict.fromkeys(problems))

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        from ..metrics.retrieval import retrieval_scores

        params = caption_params(card, subset)
        # A model's declared similarity wins (records then carry "+sim=<name>"); under "order" the A texts
        # take the images' place (the more general side) and the B texts the captions'.
        params["similarity"] = model_similarity(model, params["similarity"])
        a, b = subset.languages
        pairs = load_translation_pairs(card, subset, ctx.data_dir)
        if ctx.limit is not None:
            pairs = dataclasses.replace(pairs, texts_a=limit_rows(pairs.texts_a, ctx), texts_b=limit_rows(pairs.texts_b, ctx))
        n = len(pairs.texts_a)
        if n == 0:
            raise DataError(f"task {card.name!r} subset {subset.name!r}: no {a}-{b} pairs in split {subset.split!r}")
        emb_a = model_embeddings(model.embed_texts(pairs.texts_a, a), n, "texts", model, ctx.device,
                                 call=f"embed_texts({a})")
        emb_b = model_embeddings(model.embed_texts(pairs.texts_b, b), n, "texts", model, ctx.device,
                                 call=f"embed_texts({b})")
        check_widths(model, [(f"texts from embed_texts({a})", emb_a), (f"texts from embed_texts({b})", emb_b)])
        raw = retrieval_scores(emb_a, emb_b, captions_per_image=1, ties=params["ties"],
                               similarity=params["similarity"], return_ranks=True)
        a2b, b2a = raw.pop("ranks")
        scores = {}
        for key, value in raw.items():
            prefix, _, metric = key.partition("_")
            scores[f"{DIRECTION_NAMES[prefix]}_{metric}" if metric else key] = float(value)
        details = {
            "source": params["source"],
            "split": subset.split,
            "a": a,
            "b": b,
            "n_pairs": n,
            "n_total": pairs.n_total,
            "duplicate_texts_a": n - len(set(pairs.texts_a)),
            "duplicate_texts_b": n - len(set(pairs.texts_b)),
            "ties": params["ties"],
            "similarity": params["similarity"],
            # Per pair (data order): 0-based rank of the partner in each direction.
            "items": encode_items("pair", n, {"a2b_rank": encode_column(a2b.tolist()),
                                              "b2a_rank": encode_column(b2a.tolist())}),
            "scoring": "retrieval_scores with 1 caption per image: A texts = images (a2b = i2t), B texts = captions",
            **pairs.details,
        }
        return Score(scores=scores, n_items=n, coverage=n / pairs.n_total, details=details)


@hookimpl
def register_task_kinds(register):
    register(CaptionRetrieval())
