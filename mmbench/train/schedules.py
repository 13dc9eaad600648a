"""Learning-rate schedules as pure functions of the step, so resuming needs no scheduler state."""

from __future__ import annotations

import math

from .config import ScheduleName


def lr_factor(
    schedule: ScheduleName,
    step: int,
    *,
    total_steps: int,
    steps_per_epoch: int,
    step_epochs: int = 15,
    warmup_steps: int = 0,
) -> float:
    """Multiplier of the base learning rate for the update made at 0-based ``step``.

    - ``constant``: 1.
    - ``step``: divided by 10 every ``step_epochs`` epochs (``0.1 ** (epoch // step_epochs)``).
    - ``warmup``: linear ramp ``(step + 1) / warmup_steps`` up to 1, then constant.
    - ``cosine``: half a cosine from 1 at step 0 down to 0 after ``total_steps``.
    - ``warmup-cosine``: the ramp, then the cosine over the remaining ``total_steps - warmup_steps``.
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
    raise ValueError(f"unknown schedule {schedule!r}")


def _half_cosine(step: int, span: int) -> float:
    if span <= 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, span) / span))
