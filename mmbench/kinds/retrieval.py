"""Image<->text retrieval (VSE++ convention: R@1/5/10, median and mean rank, rsum).

The card param ``source`` says where images and captions come from (``emoji``, ``multi30k-mini``,
``multi30k``, ``precomputed``, ``coco``; see :mod:`mmbench.kinds.retrieval_sources`). Captions
``k*i .. k*i+k-1`` describe image ``i``; image->text ranks an image by its best caption. Common params:
``ties`` (``pessimistic``: a wrong item tied with the right one ranks first) and ``similarity``
(``cosine``, ``dot``, ``order``; a model that declares its own with ``Model.similarity()`` is scored with
that one, and its records carry the protocol suffix ``+sim=<name>``). With the COCO ``1k`` protocol every score is the mean over five
contiguous folds of 1000 images (VSE++ ``fold5``). Score details record the protocol actually applied.
"""

from __future__ import annotations

from typing import Any

from ..cards import Subset, TaskCard
from ..errors import MMBenchError
from ..hookspecs import hookimpl
from ..models import Capability, Model
from ..results import encode_column, encode_items
from . import (
    EvalContext,
    Score,
    TaskKind,
    check_params,
    check_widths,
    limit_retrieval,
    model_embeddings,
    model_similarity,
)
from .retrieval_sources import (
    COMMON_PARAMS,
    EMOJI_FEATURE_SOURCE,
    SOURCES,
    RetrievalData,
    emoji_pairs,
    load_retrieval_data,
    merged_params,
)

__all__ = ["EMOJI_FEATURE_SOURCE", "Retrieval", "emoji_pairs", "load_retrieval_data", "score_retrieval"]

FOLD_AVERAGING = "each score is the mean over 5 contiguous folds of 1000 images (VSE++ fold5); rsum: mean fold rsum"


def score_retrieval(images: Any, captions: Any, data: RetrievalData, *, ties: str, similarity: str,
                    items: dict | None = None) -> dict[str, float]:
    """The kind's scores for embeddings of ``data`` (fold-averaged when ``data.folds`` > 1).

    ``items``: a dict that receives the per-item outputs (``details.items``): per image its i2t rank and
    per caption (``captions_per_image`` per image, image order) its t2i rank, 0-based, within its fold.
    """
    from ..metrics.retrieval import coco_1k_scores, retrieval_scores

    kwargs = {"captions_per_image": data.captions_per_image, "ties": ties, "similarity": similarity,
              "return_ranks": True}
    if data.folds == 5:
        scores = coco_1k_scores(images, captions, **kwargs)
    elif data.folds == 1:
        scores = retrieval_scores(images, captions, **kwargs)
    else:  # pragma: no cover - sources only produce 1 or 5
        raise MMBenchError(f"unsupported fold count {data.folds}")
    i2t, t2i = scores.pop("ranks")
    if items is not None:
        items.update(encode_items("image", len(i2t), {"i2t_rank": encode_column(i2t.tolist()),
                                                      "t2i_rank": encode_column(t2i.tolist())},
                                  per_item={"t2i_rank": data.captions_per_image}))
    return {name: float(value) for name, value in scores.items()}


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
        problems: list[str] = []
        for subset in card.subsets:
            params = merged_params(card, subset)
            source = SOURCES.get(params["source"])
            where = "params" if "source" not in subset.params else f"subsets.{subset.name}.params"
            if source is None:
                problems.append(f"{where}.source: {params['source']!r} is not one of {', '.join(map(repr, SOURCES))}")
                continue
            allowed = {**COMMON_PARAMS, **source.params}
            problems += check_params(card.params, allowed)
            problems += check_params(subset.params, allowed, f"subsets.{subset.name}.params")
            problems += source.check(subset, params)
        return list(dict.fromkeys(problems))  # card-level problems repeat once per subset

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        params = merged_params(card, subset)
        params["similarity"] = model_similarity(model, params["similarity"])
        data = limit_retrieval(load_retrieval_data(card, subset, ctx.data_dir), ctx)
        n_captions = len(data.captions)
        image_emb = model_embeddings(model.embed_images(data.features, source=data.feature_source), data.n_images,
                                     "images", model, ctx.device, call=f"embed_images({data.feature_source})")
        caption_emb = model_embeddings(model.embed_texts(data.captions, data.language), n_captions, "captions",
                                       model, ctx.device, call=f"embed_texts({data.language})")
        check_widths(model, [(f"images from embed_images({data.feature_source})", image_emb),
                             (f"captions from embed_texts({data.language})", caption_emb)])
        items: dict = {}
        scores = score_retrieval(image_emb, caption_emb, data, ties=params["ties"], similarity=params["similarity"],
                                 items=items)
        details = {
            "source": params["source"],
            "feature_source": data.feature_source,
            "split": subset.split,
            "captions_per_image": data.captions_per_image,
            "n_images": data.n_images,
            "n_captions": n_captions,
            "ties": params["ties"],
            "similarity": params["similarity"],
            **data.details,
            "items": items,
        }
        if data.folds > 1:
            details.update(folds=data.folds, fold_images=data.n_images // data.folds, fold_averaging=FOLD_AVERAGING)
        return Score(scores=scores, n_items=data.n_images, coverage=data.n_images / data.n_total, details=details)


@hookimpl
def register_task_kinds(register):
    register(Retrieval())
