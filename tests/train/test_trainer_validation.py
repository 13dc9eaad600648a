"""Validation every N steps, early stopping at the right step, and the best checkpoint kept and restored."""

from __future__ import annotations

import torch
from trainer_toy import TwoTower, assert_bitwise_equal, contrastive, make_pairs, weights

from mmbench.train import Objective, TrainConfig, Trainer, Validator, read_metrics, seed_everything
from mmbench.train.checkpoint import load_named

# 240 examples in batches of 40: 6 steps per epoch; validation every 3 steps.
CONFIG = TrainConfig(epochs=10, batch_size=40, val_every=3, early_stopping_patience=2, progress=False)


class Scripted:
    """A metric whose values are fixed in advance, so the stopping step is known: the point here is the
    trainer's bookkeeping, not the metric (the real-data test uses a real one)."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)
        self.training_flags: list[bool] = []

    def __call__(self, model: torch.nn.Module) -> float:
        self.training_flags.append(model.training)
        return self.values.pop(0)


def _trainer(run_dir, metric, config=CONFIG, higher_is_better=True) -> Trainer:
    seed_everything(4)
    return Trainer(TwoTower(), Objective("nce", contrastive), make_pairs(), config.replace(seed=4),
                   validator=Validator(metric, name="score", higher_is_better=higher_is_better), run_dir=run_dir)


def test_trainer_early_stopping_stops_at_the_right_step_and_restores_best(tmp_path):
    metric = Scripted([0.2, 0.5, 0.4, 0.45, 0.9])  # best at the 2nd validation (step 6), then 2 worse
    trainer = _trainer(tmp_path / "run", metric)
    result = trainer.fit()
    assert (result.steps, result.stopped_early, result.best_step, result.best_metric) == (12, True, 6, 0.5)
    assert metric.values == [0.9] and metric.training_flags == [False] * 4 and trainer.model.training

    seed_everything(4)
    at_six = TwoTower()
    Trainer(at_six, Objective("nce", contrastive), make_pairs(), CONFIG.replace(max_steps=6, seed=4)).fit()
    assert_bitwise_equal(weights(trainer.model), weights(at_six))  # the best weights, restored

    checkpoints = tmp_path / "run" / "checkpoints"
    best, latest = load_named(checkpoints, "best"), load_named(checkpoints, "latest")
    assert best.state["step"] == 6 and latest.state["step"] == 12
    assert_bitwise_equal(best.section("model"), weights(at_six))
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [(r["step"], r["val/score"]) for r in records if "val/score" in r] == [(3, 0.2), (6, 0.5), (9, 0.4),
                                                                                  (12, 0.45)]
    # Resuming a stopped run does not train on; it ends with the best weights again.
    again = _trainer(tmp_path / "run", Scripted([]))
    assert again.fit(resume=True).steps == 12
    assert_bitwise_equal(weights(again.model), weights(at_six))


def test_trainer_keeps_last_weights_without_restore_best(tmp_path):
    metric = Scripted([0.5, 0.4, 0.3])
    trainer = _trainer(None, metric, CONFIG.replace(restore_best=False, max_steps=9))
    result = trainer.fit()
    assert (result.steps, result.stopped_early, result.best_step) == (9, True, 3)
    seed_everything(4)
    at_nine = TwoTower()
    Trainer(at_nine, Objective("nce", contrastive), make_pairs(), CONFIG.replace(max_steps=9, seed=4)).fit()
    assert_bitwise_equal(weights(trainer.model), weights(at_nine))


def test_trainer_validation_with_real_held_out_loss(tmp_path):
    view_a, view_b = make_pairs(n=300, seed=9)
    held_out = (view_a[240:], view_b[240:])

    def held_out_loss(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(contrastive(model, held_out))

    seed_everything(0)
    model = TwoTower()
    config = TrainConfig(epochs=6, batch_size=40, lr=3e-3, progress=False)  # validate after each epoch
    before = held_out_loss(model)
    result = Trainer(model, Objective("nce", contrastive), (view_a[:240], view_b[:240]), config,
                     validator=Validator(held_out_loss, name="loss", higher_is_better=False), run_dir=tmp_path).fit()
    values = {r["step"]: r["val/loss"] for r in read_metrics(tmp_path / "metrics.jsonl") if "val/loss" in r}
    assert sorted(values) == [6, 12, 18, 24, 30, 36]
    assert result.best_metric == min(values.values()) and values[result.best_step] == result.best_metric
    assert result.best_metric < before
    assert held_out_loss(model) == result.best_metric


def test_a_metric_returning_a_mapping_selects_on_its_named_entry_and_logs_the_rest(tmp_path):
    values = [{"score": 0.2, "r1/en": 0.1}, {"score": 0.5, "r1/en": 0.3}, {"score": 0.4, "r1/en": 0.35},
              {"score": 0.45, "r1/en": 0.2}]
    result = _trainer(tmp_path / "run", Scripted(values)).fit()
    assert (result.steps, result.best_step, result.best_metric) == (12, 6, 0.5)
    logged = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "val/score" in r]
    assert [(r["val/score"], r["val/r1/en"]) for r in logged] == [(0.2, 0.1), (0.5, 0.3), (0.4, 0.35), (0.45, 0.2)]
