"""Tracked metrics: logged at step 0, every N steps and at the end, never steering training or resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from trainer_toy import TwoTower, assert_bitwise_equal, contrastive, make_pairs, resume_trainer, weights

from mmbench.errors import ConfigError
from mmbench.train import NonFiniteLossError, Objective, TrainConfig, Trainer, Validator, read_metrics, seed_everything
from mmbench.train.tracking import TrackedMetric, Tracking, alignment_ratio_metric

# 240 examples in batches of 40: 6 steps per epoch; 14 steps is not a multiple of 4.
CONFIG = TrainConfig(max_steps=14, batch_size=40, lr=1e-2, seed=2, log_every=5, progress=False)
_VIEW_A, _VIEW_B = make_pairs(n=300)
TRAIN, PROBE = (_VIEW_A[:240], _VIEW_B[:240]), (_VIEW_A[240:], _VIEW_B[240:])  # probe: held-out pairs


def _trainer(run_dir=None, tracked=(), config=CONFIG, validator=None) -> Trainer:
    seed_everything(2)
    return Trainer(TwoTower(), Objective("nce", contrastive), TRAIN, config, run_dir=run_dir,
                   tracked=tracked, validator=validator)


def _pair_alignment(every: int) -> TrackedMetric:
    """Probe pair i's view-a vector should find its own view-b vector (CSLS) among all 60."""
    metric = alignment_ratio_metric(lambda m: m.encode_a(PROBE[0]), lambda m: m.encode_b(PROBE[1]),
                                    {i: [i] for i in range(len(PROBE[0]))})
    return TrackedMetric("alignment_ratio/a-b", metric, every=every, note="probe pairs")


def csls_top1_reference(source: np.ndarray, target: np.ndarray, gold: dict[int, list[int]], k: int = 10) -> float:
    """NumPy CSLS: 2cos - mean top-k cos of the source row to all targets - that of the target to all sources."""
    s = source / np.linalg.norm(source, axis=1, keepdims=True)
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    cos = s @ t.T
    r_target = np.sort(cos, axis=1)[:, -k:].mean(axis=1)
    r_source = np.sort(cos.T, axis=1)[:, -k:].mean(axis=1)
    csls = 2 * cos - r_target[:, None] - r_source[None, :]
    hits = [csls[i].argmax() in targets for i, targets in gold.items()]
    return float(np.mean(hits))


def test_tracked_metric_is_logged_at_step_zero_every_n_steps_and_at_the_end(tmp_path):
    calls: list[tuple[int, bool]] = []
    trainer = _trainer(tmp_path, tracked=[_pair_alignment(every=4)])
    watched = trainer.tracking.metrics[0].metric

    def spy(model):
        calls.append((trainer.step, model.training))
        return watched(model)

    trainer.tracking.metrics[0].metric = spy
    result = trainer.fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    tracked = [r for r in records if "alignment_ratio/a-b" in r]
    assert [r["step"] for r in tracked] == [0, 4, 8, 12, 14]
    assert [step for step, _ in calls] == [0, 4, 8, 12, 14] and not any(training for _, training in calls)
    assert trainer.model.training
    assert tracked[0]["note/alignment_ratio/a-b"] == "probe pairs"
    assert all("note/alignment_ratio/a-b" not in r for r in tracked[1:])
    assert all(0.0 <= r["alignment_ratio/a-b"] <= 1.0 and set(r) >= {"epoch", "time"} for r in tracked)
    # Loss records every log_every steps and at the end, plus a sync at each tracked step.
    assert [r["step"] for r in records if "loss/nce" in r] == [4, 5, 8, 10, 12, 14]
    # The value logged at the end is the metric of the final weights, recomputed independently.
    model = trainer.model.eval()
    with torch.no_grad():
        source, target = model.encode_a(PROBE[0]).numpy(), model.encode_b(PROBE[1]).numpy()
    expected = csls_top1_reference(source, target, {i: [i] for i in range(60)})
    assert tracked[-1]["alignment_ratio/a-b"] == pytest.approx(expected, abs=1e-9)
    assert result.tracked == {"alignment_ratio/a-b": tracked[-1]["alignment_ratio/a-b"]}
    # It measures learning: the towers match held-out pairs far better than at step 0 (1/60 by chance;
    # measured 0.63 at the end).
    assert tracked[0]["alignment_ratio/a-b"] < 0.15 and tracked[-1]["alignment_ratio/a-b"] > 0.4


