"""Metrics: pure functions from embeddings (numpy arrays or torch tensors) to numbers.

Each module follows one reference protocol (named in its docstring); edge-case policies such as
``ties`` or ``oov`` are named parameters. Nothing here reads files.
"""

from ._common import MetricInputError
from .bli import alignment_ratio, bli_ranks, bli_scores, mean_topk_similarity
from .classification import (
    document_vectors,
    fit_averaged_perceptron,
    idf_weights,
    train_eval_linear,
)
from .matching import matching_scores, sample_candidates
from .retrieval import coco_1k_scores, retrieval_ranks, retrieval_scores
from .visual_bli import (
    image_dispersion,
    kmeans_centroids,
    knn_translation_scores,
    ranking_scores,
    scores_by_group,
    word_similarity_matrix,
)
from .wordsim import word_similarity

__all__ = [
    "MetricInputError",
    "alignment_ratio",
    "bli_ranks",
    "bli_scores",
    "coco_1k_scores",
    "document_vectors",
    "fit_averaged_perceptron",
    "idf_weights",
    "image_dispersion",
    "kmeans_centroids",
    "knn_translation_scores",
    "matching_scores",
    "mean_topk_similarity",
    "ranking_scores",
    "retrieval_ranks",
    "retrieval_scores",
    "sample_candidates",
    "scores_by_group",
    "train_eval_linear",
    "word_similarity",
    "word_similarity_matrix",
]
