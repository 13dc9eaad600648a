"""Training throughput of a model plugin: ``Trainer.fit`` against the same objectives run by hand on the same
batches, in the same run. What a model's benchmark (``bench_ame.py``; LIWE and IESG next) builds on: it
describes its workload (a fresh seeded network, its objectives exactly as the plugin wires them, the
training data and collate, its ``TrainConfig``) and calls :func:`measure`.

Variants, interleaved, each the median step time of one run after the warm-up steps, best of ``repeats``:

- ``trainer``: ``Trainer.fit`` with ``log_every = 1`` (a step: from its batch's fetch to the next one, see
  ``StepClock``; wall and CPU time);
- ``bare_step``: each due objective by hand, as the trainer would run it: zero the gradients, forward,
  backward, clip at ``grad_clip``, the objective's optimizer (fused Adam/AdamW/SGD where the trainer picks
  the fused kernel), and the loss read back (the trainer syncs each step at ``log_every = 1``);
- ``forward_backward``: forward + backward of each due objective only (no clipping, no optimizer).

Rows (in examples/s, e.g. captions/s): ``trainer`` against ``bare_step`` (the trainer's own overhead),
``trainer_vs_forward_backward`` (what a whole step costs over the bare network) and ``bare_step`` against
``forward_backward`` (clipping and optimizers), and ``trainer_cpu_time``: the trainer row in this
process's CPU time instead of wall time. On CUDA the same rows in fp32, with AMP bf16
(``amp="bf16"`` / ``torch.autocast``) and with ``torch.compile`` + bf16; skipped with the reason when
there is no CUDA device.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import harness
import torch

from mmbench.train import Objective, TrainConfig, Trainer
from mmbench.train.data import BatchSource, to_device

WARMUP, COMPILE_WARMUP = 3, 6  # steps before timing; compiling (and recompiling for new shapes) takes more
FUSED = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
VARIANTS = (("cpu", "off", False), ("cuda", "off", False), ("cuda", "bf16", False), ("cuda", "bf16", True))


@dataclass
class Workload:
    """One model's training step. ``build()`` returns a fresh, seeded network on the CPU;
    ``objectives(device)`` the plugin's objectives (their data moved to ``device``)."""

    build: Callable[[], torch.nn.Module]
    objectives: Callable[[torch.device], list[Objective]]
    data: Any
    collate: Callable[[Any], Any] | None
    train: TrainConfig
    unit: str  # "captions/s"
    what: str  # "GRU 256, batch 128, multi30k-mini"


class StepClock:
    """Wraps the collate and stamps wall and CPU time (``time.process_time``: this process's CPU seconds)
    each time a batch is fetched, the first thing of every step in the trainer and in the loops here, so
    a step is the time from its batch to the next one, measured identically for every variant. CPU time
    is the steadier figure on a shared machine (waiting for a core does not count), as long as torch runs
    one thread (with more, spinning threads add to it)."""

    def __init__(self, collate: Callable[[Any], Any] | None) -> None:
        self.collate = collate or (lambda batch: batch)
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, batch: Any) -> Any:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())
        return self.collate(batch)

    def steps(self, warmup: int, steps: int) -> tuple[list[float], list[float]]:
        """(wall, CPU) seconds of the ``steps`` steps after ``warmup`` (needs warmup + steps + 1 stamps)."""
        return ([b - a for a, b in zip(self.wall[warmup:], self.wall[warmup + 1:warmup + steps + 1])],
                [b - a for a, b in zip(self.cpu[warmup:], self.cpu[warmup + 1:warmup + steps + 1])])


