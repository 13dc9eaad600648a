"""``visual-bli-*`` — training-free translation scores between words given as image sets.

The word-similarity methods of visual bilingual lexicon induction, wrapped as a model for the
``visual-bli`` task kind (``Capability.IMAGE_SETS``); all arithmetic is in
:mod:`mmbench.metrics.visual_bli`, on the raw image features of whatever feature space the task hands
over (cosine between images, so the scale of the features does not matter):

* ``avgmax`` (Bergsma & Van Durme 2011): mean over source images of the best cosine to a target image.
* ``maxmax`` (Bergsma & Van Durme 2011): the best cosine over all image pairs.
* ``cnn-mean`` / ``cnn-max`` (Kiela, Vulić & Clark 2015): cosine of the mean / element-wise max image vectors.
* ``knn``: every source image votes for the words of its ``k`` nearest target images; words ranked by
  votes, ties by mean distance. ``knn-c``: the same with ``clusters`` k-means centroids per source word
  in place of its images. ``k = 10`` and ``clusters = 3`` are our choices, not published values (emoji
  image sets are small: two images per query word at the median).

k-means (``knn-c`` only) is seeded with the run seed (``mmbench run --seeds``), so seeds measure its
variance; every other method is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

import mmbench
from mmbench.errors import DataError

Method = Literal["avgmax", "maxmax", "cnn-mean", "cnn-max", "knn", "knn-c"]


@dataclass(frozen=True)
class VisualBliConfig:
    method: Method = "avgmax"
    k: int = 10  # knn, knn-c: nearest target images each source image (or centroid) votes with
    clusters: int = 3  # knn-c: k-means centroids per source word (fewer when it has fewer images)

    def __post_init__(self) -> None:
        if self.k < 1 or self.clusters < 1:
            raise ValueError(f"k and clusters must be >= 1, got k={self.k}, clusters={self.clusters}")


class VisualBli(mmbench.Model):
    """Translation scores between image sets (AVGMAX, MAXMAX, CNN-MEAN, CNN-MAX, KNN, KNN-C); no training."""

    name = "visual-bli"
    Config = VisualBliConfig
    capabilities = frozenset({mmbench.Capability.IMAGE_SETS})

    def __init__(self, config=None, argument=None):
        super().__init__(config, argument)
        self.seed = 0

    def prepare(self, ctx: mmbench.RunContext) -> None:
        self.seed = ctx.seed

    def score_image_sets(self, source_sets, target_sets, *, source: str) -> np.ndarray:
        # Imported here: plugin modules load on every CLI call, and the metrics pull in torch.
        from mmbench.metrics.visual_bli import (
            MetricInputError,
            knn_translation_scores,
            word_similarity_matrix,
        )

        method = self.config.method
        try:
            if method in ("knn", "knn-c"):
                clusters = self.config.clusters if method == "knn-c" else None
                scores = knn_translation_scores(source_sets, target_sets, k=self.config.k, clusters=clusters,
                                                seed=self.seed)
            else:
                scores = word_similarity_matrix(source_sets, target_sets, method)
        except MetricInputError as exc:
            raise DataError(f"{self.name}: image sets from {source!r}: {exc}") from None
        return np.asarray(scores, dtype=np.float64)  # float32 would turn near-ties into ties


VARIANTS: dict[str, tuple[dict[str, object], str]] = {
    "visual-bli": ({}, "Visual BLI, AVGMAX (Bergsma & Van Durme 2011); same as visual-bli-avgmax"),
    "visual-bli-avgmax": ({"method": "avgmax"}, "Visual BLI, AVGMAX: mean best image cosine"),
    "visual-bli-maxmax": ({"method": "maxmax"}, "Visual BLI, MAXMAX: best image-pair cosine"),
    "visual-bli-cnn-mean": ({"method": "cnn-mean"}, "Visual BLI, CNN-MEAN: cosine of mean image vectors"),
    "visual-bli-cnn-max": ({"method": "cnn-max"}, "Visual BLI, CNN-MAX: cosine of element-wise max vectors"),
    "visual-bli-knn": ({"method": "knn"}, "Visual BLI, KNN votes of source images (k=10)"),
    "visual-bli-knn-c": ({"method": "knn-c"}, "Visual BLI, KNN votes of k-means centroids (k=10, 3 clusters)"),
}


@mmbench.hookimpl
def register_models(register):
    for name, (defaults, description) in VARIANTS.items():
        register(VisualBli, name=name, defaults=defaults, description=description)
