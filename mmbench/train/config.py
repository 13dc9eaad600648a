"""What a plugin hands the trainer: a typed ``TrainConfig``, its ``Objective``s and an optional ``Validator``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mmbench.errors import ConfigError
from mmbench.models import added_field

if TYPE_CHECKING:  # no torch at import: a plugin's config (which embeds TrainConfig) is read at registration
    import torch

# lazy-adam: Adam on the touched rows of sparse-gradient tables only (mmbench.train.lazy_adam)
OptimizerName = Literal["adam", "adamw", "adamax", "sgd", "lazy-adam"]
ScheduleName = Literal["constant", "step", "warmup", "cosine", "warmup-cosine", "multistep", "warmup-multistep"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; plugins embed it in their own config dataclass.

    ``max_steps`` overrides ``epochs`` when set. ``batch_size`` is the *global* batch: under torchrun each of
    ``world_size`` ranks gets ``batch_size / world_size`` examples of it. Intervals (``val_every``,
    ``checkpoint_every``, ``log_every``) count optimizer steps.
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 128
    shuffle: bool = True
    drop_last: bool = False  # True drops each epoch's last, smaller batch (a different one each epoch)
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    schedule: ScheduleName = "constant"
    step_epochs: int = 15  # "step": lr / 10 every step_epochs epochs
    warmup_steps: int = 0  # "warmup", "warmup-cosine", "warmup-multistep": ramp over this many steps
    grad_clip: float | None = 2.0  # max global L2 norm of each objective's gradients; None: no clipping
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: bf16 (or fp16) on CUDA, off on CPU
    compile: bool = False  # torch.compile the loss computation
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms(True)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    val_every: int | None = None  # None with a validator: validate after every epoch
    early_stopping_patience: int | None = None  # validations without improvement before stopping
    restore_best: bool = True  # with a validator: end with the best-validated weights, not the last
    checkpoint_every: int | None = None  # needs a run directory; a final checkpoint is always written there
    keep_checkpoints: int = 2  # periodic checkpoints kept besides the best one
    log_every: int = 10  # steps between metric records (and NaN checks, which sync the device)
    # Rich progress bar on the main process. Display only: hashed as its default, so a run with
    # --set train.progress=false is the same model (and finds the same checkpoints and records).
    progress: bool = field(default=True, metadata={"hash_as_default": True})
    tensorboard: bool = False  # also write TensorBoard events (needs the tensorboard package)
    find_unused_parameters: bool = False  # DistributedDataParallel: an objective leaves some parameters unused
    # "multistep": lr x decay_rate at each of decay_steps (0-based optimizer steps); "warmup-multistep": first
    # a linear ramp of the factor from warmup_from to warmup_to over warmup_steps steps, then warmup_to
    # with the same decay (LIWE's Adamax schedule: 0.5 -> 2 over 4000 steps, x0.25 at 10k, 12k, ... 18k).
    decay_steps: tuple[int, ...] = added_field(())
    decay_rate: float = added_field(0.1)
    warmup_from: float = added_field(0.5)
    warmup_to: float = added_field(2.0)

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "step_epochs": self.step_epochs,
                    "log_every": self.log_every, "keep_checkpoints": self.keep_checkpoints,
                    "max_steps": self.max_steps, "val_every": self.val_every,
                    "checkpoint_every": self.checkpoint_every,
                    "early_stopping_patience": self.early_stopping_patience}
        for name, value in positive.items():
            if value is not None and value < 1:
                raise ConfigError(f"train config: {name} must be >= 1, got {value}")
        if not self.lr > 0:
            raise ConfigError(f"train config: lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("train config: weight_decay and warmup_steps must be >= 0")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"train config: grad_clip must be > 0 or None, got {self.grad_clip}")
        object.__setattr__(self, "decay_steps", tuple(int(s) for s in self.decay_steps))
        if any(b <= a for a, b in zip(self.decay_steps, self.decay_steps[1:])) or any(
                s < 1 for s in self.decay_steps):
            raise ConfigError(f"train config: decay_steps must be increasing steps >= 1, got {self.decay_steps}")
        if not (0 < self.decay_rate <= 1 and self.warmup_from > 0 and self.warmup_to > 0):
            raise ConfigError("train config: decay_rate must be in (0, 1], warmup_from and warmup_to > 0")
        if self.schedule in ("warmup", "warmup-cosine", "warmup-multistep") and self.warmup_steps == 0:
            raise ConfigError(f"train config: schedule {self.schedule!r} needs warmup_steps >= 1")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"train config: device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


LossFn = Callable[["torch.nn.Module", Any], "torch.Tensor"]
ParamSelector = Callable[[str], bool] | Iterable["torch.nn.Parameter"] | None


@dataclass
class Objective:
    """One loss with its own optimizer: ``loss(module, batch)`` returns a scalar, the mean over the batch.

    ``params`` picks the parameters it updates: ``None`` (all trainable ones), a predicate on the parameter
    name (``lambda name: name.startswith("align.")``) or the parameters themselves. The objective runs on
    steps ``every, 2*every, ...`` (1-based); ``None`` optimizer settings fall back to the ``TrainConfig``.
    Under several objectives each one runs its own forward, backward and optimizer step, in list order.
    """

    name: str
    loss: LossFn
    params: ParamSelector = None
    every: int = 1
    optimizer: OptimizerName | None = None
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"objective name must be letters, digits, '_' or '-', got {self.name!r}")
        if self.every < 1:
            raise ConfigError(f"objective {self.name!r}: every must be >= 1, got {self.every}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"objective {self.name!r}: lr must be > 0, got {self.lr}")

    def runs_at(self, step: int) -> bool:
        """Whether this objective updates at the ``step``-th optimizer step (1-based)."""
        return step % self.every == 0


@dataclass
class Validator:
    """``metric(module) -> float`` computed on held-out data; drives early stopping and the best checkpoint.

    It is called on every rank (so it may use data-parallel ``encode``) in eval mode; rank 0's value counts.
    """

    metric: Callable[[torch.nn.Module], float]
    name: str = "val"
    higher_is_better: bool = True

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best