def trainer_steps(work: Workload, device: torch.device, steps: int, amp: str,
                  compile_: bool) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of each timed step of ``Trainer.fit``."""
    warmup = COMPILE_WARMUP if compile_ else WARMUP
    train = work.train.replace(max_steps=warmup + steps + 1, device=str(device), progress=False, log_every=1,
                               amp=amp, compile=compile_, val_every=None, checkpoint_every=None)
    clock = StepClock(work.collate)
    with tempfile.TemporaryDirectory() as run_dir:
        Trainer(work.build(), work.objectives(device), work.data, train, collate=clock, run_dir=run_dir).fit()
    return clock.steps(warmup, steps)


def _optimizer(objective: Objective, params: list[torch.nn.Parameter], train: TrainConfig) -> torch.optim.Optimizer:
    kind = objective.optimizer or train.optimizer
    options: dict[str, Any] = {"lr": objective.lr or train.lr, "weight_decay": objective.weight_decay
                               if objective.weight_decay is not None else train.weight_decay}
    if kind == "sgd":
        options["momentum"] = objective.momentum if objective.momentum is not None else train.momentum
    if kind in FUSED:
        return FUSED[kind](params, fused=True, **options)
    return getattr(torch.optim, kind.capitalize())(params, **options)


def _params(net: torch.nn.Module, objective: Objective) -> list[torch.nn.Parameter]:
    named = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    if objective.params is None:
        return [p for _, p in named]
    if callable(objective.params):
        return [p for name, p in named if objective.params(name)]
    raise ValueError(f"objective {objective.name!r}: give params as None or a name predicate here")


def bare_steps(work: Workload, device: torch.device, steps: int, amp: str, compile_: bool,
               optimize: bool) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """(wall, CPU) seconds of each step of the objectives by hand on the trainer's batches, and each
    objective's part (wall)."""
    warmup = COMPILE_WARMUP if compile_ else WARMUP
    net = work.build().to(device)
    objectives = work.objectives(device)
    params = {o.name: _params(net, o) for o in objectives}
    optimizers = {o.name: _optimizer(o, params[o.name], work.train) for o in objectives}
    losses = {o.name: torch.compile(o.loss) if compile_ else o.loss for o in objectives}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp == "bf16" else contextlib.nullcontext()
    clock = StepClock(work.collate)
    batches = BatchSource(work.data, work.train.batch_size, seed=work.train.seed, shuffle=work.train.shuffle,
                          drop_last=work.train.drop_last, collate=clock)
    parts: dict[str, list[float]] = {o.name: [] for o in objectives}
    for step in range(1, warmup + steps + 2):
        epoch, position = divmod(step - 1, batches.steps_per_epoch)
        batch = to_device(batches.local_batch(epoch, position)[0], device)
        for objective in objectives:
            if not objective.runs_at(step):
                continue
            _sync(device)
            part_started = time.perf_counter()
            net.zero_grad(set_to_none=True)
            with autocast:
                loss = losses[objective.name](net, batch)
            loss.backward()
            if optimize:
                if work.train.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params[objective.name], work.train.grad_clip)
                optimizers[objective.name].step()
            float(loss.detach())  # the trainer reads each loss back at log_every = 1
            if warmup < step <= warmup + steps:
                parts[objective.name].append(time.perf_counter() - part_started)
    wall, cpu = clock.steps(warmup, steps)
    return wall, cpu, parts


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def compare(work: Workload, device: torch.device, steps: int, repeats: int, amp: str,
            compile_: bool) -> tuple[list[dict], dict[str, Any]]:
    """The three variants on one device and precision, interleaved: rows and per-step milliseconds."""
    shares: dict[str, float] = {}
    cpu_best: dict[str, float] = {}

    def keep_cpu(name: str, cpu: list[float]) -> None:
        cpu_best[name] = min(cpu_best.get(name, float("inf")), harness.median_step(cpu))

    def bare(optimize: bool) -> float:
        wall, cpu, parts = bare_steps(work, device, steps, amp, compile_, optimize)
        keep_cpu("bare_step" if optimize else "forward_backward", cpu)
        if optimize:
            for name, part in parts.items():
                if part:
                    shares[name] = min(shares.get(name, 1.0), sum(part) / sum(wall))
        return harness.median_step(wall)

    def trainer() -> float:
        wall, cpu = trainer_steps(work, device, steps, amp, compile_)
        keep_cpu("trainer", cpu)
        return harness.median_step(wall)

    best = harness.interleaved_best({"forward_backward": lambda: bare(False), "bare_step": lambda: bare(True),
                                     "trainer": trainer}, repeats)
    rate = {name: work.train.batch_size / seconds for name, seconds in best.items()}
    prefix = variant_name(device.type, amp, compile_)
    what = f"{prefix}, {work.what}"
    rows = [
        harness.row(f"{prefix}/trainer", rate["trainer"], rate["bare_step"], work.unit, "bare_step",
                    f"{what}: Trainer.fit vs the same objectives by hand (the trainer's overhead)"),
        harness.row(f"{prefix}/trainer_vs_forward_backward", rate["trainer"], rate["forward_backward"], work.unit,
                    "forward_backward", f"{what}: a whole training step over forward + backward alone"),
        harness.row(f"{prefix}/bare_step", rate["bare_step"], rate["forward_backward"], work.unit,
                    "forward_backward", f"{what}: clipping + optimizers by hand over forward + backward"),
    ]
    if device.type == "cpu":  # on a GPU the host's CPU time is mostly waiting in synchronize: not a measure
        rows.append(harness.row(f"{prefix}/trainer_cpu_time", work.train.batch_size / cpu_best["trainer"],
                                work.train.batch_size / cpu_best["bare_step"], f"{work.unit.split('/')[0]}/CPU-s",
                                "bare_step (CPU time)", f"{what}: as the trainer row, per CPU second of this "
                                f"process (steadier than wall time on a shared machine; with one torch thread)"))
    details = {"step_ms": {name: round(1e3 * s, 2) for name, s in best.items()},
               "cpu_step_ms": {name: round(1e3 * s, 2) for name, s in cpu_best.items()},
               "objective_share_of_bare_step": {name: round(s, 3) for name, s in shares.items()}}
    return rows, {prefix: details}


def variant_name(device: str, amp: str, compile_: bool) -> str:
    return device + ("/fp32" if device == "cuda" and amp == "off" else "") + (f"/{amp}" if amp != "off" else "") \
        + ("/compile" if compile_ else "")


def measure(work: Workload, steps: int, repeats: int, devices: tuple[str, ...] = ("cpu", "cuda")) -> dict:
    """Rows for every variant on ``devices`` (CUDA ones skipped with the reason when there is no GPU); a
    variant that raises becomes one failed row and the others still run."""
    rows: list[dict] = []
    details: dict[str, Any] = {"steps": steps, "repeats": repeats, "threads": torch.get_num_threads()}
    for device, amp, compile_ in VARIANTS:
        if device not in devices:
            continue
        name = f"{variant_name(device, amp, compile_)}/trainer"
        if device == "cuda" and not torch.cuda.is_available():
            rows.append(harness.skipped(name, "no CUDA device on this machine"))
            continue

        def variant(device: str = device, amp: str = amp, compile_: bool = compile_) -> list[dict]:
            found, extra = compare(work, torch.device(device), steps, repeats, amp, compile_)
            details.update(extra)
            return found

        rows += harness.attempt(name, variant)
    return {"rows": rows, "details": details}
