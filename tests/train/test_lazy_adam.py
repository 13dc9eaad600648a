"""``lazy-adam``: dense parameters follow torch's Adam; sparse tables update only the rows a step touched,
each exactly as Adam would have updated that row alone; the state survives a checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from mmbench.train import Objective, TrainConfig, Trainer
from mmbench.train.lazy_adam import LazyAdam

# Different op order from torch's fused/foreach kernels: equal up to float32 rounding over a few steps.
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


def test_dense_parameters_follow_torch_adam() -> None:
    torch.manual_seed(0)
    ours, reference = torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(5, 3))
    reference.data.copy_(ours.data)
    lazy, adam = LazyAdam([ours], lr=0.01, weight_decay=0.1), torch.optim.Adam([reference], lr=0.01, weight_decay=0.1)
    for step in range(20):
        target = torch.randn(5, 3, generator=torch.Generator().manual_seed(step))
        for param, optimizer in ((ours, lazy), (reference, adam)):
            optimizer.zero_grad()
            ((param - target) ** 2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(ours.data, reference.data, **TOLERANCE)


def test_a_sparse_table_updates_only_touched_rows_as_adam_would() -> None:
    torch.manual_seed(0)
    table = torch.nn.Embedding(6, 4, sparse=True)
    row_two = torch.nn.Parameter(table.weight.data[2:3].clone())  # Adam on row 2 alone: the reference
    start = table.weight.data.clone()
    lazy, adam = LazyAdam(table.parameters(), lr=0.05), torch.optim.Adam([row_two], lr=0.05)
    for step in range(10):
        rows = torch.tensor([2, 2, 4]) if step % 2 == 0 else torch.tensor([2])  # row 4 on every other step
        lazy.zero_grad()
        table(rows).sum().backward()
        assert table.weight.grad.is_sparse
        lazy.step()
        adam.zero_grad()
        (row_two.expand(int((rows == 2).sum()), 4)).sum().backward()
        adam.step()
    torch.testing.assert_close(table.weight.data[2:3], row_two.data, **TOLERANCE)
    untouched = [0, 1, 3, 5]
    assert torch.equal(table.weight.data[untouched], start[untouched])
    assert torch.equal(lazy.state[table.weight]["exp_avg"][untouched], torch.zeros(4, 4))
    assert not torch.allclose(table.weight.data[4], start[4])


def test_weight_decay_is_refused_on_sparse_gradients() -> None:
    table = torch.nn.Embedding(3, 2, sparse=True)
    optimizer = LazyAdam(table.parameters(), weight_decay=0.01)
    table(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="weight decay"):
        optimizer.step()


class Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Embedding(50, 8, sparse=True)
        self.head = torch.nn.Linear(8, 1)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        rows, target = batch
        return ((self.head(self.table(rows)).squeeze(-1) - target) ** 2).mean()


def test_the_trainer_resumes_lazy_adam_exactly(tmp_path) -> None:
    rows = torch.arange(50).repeat(4)
    data = (rows, (rows % 7).float())
    config = TrainConfig(epochs=10, batch_size=20, lr=0.1, optimizer="lazy-adam", grad_clip=None, progress=False,
                         checkpoint_every=7)

    def trained(run_dir, max_steps=None) -> Toy:
        torch.manual_seed(0)
        model = Toy()
        Trainer(model, Objective("fit", lambda m, b: m.loss(b)), data,
                config.replace(max_steps=max_steps) if max_steps else config, run_dir=run_dir).fit(resume=True)
        return model

    whole = trained(tmp_path / "whole")
    trained(tmp_path / "split", max_steps=14)  # stopped after a checkpoint, then resumed to the end
    resumed = trained(tmp_path / "split")
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert whole.loss(data) < 0.5 * Toy().loss(data)  # it learns
