"""AME's ranking losses against plain loops (VSE++ ``ContrastiveLoss`` written out pair by pair), and the
loss-driven lr halving of its alignment objective."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmbench.train.ame_losses import HalvingStep, hinge_ranking, order_similarity


def loop_order(image: list[float], caption: list[float]) -> float:
    return -math.sqrt(sum(max(0.0, c - i) ** 2 for i, c in zip(image, caption)))


def loop_cosine(image: list[float], caption: list[float]) -> float:
    return sum(i * c for i, c in zip(image, caption))


def loop_hinge(images: torch.Tensor, captions: torch.Tensor, margin: float, max_violation: bool, sim) -> float:
    ims, caps = images.tolist(), captions.tolist()
    n = len(ims)
    total = 0.0
    for i in range(n):
        positive = sim(ims[i], caps[i])
        by_caption = [max(0.0, margin + sim(ims[i], caps[j]) - positive) for j in range(n) if j != i]
        by_image = [max(0.0, margin + sim(ims[j], caps[i]) - positive) for j in range(n) if j != i]
        total += (max(by_caption) + max(by_image)) if max_violation else (sum(by_caption) + sum(by_image))
    return total / n


@pytest.mark.parametrize("max_violation", [False, True])
@pytest.mark.parametrize("similarity", ["cosine", "order"])
def test_hinge_matches_the_loop_reference(max_violation, similarity):
    generator = torch.Generator().manual_seed(3)
    images = F.normalize(torch.randn(7, 5, generator=generator, dtype=torch.float64), dim=-1)
    captions = F.normalize(torch.randn(7, 5, generator=generator, dtype=torch.float64), dim=-1)
    sim = loop_cosine if similarity == "cosine" else loop_order
    got = hinge_ranking(images, captions, margin=0.2, max_violation=max_violation, similarity=similarity)
    assert float(got) == pytest.approx(loop_hinge(images, captions, 0.2, max_violation, sim), rel=1e-12)


def test_order_similarity_matches_the_loop_and_has_finite_gradients_at_zero():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 6, generator=generator, dtype=torch.float64)
    captions = torch.rand(3, 6, generator=generator, dtype=torch.float64)
    captions[0] = images[1] - 0.5  # below image 1 everywhere: score 0
    got = order_similarity(images, captions)
    for i in range(4):
        for j in range(3):
            assert float(got[i, j]) == pytest.approx(loop_order(images[i].tolist(), captions[j].tolist()), abs=1e-6)
    assert float(got[1, 0]) == pytest.approx(0.0, abs=1e-5)
    captions.requires_grad_(True)
    order_similarity(images, captions).sum().backward()
    assert torch.isfinite(captions.grad).all()


def test_a_perfect_batch_has_zero_loss_and_a_collapsed_one_pays_the_margin():
    eye = torch.eye(4, dtype=torch.float64)
    assert float(hinge_ranking(eye, eye)) == 0.0
    same = F.normalize(torch.ones(4, 3, dtype=torch.float64), dim=-1)
    assert float(hinge_ranking(same, same, margin=0.2)) == pytest.approx(2 * 3 * 0.2)
    assert float(hinge_ranking(same, same, margin=0.2, max_violation=True)) == pytest.approx(2 * 0.2)


def test_halving_step_scales_the_gradient_not_the_value_and_halves_only_when_the_loss_rises():
    step = HalvingStep()
    w = torch.tensor(1.0, requires_grad=True)
    values, grads = [], []
    for target in (1.0, 0.5, 0.8, 0.9, 0.1):  # loss = target * w: rises at 0.8 and 0.9
        out = step.scaled(w * target)
        (grad,) = torch.autograd.grad(out, w)
        values.append(float(out.detach()))
        grads.append(float(grad))
    assert values == pytest.approx([1.0, 0.5, 0.8, 0.9, 0.1])
    assert grads == pytest.approx([1.0, 0.5, 0.8 / 2, 0.9 / 4, 0.1 / 4])
    assert float(step.factor) == 0.25 and "factor" in dict(step.named_buffers())
