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


def test_trainer_steps_nest_in_the_runs_display_and_estimate_the_time(tmp_path):
    """Inside the CLI's live display the trainer adds one task to it (no second display), prints one line
    with steps, epochs and the time left, and removes its task when done."""
    import io

    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import TextColumn

    from mmbench.train.monitor import Progress, nested_display

    console = Console(file=io.StringIO(), width=80, force_terminal=False)
    display = RichProgress(TextColumn("{task.description}"), TextColumn("{task.fields[info]}"), console=console)
    harness = display.add_task("scoring", total=3, info="")
    with display, nested_display(display):
        progress = Progress(1150, 0, enabled=True, steps_per_epoch=230)
        progress.ESTIMATE_AFTER_STEPS = 2
        assert len(display.tasks) == 2  # nested in the harness's display
        progress.update(1)
        progress.update(2, "nce 0.5000")
        assert "nce 0.5000" in display.tasks[1].fields["info"]
        progress.close()
        assert [t.id for t in display.tasks] == [harness]
    assert progress.estimate_line.startswith("training: 1150 steps, 5 epochs of 230 steps; about ")
    assert progress.estimate_line in console.file.getvalue()
