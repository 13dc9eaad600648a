"""Procrustes and RCSLS (mmbench.train.alignment) against an independent NumPy version of the formulas.

Reference: the RCSLS loss of Joulin et al. (2018) and its gradient in W, derived by hand the way
fastText's ``alignment/align.py`` writes them (``argpartition`` neighbour sets, explicit sums).
Tolerances: float64 inputs agree with the float64 reference to 1e-10 (relative); float32 inputs to
1e-4 (relative), never bit for bit, since summation order differs between BLAS builds and machines.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.train.alignment import (
    knn_indices,
    procrustes,
    project_spectral,
    rcsls_loss,
    rcsls_mapping_loss,
    refine_rcsls,
)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def numpy_rcsls(W, X, Y, Zs, Zt, k):
    """Loss and dL/dW of RCSLS, written out from the formula (no torch)."""
    n = X.shape[0]
    mapped = X @ W.T
    value = 2.0 * np.sum(mapped * Y)
    grad = 2.0 * Y.T @ X
    # r_T term: each mapped source row against the target vocabulary.
    k_t = min(k, Zt.shape[0])
    scores = mapped @ Zt.T
    top = np.argpartition(scores, -k_t, axis=1)[:, -k_t:]
    value -= np.sum(scores[np.arange(n)[:, None], top]) / k_t
    grad -= Zt[top].sum(axis=1).T @ X / k_t
    # r_S term: each gold target row against the mapped source vocabulary.
    k_s = min(k, Zs.shape[0])
    scores = Y @ (Zs @ W.T).T
    top = np.argpartition(scores, -k_s, axis=1)[:, -k_s:]
    value -= np.sum(scores[np.arange(n)[:, None], top]) / k_s
    grad -= Y.T @ Zs[top].sum(axis=1) / k_s
    return -value / n, -grad / n


def problem(seed=0, n=40, m_src=300, m_tgt=250, d=16, noise=0.3):
    """Target space = a rotation of the source space plus noise; the first n words are the lexicon."""
    rng = np.random.default_rng(seed)
    Zs = unit_rows(rng.standard_normal((m_src, d)))
    rotation = np.linalg.qr(rng.standard_normal((d, d)))[0]
    Zt = unit_rows(Zs[:m_tgt] @ rotation.T + noise * rng.standard_normal((m_tgt, d)))
    X, Y = Zs[:n], Zt[:n]
    W = np.linalg.qr(rng.standard_normal((d, d)))[0] + 0.1 * rng.standard_normal((d, d))  # a generic map
    return W, X, Y, Zs, Zt, rotation


@pytest.mark.parametrize("k", [1, 10, 1000])  # 1000 > both pools: capped at the pool size
def test_loss_and_gradient_match_numpy_float64(k):
    W, X, Y, Zs, Zt, _ = problem()
    expected_loss, expected_grad = numpy_rcsls(W, X, Y, Zs, Zt, k)
    mapping = torch.tensor(W, requires_grad=True)
    loss = rcsls_mapping_loss(mapping, *(torch.tensor(a) for a in (X, Y, Zs, Zt)), k=k)
    loss.backward()
    assert loss.item() == pytest.approx(expected_loss, rel=1e-10)
    np.testing.assert_allclose(mapping.grad.numpy(), expected_grad, rtol=1e-10, atol=1e-12)


def test_loss_and_gradient_match_numpy_float32():
    W, X, Y, Zs, Zt, _ = problem(seed=1)
    expected_loss, expected_grad = numpy_rcsls(W, X, Y, Zs, Zt, 10)
    mapping = torch.tensor(W, dtype=torch.float32, requires_grad=True)
    loss = rcsls_mapping_loss(mapping, *(torch.tensor(a, dtype=torch.float32) for a in (X, Y, Zs, Zt)))
    loss.backward()
    assert loss.item() == pytest.approx(expected_loss, rel=1e-4)
    np.testing.assert_allclose(mapping.grad.numpy(), expected_grad, rtol=1e-4, atol=1e-6)


def test_gradient_matches_finite_differences():
    W, X, Y, Zs, Zt, _ = problem(seed=2)
    inputs = [torch.tensor(a) for a in (X, Y, Zs, Zt)]
    mapping = torch.tensor(W, requires_grad=True)
    rcsls_mapping_loss(mapping, *inputs).backward()
    rng = np.random.default_rng(3)
    eps = 1e-6  # small enough that no neighbour set changes on this generic problem
    for _ in range(5):
        direction = torch.tensor(rng.standard_normal(W.shape))
        plus = rcsls_mapping_loss(torch.tensor(W) + eps * direction, *inputs).item()
        minus = rcsls_mapping_loss(torch.tensor(W) - eps * direction, *inputs).item()
        assert (plus - minus) / (2 * eps) == pytest.approx(float((mapping.grad * direction).sum()), rel=1e-6)


def test_embedding_gradients_reach_every_input():
    """AME differentiates the loss in its word vectors (both sides and both pools), not in a mapping."""
    _, X, Y, Zs, Zt, _ = problem(seed=4)
    tensors = [torch.tensor(a, requires_grad=True) for a in (X, Y, Zs, Zt)]
    rcsls_loss(*tensors).backward()
    rng = np.random.default_rng(5)
    eps = 1e-6
    for which, tensor in enumerate(tensors):
        direction = torch.tensor(rng.standard_normal(tensor.shape))
        moved = [t.detach().clone() for t in tensors]
        moved[which] += eps * direction
        plus = rcsls_loss(*moved).item()
        moved[which] -= 2 * eps * direction
        minus = rcsls_loss(*moved).item()
        assert (plus - minus) / (2 * eps) == pytest.approx(float((tensor.grad * direction).sum()), rel=1e-6)


def test_blocks_do_not_change_the_loss():
    W, X, Y, Zs, Zt, _ = problem(seed=6)
    args = [torch.tensor(a) for a in (W, X, Y, Zs, Zt)]
    whole = rcsls_mapping_loss(*args, chunk_size=100_000).item()
    assert rcsls_mapping_loss(*args, chunk_size=7).item() == pytest.approx(whole, rel=1e-12)
    scores = torch.tensor(X @ Zt.T)
    assert set(knn_indices(torch.tensor(X), torch.tensor(Zt), 3, chunk_size=5)[0].tolist()) == set(
        scores[0].topk(3).indices.tolist())


def test_procrustes_matches_numpy_and_recovers_a_rotation():
    _, X, _, Zs, _, rotation = problem(seed=7)
    exact = procrustes(torch.tensor(Zs), torch.tensor(Zs @ rotation.T)).numpy()
    np.testing.assert_allclose(exact, rotation, atol=1e-10)
    _, X, Y, _, _, _ = problem(seed=8)
    u, _, vt = np.linalg.svd(Y.T @ X)
    mapping = procrustes(torch.tensor(X), torch.tensor(Y)).numpy()
    np.testing.assert_allclose(mapping, u @ vt, atol=1e-10)
    np.testing.assert_allclose(mapping @ mapping.T, np.eye(len(mapping)), atol=1e-10)
    with pytest.raises(ValueError):
        procrustes(torch.zeros(0, 3), torch.zeros(0, 3))


def test_spectral_projection_clips_singular_values():
    rng = np.random.default_rng(9)
    matrix = torch.tensor(rng.standard_normal((6, 6)) * 2)
    singular = torch.linalg.svdvals(project_spectral(matrix))
    assert float(singular.max()) <= 1 + 1e-12
    orthogonal = torch.linalg.qr(matrix)[0]
    np.testing.assert_allclose(project_spectral(orthogonal).numpy(), orthogonal.numpy(), atol=1e-12)


@pytest.mark.parametrize("constraint", ["none", "spectral"])
def test_refinement_lowers_the_loss_and_never_raises_it(constraint):
    _, X, Y, Zs, Zt, _ = problem(seed=10, noise=0.6)
    args = [torch.tensor(a) for a in (X, Y, Zs, Zt)]
    result = refine_rcsls(*args, iterations=15, lr=2.0, constraint=constraint)
    start = rcsls_mapping_loss(procrustes(args[0], args[1]), *args).item()
    assert result.losses[0] == pytest.approx(start, rel=1e-12)
    assert all(b <= a for a, b in zip(result.losses, result.losses[1:]))
    assert result.losses[-1] < start - 1e-3
    assert rcsls_mapping_loss(result.mapping, *args).item() == pytest.approx(result.losses[-1], rel=1e-12)
    if constraint == "spectral":
        assert float(torch.linalg.svdvals(result.mapping).max()) <= 1 + 1e-9


@pytest.mark.parametrize("context", ["no_grad"])
def test_refinement_works_when_the_caller_disabled_gradients(context):
    """AME builds its initial skip-gram vectors while initialising weights under no_grad: the refinement
    must not depend on the caller's grad mode (it failed with 'does not require grad' there)."""
    _, X, Y, Zs, Zt, _ = problem(seed=12)
    args = [torch.tensor(a) for a in (X, Y, Zs, Zt)]
    expected = refine_rcsls(*args, iterations=3)
    with getattr(torch, context)():
        got = refine_rcsls(*args, iterations=3)
    assert torch.equal(got.mapping, expected.mapping) and got.losses == expected.losses


def test_refinement_is_deterministic_and_validates_options():
    _, X, Y, Zs, Zt, _ = problem(seed=11)
    args = [torch.tensor(a, dtype=torch.float32) for a in (X, Y, Zs, Zt)]
    first = refine_rcsls(*args, iterations=5)
    assert torch.equal(first.mapping, refine_rcsls(*args, iterations=5).mapping)
    assert refine_rcsls(*args, iterations=0).losses == first.losses[:1]
    with pytest.raises(ValueError):
        refine_rcsls(*args, constraint="orthogonal")
