"""Checkpoints are safetensors + JSON only, never unpickled, and damage gives one clean error line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from trainer_toy import TwoTower, assert_bitwise_equal, contrastive, make_pairs, resume_trainer, weights

from mmbench.errors import ConfigError
from mmbench.train import CheckpointError, Objective, TrainConfig, Trainer
from mmbench.train.checkpoint import load_named


@pytest.fixture
def finished_run(tmp_path) -> Path:
    resume_trainer(tmp_path, epochs=1).fit()  # 8 steps: checkpoints at 5 and (final) 8
    return tmp_path


def _forbid_unpickling(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("checkpoint loading must not unpickle")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)


def test_trainer_checkpoint_files_are_safetensors_and_json_only(finished_run, monkeypatch):
    files = sorted(p.relative_to(finished_run).as_posix() for p in finished_run.rglob("*") if p.is_file())
    assert files == ["checkpoints/latest.json", "checkpoints/step-00000008/state.json",
                     "checkpoints/step-00000008/tensors.safetensors", "metrics.jsonl"]  # keep_checkpoints=1
    for path in finished_run.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"
    checkpoint = load_named(finished_run / "checkpoints")
    names = set(checkpoint.tensors)
    assert {"model/g.weight", "optim/nce/0/exp_avg", "optim/nce/0/step", "rng/0/torch"} <= names
    assert checkpoint.state["step"] == 8 and checkpoint.state["optimizers"]["align"]["param_groups"][0]["lr"] == 0.05
    # Resuming (into a longer run) works with every unpickling entry point disabled.
    _forbid_unpickling(monkeypatch)
    resumed = resume_trainer(finished_run, epochs=2)
    assert resumed.fit(resume=True).steps == 16


def _damage_state(run: Path) -> str:
    state = run / "checkpoints" / "step-00000008" / "state.json"
    state.write_text(state.read_text()[:200])
    return "corrupt checkpoint state"


def _flip_tensor_byte(run: Path) -> str:
    tensors = run / "checkpoints" / "step-00000008" / "tensors.safetensors"
    payload = bytearray(tensors.read_bytes())
    payload[-5] ^= 0x01
    tensors.write_bytes(bytes(payload))
    return "SHA-256 does not match"


def _garbage_safetensors_with_matching_hash(run: Path) -> str:
    import hashlib

    directory = run / "checkpoints" / "step-00000008"
    payload = b"\xff" * 8 + b"not a header"
    (directory / "tensors.safetensors").write_bytes(payload)
    state = json.loads((directory / "state.json").read_text())
    state["tensors_sha256"] = hashlib.sha256(payload).hexdigest()
    (directory / "state.json").write_text(json.dumps(state))
    return "unreadable safetensors"


def _remove_tensors(run: Path) -> str:
    (run / "checkpoints" / "step-00000008" / "tensors.safetensors").unlink()
    return "tensors file is missing"


def _escape_pointer(run: Path) -> str:
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"name": "../../elsewhere"}))
    return "invalid checkpoint name"


def _drop_optimizer_entry(run: Path) -> str:
    state_path = run / "checkpoints" / "step-00000008" / "state.json"
    state = json.loads(state_path.read_text())
    del state["optimizers"]["align"]
    state_path.write_text(json.dumps(state))
    return "missing field 'optimizers.align'"


@pytest.mark.parametrize("damage", [_damage_state, _flip_tensor_byte, _garbage_safetensors_with_matching_hash,
                                    _remove_tensors, _escape_pointer, _drop_optimizer_entry])
def test_trainer_checkpoint_damage_is_a_clean_error(finished_run, monkeypatch, damage):
    expected = damage(finished_run)
    _forbid_unpickling(monkeypatch)
    with pytest.raises(CheckpointError) as caught:
        resume_trainer(finished_run, epochs=2).fit(resume=True)
    message = str(caught.value)
    assert expected in message and "\n" not in message


def test_trainer_checkpoint_refuses_other_model_or_other_run(finished_run):
    config = TrainConfig(epochs=2, batch_size=32, seed=3, progress=False)
    wider = Trainer(TwoTower(out=9), Objective("nce", contrastive), make_pairs(), config, run_dir=finished_run)
    with pytest.raises(CheckpointError, match="weights do not fit the model"):
        wider.fit(resume=True)
    other_seed = Trainer(TwoTower(), Objective("nce", contrastive), make_pairs(), config.replace(seed=4),
                         run_dir=finished_run)
    with pytest.raises(CheckpointError, match="seed=3, now 4"):
        other_seed.fit(resume=True)
    with pytest.raises(ConfigError, match="already holds a training run"):
        resume_trainer(finished_run, epochs=2).fit()


class Tied(torch.nn.Module):
    """Input and output projections share one weight, as tied embeddings do."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(12, 12, bias=False)
        self.out = torch.nn.Linear(12, 12, bias=False)
        self.out.weight = self.inp.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.inp(x)))


