"""Learning-rate schedules: the pure function, and the lr the trainer actually applied at each step."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from trainer_toy import TwoTower, contrastive, make_pairs, two_objectives

from mmbench.errors import ConfigError
from mmbench.train import Objective, TrainConfig, Trainer, lr_factor, read_metrics


def _factors(schedule: str, steps: int, **kwargs) -> list[float]:
    return [lr_factor(schedule, s, **kwargs) for s in range(steps)]


def test_trainer_schedule_factors_match_closed_forms():
    common = {"total_steps": 12, "steps_per_epoch": 3}
    assert _factors("constant", 12, **common) == [1.0] * 12
    # step: /10 every 2 epochs of 3 steps
    assert np.allclose(_factors("step", 12, step_epochs=2, **common), [1.0] * 6 + [0.1] * 6)
    assert np.allclose(_factors("step", 12, step_epochs=1, **common),
                       np.repeat([1.0, 0.1, 0.01, 0.001], 3))
    assert _factors("warmup", 6, warmup_steps=4, **common) == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = _factors("cosine", 12, **common)
    assert np.allclose(cosine, 0.5 * (1 + np.cos(np.pi * np.arange(12) / 12)))
    assert cosine[0] == 1.0 and cosine[6] == pytest.approx(0.5)
    warm_cosine = _factors("warmup-cosine", 12, warmup_steps=4, **common)
    assert np.allclose(warm_cosine[:4], [0.25, 0.5, 0.75, 1.0])
    assert np.allclose(warm_cosine[4:], 0.5 * (1 + np.cos(np.pi * np.arange(8) / 8)))
    assert all(b <= a for a, b in itertools.pairwise(warm_cosine[3:]))


def test_trainer_applies_step_decay_per_objective(tmp_path):
    # 240 examples, batch 60: 4 steps per epoch; lr /10 after every 2 epochs; 5 epochs.
    config = TrainConfig(epochs=5, batch_size=60, lr=0.01, schedule="step", step_epochs=2, log_every=1,
                         progress=False)
    Trainer(TwoTower(), two_objectives(align_every=1, align_lr=0.05), make_pairs(), config,
            run_dir=tmp_path).fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    epochs = np.arange(20) // 4
    assert [r["epoch"] for r in records] == list(epochs)
    assert np.allclose([r["lr/nce"] for r in records], 0.01 * 0.1 ** (epochs // 2))
    assert np.allclose([r["lr/align"] for r in records], 0.05 * 0.1 ** (epochs // 2))


def test_trainer_applies_warmup_cosine_over_max_steps(tmp_path):
    config = TrainConfig(max_steps=10, batch_size=60, lr=0.02, schedule="warmup-cosine", warmup_steps=3,
                         log_every=1, progress=False)
    Trainer(TwoTower(), Objective("nce", contrastive), make_pairs(), config, run_dir=tmp_path).fit()
    applied = [r["lr/nce"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    expected = [0.02 * (s + 1) / 3 for s in range(3)]
    expected += [0.02 * 0.5 * (1 + math.cos(math.pi * s / 7)) for s in range(7)]
    assert np.allclose(applied, expected)


def test_trainer_schedule_config_is_validated():
    with pytest.raises(ConfigError, match="warmup_steps >= 1"):
        TrainConfig(schedule="warmup")
    with pytest.raises(ConfigError, match="lr must be > 0"):
        TrainConfig(lr=0.0)
