"""A small two-tower contrastive problem shared by the trainer tests and their subprocess workers.

Two noisy views of the same latent point (one linear, one through tanh) must be matched within a batch;
the towers can only learn that from the shared latent structure.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

from mmbench.train import Objective, TrainConfig, Trainer, seed_everything
from mmbench.train.losses import in_batch_softmax


def make_pairs(n: int = 240, dim: int = 12, latent: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, latent, generator=generator)
    view_a = z @ torch.randn(latent, dim, generator=generator) + 0.1 * torch.randn(n, dim, generator=generator)
    view_b = torch.tanh(z @ torch.randn(latent, dim, generator=generator)) + 0.1 * torch.randn(
        n, dim, generator=generator)
    return view_a, view_b


class TwoTower(torch.nn.Module):
    def __init__(self, dim: int = 12, out: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        self.f = torch.nn.Sequential(torch.nn.Linear(dim, 16), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                                     torch.nn.Linear(16, out))
        self.g = torch.nn.Linear(dim, out)

    def encode_a(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)

    def encode_b(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(x)


def contrastive(model: TwoTower, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return in_batch_softmax(model.encode_a(batch[0]), model.encode_b(batch[1]), temperature=0.2)


def align(model: TwoTower, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """A second objective on the g tower only: keep its outputs near a fixed half of the input."""
    return F.mse_loss(model.encode_b(batch[1]), batch[1][:, : model.g.out_features])


def two_objectives(align_every: int = 3, align_lr: float = 0.05) -> list[Objective]:
    return [Objective("nce", contrastive),
            Objective("align", align, params=lambda name: name.startswith("g."), every=align_every,
                      optimizer="sgd", lr=align_lr, momentum=0.0)]


def noisy_collate(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmentation that draws from NumPy's and Python's global RNGs (so resume must restore both)."""
    view_a, view_b = batch
    noise = torch.from_numpy(np.random.normal(0.0, 0.05, size=tuple(view_a.shape)).astype(np.float32))
    keep = torch.tensor([[0.0 if random.random() < 0.1 else 1.0] for _ in range(len(view_b))])
    return view_a + noise, view_b * keep


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bitwise_equal(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for key, value in left.items():
        assert torch.equal(value, right[key]), f"{key} differs"


def resume_trainer(run_dir, *, epochs: int = 4, kill_at_step: int | None = None) -> Trainer:
    """The run the resume tests interrupt: dropout, two objectives, RNG-drawing augmentation, 4 epochs."""
    seed_everything(3)
    model = TwoTower(dropout=0.2)
    objectives = two_objectives()
    if kill_at_step is not None:
        objectives[0].loss = _dies_at(kill_at_step, objectives[0].loss)
    config = TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, seed=3, checkpoint_every=5, keep_checkpoints=1,
                         log_every=1, progress=False)
    return Trainer(model, objectives, make_pairs(), config, collate=noisy_collate, run_dir=run_dir)


def _dies_at(step: int, loss):
    calls = {"n": 0}

    def wrapped(model, batch):
        calls["n"] += 1
        if calls["n"] == step:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return loss(model, batch)

    return wrapped


def ddp_trainer(run_dir=None) -> Trainer:
    """The run compared between 1 and 2 processes: no dropout or augmentation (those are rank-local),
    an uneven last batch (245 = 3 * 64 + 53), both objectives, checkpoints."""
    seed_everything(5)
    config = TrainConfig(epochs=2, batch_size=64, lr=3e-3, seed=5, log_every=1, checkpoint_every=4,
                         progress=False)
    return Trainer(TwoTower(), two_objectives(align_every=2), make_pairs(n=245), config, run_dir=run_dir)