def test_tracking_changes_neither_the_weights_nor_early_stopping(tmp_path):
    def scripted(values):
        return lambda model: values.pop(0)

    config = CONFIG.replace(max_steps=None, epochs=6, val_every=3, early_stopping_patience=2)
    plain = _trainer(tmp_path / "plain", config=config,
                     validator=Validator(scripted([0.2, 0.5, 0.4, 0.45, 0.9]), name="score"))
    # A tracked metric that rises every time must not count as an improvement of the validator.
    rising = iter(range(100))
    tracked = _trainer(tmp_path / "tracked", config=config,
                       validator=Validator(scripted([0.2, 0.5, 0.4, 0.45, 0.9]), name="score"),
                       tracked=[TrackedMetric("rising", lambda model: float(next(rising)), every=1),
                                _pair_alignment(every=2)])
    first, second = plain.fit(), tracked.fit()
    assert (second.steps, second.stopped_early, second.best_step) == (first.steps, first.stopped_early, 6) == (12, True, 6)
    assert_bitwise_equal(weights(plain.model), weights(tracked.model))
    records = read_metrics(tmp_path / "tracked" / "metrics.jsonl")
    assert [r["rising"] for r in records if "rising" in r] == list(range(13))  # steps 0..12


class _Crash(BaseException):
    """Stands for the process dying inside a step (not an Exception: nothing may swallow it)."""


def _with_norm_tracked(trainer: Trainer) -> Trainer:
    trainer.tracking = Tracking([TrackedMetric("norm", lambda m: float(m.g.weight.norm()), every=3)])
    return trainer


def test_resumed_run_logs_each_tracked_step_once_with_the_same_values(tmp_path):
    straight = _with_norm_tracked(resume_trainer(tmp_path / "straight"))  # 32 steps, checkpoints every 5
    straight.fit()
    crashing = _with_norm_tracked(resume_trainer(tmp_path / "resumed"))
    loss = crashing.objectives[0].loss
    calls = {"n": 0}

    def dies_at_step_8(model, batch):
        calls["n"] += 1
        if calls["n"] == 8:
            raise _Crash
        return loss(model, batch)

    crashing._forward._losses["nce"] = dies_at_step_8
    with pytest.raises(_Crash):
        crashing.fit()  # the log holds the tracked step 6; the last checkpoint is step 5
    resumed = _with_norm_tracked(resume_trainer(tmp_path / "resumed"))
    resumed.fit(resume=True)
    expected = [(r["step"], r["norm"]) for r in read_metrics(tmp_path / "straight" / "metrics.jsonl") if "norm" in r]
    got = [(r["step"], r["norm"]) for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl") if "norm" in r]
    assert [step for step, _ in expected] == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 32]
    assert got == expected
    # A finished run asked to resume trains nothing and logs nothing more.
    again = _with_norm_tracked(resume_trainer(tmp_path / "resumed"))
    assert again.fit(resume=True).tracked == {}
    assert [(r["step"], r["norm"]) for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl") if "norm" in r] == got


def test_a_nan_is_reported_by_the_trainer_before_a_tracked_metric_sees_it():
    view_a, view_b = make_pairs()
    view_a[100, 0] = float("nan")  # no shuffling: batch 3 (rows 80..119)
    config = TrainConfig(epochs=2, batch_size=40, shuffle=False, log_every=100, progress=False)
    seen = []
    tracked = TrackedMetric("seen", lambda m: seen.append(1) or 0.0, every=3)
    trainer = Trainer(TwoTower(), Objective("nce", contrastive), (view_a, view_b), config, tracked=[tracked])
    with pytest.raises(NonFiniteLossError, match="at step 3 "):
        trainer.fit()
    assert len(seen) == 1  # step 0 only


@pytest.mark.parametrize("name", ["", "step", "time", "loss/x", "val/score", "note/x"])
def test_tracked_metric_names_cannot_clash_with_the_trainer_log(name):
    with pytest.raises(ConfigError, match="clashes"):
        TrackedMetric(name, lambda m: 0.0)


def test_tracked_metric_settings_are_checked():
    with pytest.raises(ConfigError, match="every must be >= 1"):
        TrackedMetric("x", lambda m: 0.0, every=0)
    with pytest.raises(ConfigError, match="distinct names"):
        _trainer(tracked=[TrackedMetric("x", lambda m: 0.0), TrackedMetric("x", lambda m: 1.0)])
    with pytest.raises(ConfigError, match="no word pairs"):
        alignment_ratio_metric(lambda m: m, lambda m: m, {})
