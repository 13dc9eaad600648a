"""Supervised alignment of two word-vector spaces: orthogonal Procrustes and RCSLS.

Convention (fastText ``alignment/align.py``): a *mapping* ``W`` is a ``(d_target, d_source)`` matrix and
maps source rows ``x`` to ``x @ W.T``. Rows are expected L2-normalised (and usually mean-centred, then
renormalised), as fastText and MUSE prepare them; nothing here normalises for you.

* :func:`procrustes` — the orthogonal ``W`` minimising ``||X W^T - Y||_F`` over the lexicon pairs
  (Schönemann 1966; Xing et al. 2015; Conneau et al. 2018): ``U V^T`` with ``U S V^T = svd(Y^T X)``.
* :func:`rcsls_loss` — the relaxed CSLS loss of Joulin et al. 2018 ("Loss in Translation", EMNLP), as
  ``align.py`` optimises it. For lexicon pairs ``(x_i, y_i)`` already in one space (source rows mapped)
  and the two vocabularies' rows ``Z_S`` (mapped source) and ``Z_T`` (target)::

      loss = -1/n sum_i [ 2 x_i.y_i - 1/k sum_{z in N_k(x_i, Z_T)} x_i.z - 1/k sum_{z in N_k(y_i, Z_S)} z.y_i ]

  ``N_k(q, Z)`` are the ``k`` rows of ``Z`` with the largest dot product with ``q`` (both CSLS terms,
  ``k = 10`` by default; the gold pair itself is not excluded). Dot products, not cosines: the relaxed
  mapping need not keep norms, exactly as in ``align.py``. The neighbours are chosen without gradient
  and the loss is differentiated with them fixed, which is the (sub)gradient autograd gives through
  ``topk`` and the one ``align.py`` derives by hand; search runs in row blocks, so a 200k vocabulary
  never materialises an ``n x 200k`` matrix with a graph attached. The loss is the mean over pairs, so
  the trainer can use it as an objective (AME's alignment loss on its word embeddings).
* :func:`rcsls_mapping_loss` — the same loss as a function of a linear mapping ``W``.
* :func:`refine_rcsls` — full-batch gradient descent on ``W`` from a Procrustes start, with
  ``align.py``'s schedule (default lr 1.0, ``iterations`` steps, lr halved when the loss goes up) and its
  two constraint choices: ``"none"`` (its default: ``W`` is free, the relaxation the paper argues for)
  or ``"spectral"`` (after each step singular values are clipped to [0, 1], the convex hull of the
  orthogonal matrices). One difference on purpose: ``align.py`` keeps an aliased reference to ``W`` and
  so never really reverts a step that raised the loss; here a rejected step is undone (the loss never
  increases).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

Constraint = Literal["none", "spectral"]


def procrustes(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Orthogonal ``W`` (``d x d``) minimising ``||source @ W.T - target||_F``; rows are lexicon pairs.

    >>> x = torch.eye(3, dtype=torch.float64); rotation = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    >>> torch.allclose(procrustes(x, x @ rotation.T), rotation)
    True
    """
    if source.dim() != 2 or target.dim() != 2 or source.shape != target.shape:
        raise ValueError(f"procrustes: source and target must be (n, d) of one shape, got "
                         f"{tuple(source.shape)} and {tuple(target.shape)}")
    if source.shape[0] == 0:
        raise ValueError("procrustes: no lexicon pairs")
    u, _, vh = torch.linalg.svd(target.T @ source, full_matrices=False)
    return u @ vh


def project_spectral(mapping: torch.Tensor) -> torch.Tensor:
    """``mapping`` with its singular values clipped to [0, 1] (``align.py``'s ``proj_spectral``)."""
    u, s, vh = torch.linalg.svd(mapping, full_matrices=False)
    return (u * s.clamp(0.0, 1.0)) @ vh


