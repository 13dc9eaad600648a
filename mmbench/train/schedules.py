"""Learning-rate schedules as pure functions of the step, so resuming needs no scheduler state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config import ScheduleName

if TYPE_CHECKING:
    from .config import TrainConfig


def lr_factor(
    schedule: ScheduleName,
    step: int,
    *,
    total_steps: int,
    steps_per_epoch: int,
    step_epochs: int = 15,
    warmup_steps: int = 0,
    decay_steps: Sequence[int] | None = None,
    decay_rate: float = 0.1,
    warmup_from: float = 0.5,
    warmup_to: float = 2.0,
) -> float:
    """Multiplier of the base learning rate for the update made at 0-based ``step``.

    - ``constant``: 1.
    - ``step``: divided by 10 every ``step_epochs`` epochs (``0.1 ** (epoch // step_epochs)``).
    - ``warmup``: linear ramp ``(step + 1) / warmup_steps`` up to 1, then constant.
    - ``cosine``: half a cosine from 1 at step 0 down to 0 after ``total_steps``.
    - ``warmup-cosine``: the ramp, then the cosine over the remaining ``total_steps - warmup_steps``.
    - ``multistep``: ``decay_rate ** (number of decay_steps <= step)`` (torch's ``MultiStepLR``).
    - ``warmup-multistep``: ``warmup_from + (warmup_to - warmup_from) * step / (warmup_steps - 1)`` for the
      first ``warmup_steps`` steps (``torch.linspace(warmup_from, warmup_to, warmup_steps)[step]``), then
      ``warmup_to * decay_rate ** (number of decay_steps <= step)``: the Adamax schedule of LIWE's code
      (``BanOptimizer``: 0.5 -> 2 over 4000 steps, x0.25 at 10k, 12k, 14k, 16k, 18k).

    The multistep schedules need ``decay_steps`` passed explicitly (``()`` for none), so a caller that
    forgets them fails instead of silently training without decay.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return 0.1 ** (step // steps_per_epoch // step_epochs)
    if schedule in ("warmup", "warmup-cosine") and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "warmup":
        return 1.0
    if schedule == "cosine":
        return _half_cosine(step, total_steps)
    if schedule == "warmup-cosine":
        return _half_cosine(step - warmup_steps, total_steps - warmup_steps)
    if schedule in ("multistep", "warmup-multistep"):
        if decay_steps is None:
            raise ValueError(f"schedule {schedule!r} needs decay_steps (use schedule_factor(config, ...))")
        decayed = decay_rate ** sum(1 for s in decay_steps if s <= step)
        if schedule == "multistep":
            return decayed
        if step < warmup_steps:
            return warmup_from + (warmup_to - warmup_from) * step / max(1, warmup_steps - 1)
        return warmup_to * decayed
    raise ValueError(f"unknown schedule {schedule!r}")


def schedule_factor(config: TrainConfig, step: int, *, total_steps: int, steps_per_epoch: int) -> float:
    """:func:`lr_factor` with every schedule setting taken from ``config`` (what the trainer applies)."""
    return lr_factor(config.schedule, step, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                     step_epochs=config.step_epochs, warmup_steps=config.warmup_steps,
                     decay_steps=config.decay_steps, decay_rate=config.decay_rate,
                     warmup_from=config.warmup_from, warmup_to=config.warmup_to)


def _half_cosine(step: int, span: int) -> float:
    if span <= 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, span) / span))