def test_trainer_checkpoint_tied_weights_round_trip(tmp_path):
    view_a, view_b = make_pairs()

    def loss(model, batch):
        return torch.nn.functional.mse_loss(model(batch[0]), batch[1])

    def run(max_steps: int, resume: bool) -> Tied:
        torch.manual_seed(0)
        model = Tied()
        config = TrainConfig(max_steps=max_steps, batch_size=40, progress=False)
        Trainer(model, Objective("fit", loss), (view_a, view_b), config, run_dir=tmp_path).fit(resume=resume)
        return model

    run(4, resume=False)
    resumed = run(9, resume=True)
    assert resumed.out.weight is resumed.inp.weight
    torch.manual_seed(0)
    reference = Tied()
    Trainer(reference, Objective("fit", loss), (view_a, view_b),
            TrainConfig(max_steps=9, batch_size=40, progress=False)).fit()
    assert_bitwise_equal(weights(resumed), weights(reference))


# -- state.json must not point the loader at a file outside the checkpoint directory ----------------------


def _point_tensors_file(run: Path, name) -> Path:
    """Set ``tensors_file`` in the latest checkpoint's state; return the checkpoint directory."""
    directory = run / "checkpoints" / "step-00000008"
    state = json.loads((directory / "state.json").read_text())
    state["tensors_file"] = name
    (directory / "state.json").write_text(json.dumps(state))
    return directory


def _outside_copy(run: Path, target: Path) -> Path:
    """A byte-identical (so hash-matching) copy of the tensors outside the checkpoint directory."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((run / "checkpoints" / "step-00000008" / "tensors.safetensors").read_bytes())
    return target


@pytest.mark.parametrize(
    ("name", "why"),
    [("../x.safetensors", "contains a path separator"), ("../../x.safetensors", "contains a path separator"),
     ("ABSOLUTE", "is an absolute path"), ("..\\x.safetensors", "contains a path separator"),
     ("C:x.safetensors", "is an absolute path"), ("sub/tensors.safetensors", "contains a path separator"),
     ("..", "is not a file name"), ("", "is not a file name"), (7, "is not a file name"),
     ("tensors.safetensors\x00", "is not a file name")],
)
def test_trainer_checkpoint_refuses_tensors_file_outside_its_directory(finished_run, monkeypatch, name, why):
    # Every target exists and matches the recorded SHA-256: only the path check stands in the way.
    _outside_copy(finished_run, finished_run / "checkpoints" / "x.safetensors")
    _outside_copy(finished_run, finished_run / "x.safetensors")
    _outside_copy(finished_run, finished_run / "checkpoints" / "step-00000008" / "sub" / "tensors.safetensors")
    if name == "ABSOLUTE":
        name = str(_outside_copy(finished_run, finished_run / "elsewhere" / "x.safetensors"))
    _point_tensors_file(finished_run, name)
    _forbid_unpickling(monkeypatch)
    with pytest.raises(CheckpointError) as caught:
        resume_trainer(finished_run, epochs=2).fit(resume=True)
    message = str(caught.value)
    assert f"tensors_file {name!r} {why}" in message and "state.json" in message and "\n" not in message


@pytest.mark.parametrize("dangling", [False, True])
def test_trainer_checkpoint_refuses_a_symlink_escaping_its_directory(finished_run, tmp_path_factory, dangling):
    outside = tmp_path_factory.mktemp("outside") / "x.safetensors"
    _outside_copy(finished_run, outside)
    tensors = finished_run / "checkpoints" / "step-00000008" / "tensors.safetensors"
    tensors.unlink()
    if dangling:
        outside.unlink()
    tensors.symlink_to(outside)
    with pytest.raises(CheckpointError, match="'tensors.safetensors' resolves outside the checkpoint directory"):
        load_named(finished_run / "checkpoints")
    (finished_run / "checkpoints" / "step-00000008" / "evil.safetensors").symlink_to(tensors)  # a chain
    _point_tensors_file(finished_run, "evil.safetensors")
    with pytest.raises(CheckpointError, match="'evil.safetensors' resolves outside the checkpoint directory"):
        load_named(finished_run / "checkpoints")


def test_trainer_checkpoint_accepts_a_symlink_inside_its_directory(finished_run):
    directory = finished_run / "checkpoints" / "step-00000008"
    (directory / "tensors.safetensors").rename(directory / "real.safetensors")
    (directory / "tensors.safetensors").symlink_to("real.safetensors")
    assert load_named(finished_run / "checkpoints").state["step"] == 8
    _point_tensors_file(finished_run, "real.safetensors")
    assert load_named(finished_run / "checkpoints").state["step"] == 8
    (directory / "real.safetensors").unlink()
    (directory / "real.safetensors").mkdir()  # not a file: a clean error, not an OSError
    with pytest.raises(CheckpointError, match="cannot read checkpoint tensors"):
        load_named(finished_run / "checkpoints")
