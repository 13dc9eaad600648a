"""Task kinds: generic code that runs every card of one kind (MTEB-style).

A kind declares the model capabilities it needs and its scores (with direction); ``evaluate`` turns one
(model, card, subset) into a :class:`Score`. Kinds are registered through the ``register_task_kinds`` hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..cards import Subset, TaskCard
from ..errors import MMBenchError
from ..models import Capability, Model


@dataclass
class EvalContext:
    data_dir: Path
    seed: int = 0
    device: str = "cpu"
    progress: Any = None
    limit: int | None = None  # --limit N: score at most N items of the subset (a smoke run)

    def take(self, n: int) -> int:
        """How many of ``n`` items to score: all of them, or the first ``limit`` for a smoke run."""
        return n if self.limit is None else min(n, self.limit)


def limit_rows(rows: Any, ctx: EvalContext) -> Any:
    """The first ``ctx.limit`` rows of a ``datasets.Dataset``, array or list (all of them without a limit)."""
    n = len(rows)
    keep = ctx.take(n)
    if keep == n:
        return rows
    return rows.select(range(keep)) if hasattr(rows, "select") else rows[:keep]


def limit_retrieval(data: Any, ctx: EvalContext) -> Any:
    """Image-text data cut to its first ``ctx.limit`` images and their captions (one fold: a limited run
    has too few images for COCO's 1K folds)."""
    keep = ctx.take(data.n_images)
    if keep == data.n_images:
        return data
    import dataclasses

    return dataclasses.replace(data, features=data.features[:keep],
                               captions=data.captions[:keep * data.captions_per_image], folds=1)


@dataclass
class Score:
    scores: dict[str, float]
    n_items: int
    coverage: float | None = None
    details: dict[str, Any] = field(default_factory=dict)  # policies actually applied (e.g. OOV handling)


class TaskKind:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Capability]] = frozenset()
    scores: ClassVar[dict[str, bool]] = {}  # score name -> higher is better
    needs_files: ClassVar[bool] = True
    # Whether ``evaluate`` honours ``ctx.limit`` (``--limit N``: at most N items). A kind that cannot (its
    # protocol needs a fixed number of candidates) is skipped in a limited run, with the reason.
    supports_limit: ClassVar[bool] = True

    def validate(self, card: TaskCard) -> list[str]:
        """Kind-specific checks of ``card.params`` / subsets; return problems as 'field: problem'."""
        return []

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        raise NotImplementedError

    def higher_is_better(self, score_name: str) -> bool:
        return self.scores.get(score_name, True)


SIMILARITIES = ("cosine", "dot", "order")
SIMILARITY_KINDS = ("retrieval", "caption-retrieval")  # kinds that compare embeddings with model_similarity


def model_similarity(model: Model, card_similarity: str) -> str:
    """The similarity a retrieval kind scores ``model`` with: the model's declared one, else the card's."""
    declared = model.similarity()
    if declared is None:
        return card_similarity
    if declared not in SIMILARITIES:
        raise MMBenchError(f"model {model.name!r} similarity() returned {declared!r}, not one of "
                           f"{', '.join(SIMILARITIES)} or None")
    return declared


def protocol_suffix(model: Model, card: TaskCard) -> str:
    """``"+sim=order"`` when ``model`` declares a similarity other than the card's on a retrieval card, else "".

    The runner appends it to the card's protocol when it names a record, so rows scored with another
    similarity never rank beside the card's own.
    """
    if card.kind not in SIMILARITY_KINDS:
        return ""
    card_similarity = card.params.get("similarity", "cosine")
    used = model_similarity(model, card_similarity)
    return "" if used == card_similarity else f"+sim={used}"


def check_params(params: dict[str, Any], allowed: dict[str, tuple], where: str = "params") -> list[str]:
    """Validate a params table against ``{key: (allowed values...)}`` (empty tuple: any value)."""
    problems = []
    for key, value in params.items():
        if key not in allowed:
            problems.append(f"{where}.{key}: unknown parameter (known: {', '.join(sorted(allowed))})")
        elif allowed[key] and value not in allowed[key]:
            problems.append(f"{where}.{key}: {value!r} is not one of {', '.join(map(repr, allowed[key]))}")
    return problems


FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))  # what the metrics take


