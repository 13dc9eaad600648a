"""retrieval_scores / coco_1k_scores against a loop-and-sort NumPy reference of the VSE++ protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmbench.errors import MMBenchError
from mmbench.metrics import coco_1k_scores, retrieval_ranks, retrieval_scores
from mmbench.metrics._common import unique_rows
from mmbench.metrics.retrieval import _reference_ranks


# ---------------------------------------------------------------- reference (loops, sort-based ranks)
def ref_similarity(image: np.ndarray, caption: np.ndarray, kind: str) -> float:
    if kind == "dot":
        return float(sum(a * b for a, b in zip(image, caption)))
    if kind == "cosine":
        ni, nc = math.sqrt(sum(a * a for a in image)), math.sqrt(sum(b * b for b in caption))
        if ni == 0 or nc == 0:
            return 0.0
        return float(sum(a * b for a, b in zip(image, caption)) / (ni * nc))
    return -float(sum(max(0.0, c - i) ** 2 for c, i in zip(caption, image)))


def ref_first_correct_position(scores: list[float], correct: set[int], ties: str) -> int:
    """Sort items by score (descending); among equal scores wrong items come first when pessimistic."""
    wrong_first = ties == "pessimistic"
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], (j in correct) == wrong_first))
    return min(order.index(j) for j in correct)


def ref_median(values: list[int]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def ref_scores(images, captions, k, kind, ties):
    n = len(images)
    sims = [[ref_similarity(images[i], captions[j], kind) for j in range(n * k)] for i in range(n)]
    i2t = [ref_first_correct_position(sims[i], set(range(k * i, k * i + k)), ties) for i in range(n)]
    t2i = [ref_first_correct_position([sims[i][j] for i in range(n)], {j // k}, ties) for j in range(n * k)]
    out = {}
    for name, ranks in (("i2t", i2t), ("t2i", t2i)):
        for cutoff in (1, 5, 10):
            out[f"{name}_r{cutoff}"] = 100.0 * sum(r < cutoff for r in ranks) / len(ranks)
        out[f"{name}_medr"] = math.floor(ref_median(ranks)) + 1
        out[f"{name}_meanr"] = sum(ranks) / len(ranks) + 1
    out["rsum"] = sum(out[f"{d}_r{c}"] for d in ("i2t", "t2i") for c in (1, 5, 10))
    return out, i2t, t2i


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
        assert isinstance(got[key], float), key


# ---------------------------------------------------------------- random data vs reference
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("similarity", ["cosine", "dot", "order"])
@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
@pytest.mark.parametrize("k", [1, 5])
def test_random_embeddings_match_reference(seed, similarity, ties, k):
    rng = np.random.default_rng(seed)
    n, d = 7 + seed * 5, 6
    images = rng.normal(size=(n, d))
    captions = images.repeat(k, axis=0) + rng.normal(scale=1.5, size=(n * k, d))
    want, _, _ = ref_scores(images, captions, k, similarity, ties)
    got = retrieval_scores(images, captions, captions_per_image=k, similarity=similarity, ties=ties, block_size=4)
    assert_same(got, want)


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
@pytest.mark.parametrize("seed", [0, 1])
def test_many_exact_ties_match_reference(seed, ties):
    # Small integer vectors: dot products are exact, so many scores tie exactly.
    rng = np.random.default_rng(seed)
    images = rng.integers(-1, 2, size=(9, 3)).astype(np.float64)
    captions = rng.integers(-1, 2, size=(27, 3)).astype(np.float64)
    want, want_i2t, want_t2i = ref_scores(images, captions, 3, "dot", ties)
    i2t, t2i = retrieval_ranks(images, captions, captions_per_image=3, similarity="dot", ties=ties, block_size=2)
    assert i2t.tolist() == want_i2t and t2i.tolist() == want_t2i
    assert_same(retrieval_scores(images, captions, captions_per_image=3, similarity="dot", ties=ties), want)


# ---------------------------------------------------------------- fused scorer vs per-direction path
def vsepp_loop_ranks(images: np.ndarray, captions: np.ndarray, k: int, ties: str) -> tuple[list[int], list[int]]:
    """VSE++'s per-query loop (one score vector per query), with the tie policy instead of argsort's order."""
    def rank(scores: np.ndarray, correct: np.ndarray) -> int:
        best = scores[correct].max()
        wrong = np.ones(len(scores), dtype=bool)
        wrong[correct] = False
        return int(((scores >= best) if ties == "pessimistic" else (scores > best))[wrong].sum())

    i2t = [rank(captions @ images[i], np.arange(k * i, k * i + k)) for i in range(len(images))]
    t2i = [rank(images @ captions[j], np.array([j // k])) for j in range(len(captions))]
    return i2t, t2i


def quantised(rng: np.random.Generator, shape: tuple[int, int], levels: int) -> np.ndarray:
    """Small multiples of 1/4: every product and sum is exact, so exact ties are frequent."""
    return rng.integers(-levels, levels + 1, size=shape).astype(np.float32) / 4


def assert_fused_path(images: np.ndarray, captions: np.ndarray) -> None:
    for x in (images, captions):
        assert unique_rows(torch.as_tensor(x))[1] is None, "duplicate rows: the fused path would not run"


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("block_size", [1, 3, 7, 16, 64, 1024])
def test_fused_ranks_equal_per_direction_and_vsepp_loop_random(ties, k, block_size):
    rng = np.random.default_rng(block_size * 10 + k)
    n, d = 37, 24
    images = rng.normal(size=(n, d)).astype(np.float32)
    captions = (images.repeat(k, axis=0) + rng.normal(scale=1.2, size=(n * k, d))).astype(np.float32)
    assert_fused_path(images, captions)
    for similarity in ("cosine", "dot"):
        got = retrieval_ranks(images, captions, captions_per_image=k, similarity=similarity, ties=ties,
                              block_size=block_size)
        want = _reference_ranks(images, captions, captions_per_image=k, similarity=similarity, ties=ties,
                                block_size=block_size)
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
    loop = vsepp_loop_ranks(images, captions, k, ties)
    got = retrieval_ranks(images, captions, captions_per_image=k, similarity="dot", ties=ties, block_size=block_size)
    assert (got[0].tolist(), got[1].tolist()) == loop


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
@pytest.mark.parametrize("block_size", [2, 5, 13, 50])
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_ranks_equal_references_with_many_exact_ties(ties, block_size, seed):
    rng = np.random.default_rng(seed)
    k, n, d = 5, 41, 6
    # Distinct rows (the fused path) whose dot products tie often: values in {-1, -.75, ..., 1}.
    images = np.unique(quantised(rng, (3 * n, d), 4), axis=0)[rng.permutation(n)]
    captions = np.unique(quantised(rng, (4 * n * k, d), 4), axis=0)[: n * k]
    captions = captions[rng.permutation(len(captions))]
    assert_fused_path(images, captions)
    got = retrieval_ranks(images, captions, captions_per_image=k, similarity="dot", ties=ties, block_size=block_size)
    want = _reference_ranks(images, captions, captions_per_image=k, similarity="dot", ties=ties, block_size=block_size)
    loop = vsepp_loop_ranks(images, captions, k, ties)
    assert got[0].tolist() == want[0].tolist() == loop[0]
    assert got[1].tolist() == want[1].tolist() == loop[1]
    scores = images @ captions.T
    assert (scores[:, :, None] == scores[:, None, :]).sum() > 3 * scores.size  # each score ties with several others
    _, want_i2t, want_t2i = ref_scores(images.astype(np.float64), captions.astype(np.float64), k, "dot", ties)
    assert got[0].tolist() == want_i2t and got[1].tolist() == want_t2i


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
def test_duplicate_rows_take_the_per_direction_path(ties):
    rng = np.random.default_rng(3)
    images = quantised(rng, (12, 4), 2)
    images[5] = images[2]
    captions = images.repeat(2, axis=0) + quantised(rng, (24, 4), 1)
    captions[7] = captions[3]
    got = retrieval_ranks(images, captions, captions_per_image=2, similarity="dot", ties=ties, block_size=5)
    want = _reference_ranks(images, captions, captions_per_image=2, similarity="dot", ties=ties, block_size=5)
    loop = vsepp_loop_ranks(images, captions, 2, ties)
    assert (got[0].tolist(), got[1].tolist()) == (want[0].tolist(), want[1].tolist()) == loop


def test_fused_path_coco_1k_folds_match_per_direction_path():
    rng = np.random.default_rng(4)
    images = rng.normal(size=(5000, 16)).astype(np.float32)
    captions = (images.repeat(5, axis=0) + rng.normal(scale=0.8, size=(25000, 16))).astype(np.float32)
    for fold in range(5):
        fold_images, fold_captions = images[fold * 1000 : (fold + 1) * 1000], captions[fold * 5000 : (fold + 1) * 5000]
        got = retrieval_ranks(fold_images, fold_captions, block_size=300)
        want = _reference_ranks(fold_images, fold_captions, block_size=300)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_non_finite_input_still_raises_and_large_finite_input_does_not():
    big = np.full((2, 3), 3e38, dtype=np.float32)  # its sum overflows; every element is finite
    assert retrieval_scores(big * np.array([[1.0], [-1.0]], dtype=np.float32), big, captions_per_image=1)["rsum"] >= 0
    for bad in (np.inf, -np.inf, np.nan):
        images = np.ones((2, 3), dtype=np.float32)
        images[1, 2] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            retrieval_scores(images, np.ones((2, 3)), captions_per_image=1)


# ---------------------------------------------------------------- hand-computed cases and edge cases
def test_hand_computed_two_images():
    images = np.array([[1.0, 0.0], [0.0, 1.0]])
    # image 0's captions point to image 1 and vice versa, except caption 1 (image 0) which is right.
    captions = np.array([[0.0, 1.0], [1.0, 0.1], [1.0, 0.0], [0.2, 1.0]])
    i2t, t2i = retrieval_ranks(images, captions, captions_per_image=2)
    # image 0 scores captions [0, .995, 1, .196]: caption 2 (wrong) beats caption 1 -> rank 1.
    # image 1 scores captions [1, .0995, 0, .98]: caption 0 (wrong) beats caption 3 -> rank 1.
    assert i2t.tolist() == [1, 1]
    assert t2i.tolist() == [1, 0, 1, 0]
    scores = retrieval_scores(images, captions, captions_per_image=2)
    assert scores["i2t_r1"] == 0.0 and scores["i2t_r5"] == 100.0 and scores["i2t_medr"] == 2.0
    assert scores["t2i_r1"] == 50.0 and scores["t2i_meanr"] == 1.5 and scores["t2i_medr"] == 1.0


@pytest.mark.parametrize("similarity", ["cosine", "dot", "order"])
def test_collapsed_model_pessimistic_zero_optimistic_perfect(similarity):
    images, captions = np.ones((20, 8)), np.ones((100, 8))
    bad = retrieval_scores(images, captions, similarity=similarity)
    good = retrieval_scores(images, captions, similarity=similarity, ties="optimistic")
    assert bad["i2t_r1"] == bad["t2i_r1"] == bad["i2t_r10"] == 0.0
    assert bad["i2t_medr"] == 96.0  # all 95 wrong captions tie and rank first (0-based rank 95)
    assert bad["t2i_meanr"] == 20.0
    assert good["rsum"] == 600.0


def test_zero_vectors_give_similarity_zero_not_nan():
    images = np.array([[0.0, 0.0], [1.0, 0.0]])
    captions = np.array([[0.0, 0.0], [1.0, 0.0]])
    got = retrieval_scores(images, captions, captions_per_image=1)
    # image 0 (zero) scores both captions 0 -> pessimistic rank 1; everything else is exact.
    want, _, _ = ref_scores(images, captions, 1, "cosine", "pessimistic")
    assert_same(got, want)
    assert all(not math.isnan(v) for v in got.values())


def test_single_image_is_defined():
    got = retrieval_scores(np.array([[1.0, 2.0]]), np.array([[3.0, 1.0]] * 5))
    assert got["rsum"] == 600.0 and got["i2t_medr"] == 1.0 and got["t2i_meanr"] == 1.0


def test_empty_input_raises_clear_error():
    with pytest.raises(ValueError, match="empty"):
        retrieval_scores(np.zeros((0, 4)), np.zeros((0, 4)))
    with pytest.raises(MMBenchError, match="empty"):
        retrieval_scores(np.zeros((0, 4)), np.zeros((0, 4)))


@pytest.mark.parametrize(
    ("images", "captions", "message"),
    [
        (np.zeros((3, 4)), np.zeros((14, 4)), "15 rows"),
        (np.zeros((3, 4)), np.zeros((15, 5)), "dims"),
        (np.zeros(4), np.zeros((5, 4)), "2-D"),
        (np.full((1, 2), np.nan), np.zeros((5, 2)), "NaN"),
    ],
)
def test_bad_shapes_and_nan_raise(images, captions, message):
    with pytest.raises(ValueError, match=message):
        retrieval_scores(images, captions)


def test_unknown_policy_raises():
    with pytest.raises(ValueError, match="ties"):
        retrieval_scores(np.eye(2), np.eye(2), captions_per_image=1, ties="random")
    with pytest.raises(ValueError, match="similarity"):
        retrieval_scores(np.eye(2), np.eye(2), captions_per_image=1, similarity="euclid")


def test_torch_float32_and_float16_inputs_agree_with_numpy():
    rng = np.random.default_rng(5)
    images = rng.normal(size=(30, 16)).astype(np.float32)
    captions = (images.repeat(5, axis=0) + rng.normal(scale=0.8, size=(150, 16))).astype(np.float32)
    reference = retrieval_scores(images.astype(np.float64), captions.astype(np.float64))
    assert retrieval_scores(torch.from_numpy(images), torch.from_numpy(captions)) == reference
    assert retrieval_scores(images, captions, block_size=7) == reference
    half = retrieval_scores(torch.from_numpy(images).half(), torch.from_numpy(captions).half())
    assert half["rsum"] == pytest.approx(reference["rsum"], abs=15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_match_cpu():
    rng = np.random.default_rng(6)
    images = torch.from_numpy(rng.normal(size=(50, 32)))
    captions = torch.from_numpy(rng.normal(size=(250, 32)))
    assert retrieval_scores(images.cuda(), captions.cuda()) == retrieval_scores(images, captions)


# ---------------------------------------------------------------- COCO 1K folds
def test_coco_1k_averages_five_contiguous_folds():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(5000, 8)).astype(np.float32)
    captions = images.repeat(5, axis=0) + rng.normal(scale=0.6, size=(25000, 8)).astype(np.float32)
    got = coco_1k_scores(images, captions)
    folds = [retrieval_scores(images[i * 1000 : (i + 1) * 1000], captions[i * 5000 : (i + 1) * 5000]) for i in range(5)]
    for key in got:
        assert got[key] == pytest.approx(np.mean([f[key] for f in folds]), abs=1e-9)


def test_coco_1k_folds_are_contiguous():
    # The same 1000 random images repeated five times, captions exact copies: perfect within each
    # contiguous fold, full of exact (pessimistic) ties in any fold that mixed the copies.
    images = np.tile(np.random.default_rng(0).normal(size=(1000, 32)), (5, 1))
    got = coco_1k_scores(images, images.repeat(5, axis=0))
    assert got["rsum"] == 600.0 and got["i2t_medr"] == 1.0 and got["t2i_meanr"] == 1.0


def test_coco_1k_needs_5000_images():
    with pytest.raises(ValueError, match="5000"):
        coco_1k_scores(np.zeros((1000, 4)), np.zeros((5000, 4)))


# ---------------------------------------------------------------- real features
def test_real_resnet_features_against_reference(shared_data):
    """Multi30k test_2016 ResNet-50 features as images; captions are noisy copies (5 per image)."""
    features = np.load(shared_data / "multi30k" / "features" / "test_2016_flickr-resnet50-avgpool.npy")
    images = features[:40, :64].astype(np.float64)
    rng = np.random.default_rng(0)
    captions = images.repeat(5, axis=0) + rng.normal(scale=images.std(), size=(200, 64))
    want, _, _ = ref_scores(images, captions, 5, "cosine", "pessimistic")
    got = retrieval_scores(images, captions, block_size=16)
    assert_same(got, want)
    assert 0 < got["rsum"] < 600


def test_docstring_examples_run():
    import doctest

    import mmbench.metrics.retrieval as module

    failures, attempted = doctest.testmod(module)
    assert attempted > 0 and failures == 0
