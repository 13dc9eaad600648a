"""Train or load: the lifecycle every trainable model plugin shares.

A trainable plugin subclasses :class:`TrainedModel` and writes only what is its own::

    class MyModel(TrainedModel):
        state_format, state_file = "mmbench-mymodel", "mymodel.json"
        load_checks = ("dim", "hidden")           # config fields a loaded checkpoint must match

        def training_data(self, ctx):             # -> (state, data)
            ...                                   # vocabulary, shapes (JSON) + what fit() needs
        def build_net(self, state, *, training=False):
            ...                                   # the torch module for a saved state
        def fit(self, net, data, run):
            Trainer(net, objectives, ..., run.config, run_dir=run.dir, ...).fit(resume=True)

:meth:`TrainedModel.prepare` then does the rest the same way for every model: under ``mmbench run`` it
trains in ``<work_dir>/train/`` (the trainer's checkpoints and metrics, and the state file: all that
``mmbench eval`` needs besides the weights), resuming a killed run exactly; a finished run is loaded, not
retrained; under ``mmbench eval`` or ``--checkpoint`` it only loads. The state file pins the training
data and vocabulary: a run directory written for other data is refused rather than silently mixed.
The seed is set right before :meth:`~TrainedModel.build_net`, so initial weights follow the run's seed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import DataError, MMBenchError
from ..models import Incompatible, Model, RunContext
from .config import TrainConfig
from .errors import CheckpointError

RUN_DIR = "train"  # under the work dir: checkpoints/, metrics.jsonl, the state file


@dataclass(frozen=True)
class TrainingRun:
    """What :meth:`TrainedModel.fit` gets besides the network and its data."""

    dir: Path  # <work_dir>/train: pass as the Trainer's run_dir
    config: TrainConfig  # the model's train config with this run's seed and device
    ctx: RunContext


class TrainedModel(Model):
    """A model trained by the shared trainer, or loaded from what a previous run saved.

    After :meth:`prepare`, ``self.net`` is the trained network in eval mode on ``self.device`` and
    ``self.state`` the saved state (``format``/``version`` plus what :meth:`training_data` returned).
    The model's config must have a ``train`` field (a :class:`~mmbench.train.TrainConfig`).
    """

    state_format: ClassVar[str] = ""
    state_version: ClassVar[int] = 1
    state_file: ClassVar[str] = ""
    load_checks: ClassVar[tuple[str, ...]] = ()

    net: Any = None
    state: dict[str, Any]
    device: Any = None

    # -- what a plugin writes --------------------------------------------------------------------
    def training_data(self, ctx: RunContext) -> tuple[dict[str, Any], Any]:
        """``(state, data)``: the JSON-able state the network and the embed methods need, and the data
        :meth:`fit` trains on. Runs before the seed is set: draw nothing from torch's generator here."""
        raise NotImplementedError

    def build_net(self, state: dict[str, Any], *, training: bool = False) -> Any:
        """The network for a saved ``state``; ``training=True`` for the one :meth:`fit` will train (it may
        carry training-only buffers: the weights are copied into a plain one afterwards)."""
        raise NotImplementedError

    def fit(self, net: Any, data: Any, run: TrainingRun) -> None:
        """Train ``net`` with :class:`mmbench.train.Trainer` (``run_dir=run.dir``, ``.fit(resume=True)``)."""
        raise NotImplementedError

    def ready(self) -> None:
        """Called once ``self.net`` and ``self.state`` are set (trained or loaded): build lookups here."""

    # -- the lifecycle -----------------------------------------------------------------------------
    def prepare(self, ctx: RunContext) -> None:
        import torch

        from .checkpoint import load_model_weights, load_named, write_json_atomic
        from .distributed import is_main_process
        from .rng import seed_everything

        self.device = torch.device(ctx.device)
        if not ctx.train or ctx.checkpoint is not None:
            self.load(Path(ctx.checkpoint) if ctx.checkpoint is not None else ctx.work_dir)
            return
        run = TrainingRun(ctx.work_dir / RUN_DIR,
                          dataclasses.replace(self.config.train, seed=ctx.seed, device=ctx.device), ctx)
        saved, data = self.training_data(ctx)
        state = {"format": self.state_format, "version": self.state_version, **saved}
        state_path = run.dir / self.state_file
        if state_path.exists() and self.read_state(state_path) != json.loads(json.dumps(state)):
            raise CheckpointError(f"{state_path}: saved for other training data or vocabulary; delete {run.dir} "
                                  f"to train afresh")
        if is_main_process():
            run.dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(state_path, state)
        seed_everything(run.config.seed)
        net = self.build_net(state, training=True)
        self.fit(net, data, run)
        trained = self.build_net(state)
        trained.load_state_dict(net.state_dict())
        # Also when fit() found the run finished and restored only its last step.
        best = load_named(run.dir / "checkpoints", "best") if run.config.restore_best else None
        if best is not None:
            load_model_weights(trained, best)
        self._set(trained, state)

    def load(self, path: Path) -> None:
        """Load from a work dir, a run dir, its ``checkpoints/`` dir or one checkpoint directory."""
        import torch

        from .checkpoint import load_checkpoint, load_model_weights, load_named

        if self.device is None:
            self.device = torch.device("cpu")
        candidates = [path / RUN_DIR / "checkpoints", path / "checkpoints", path]
        directory = next((c for c in candidates if (c / "latest.json").is_file()), None)
        if directory is not None:
            checkpoint = load_named(directory, "best") or load_named(directory, "latest")
        elif (path / "state.json").is_file():
            directory, checkpoint = path.parent, load_checkpoint(path)
        else:
            raise MMBenchError(f"{self.name}: no trained checkpoint in {path}: train it first with `mmbench run` "
                               f"(same --set options and seed) or pass --checkpoint")
        state_path = directory.parent / self.state_file
        if not state_path.is_file():
            raise MMBenchError(f"{self.name}: {state_path} is missing: the checkpoint cannot be used without it")
        state = self.read_state(state_path)
        wanted = {key: _plain(getattr(self.config, key)) for key in self.load_checks}
        if {key: state.get(key) for key in wanted} != wanted:
            raise CheckpointError(f"{state_path}: trained with {({key: state.get(key) for key in wanted})}, "
                                  f"the config asks for {wanted}")
        net = self.build_net(state)
        load_model_weights(net, checkpoint)
        self._set(net, state)

    def _set(self, net: Any, state: dict[str, Any]) -> None:
        self.net, self.state = net.to(self.device).eval(), state
        self.ready()

    def read_state(self, path: Path) -> dict[str, Any]:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path}: unreadable {self.name} state ({exc})") from None
        if (not isinstance(state, dict) or state.get("format") != self.state_format
                or state.get("version") != self.state_version):
            raise CheckpointError(f"{path}: not a {self.name} state file ({self.state_format} "
                                  f"version {self.state_version})")
        return state

    # -- images --------------------------------------------------------------------------------------
    def image_encoder(self) -> Any:
        """The module mapping image features to the joint space (``net.image`` unless overridden)."""
        return self.net.image

    def image_space(self, source: str) -> tuple[Any, int]:
        """The module embedding images of feature space ``source`` and its input width. The state says
        which feature space the model was trained on (``feature_source``, ``feature_dim``) and whether it
        learnt free image vectors instead (``image_encoder == "cooc"``: it embeds no image features then)."""
        if self.state.get("image_encoder") == "cooc":
            raise Incompatible(f"{self.name} is a co-occurrence model (a free vector per training image): it "
                               f"knows only its training images, not image features")
        if source != self.state.get("feature_source"):
            raise Incompatible(f"{self.name} was trained on {self.state.get('feature_source')} features, "
                               f"not {source}")
        return self.image_encoder(), int(self.state["feature_dim"])

    def embed_images(self, features: np.ndarray, *, source: str) -> np.ndarray:
        """Image features of space ``source`` through the encoder :meth:`image_space` picks."""
        import torch

        from .encoding import encode

        encoder, feature_dim = self.image_space(source)
        inputs = torch.from_numpy(np.array(features, dtype=np.float32))  # a copy: features may be read-only
        if inputs.dim() != 2 or inputs.shape[1] != feature_dim:
            raise DataError(f"{self.name}: {source} features must be (n, {feature_dim}), "
                            f"got {tuple(inputs.shape)}")
        if len(inputs) == 0:
            return np.zeros((0, self.embedding_dim()), dtype=np.float32)
        return encode(encoder, inputs, 4096, self.device).float().numpy()

    def embedding_dim(self) -> int:
        """Width of the joint space (texts and images)."""
        return int(self.state["hidden"])


def _plain(value: Any) -> Any:
    """A config value as it reads back from the JSON state (tuples become lists)."""
    return json.loads(json.dumps(value))
