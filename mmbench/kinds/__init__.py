"""Task kinds: generic code that runs every card of one kind (MTEB-style).

A kind declares the model capabilities it needs and its scores (with direction); ``evaluate`` turns one
(model, card, subset) into a :class:`Score`. Kinds are registered through the ``register_task_kinds`` hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..cards import Subset, TaskCard
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