def model_embeddings(
    array: Any,
    rows: int,
    what: str,
    model: Model,
    device: str = "cpu",
    *,
    call: str,
    width: int | None = None,
    columns: str = "",
    finite_rows: np.ndarray | None = None,
) -> Any:
    """A model's output checked as a ``(rows, d)`` floating-point matrix (a tensor on ``device`` for CUDA).

    Every kind passes every model output through here before scoring. Checked, in this order: one
    rectangular numeric array (not ragged), two dimensions, exactly ``rows`` rows, ``d >= 1`` columns
    (exactly ``width`` when given, e.g. one score per target word), a float16/32/64 dtype (int, bool,
    object, str are refused) and no NaN, +inf or -inf. ``finite_rows`` (a boolean mask, e.g. ``embed_words``'
    ``found``) limits the finiteness check to the rows the kind reads. A failure is one
    :class:`MMBenchError` line naming the model, the method (``call``, e.g. ``"embed_words(de)"``) and
    what was wrong, e.g. ``model 'x' embed_words(de) returned 64 rows for 65 words``.
    """
    said = f"model {model.name!r} {call} returned"
    try:
        values = np.asarray(array)
    except ValueError:  # numpy: "inhomogeneous shape"
        raise MMBenchError(f"{said} a ragged array for {rows} {what} (rows of different lengths)") from None
    except TypeError:  # e.g. a CUDA tensor
        raise MMBenchError(f"{said} a {type(array).__name__} for {rows} {what}, not an array of numbers") from None
    if values.ndim != 2:
        raise MMBenchError(f"{said} an array of shape {values.shape} for {rows} {what}, not ({rows}, d)")
    if values.shape[0] != rows:
        raise MMBenchError(f"{said} {values.shape[0]} rows for {rows} {what}")
    if width is not None and values.shape[1] != width:
        raise MMBenchError(f"{said} {values.shape[1]} columns for {width} {columns}".rstrip())
    if width is None and values.shape[1] == 0 and rows:
        raise MMBenchError(f"{said} 0-wide vectors for {rows} {what}")
    if values.dtype not in FLOAT_DTYPES:
        raise MMBenchError(f"{said} {values.dtype} values for {what}, not floating-point numbers")
    checked = values if finite_rows is None else values[finite_rows]
    if not np.isfinite(checked).all():
        kinds = {"NaN": np.isnan(checked), "+inf": np.isposinf(checked), "-inf": np.isneginf(checked)}
        bad = np.zeros(len(checked), dtype=bool)
        for mask in kinds.values():
            bad |= mask.any(axis=1)
        which = " and ".join(name for name, mask in kinds.items() if mask.any())
        raise MMBenchError(f"{said} {which} for {int(bad.sum())} of {rows} {what}")
    if not values.flags.writeable:  # e.g. a zero-copy view of the features; torch wants writable memory
        values = values.copy()
    if device.startswith("cuda"):
        import torch

        return torch.as_tensor(values, device=device)
    return values


def model_word_vectors(model: Model, words: Sequence[str], language: str) -> tuple[np.ndarray, np.ndarray]:
    """``model.embed_words(words, language)`` checked: ``(vectors, found)`` as ``model_embeddings`` plus the mask.

    ``found`` must be a bool array of one flag per word. Only found rows must be finite: rows of words
    not found are never read (the contract asks for zeros there, but a NaN or inf in them is not an
    error). The vectors' own problems are reported before the mask's. ``words`` is never empty here.
    """
    call = f"embed_words({language})"
    said = f"model {model.name!r} {call} returned"
    returned = model.embed_words(words, language)
    if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
        raise MMBenchError(f"{said} {type(returned).__name__}, not a (vectors, found) pair")
    vectors, found = returned
    try:
        found = np.asarray(found)
    except (TypeError, ValueError):
        found = np.asarray(None)
    n = len(words)
    if found.shape != (n,) or found.dtype != np.bool_:
        model_embeddings(vectors, n, "words", model, call=call, finite_rows=np.zeros(n, dtype=bool))  # vectors first
        if found.shape != (n,):
            raise MMBenchError(f"{said} a found mask of shape {found.shape} for {n} words, not ({n},)")
        raise MMBenchError(f"{said} a found mask of {found.dtype} values, not bool")
    vectors = model_embeddings(vectors, n, "words", model, call=call, finite_rows=found)
    return vectors, found


def require_separate_vocabularies(model: Model, languages: Sequence[str]) -> None:
    """Refuse a model with one vocabulary for every language on a crosslingual subset.

    A model that does not say which languages it knows (``languages() is None``, e.g. a ``vectors:`` file
    without ``en:`` prefixes) and answers ``vocabulary()`` with the same word list for every language of
    the subset serves them all from one table, so an identical spelling translates itself (random vectors
    score en-fr P@1 93.65 that way). Such a model is skipped (``Incompatible``) unless it declares the
    sharing on purpose with a true ``shared_vocabulary`` attribute (``vectors:`` ``--set
    shared_vocabulary=true``, which also enters its identity).
    """
    from ..models import Incompatible

    distinct = list(dict.fromkeys(languages))
    if len(distinct) < 2 or model.languages() is not None or getattr(model, "shared_vocabulary", False):
        return
    try:
        vocabularies = [model.vocabulary(language) for language in distinct]
    except Incompatible:
        return  # no vocabulary to compare: nothing says the languages share one
    if all(isinstance(v, list) for v in vocabularies) and all(v == vocabularies[0] for v in vocabularies[1:]):
        raise Incompatible(f"model {model.name!r} has one vocabulary for all languages (no language prefixes), so "
                           f"on a crosslingual task ({'-'.join(distinct)}) identical spellings translate themselves; "
                           "give per-language words (en:cat) or files (en=a.vec,fr=b.vec), or set "
                           "shared_vocabulary=true if the sharing is intended")


def check_widths(model: Model, outputs: Sequence[tuple[str, Any]]) -> None:
    """Outputs compared with each other (images and names, two languages) share one width.

    ``outputs``: ``(label, matrix)`` pairs, the label naming the method, e.g. ``"names from embed_texts(en)"``.
    """
    (first, matrix), *others = outputs
    for label, other in others:
        if other.shape[1] != matrix.shape[1]:
            raise MMBenchError(f"model {model.name!r} returned {matrix.shape[1]}-d {first} "
                               f"but {other.shape[1]}-d {label}")
