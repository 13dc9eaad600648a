"""A NaN stops training with a message naming the step and objective; the last good checkpoint survives."""

from __future__ import annotations

import pytest
import torch
from trainer_toy import TwoTower, contrastive, make_pairs

from mmbench.train import NonFiniteLossError, Objective, TrainConfig, Trainer, read_metrics
from mmbench.train.checkpoint import load_checkpoint, load_named


def test_trainer_nan_in_data_stops_naming_the_step_and_keeps_last_checkpoint(tmp_path):
    view_a, view_b = make_pairs()
    view_a[200, 3] = float("nan")  # no shuffling: row 200 is in batch 7 (rows 192..223)
    config = TrainConfig(epochs=3, batch_size=32, shuffle=False, checkpoint_every=3, log_every=4, progress=False)
    trainer = Trainer(TwoTower(), Objective("nce", contrastive), (view_a, view_b), config, run_dir=tmp_path)
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "'nce'" in message and "at step 7 " in message and "epoch 0" in message
    assert "step-00000006" in message and "\n" not in message

    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == ["step-00000003", "step-00000006"]
    last_good = load_named(checkpoints)
    assert last_good.state["step"] == 6
    model = last_good.section("model")
    assert all(torch.isfinite(t).all() for t in model.values())
    assert all(torch.isfinite(t).all() for t in load_checkpoint(checkpoints / "step-00000006").tensors.values())
    # The weights in memory went bad after step 7, which is why nothing was saved after it.
    assert not all(torch.isfinite(p).all() for p in trainer.model.parameters())
    # Syncs before checkpoints and every log_every steps logged; the one at step 8 found the NaN instead.
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [3, 4, 6]


def test_trainer_infinite_gradient_is_reported_as_such():
    def loss_with_bad_gradient(model, batch):
        weight = model.g.weight
        return contrastive(model, batch) + torch.sqrt((weight - weight.detach()).abs()).sum()

    config = TrainConfig(epochs=1, batch_size=60, log_every=1, progress=False)
    trainer = Trainer(TwoTower(), Objective("nce", loss_with_bad_gradient), make_pairs(), config)
    with pytest.raises(NonFiniteLossError, match=r"'nce': gradient norm is NaN or infinite at step 1 "):
        trainer.fit()
