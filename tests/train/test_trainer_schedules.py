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


def test_multistep_schedules_match_closed_forms():
    common = {"total_steps": 12, "steps_per_epoch": 3}
    assert _factors("multistep", 12, decay_steps=(4, 8), decay_rate=0.5, **common) == [1.0] * 4 + [0.5] * 4 + [0.25] * 4
    warm = _factors("warmup-multistep", 12, warmup_steps=4, warmup_from=0.5, warmup_to=2.0, decay_steps=(6, 9),
                    decay_rate=0.25, **common)
    assert np.allclose(warm, [0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.125, 0.125, 0.125])
    with pytest.raises(ValueError, match="needs decay_steps"):
        lr_factor("warmup-multistep", 0, warmup_steps=4, **common)  # a caller that forgets them fails


def test_liwe_reference_schedule_through_the_config():
    """LIWE's Adamax schedule: torch.linspace(0.5, 2, 4000) over the first 4000 steps, then x0.25 at 10k,
    12k, 14k, 16k and 18k steps (``lr_decay_epochs: [10000, 20000, 2000]`` is a range)."""
    import torch

    from mmbench.train.schedules import schedule_factor

    config = TrainConfig(schedule="warmup-multistep", warmup_steps=4000, warmup_from=0.5, warmup_to=2.0,
                         decay_steps=tuple(range(10000, 20000, 2000)), decay_rate=0.25)
    ramp = torch.linspace(0.5, 2.0, 4000, dtype=torch.float64)
    for step in (0, 1, 1234, 3999):
        assert schedule_factor(config, step, total_steps=30000, steps_per_epoch=100) == pytest.approx(float(ramp[step]))
    expected = {4000: 2.0, 9999: 2.0, 10000: 0.5, 11999: 0.5, 12000: 0.125, 17999: 2.0 * 0.25 ** 4,
                18000: 2.0 * 0.25 ** 5, 29999: 2.0 * 0.25 ** 5}
    for step, factor in expected.items():
        assert schedule_factor(config, step, total_steps=30000, steps_per_epoch=100) == pytest.approx(factor)


def test_new_schedule_fields_leave_existing_config_hashes_alone():
    from mmbench.models import config_to_dict

    assert not {"decay_steps", "decay_rate", "warmup_from", "warmup_to"} & set(config_to_dict(TrainConfig()))
    assert config_to_dict(TrainConfig(decay_steps=(5,)))["decay_steps"] == (5,)
    with pytest.raises(ConfigError, match="decay_steps must be increasing"):
        TrainConfig(decay_steps=(10, 5))
    with pytest.raises(ConfigError, match="decay_rate"):
        TrainConfig(decay_rate=0.0)
    with pytest.raises(ConfigError, match="warmup_steps >= 1"):
        TrainConfig(schedule="warmup-multistep")


def test_trainer_applies_warmup_multistep(tmp_path):
    config = TrainConfig(max_steps=8, batch_size=60, lr=0.01, schedule="warmup-multistep", warmup_steps=3,
                         warmup_from=0.5, warmup_to=2.0, decay_steps=(5, 7), decay_rate=0.25, log_every=1,
                         progress=False)
    Trainer(TwoTower(), Objective("nce", contrastive), make_pairs(), config, run_dir=tmp_path).fit()
    applied = [r["lr/nce"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert np.allclose(applied, [0.01 * f for f in (0.5, 1.25, 2.0, 2.0, 2.0, 0.5, 0.5, 0.125)])
