"""A run killed anywhere (inside a step, or while writing a checkpoint) and resumed ends bitwise equal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from trainer_toy import assert_bitwise_equal, resume_trainer, weights

from mmbench.train import checkpoint, read_metrics

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference")
    trainer = resume_trainer(run_dir)
    result = trainer.fit()
    return weights(trainer.model), result, run_dir


class _Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the trainer can swallow it."""


def _check_resumes_identically(run_dir: Path, reference_dir: Path, reference_weights) -> None:
    trainer = resume_trainer(run_dir)
    result = trainer.fit(resume=True)
    assert result.steps == 32
    assert_bitwise_equal(weights(trainer.model), reference_weights)
    # The log is continuous: the dead run's records after its checkpoint were dropped, none repeat.
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 33))
    reference_records = read_metrics(reference_dir / "metrics.jsonl")
    assert [r["loss/nce"] for r in records] == [r["loss/nce"] for r in reference_records]
    assert [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_trainer_resume_after_sigkill_is_bitwise_identical(uninterrupted, tmp_path):
    reference_weights, reference_result, reference_dir = uninterrupted
    assert reference_result.steps == 32
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.run([sys.executable, str(HERE / "resume_worker.py"), str(tmp_path), "13"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode == -signal.SIGKILL, f"worker was not killed:\n{process.stdout}{process.stderr}"
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["step"] == 10
    _check_resumes_identically(tmp_path, reference_dir, reference_weights)


@pytest.mark.parametrize(("moment", "name", "last_good"), [
    ("before-rename", "step-00000020", 15),  # checkpoint files written, not yet published
    ("before-pointer", "step-00000025", 20),  # published directory, latest.json not yet moved
])
def test_trainer_crash_while_writing_checkpoint_keeps_previous(uninterrupted, tmp_path, monkeypatch,
                                                                moment, name, last_good):
    real_replace = os.replace

    def crashing_replace(source, target):
        if moment == "before-rename" and os.path.basename(target) == name:
            raise _Crash
        real_replace(source, target)
        if moment == "before-pointer" and os.path.basename(target) == name:
            raise _Crash

    monkeypatch.setattr(checkpoint.os, "replace", crashing_replace)
    with pytest.raises(_Crash):
        resume_trainer(tmp_path).fit()
    monkeypatch.undo()
    assert json.loads((tmp_path / "checkpoints" / "latest.json").read_text())["step"] == last_good
    _check_resumes_identically(tmp_path, uninterrupted[2], uninterrupted[0])


def test_trainer_resume_after_exception_and_finished_run_is_a_no_op(uninterrupted, tmp_path):
    reference_weights, _, _ = uninterrupted
    trainer = resume_trainer(tmp_path, epochs=2)  # stops at step 16, its final checkpoint
    assert trainer.fit().steps == 16
    # A longer run may extend it (epochs are not part of the data order): same as never stopping.
    longer = resume_trainer(tmp_path, epochs=4)
    assert longer.fit(resume=True).steps == 32
    assert_bitwise_equal(weights(longer.model), reference_weights)
    again = resume_trainer(tmp_path, epochs=4)
    result = again.fit(resume=True)
    assert result.steps == 32 and result.losses == {}
    assert_bitwise_equal(weights(again.model), reference_weights)


def test_trainer_resume_without_checkpoint_starts_fresh(uninterrupted, tmp_path):
    trainer = resume_trainer(tmp_path)
    trainer.fit(resume=True)
    assert_bitwise_equal(weights(trainer.model), uninterrupted[0])
    assert torch.isfinite(torch.cat([w.flatten() for w in weights(trainer.model).values()])).all()
