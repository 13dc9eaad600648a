"""Word similarity (monolingual and crosslingual): cosine vs. human scores, Spearman rho, coverage."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..cards import Subset, TaskCard
from ..errors import DataError
from ..hookspecs import hookimpl
from ..models import Capability, Incompatible, Model
from ..results import encode_column, encode_items
from . import (
    EvalContext,
    Score,
    TaskKind,
    check_params,
    check_widths,
    limit_rows,
    model_word_vectors,
    require_separate_vocabularies,
)

VOCABULARY_BATCH = 65536  # words per embed_words call when averaging a whole vocabulary

PARAMS = {"oov": ("drop", "mean", "zero"), "case": ("exact", "lower", "fallback")}


def lookup_variants(word: str, case: str) -> list[str]:
    """Spellings tried for a word, in order (MUSE tries exact, then capitalised/title forms)."""
    if case == "exact":
        return [word]
    if case == "lower":
        return [word.lower()]
    variants = [word, word.lower(), word.capitalize(), word.title()]
    return list(dict.fromkeys(variants))


def embed_vocabulary(model: Model, words_by_language: dict[str, set[str]], case: str):
    """Embed each distinct (language, word) once; return lookup dict (lang, word) -> vector or None.

    Every ``embed_words`` answer is checked (:func:`model_word_vectors`: rows, width, float dtype, a
    boolean ``found`` per word, finite found rows) and all answers must share one width.
    """
    table: dict[tuple[str, str], np.ndarray | None] = {}
    first: tuple[str, np.ndarray] | None = None
    for language, words in words_by_language.items():
        ordered = sorted(words)
        pending = {w: lookup_variants(w, case) for w in ordered}
        for attempt in range(max(len(v) for v in pending.values()) if pending else 0):
            queries = [(w, v[attempt]) for w, v in pending.items() if attempt < len(v)]
            if not queries:
                break
            vectors, found = model_word_vectors(model, [q for _, q in queries], language)
            first = first or (f"vectors from embed_words({language})", vectors)
            check_widths(model, [first, (f"vectors from embed_words({language})", vectors)])
            for (word, _), vec, ok in zip(queries, vectors, found):
                if ok:
                    table[(language, word)] = np.asarray(vec, dtype=np.float32)
            pending = {w: v for w, v in pending.items() if (language, w) not in table}
        for word in ordered:
            table.setdefault((language, word), None)
    return table


def vocabulary_mean(model: Model, language: str) -> np.ndarray:
    """Mean vector of the model's whole ``language`` vocabulary: what ``oov="mean"`` puts in for a missing
    word (word-embeddings-benchmarks' ``np.mean(w.vectors, axis=0)``). Averaged in batches, float64."""
    try:
        words = list(dict.fromkeys(model.vocabulary(language)))
    except Incompatible as exc:
        raise Incompatible(f"oov='mean' fills missing words with the vocabulary mean, but {exc}") from None
    total, count = None, 0
    for start in range(0, len(words), VOCABULARY_BATCH):
        vectors, found = model_word_vectors(model, words[start:start + VOCABULARY_BATCH], language)
        part = np.asarray(vectors, dtype=np.float64)[found].sum(axis=0)
        total = part if total is None else total + part
        count += int(found.sum())
    if not count:
        raise Incompatible(f"oov='mean': model {model.name!r} embeds none of its {language!r} vocabulary")
    return total / count


class WordSimilarity(TaskKind):
    name = "word-similarity"
    description = "cosine similarity of word pairs vs. human ratings (Spearman rho, coverage)"
    requires = frozenset({Capability.WORDS})
    scores = {"spearman": True, "pearson": True}

    def validate(self, card: TaskCard) -> list[str]:
        problems = check_params(card.params, PARAMS)
        for subset in card.subsets:
            problems += check_params(subset.params, PARAMS, f"subsets.{subset.name}.params")
            if not subset.files:
                problems.append(f"subsets.{subset.name}.files: a word-similarity subset needs data files")
            if len(subset.languages) not in (1, 2):
                problems.append(f"subsets.{subset.name}.languages: give one language or a pair")
        return problems

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        from ..data.wordsim import load_wordsim
        from ..metrics.wordsim import word_similarity

        params = {"oov": "drop", "case": "fallback", **card.params, **subset.params}
        languages = subset.languages if len(subset.languages) == 2 else subset.languages * 2
        require_separate_vocabularies(model, languages)
        pairs = load_wordsim(card.data_paths(subset, ctx.data_dir), languages=tuple(languages))
        if len(pairs) == 0:
            raise DataError(f"task {card.name!r} subset {subset.name!r}: no word pairs")
        pairs = limit_rows(pairs, ctx)
        words: dict[str, set[str]] = defaultdict(set)
        for w1, l1, w2, l2 in zip(pairs["word1"], pairs["lang1"], pairs["word2"], pairs["lang2"]):
            words[l1].add(w1)
            words[l2].add(w2)
        table = embed_vocabulary(model, words, params["case"])
        dim = next((v.shape[0] for v in table.values() if v is not None), 1)
        zero = np.zeros(dim, dtype=np.float32)
        left = [table[(l, w)] for w, l in zip(pairs["word1"], pairs["lang1"])]
        right = [table[(l, w)] for w, l in zip(pairs["word2"], pairs["lang2"])]
        found = np.array([[a is not None, b is not None] for a, b in zip(left, right)], dtype=bool)
        v1 = np.stack([zero if a is None else a for a in left])
        v2 = np.stack([zero if b is None else b for b in right])
        fill = None
        if params["oov"] == "mean":
            means = {language: vocabulary_mean(model, language) for language in dict.fromkeys(languages)}
            fill = (means[languages[0]], means[languages[1]])
        result = word_similarity(v1, v2, np.asarray(pairs["score"], dtype=np.float64), found, oov=params["oov"],
                                 vocabulary_mean=fill, return_similarities=True)
        scores = {"spearman": float(result["spearman"]), "pearson": float(result["pearson"])}
        details = {
            "oov_policy": params["oov"], "case_policy": params["case"],
            **({"oov_fill": "vocabulary-mean"} if params["oov"] == "mean" else {}),
            "n_pairs": int(result["n_pairs"]), "n_found": int(result["n_found"]),
            "n_scored": int(result["n_scored"]), "degenerate": bool(result.get("degenerate", False)),
            # Per pair, in file order: the cosine scored ("-" when the pair was not) and the gold rating, both
            # exact: near-equal cosines (words with equal vectors) must keep the order the score saw.
            "items": encode_items("pair", int(result["n_pairs"]), {
                "similarity": encode_column(result["similarities"].tolist(), decimals="exact"),
                "gold": encode_column(np.asarray(pairs["score"], dtype=np.float64).tolist(), decimals="exact"),
                "covered": encode_column(found.all(axis=1).astype(int).tolist()),  # both words have vectors
            }),
        }
        return Score(scores=scores, n_items=int(result["n_pairs"]), coverage=float(result["coverage"]), details=details)


@hookimpl
def register_task_kinds(register):
    register(WordSimilarity())
