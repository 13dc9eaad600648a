"""What a run reports: the JSONL metrics log, the progress bar, optional TensorBoard."""

from __future__ import annotations

import sys

import pytest
from trainer_toy import TwoTower, make_pairs, two_objectives

from mmbench.errors import ConfigError
from mmbench.train import TrainConfig, Trainer, read_metrics


def test_trainer_metrics_log_and_progress_bar(tmp_path, capsys):
    config = TrainConfig(epochs=2, batch_size=40, log_every=2, progress=True)  # 6 steps per epoch
    result = Trainer(TwoTower(), two_objectives(align_every=3), make_pairs(), config, run_dir=tmp_path).fit()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [2, 4, 6, 8, 10, 12]
    assert [r["epoch"] for r in records] == [0, 0, 0, 1, 1, 1]
    times = [r["time"] for r in records]
    assert times == sorted(times) and times[0] > 0
    # align runs on steps 3, 6, 9, 12: it appears only in records whose window contains one of them.
    assert [("loss/align" in r) for r in records] == [False, True, True, False, True, True]
    assert all("loss/nce" in r and r["lr/nce"] == 1e-3 for r in records)
    assert result.losses == {k[5:]: v for k, v in records[-1].items() if k.startswith("loss/")}
    assert "12/12" in capsys.readouterr().out  # the rich bar reached the end


def test_trainer_tensorboard_is_optional(tmp_path, monkeypatch):
    config = TrainConfig(epochs=1, batch_size=40, progress=False, tensorboard=True)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match="needs the tensorboard package"):
        Trainer(TwoTower(), two_objectives(), make_pairs(), config, run_dir=tmp_path / "missing").fit()
    monkeypatch.undo()
    pytest.importorskip("tensorboard")
    Trainer(TwoTower(), two_objectives(), make_pairs(), config, run_dir=tmp_path / "present").fit()
    assert list((tmp_path / "present" / "tensorboard").glob("events.out.tfevents.*"))
