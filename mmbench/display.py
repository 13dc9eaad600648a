"""The run's live display (the CLI's rich Progress), if any.

Work nested in a unit (the trainer's steps) adds a task to it instead of starting a second live display
that would fight it for the terminal. A module of its own, below every layer that reports progress
(runner, train), so none of them imports another for it.
"""

from __future__ import annotations

import contextlib
from typing import Any

_DISPLAYS: list[Any] = []


@contextlib.contextmanager
def nested_display(progress: Any):
    """While inside, :func:`current_display` is ``progress`` (a ``rich.progress.Progress``)."""
    _DISPLAYS.append(progress)
    try:
        yield progress
    finally:
        _DISPLAYS.pop()


def current_display() -> Any:
    return _DISPLAYS[-1] if _DISPLAYS else None
