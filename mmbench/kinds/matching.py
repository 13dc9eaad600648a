"""Image<->word matching on the packaged emoji data: 1 gold + 99 sampled negatives (the IESG protocol).

A subset is one language, split and image style: each split concept named in that language gives one
image and its CLDR name. Names are deduplicated, so identical names are one candidate.

* image->word: each image is ranked among its gold name and ``n_negatives`` other names;
* word->image: each distinct name is ranked among one of its gold images (every concept carrying
  exactly that name) and ``n_negatives`` images of other concepts.

Negatives come from :func:`mmbench.metrics.matching.sample_candidates` seeded with the card param
``seed``, not the run seed: every model and every run meets the same candidate lists. Scores are
P@1/5/10 (percent) and MRR per direction, and ``mean_p1``, the mean of the two P@1. Ties are
pessimistic by default (a negative scoring exactly like the gold one ranks first). Coverage is named
concepts / split concepts.
"""

from __future__ import annotations

from typing import Any

from ..cards import Subset, TaskCard
from ..data import EMOJI_SPLITS
from ..errors import DataError
from ..hookspecs import hookimpl
from ..models import Capability, Model
from . import EvalContext, Score, TaskKind, check_params, check_widths, model_embeddings
from .retrieval import EMOJI_FEATURE_SOURCE, emoji_pairs

PARAMS: dict[str, tuple] = {
    "style": ("noto", "emojione", "symbola"),
    "seed": (),
    "n_negatives": (),
    "ties": ("pessimistic", "optimistic"),
}
CARD_ONLY = ("seed", "n_negatives", "ties")  # they define the candidate lists, so the whole card shares them
DEFAULTS: dict[str, Any] = {"style": "noto", "seed": 0, "n_negatives": 99, "ties": "pessimistic"}
DIRECTIONS = ("i2w", "w2i")


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def matching_items(names: list[str]) -> tuple[list[str], list[int], list[list[int]]]:
    """Distinct names (first-seen order), each image's gold name index, each name's gold image rows."""
    distinct = list(dict.fromkeys(names))
    index = {name: i for i, name in enumerate(distinct)}
    image_gold = [index[name] for name in names]
    word_gold: list[list[int]] = [[] for _ in distinct]
    for row, name in enumerate(names):
        word_gold[index[name]].append(row)
    return distinct, image_gold, word_gold


class ImageWordMatching(TaskKind):
    name = "image-word-matching"
    description = "image<->word matching on emoji, 1 gold + 99 seeded negatives (P@1/5/10, MRR)"
    requires = frozenset({Capability.TEXT, Capability.IMAGES})
    supports_limit = False  # 1 gold + 99 negatives per query need every item: a --limit run skips it
    scores = {
        **{f"{d}_p{k}": True for d in DIRECTIONS for k in (1, 5, 10)},
        **{f"{d}_mrr": True for d in DIRECTIONS},
        "mean_p1": True,
    }
    needs_files = False

    def validate(self, card: TaskCard) -> list[str]:
        problems = check_params(card.params, PARAMS)
        if "seed" in card.params and not _non_negative_int(card.params["seed"]):
            problems.append(f"params.seed: expected an integer >= 0, got {card.params['seed']!r}")
        negatives = card.params.get("n_negatives", DEFAULTS["n_negatives"])
        if not _non_negative_int(negatives) or negatives < 1:
            problems.append(f"params.n_negatives: expected a positive integer, got {negatives!r}")
        for subset in card.subsets:
            where = f"subsets.{subset.name}"
            problems += check_params(subset.params, PARAMS, f"{where}.params")
            problems += [f"{where}.params.{key}: set it on the card (it defines the candidate lists)"
                         for key in CARD_ONLY if key in subset.params]
            if len(subset.languages) != 1:
                problems.append(f"{where}.languages: give exactly one language (the names' language)")
            if subset.split not in EMOJI_SPLITS:
                problems.append(f"{where}.split: emoji splits are {', '.join(EMOJI_SPLITS)}, not {subset.split!r}")
        return problems

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        from ..metrics.matching import matching_scores

        params = {**DEFAULTS, **card.params, **subset.params}
        language, style, n_negatives = subset.languages[0], params["style"], params["n_negatives"]
        features, names, n_concepts = emoji_pairs(language, subset.split, style)
        distinct, image_gold, word_gold = matching_items(names)
        where = f"emoji {language} {subset.split} ({style})"
        if len(distinct) <= n_negatives:
            raise DataError(f"{where}: {len(distinct)} distinct names; 1 + {n_negatives} candidates need more")
        if len(names) - max(map(len, word_gold)) < n_negatives:
            raise DataError(f"{where}: too few images for {n_negatives} negatives per name")

        images = model_embeddings(model.embed_images(features, source=EMOJI_FEATURE_SOURCE), len(names), "images",
                                  model, ctx.device, call=f"embed_images({EMOJI_FEATURE_SOURCE})")
        words = model_embeddings(model.embed_texts(distinct, language), len(distinct), "names", model, ctx.device,
                                 call=f"embed_texts({language})")
        check_widths(model, [(f"images from embed_images({EMOJI_FEATURE_SOURCE})", images),
                             (f"names from embed_texts({language})", words)])
        kwargs = {"n_negatives": n_negatives, "seed": params["seed"], "ties": params["ties"]}
        by_direction = {
            "i2w": matching_scores(images, words, image_gold, **kwargs),
            "w2i": matching_scores(words, images, word_gold, **kwargs),
        }
        scores = {f"{d}_{m}": float(s[m]) for d, s in by_direction.items() for m in ("p1", "p5", "p10", "mrr")}
        scores["mean_p1"] = (scores["i2w_p1"] + scores["w2i_p1"]) / 2
        details = {
            "candidates": f"1 gold + {n_negatives} negatives per query, sampled without replacement from the "
                        "non-gold candidates by numpy default_rng(seed) in query order",
            "seed": params["seed"],
            "seed_source": "card param (same candidates for every model and run seed)",
            "n_negatives": n_negatives,
            "ties": params["ties"],
            "style": style,
            "split": subset.split,
            "feature_source": EMOJI_FEATURE_SOURCE,
            "n_concepts": n_concepts,
            "n_images": len(names),
            "n_names": len(distinct),
            "shared_names": len(names) - len(distinct),
            "main_score": "mean_p1 = (i2w_p1 + w2i_p1) / 2",
        }
        return Score(scores=scores, n_items=len(names), coverage=len(names) / n_concepts, details=details)


@hookimpl
def register_task_kinds(register):
    register(ImageWordMatching())
