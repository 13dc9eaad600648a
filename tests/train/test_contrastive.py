"""LIWE/CLMR's exponentially weighted contrastive loss against a plain loop (the reference's
``ContrastiveLoss`` written out pair by pair), k(t) = 1 - beta^t, and the step counter it reads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmbench.train.ame_losses import hinge_ranking
from mmbench.train.contrastive import StepCounter, k_at, weighted_contrastive


def loop_loss(queries: torch.Tensor, items: torch.Tensor, t: int, beta: float, margin: float) -> float:
    """The reference's sum (not the mean) at iteration t, one pair at a time."""
    q, v = queries.tolist(), items.tolist()
    n = len(q)
    s = [[sum(a * b for a, b in zip(q[i], v[j])) for j in range(n)] for i in range(n)]
    k = 1.0 - beta ** t
    every = hardest = 0.0
    for i in range(n):
        by_item = [max(0.0, margin + s[i][j] - s[i][i]) for j in range(n) if j != i]  # items for query i
        by_query = [max(0.0, margin + s[j][i] - s[i][i]) for j in range(n) if j != i]  # queries for item i
        every += sum(by_item) + sum(by_query)
        hardest += max(by_item) + max(by_query)
    return (1 - k) * every + k * hardest


def unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("t", [1, 2, 10, 77, 500, 5000])
@pytest.mark.parametrize("beta", [0.991, 0.91])
def test_weighted_contrastive_matches_a_loop_at_several_steps(t, beta):
    queries, items = unit(7, 5, 0), unit(7, 5, 1)
    items[2] = queries[2]  # one easy positive: its row has no violation
    got = weighted_contrastive(queries, items, k_at(t, beta), margin=0.2)
    assert got.item() * 7 == pytest.approx(loop_loss(queries, items, t, beta, 0.2), rel=1e-12)


def test_k_is_exactly_one_minus_beta_to_the_step():
    for t in (1, 2, 3, 100, 4000, 20000):
        for beta in (0.991, 0.91):
            assert k_at(t, beta) == 1.0 - beta ** t
            assert k_at(torch.tensor(t), beta).item() == pytest.approx(1.0 - beta ** t, abs=1e-15)
    assert k_at(1, 0.91) == pytest.approx(0.09) and k_at(100000, 0.991) == 1.0


def test_k_zero_and_one_are_the_sum_and_hardest_negative_hinges():
    images, captions = unit(9, 6, 2), unit(9, 6, 3)
    assert torch.allclose(weighted_contrastive(images, captions, 0.0), hinge_ranking(images, captions))
    assert torch.allclose(weighted_contrastive(images, captions, 1.0),
                          hinge_ranking(images, captions, max_violation=True))


def test_gradient_flows_to_both_sides_and_shapes_are_checked():
    queries, items = unit(4, 3, 4).requires_grad_(), unit(4, 3, 5).requires_grad_()
    weighted_contrastive(queries, items, 0.3).backward()
    assert queries.grad.abs().sum() > 0 and items.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one shape"):
        weighted_contrastive(unit(4, 3, 0), unit(5, 3, 0), 0.5)


def test_step_counter_counts_from_one_and_travels_in_the_state_dict():
    counter = StepCounter()
    assert [int(counter.advance()) for _ in range(3)] == [1, 2, 3]
    assert counter.state_dict()["step"].dtype == torch.int64
    other = StepCounter()
    other.load_state_dict(counter.state_dict())
    assert int(other.advance()) == 4
