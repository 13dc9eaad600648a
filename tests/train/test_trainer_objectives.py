"""Several objectives (own params, optimizer, lr, ``every``), seeds, and the accepted data forms."""

from __future__ import annotations

import pytest
import torch
from trainer_toy import TwoTower, align, assert_bitwise_equal, contrastive, make_pairs, noisy_collate, weights

from mmbench.errors import ConfigError, DataError
from mmbench.train import Objective, TrainConfig, Trainer, seed_everything
from mmbench.train.data import BatchSource


def _split_objectives() -> list[Objective]:
    return [Objective("nce", contrastive, params=lambda name: name.startswith("f.")),
            Objective("align", align, params=lambda name: name.startswith("g."), every=3, optimizer="sgd",
                      lr=0.05, momentum=0.0)]


def _run(max_steps: int) -> Trainer:
    seed_everything(1)
    config = TrainConfig(max_steps=max_steps, batch_size=40, grad_clip=None, progress=False, seed=1)
    trainer = Trainer(TwoTower(), _split_objectives(), make_pairs(), config)
    trainer.fit()
    return trainer


def _tower(model: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights(model).items() if k.startswith(prefix)}


def test_trainer_objectives_update_only_their_params_on_their_steps():
    seed_everything(1)
    initial = weights(TwoTower())
    after_two, after_three = _run(2), _run(3)
    # Steps 1 and 2: only the f tower (nce) moved; g (align, every 3) is untouched.
    assert_bitwise_equal(_tower(after_two.model, "g."), _tower_from(initial, "g."))
    assert all(not torch.equal(after_two.model.state_dict()[k], v) for k, v in _tower_from(initial, "f.").items())
    # Step 3: align took one plain SGD step with its own lr (0.05) on step 3's batch.
    batch, _, _ = after_three.batches.local_batch(0, 2)
    probe = TwoTower()
    probe.load_state_dict(after_two.model.state_dict())
    align(probe, batch).backward()
    for name in ("weight", "bias"):
        expected = getattr(after_two.model.g, name).detach() - 0.05 * getattr(probe.g, name).grad
        assert torch.allclose(getattr(after_three.model.g, name).detach(), expected, atol=1e-7)
    assert after_three.optimizers["align"].param_groups[0]["lr"] == 0.05
    assert isinstance(after_three.optimizers["align"], torch.optim.SGD)
    assert isinstance(after_three.optimizers["nce"], torch.optim.Adam)