def knn_indices(queries: torch.Tensor, pool: torch.Tensor, k: int, *, chunk_size: int = 4096) -> torch.Tensor:
    """``(n, min(k, len(pool)))`` rows of ``pool`` with the largest dot products with each query (no gradient)."""
    k = min(k, pool.shape[0])
    out = torch.empty(queries.shape[0], k, dtype=torch.long, device=queries.device)
    step = max(1, (chunk_size * chunk_size) // max(1, pool.shape[0]))
    with torch.no_grad():
        pool_t = pool.detach().T
        for start in range(0, queries.shape[0], step):
            scores = queries[start:start + step].detach() @ pool_t
            out[start:start + step] = scores.topk(k, dim=1).indices
    return out


def _mean_knn_similarity(queries: torch.Tensor, pool: torch.Tensor, k: int, chunk_size: int) -> torch.Tensor:
    """Per query, the mean dot product with its ``k`` nearest pool rows; gradients reach both inputs."""
    rows = knn_indices(queries, pool, k, chunk_size=chunk_size)
    neighbours = pool[rows]  # (n, k, d): gathered, so the backward pass touches only these rows
    return torch.einsum("nd,nkd->n", queries, neighbours) / rows.shape[1]


def rcsls_loss(source: torch.Tensor, target: torch.Tensor, source_pool: torch.Tensor, target_pool: torch.Tensor,
               *, k: int = 10, chunk_size: int = 4096) -> torch.Tensor:
    """RCSLS loss (mean over the ``n`` lexicon pairs; lower is better) — see the module docstring.

    ``source`` (n, d): the lexicon's source rows, already in the target space (mapped); ``target`` (n, d):
    their gold translations; ``source_pool`` (m, d): the mapped source vocabulary (negatives for the
    targets); ``target_pool`` (m', d): the target vocabulary (negatives for the sources). ``k`` is capped
    at each pool's size.
    """
    if source.dim() != 2 or source.shape != target.shape:
        raise ValueError(f"rcsls_loss: source and target must be (n, d) of one shape, got "
                         f"{tuple(source.shape)} and {tuple(target.shape)}")
    if source_pool.shape[-1] != source.shape[1] or target_pool.shape[-1] != source.shape[1]:
        raise ValueError("rcsls_loss: the pools must have the lexicon's dimension")
    if k < 1 or source.shape[0] == 0 or source_pool.shape[0] == 0 or target_pool.shape[0] == 0:
        raise ValueError("rcsls_loss: needs k >= 1, at least one pair and non-empty pools")
    gold = 2.0 * (source * target).sum(dim=1)
    hub_target = _mean_knn_similarity(source, target_pool, k, chunk_size)  # r_T(W x_i)
    hub_source = _mean_knn_similarity(target, source_pool, k, chunk_size)  # r_S(y_i)
    return -(gold - hub_target - hub_source).mean()


def rcsls_mapping_loss(mapping: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                       source_pool: torch.Tensor, target_pool: torch.Tensor, *, k: int = 10,
                       chunk_size: int = 4096) -> torch.Tensor:
    """:func:`rcsls_loss` of the linear map ``x -> x @ mapping.T`` (``source`` and ``source_pool`` unmapped)."""
    return rcsls_loss(source @ mapping.T, target, source_pool @ mapping.T, target_pool, k=k, chunk_size=chunk_size)


@dataclass
class Refinement:
    """The refined mapping and how it got there: ``losses[i]`` is the accepted loss after step ``i``
    (``losses[0]``: the start), ``rejected`` the steps undone because the loss went up."""

    mapping: torch.Tensor
    losses: list[float] = field(default_factory=list)
    rejected: int = 0
    lr: float = 0.0


def refine_rcsls(source: torch.Tensor, target: torch.Tensor, source_pool: torch.Tensor, target_pool: torch.Tensor,
                 *, init: torch.Tensor | None = None, k: int = 10, iterations: int = 10, lr: float = 1.0,
                 constraint: Constraint = "none", weight_decay: float = 0.0, min_lr: float = 1e-4,
                 chunk_size: int = 4096, loss_fn: Callable[..., torch.Tensor] | None = None) -> Refinement:
    """Minimise :func:`rcsls_mapping_loss` over ``W`` by full-batch gradient descent (``align.py``).

    Starts from ``init`` (default: :func:`procrustes` of the lexicon pairs). Each of the ``iterations``
    steps proposes ``W (1 - lr * weight_decay) - lr * grad`` (projected when ``constraint="spectral"``);
    a proposal that raises the loss is undone and the lr halved; it stops early once lr < ``min_lr``.
    Deterministic for given inputs on one machine (no sampling). The gradient comes from autograd.
    """
    if constraint not in ("none", "spectral"):
        raise ValueError(f"refine_rcsls: constraint must be 'none' or 'spectral', got {constraint!r}")
    if iterations < 0 or not lr > 0:
        raise ValueError("refine_rcsls: iterations must be >= 0 and lr > 0")
    loss_fn = loss_fn or rcsls_mapping_loss
    mapping = (procrustes(source, target) if init is None else init).detach().clone()

    def evaluate(candidate: torch.Tensor) -> tuple[float, torch.Tensor]:
        # enable_grad: callers may hold no_grad/inference mode (e.g. while initialising a model's weights).
        with torch.enable_grad():
            candidate = candidate.detach().requires_grad_(True)
            loss = loss_fn(candidate, source, target, source_pool, target_pool, k=k, chunk_size=chunk_size)
            (grad,) = torch.autograd.grad(loss, candidate)
        return float(loss.detach()), grad

    loss, grad = evaluate(mapping)
    result = Refinement(mapping, [loss], 0, lr)
    for _ in range(iterations):
        if lr < min_lr:
            break
        with torch.no_grad():
            candidate = mapping * (1.0 - lr * weight_decay) - lr * grad
            if constraint == "spectral":
                candidate = project_spectral(candidate)
        candidate_loss, candidate_grad = evaluate(candidate)
        if candidate_loss > loss:
            lr /= 2.0
            result.rejected += 1
        else:
            mapping, loss, grad = candidate, candidate_loss, candidate_grad
        result.losses.append(loss)
    result.mapping, result.lr = mapping, lr
    return result
