"""Bilingual lexicon induction on MUSE dictionaries (``src/evaluation/word_translation.py`` convention).

Queries are the unique source words of the dictionary that are in the model's (capped) source
vocabulary and have at least one gold translation in its target vocabulary; their gold set is those
in-vocabulary translations. Retrieval runs over the model's *full* target vocabulary and CSLS
neighbourhoods over the full source and target vocabularies, so the numbers depend on the vocabulary
a model exposes (``max_vocab`` keeps its first N words, as MUSE keeps the 200k most frequent).
Coverage is the share of unique dictionary source words that became queries.

Case (``case``): ``"muse"`` (the packaged MUSE cards) follows MUSE's ``read_txt_embeddings``: the
vocabulary is lowercased on load, the first occurrence of each lowercased word is kept (its vector stands
for the word; later spellings leave the search space) and ``max_vocab`` counts those distinct lowercased
words; dictionary words (lowercase in MUSE) are then looked up exactly. ``"fallback"``/``"exact"``/``"lower"``
keep the model's vocabulary as given and look each dictionary word up under those spellings; on a
mixed-case ``vectors:`` file ``"fallback"`` scored about 2 P@1 points below MUSE's own evaluation.

NN and CSLS are different protocols: a card fixes ``method`` (and ``csls_k``) for all its subsets and
names it in ``protocol`` (the packaged cards are ``muse-bli`` for CSLS and ``muse-bli-nn`` for NN), so
a record's task and protocol say which retrieval produced it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cards import Subset, TaskCard
from ..errors import DataError, MMBenchError
from ..hookspecs import hookimpl
from ..models import Capability, Incompatible, Model
from ..results import encode_column, encode_items
from . import (
    EvalContext,
    Score,
    TaskKind,
    check_params,
    check_widths,
    model_word_vectors,
    require_separate_vocabularies,
)
from .word_similarity import lookup_variants

PARAMS: dict[str, tuple] = {
    "method": ("csls", "nn"),
    "csls_k": (),
    "max_vocab": (),
    "case": ("exact", "lower", "fallback", "muse"),
}
CARD_ONLY = ("method", "csls_k", "max_vocab")  # they define the protocol, so no subset may change them
DEFAULTS = {"method": "csls", "csls_k": 10, "max_vocab": None, "case": "fallback"}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def model_vocabulary(
    model: Model, language: str, max_vocab: int | None, *, lowercase_first: bool = False
) -> tuple[list[str], np.ndarray]:
    """The model's vocabulary of ``language`` (first ``max_vocab`` distinct words) and its vectors.

    ``lowercase_first`` (``case="muse"``): words are lowercased and the first occurrence of each lowercased
    word is kept, before ``max_vocab`` counts them; the returned words are lowercase, each with the vector
    of its first spelling (MUSE's ``read_txt_embeddings``).

    Words that ``embed_words`` does not find are dropped. Raises ``Incompatible`` when the model has no
    vocabulary for the language, so the pair is recorded as skipped rather than scored as zero.
    """
    returned = model.vocabulary(language)
    said = f"model {model.name!r} vocabulary({language}) returned"
    try:
        vocabulary = None if isinstance(returned, (str, bytes)) else list(returned)
    except TypeError:
        vocabulary = None
    if vocabulary is None:
        raise MMBenchError(f"{said} {type(returned).__name__}, not a list of words")
    stray = [w for w in vocabulary if not isinstance(w, str)][:1]
    if stray:
        raise MMBenchError(f"{said} a {type(stray[0]).__name__} ({stray[0]!r}) among its words, not only str")
    words = list(dict.fromkeys(vocabulary))
    lowered: list[str] | None = None
    if lowercase_first:
        first_spelling = {}
        for word in words:
            if max_vocab is not None and len(first_spelling) >= max_vocab:
                break
            first_spelling.setdefault(word.lower(), word)
        lowered, words = list(first_spelling), list(first_spelling.values())
    elif max_vocab is not None:
        words = words[:max_vocab]
    if not words:
        raise Incompatible(f"model has no vocabulary for language {language!r}")
    vectors, found = model_word_vectors(model, words, language)  # one row per vocabulary word, found rows finite
    vectors = vectors.astype(np.float32, copy=False)
    words = lowered if lowered is not None else words
    if not found.all():
        words = [w for w, ok in zip(words, found) if ok]
        vectors = vectors[found]
    if not words:
        raise Incompatible(f"model embeds none of its own {language!r} vocabulary")
    return words, vectors


def resolve_rows(words: list[str], index: dict[str, int], case: str) -> dict[str, int]:
    """Row of each dictionary word in a vocabulary ``index`` (first matching spelling), found words only."""
    rows = {}
    for word in words:
        for variant in lookup_variants(word, case):
            if variant in index:
                rows[word] = index[variant]
                break
    return rows


def bli_queries(
    sources: list[str], targets: list[str], source_rows: dict[str, int], target_rows: dict[str, int]
) -> tuple[dict[int, set[int]], int]:
    """``{source row: {gold target rows}}`` for in-vocabulary pairs, and the number of unique source words."""
    queries: dict[int, set[int]] = {}
    for source, target in zip(sources, targets):
        if source in source_rows and target in target_rows:
            queries.setdefault(source_rows[source], set()).add(target_rows[target])
    return queries, len(set(sources))


class BilingualLexiconInduction(TaskKind):
    name = "bli"
    description = "bilingual lexicon induction over the full vocabularies, MUSE protocol (P@1/5/10, NN or CSLS)"
    requires = frozenset({Capability.WORDS})
    scores = {"p1": True, "p5": True, "p10": True, "mrr": True}

    def validate(self, card: TaskCard) -> list[str]:
        problems = check_params(card.params, PARAMS)
        for key in ("csls_k", "max_vocab"):
            if key in card.params and not _positive_int(card.params[key]):
                problems.append(f"params.{key}: expected a positive integer, got {card.params[key]!r}")
        for subset in card.subsets:
            where = f"subsets.{subset.name}"
            problems += check_params(subset.params, PARAMS, f"{where}.params")
            problems += [
                f"{where}.params.{key}: set it on the card (it defines the protocol)"
                for key in CARD_ONLY if key in subset.params
            ]
            if len(subset.languages) != 2:
                problems.append(f"{where}.languages: give the pair [source, target]")
            if not subset.files:
                problems.append(f"{where}.files: a bli subset needs its dictionary file(s)")
        return problems

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        from ..data.io import column_array
        from ..data.muse import load_muse_dictionary
        from ..metrics.bli import bli_scores

        params = {**DEFAULTS, **card.params, **subset.params}
        src, tgt = subset.languages
        require_separate_vocabularies(model, subset.languages)
        # Vocabularies first: a model without one of the languages is skipped before any data is read.
        muse_case = params["case"] == "muse"
        source_words, source_vectors = model_vocabulary(model, src, params["max_vocab"], lowercase_first=muse_case)
        target_words, target_vectors = model_vocabulary(model, tgt, params["max_vocab"], lowercase_first=muse_case)
        check_widths(model, [(f"vectors from embed_words({src})", source_vectors),
                             (f"vectors from embed_words({tgt})", target_vectors)])

        sources: list[str] = []
        targets: list[str] = []
        for path in card.data_paths(subset, ctx.data_dir):
            dictionary = load_muse_dictionary(path)
            sources += column_array(dictionary, "source").tolist()
            targets += column_array(dictionary, "target").tolist()
        if not sources:
            raise DataError(f"task {card.name!r} subset {subset.name!r}: empty dictionary")
        if ctx.limit is not None:  # the first N source words, with all their translations
            kept = set(list(dict.fromkeys(sources))[:ctx.limit])
            sources, targets = map(list, zip(*[(s, t) for s, t in zip(sources, targets) if s in kept]))

        lookup = "lower" if muse_case else params["case"]
        source_rows = resolve_rows(sorted(set(sources)), {w: i for i, w in enumerate(source_words)}, lookup)
        target_rows = resolve_rows(sorted(set(targets)), {w: i for i, w in enumerate(target_words)}, lookup)
        queries, n_source_total = bli_queries(sources, targets, source_rows, target_rows)
        source_matrix, target_matrix = _on_device(source_vectors, ctx.device), _on_device(target_vectors, ctx.device)
        result = bli_scores(
            source_matrix, target_matrix, queries, method=params["method"], csls_k=params["csls_k"],
            n_source_total=n_source_total, return_ranks=True,
        )
        rank_of_row = dict(zip(queries, result["ranks"].tolist()))
        source_list = sorted(set(sources))
        item_ranks = [rank_of_row.get(source_rows.get(word, -1)) for word in source_list]
        details = {
            "method": params["method"], "csls_k": params["csls_k"] if params["method"] == "csls" else None,
            "case_policy": params["case"], "max_vocab": params["max_vocab"],
            "n_queries": int(result["n_queries"]), "n_source_total": n_source_total, "n_pairs": len(sources),
            "source_vocab_size": len(source_words), "target_vocab_size": len(target_words),
            # Per unique dictionary source word (sorted): 0-based rank of its best gold ("-": not a query).
            "items": encode_items("source-word", len(source_list), {"rank": encode_column(item_ranks)}),
        }
        return Score(
            scores={k: float(result[k]) for k in ("p1", "p5", "p10", "mrr")},
            n_items=n_source_total,
            coverage=float(result["coverage"]),
            details=details,
        )


def _on_device(matrix: np.ndarray, device: str):
    if device == "cpu":
        return matrix
    import torch

    return torch.from_numpy(matrix).to(device)


@hookimpl
def register_task_kinds(register):
    register(BilingualLexiconInduction())
