"""Image<->text retrieval (VSE++ convention: R@1/5/10, median and mean rank, rsum).

Image sources: ``emoji`` (the embedded default: each test concept's image in one drawing style, its
CLDR name in the subset's language as its one caption). Further sources (Multi30k, COCO, VSE++ layouts)
plug in through ``SOURCES``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..cards import Subset, TaskCard
from ..errors import DataError
from ..hookspecs import hookimpl
from ..models import Capability, Model
from . import EvalContext, Score, TaskKind, check_params

EMOJI_FEATURE_SOURCE = "emoji/efficientnet-lite0"
PARAMS = {"source": ("emoji",), "style": ("noto", "emojione", "symbola"), "ties": ("pessimistic", "optimistic")}


def emoji_pairs(language: str, split: str, style: str) -> tuple[np.ndarray, list[str], int]:
    """Features of the ``style`` image of every ``split`` concept named in ``language``, and the names.

    Returns (features, names, n_concepts_in_split) with one caption per image, sorted by concept id.
    """
    from ..data.emoji import load_emoji
    from ..data.io import column_array

    emoji = load_emoji()
    splits = column_array(emoji.images, "split")
    styles = column_array(emoji.images, "style")
    rows = np.flatnonzero((splits == split) & (styles == style))
    if rows.size == 0:
        raise DataError(f"emoji: no {style} images in split {split!r}")
    concepts = column_array(emoji.images, "concept")[rows]
    text_rows = np.flatnonzero(column_array(emoji.texts, "language") == language)
    if text_rows.size == 0:
        raise DataError(f"emoji: no names in language {language!r} (see `mmbench data info emoji`)")
    name_of = dict(zip(column_array(emoji.texts, "concept")[text_rows], column_array(emoji.texts, "name")[text_rows]))
    order = sorted((c, r) for c, r in zip(concepts, rows) if c in name_of)
    feature_matrix = emoji.features_matrix()
    features = feature_matrix[[r for _, r in order]]
    names = [name_of[c] for c, _ in order]
    return features, names, int(rows.size)


SOURCES: dict[str, Callable[..., tuple[np.ndarray, list[str], int]]] = {"emoji": emoji_pairs}


class Retrieval(TaskKind):
    name = "retrieval"
    description = "image<->text retrieval, VSE++ protocol (R@K, medr, meanr, rsum)"
    requires = frozenset({Capability.TEXT, Capability.IMAGES})
    scores = {
        **{f"{d}_r{k}": True for d in ("i2t", "t2i") for k in (1, 5, 10)},
        **{f"{d}_{m}": False for d in ("i2t", "t2i") for m in ("medr", "meanr")},
        "rsum": True,
    }
    needs_files = False

    def validate(self, card: TaskCard) -> list[str]:
        problems = check_params(card.params, PARAMS)
        if card.params.get("source", "emoji") == "emoji":
            for subset in card.subsets:
                if len(subset.languages) != 1:
                    problems.append(f"subsets.{subset.name}.languages: give exactly one caption language")
        return problems

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        from ..metrics.retrieval import retrieval_scores

        params = {"source": "emoji", "style": "noto", "ties": "pessimistic", **card.params, **subset.params}
        language = subset.languages[0]
        features, captions, n_total = SOURCES[params["source"]](language, subset.split, params["style"])
        image_emb = model.embed_images(features, source=EMOJI_FEATURE_SOURCE)
        caption_emb = model.embed_texts(captions, language)
        scores = retrieval_scores(image_emb, caption_emb, captions_per_image=1, ties=params["ties"])
        details = {"ties": params["ties"], "style": params["style"], "captions_per_image": 1}
        return Score(
            scores={k: float(v) for k, v in scores.items()},
            n_items=len(captions),
            coverage=len(captions) / n_total,
            details=details,
        )


@hookimpl
def register_task_kinds(register):
    register(Retrieval())