def _tower_from(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def test_trainer_objective_errors_are_config_errors():
    data = make_pairs()
    with pytest.raises(ConfigError, match="selects no trainable parameters"):
        Trainer(TwoTower(), Objective("x", contrastive, params=lambda name: name.startswith("h.")), data)
    with pytest.raises(ConfigError, match="distinct names"):
        Trainer(TwoTower(), [Objective("x", contrastive), Objective("x", align)], data)
    with pytest.raises(ConfigError, match="not a trainable parameter"):
        Trainer(TwoTower(), Objective("x", contrastive, params=[torch.nn.Parameter(torch.zeros(2))]), data)
    with pytest.raises(ConfigError, match="every must be >= 1"):
        Objective("x", contrastive, every=0)
    with pytest.raises(ConfigError, match="needs a run directory"):
        Trainer(TwoTower(), Objective("x", contrastive), data, TrainConfig(checkpoint_every=5))


def _seeded_run(seed: int, deterministic: bool = False) -> Trainer:
    seed_everything(seed)
    config = TrainConfig(epochs=2, batch_size=32, seed=seed, deterministic=deterministic, progress=False)
    trainer = Trainer(TwoTower(dropout=0.3), Objective("nce", contrastive), make_pairs(), config,
                      collate=noisy_collate)
    trainer.fit()
    return trainer


def test_trainer_one_seed_controls_everything():
    first, second = _seeded_run(7), _seeded_run(7)
    assert_bitwise_equal(weights(first.model), weights(second.model))
    try:
        deterministic = _seeded_run(7, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    assert_bitwise_equal(weights(first.model), weights(deterministic.model))
    other = _seeded_run(8)
    assert not torch.equal(first.batches.order(0), other.batches.order(0))
    assert not torch.equal(first.model.g.weight, other.model.g.weight)
    # Data order is a pure function of (seed, epoch): a fresh source gives the same permutations.
    fresh = BatchSource(make_pairs(), 32, seed=7)
    assert torch.equal(fresh.order(1), first.batches.order(1)) and torch.equal(fresh.order(0), first.batches.order(0))
    assert not torch.equal(fresh.order(0), fresh.order(1))


def test_trainer_accepts_hf_dataset_torch_dataset_and_tensors_alike():
    datasets = pytest.importorskip("datasets")
    view_a, view_b = make_pairs()

    class Pairs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(view_a)

        def __getitem__(self, index: int):
            return {"a": view_a[index], "b": view_b[index]}

    table = datasets.Dataset.from_dict({"a": view_a.numpy(), "b": view_b.numpy()})

    def loss_on_dict(model, batch):
        return contrastive(model, (batch["a"], batch["b"]))

    def train(data, loss) -> dict[str, torch.Tensor]:
        seed_everything(2)
        model = TwoTower()
        Trainer(model, Objective("nce", loss), data, TrainConfig(epochs=2, batch_size=50, progress=False)).fit()
        return weights(model)

    reference = train((view_a, view_b), contrastive)
    assert_bitwise_equal(train(Pairs(), loss_on_dict), reference)
    assert_bitwise_equal(train(table, loss_on_dict), reference)


def test_trainer_data_errors():
    view_a, view_b = make_pairs()
    with pytest.raises(DataError, match="differ in length"):
        BatchSource((view_a, view_b[:-1]), 32, seed=0)
    with pytest.raises(DataError, match="empty"):
        BatchSource((view_a[:0], view_b[:0]), 32, seed=0)
    with pytest.raises(DataError, match="fewer than one batch"):
        BatchSource((view_a[:10], view_b[:10]), 32, seed=0, drop_last=True)
    with pytest.raises(ConfigError, match="too few for 4 ranks"):
        BatchSource((view_a[:66], view_b[:66]), 32, seed=0, world_size=4)
    source = BatchSource((view_a[:67], view_b[:67]), 32, seed=0, world_size=2)
    assert source.steps_per_epoch == 3
    # Rank shares are contiguous pieces of the global batch, the first one larger when uneven.
    (a0, _), n0, total = source.local_batch(0, 2, rank=0)
    (a1, _), n1, _ = source.local_batch(0, 2, rank=1)
    assert (n0, n1, total) == (2, 1, 3)
    assert torch.equal(torch.cat([a0, a1]), view_a[source.global_indices(0, 2)])


def test_trainer_params_given_as_module_and_examples_given_as_list():
    model = TwoTower()
    trainer = Trainer(model, Objective("g_only", align, params=model.g), make_pairs(),
                      TrainConfig(max_steps=1, batch_size=40, progress=False))
    assert [id(p) for p in trainer.params["g_only"]] == [id(model.g.weight), id(model.g.bias)]
    with pytest.raises(ConfigError, match="not part of the model"):
        Trainer(model, Objective("x", align, params=torch.nn.Linear(2, 2)), make_pairs())
    # A list holds examples (collated with default_collate), a tuple holds columns.
    view_a, view_b = make_pairs(n=30)
    examples = [(view_a[i], view_b[i]) for i in range(30)]
    source = BatchSource(examples, 8, seed=0, shuffle=False)
    assert source.num_examples == 30 and source.steps_per_epoch == 4
    batch, _, _ = source.local_batch(0, 1)
    assert torch.equal(batch[0], view_a[8:16]) and torch.equal(batch[1], view_b[8:16])
