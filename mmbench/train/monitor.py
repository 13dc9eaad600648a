"""What a run reports: losses and NaN flags gathered on the device, a JSONL metrics log, a rich progress bar,
optional TensorBoard (the logs on the main process only)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mmbench.errors import ConfigError

from .distributed import all_reduce_sum, is_distributed

METRICS_FILE = "metrics.jsonl"
_NEVER = 1 << 62  # "no bad step yet" in the on-device NaN tracker


class LossTracker:
    """Per-objective loss sums and first non-finite step, kept on the device between syncs."""

    def __init__(self, names: Sequence[str], device: torch.device) -> None:
        self.names = list(names)
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(self.names), dtype=torch.float64, device=self.device)
        self.examples = [0] * len(self.names)
        self.bad_loss = torch.full((len(self.names),), _NEVER, dtype=torch.int64, device=self.device)
        self.bad_grad = self.bad_loss.clone()

    def add(self, index: int, step: int, loss: torch.Tensor, local: int, total: int,
            grad_norm: torch.Tensor | None) -> None:
        self.sums[index] += loss.detach().double() * local
        self.examples[index] += total
        for tracker, value in ((self.bad_loss, loss), (self.bad_grad, grad_norm)):
            if value is not None:
                bad = ~torch.isfinite(value.detach())
                tracker[index] = torch.where(bad, torch.clamp(tracker[index], max=step), tracker[index])

    def collect(self) -> tuple[dict[str, float], tuple[int, str, str] | None]:
        """Global mean losses since the last sync, and the first (step, objective, what) that was not finite."""
        sums = all_reduce_sum(self.sums.clone())
        bad = torch.stack([self.bad_loss, self.bad_grad])
        if is_distributed():
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MIN)
        sums_list, bad_list = sums.tolist(), bad.tolist()
        losses = {name: sums_list[i] / self.examples[i] for i, name in enumerate(self.names) if self.examples[i]}
        first = None
        for what, row in zip(("loss", "gradient norm"), bad_list):
            for index, step in enumerate(row):
                if step < _NEVER and (first is None or step < first[0]):
                    first = (step, self.names[index], what)
        self.reset()
        return losses, first


class MetricsLog:
    """One JSON object per line: ``step``, ``epoch``, ``time`` and ``loss/<objective>``, ``lr/<objective>``
    or ``val/<name>`` entries, and tracked metrics by name (with ``note/<name>`` once, at step 0). On resume, records after the resumed step (from the killed run) are dropped."""

    def __init__(self, path: Path, *, resume_step: int | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and path.exists():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and _step_of(line) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        elif path.exists():
            path.unlink()
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run

    def write(self, record: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._handle.write(json.dumps(clean) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a torn last line from a killed run: drop it


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics log."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


class TensorBoardLog:
    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("tensorboard=true needs the tensorboard package (pip install tensorboard)") from None
        self._writer = SummaryWriter(log_dir=str(log_dir))

    def write(self, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if key not in ("step", "epoch", "time") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self._writer.close()


def nested_display(progress: Any):
    """While inside, trainers report their steps as a task of ``progress`` (see :func:`mmbench.display.nested_display`)."""
    from mmbench.display import nested_display as nest

    return nest(progress)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Training progress: steps/s, the latest losses and the ETA; a no-op when disabled.

    Inside :func:`nested_display` the steps are one task of that display (no second live display); alone,
    a rich progress bar of its own. Once the first steps have been timed (``ESTIMATE_AFTER_S`` or
    ``ESTIMATE_AFTER_STEPS``, whichever comes first) it prints one line: steps, epochs and the time the
    whole run should take."""

    ESTIMATE_AFTER_S = 3.0
    ESTIMATE_AFTER_STEPS = 50

    def __init__(self, total: int, start: int, enabled: bool, *, steps_per_epoch: int | None = None,
                 label: str = "train") -> None:
        self._bar = None
        self._own = False
        self._started = time.perf_counter()
        self._total, self._start_step, self._steps_per_epoch = total, start, steps_per_epoch
        self._estimated = not enabled or total <= start
        self._losses = ""
        self.estimate_line: str | None = None
        if not enabled:
            return
        from mmbench.display import current_display

        display = current_display()
        if display is not None:
            self._bar = display
            self._task = self._bar.add_task(f"  └ {label}", total=total, completed=start, info="")
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._own = True
        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
        self._task = self._bar.add_task(label, total=total, completed=start, info="")
        self._bar.start()

    def _epochs(self) -> str:
        if not self._steps_per_epoch:
            return ""
        epochs = self._total / self._steps_per_epoch
        return f", {epochs:.3g} epoch{'s' if epochs != 1 else ''} of {self._steps_per_epoch} steps"

    def _estimate(self, step: int, elapsed: float) -> None:
        done = step - self._start_step
        if self._estimated or done < 1 or (elapsed < self.ESTIMATE_AFTER_S and done < self.ESTIMATE_AFTER_STEPS):
            return
        self._estimated = True
        rate = done / elapsed
        remaining = (self._total - step) / rate
        resumed = f" (resumed at step {self._start_step})" if self._start_step else ""
        self.estimate_line = (f"training: {self._total} steps{self._epochs()}{resumed}; about "
                              f"{_duration(remaining)} left at {rate:.1f} steps/s")
        if self._bar is not None:
            self._bar.console.print(self.estimate_line)

    def update(self, step: int, info: str | None = None) -> None:
        if self._bar is None:
            return
        elapsed = time.perf_counter() - self._started
        self._estimate(step, elapsed)
        if info is not None:
            self._losses = info
        rate = f"{(step - self._start_step) / elapsed:.1f} steps/s" if elapsed > 0 else ""
        self._bar.update(self._task, completed=step, info=f"{rate}  {self._losses}".strip())

    def close(self) -> None:
        if self._bar is None:
            return
        if self._own:
            self._bar.stop()
        else:
            self._bar.remove_task(self._task)
        self._bar = None
