"""Task kinds: generic code that runs every card of one kind (MTEB-style).

A kind declares the model capabilities it needs and its scores (with direction); ``evaluate`` turns one
(model, card, subset) into a :class:`Score`. Kinds are registered through the ``register_task_kinds`` hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..cards import Subset, TaskCard
from ..errors import MMBenchError
from ..models import Capability, Model


@dataclass
class EvalContext:
    data_dir: Path
    seed: int = 0
    device: str = "cpu"
    progress: Any = None


@dataclass
class Score:
    scores: dict[str, float]
    n_items: int
    coverage: float | None = None
    details: dict[str, Any] = field(default_factory=dict)  # policies actually applied (e.g. OOV handling)


class TaskKind:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[Capability]] = frozenset()
    scores: ClassVar[dict[str, bool]] = {}  # score name -> higher is better
    needs_files: ClassVar[bool] = True

    def validate(self, card: TaskCard) -> list[str]:
        """Kind-specific checks of ``card.params`` / subsets; return problems as 'field: problem'."""
        return []

    def evaluate(self, model: Model, card: TaskCard, subset: Subset, ctx: EvalContext) -> Score:
        raise NotImplementedError

    def higher_is_better(self, score_name: str) -> bool:
        return self.scores.get(score_name, True)


def check_params(params: dict[str, Any], allowed: dict[str, tuple], where: str = "params") -> list[str]:
    """Validate a params table against ``{key: (allowed values...)}`` (empty tuple: any value)."""
    problems = []
    for key, value in params.items():
        if key not in allowed:
            problems.append(f"{where}.{key}: unknown parameter (known: {', '.join(sorted(allowed))})")
        elif allowed[key] and value not in allowed[key]:
            problems.append(f"{where}.{key}: {value!r} is not one of {', '.join(map(repr, allowed[key]))}")
    return problems


def model_embeddings(array: Any, rows: int, what: str, model: Model, device: str) -> Any:
    """A model's output checked as ``(rows, d)`` finite numbers (a tensor on ``device`` for CUDA).

    Wrong shapes, non-numbers and NaN/inf are one clear error naming the model, never a record.
    """
    values = np.asarray(array)
    if values.dtype.kind not in "fiu":
        raise MMBenchError(f"model {model.name!r} returned {values.dtype} values for {what}, not numbers")
    if values.ndim != 2 or values.shape[0] != rows:
        raise MMBenchError(f"model {model.name!r} returned shape {values.shape} for {rows} {what}, not ({rows}, d)")
    if not np.isfinite(values).all():
        raise MMBenchError(f"model {model.name!r} returned NaN or infinite values for {what}")
    if not values.flags.writeable:  # e.g. a zero-copy view of the features; torch wants writable memory
        values = values.copy()
    if device.startswith("cuda"):
        import torch

        return torch.as_tensor(values, device=device)
    return values
