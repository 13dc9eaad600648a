"""Tracked metrics: numbers watched during training that never steer it.

A ``TrackedMetric`` is ``metric(module) -> float`` computed every ``every`` optimizer steps, at step 0 of a
fresh run (the untrained model) and after the last step, and written to ``metrics.jsonl`` under its
``name`` (e.g. ``alignment_ratio/en-de``). Unlike a ``Validator`` it drives neither early stopping nor the
best checkpoint. Like one, it is called on every rank in eval mode under ``torch.no_grad`` (so it may use
data-parallel ``encode``); rank 0's value is logged. A non-finite value is logged as ``null``.

:func:`alignment_ratio_metric` builds the AME alignment ratio (Mohammadshahi et al. 2019) from two
functions that read the current source and target word vectors off the module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmbench.errors import ConfigError

_RESERVED = ("step", "epoch", "time")
_TRAINER_PREFIXES = ("loss/", "lr/", "val/", "note/")


@dataclass
class TrackedMetric:
    """``metric(module) -> float`` logged as ``name`` every ``every`` steps; ``note`` (e.g. which
    dictionary it uses) is logged once, as ``note/<name>`` beside the step-0 value."""

    name: str
    metric: Callable[[torch.nn.Module], float]
    every: int = 100
    note: str = ""

    def __post_init__(self) -> None:
        if not self.name or self.name in _RESERVED or self.name.startswith(_TRAINER_PREFIXES):
            raise ConfigError(f"tracked metric name {self.name!r} is empty or clashes with the trainer's own "
                              f"log keys ({', '.join(_RESERVED)}, {', '.join(p + '...' for p in _TRAINER_PREFIXES)})")
        if self.every < 1:
            raise ConfigError(f"tracked metric {self.name!r}: every must be >= 1, got {self.every}")


class Tracking:
    """The tracked metrics of one run: which are due at a step, and their values as a log record."""

    def __init__(self, metrics: Iterable[TrackedMetric] = ()) -> None:
        self.metrics = list(metrics)
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ConfigError(f"tracked metrics need distinct names, got {names}")
        self.last: dict[str, float] = {}
        self.last_step: int | None = None

    def due(self, step: int) -> list[TrackedMetric]:
        return [m for m in self.metrics if step % m.every == 0]

    def evaluate(self, model: torch.nn.Module, step: int, *, every_metric: bool = False,
                 notes: bool = False) -> dict[str, Any]:
        """Values of the metrics due at ``step`` (all of them with ``every_metric``), model left in train mode."""
        chosen = self.metrics if every_metric else self.due(step)
        record: dict[str, Any] = {}
        if not chosen:
            return record
        model.eval()
        try:
            with torch.no_grad():
                for tracked in chosen:
                    value = float(tracked.metric(model))
                    record[tracked.name] = value
                    if notes and tracked.note:
                        record[f"note/{tracked.name}"] = tracked.note
        finally:
            model.train()
        self.last.update({m.name: record[m.name] for m in chosen if math.isfinite(record[m.name])})
        self.last_step = step
        return record


def alignment_ratio_metric(
    source_vectors: Callable[[torch.nn.Module], torch.Tensor],
    target_vectors: Callable[[torch.nn.Module], torch.Tensor],
    queries: Mapping[int, Sequence[int]],
    *,
    method: str = "csls",
    csls_k: int = 10,
) -> Callable[[torch.nn.Module], float]:
    """``module -> alignment ratio``: share (0-1) of the ``queries`` source rows whose nearest target row
    (CSLS by default, over every target row) is one of their gold rows; see ``mmbench.metrics.bli``."""
    from mmbench.metrics.bli import alignment_ratio

    if not queries:
        raise ConfigError("alignment ratio: the lexicon has no word pairs")

    def metric(module: torch.nn.Module) -> float:
        source = source_vectors(module).detach().float()
        target = target_vectors(module).detach().float()
        return alignment_ratio(source, target, queries, method=method, csls_k=csls_k)  # type: ignore[arg-type]

    return metric
