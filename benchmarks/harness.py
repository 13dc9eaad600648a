"""What every benchmark shares: result rows, interleaved best-of-N timing, machine facts, discovery of the
``bench_*.py`` scripts, and the JSON + markdown summary ``run_all.py`` writes.

A benchmark is a module ``benchmarks/bench_<name>.py`` with a function ``run(quick: bool) -> dict``
returning ``{"rows": [row(...), ...], "details": {...}}``. A row compares one measurement with a baseline
measured in the same run (``ratio = measured / baseline``); ``details`` holds anything else worth keeping
(settings, profiler shares). Nothing here asserts a speed: the figures are for people to read.

This module's name does not start with ``bench_``, so discovery never mistakes it for a benchmark.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PREFIX = "bench_"
STATUSES = ("ok", "skipped", "failed")


# -- rows -----------------------------------------------------------------------------------------------
def row(name: str, measured: float, baseline: float, unit: str, baseline_name: str, notes: str = "") -> dict:
    """One comparison: ``measured`` and ``baseline`` in the same ``unit``, from the same run."""
    ratio = measured / baseline if baseline else float("nan")
    return {"name": name, "status": "ok", "measured": _round(measured), "baseline": _round(baseline),
            "ratio": round(ratio, 3), "unit": unit, "baseline_name": baseline_name, "notes": notes}


def skipped(name: str, reason: str) -> dict:
    """A row that could not be measured here (no GPU, no data): says why instead of a number."""
    return {"name": name, "status": "skipped", "measured": None, "baseline": None, "ratio": None, "unit": "",
            "baseline_name": "", "notes": reason}


def failed(name: str, error: BaseException) -> dict:
    return {"name": name, "status": "failed", "measured": None, "baseline": None, "ratio": None, "unit": "",
            "baseline_name": "", "notes": f"{type(error).__name__}: {error}"}


def attempt(name: str, make_rows: Callable[[], list[dict]]) -> list[dict]:
    """``make_rows()``, or one failed row if it raises: a GPU-only variant that breaks (untested on a CPU
    machine) must not take the CPU rows of the same benchmark down with it."""
    try:
        return make_rows()
    except Exception as exc:  # noqa: BLE001 - reported in the summary, with its type and message
        traceback.print_exc()
        return [failed(name, exc)]


def _round(value: float) -> float:
    return float(f"{value:.4g}")


# -- timing ---------------------------------------------------------------------------------------------
def interleaved_best(contenders: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Each contender returns its own figure in seconds (e.g. the median step time of one run); they run in
    turn, ``repeats`` rounds, and the smallest figure of each is kept: a round slowed down by a neighbour
    on a shared machine slows every contender alike and does not decide the result."""
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeats):
        for name, contender in contenders.items():
            best[name] = min(best[name], contender())
    return best


def median_step(seconds: list[float]) -> float:
    return statistics.median(seconds)


class CpuSeconds:
    """``timer(name, function)`` returns ``function``'s wall seconds (for :func:`interleaved_best`) and keeps
    the least CPU time (``time.process_time``, every thread of this process) seen for ``name`` in
    ``best``: waiting for a core on a shared machine does not count in it, so it is the steadier figure."""

    def __init__(self) -> None:
        self.best: dict[str, float] = {}

    def timer(self, name: str, function: Callable[[], Any]) -> float:
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.best[name] = min(self.best.get(name, float("inf")), cpu)
        return wall


# -- data and machine -------------------------------------------------------------------------------------
def data_dir() -> Path | None:
    """The real benchmark data: ``$MMBENCH_DATA``, else ``shared/data`` next to the checkout (as the tests)."""
    env = os.environ.get("MMBENCH_DATA")
    candidates = [Path(env)] if env else []
    candidates += [BENCH_DIR.parent.parent / "shared" / "data", BENCH_DIR.parent / "shared" / "data"]
    return next((path for path in candidates if (path / "README.md").is_file()), None)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """What the figures depend on; written into every summary."""
    facts: dict[str, Any] = {
        "cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import torch

        facts.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                     cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except ImportError:
        facts.update(torch=None, torch_threads=None, cuda=None)
    try:
        import gensim

        facts["gensim"] = gensim.__version__
    except ImportError:
        facts["gensim"] = None
    return facts


# -- discovery and running ------------------------------------------------------------------------------
def discover(directory: Path = BENCH_DIR) -> dict[str, Path]:
    """``{name: path}`` of every ``bench_<name>.py`` in ``directory``, sorted by name."""
    return {path.stem[len(PREFIX):]: path for path in sorted(Path(directory).glob(f"{PREFIX}*.py"))}


def load(path: Path) -> ModuleType:
    """Import a benchmark script as a module (its directory goes on ``sys.path``, so it can import this
    module as ``harness``, as it does when run as a script)."""
    directory = str(Path(path).resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(f"mmbench_benchmark_{Path(path).stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses (and pickling) look a class's module up there
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise TypeError(f"{path}: a benchmark must define run(quick: bool) -> dict")
    return module


def run_one(name: str, path: Path, quick: bool) -> dict[str, Any]:
    """Run one benchmark in this process; an exception becomes a failed result, never propagates."""
    started = time.perf_counter()
    result: dict[str, Any] = {"name": name, "script": f"benchmarks/{Path(path).name}", "status": "ok",
                              "error": None, "rows": [], "details": {}}
    try:
        output = load(path).run(quick=quick)
        result["rows"] = [_checked_row(r) for r in output.get("rows", [])]
        result["details"] = output.get("details", {})
    except Exception as exc:  # noqa: BLE001 - a broken benchmark is reported, the others still run
        result.update(status="failed", error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _checked_row(entry: dict) -> dict:
    missing = {"name", "status", "measured", "baseline", "ratio", "unit", "notes"} - set(entry)
    if missing or entry["status"] not in STATUSES:
        raise ValueError(f"malformed benchmark row {entry!r}: missing {sorted(missing)} or bad status")
    return entry


# -- the summary ----------------------------------------------------------------------------------------
def write_summary(results: list[dict], out_dir: Path, *, quick: bool, machine: dict[str, Any],
                  started: str, seconds: float, stem: str = "latest") -> tuple[Path, Path]:
    """``<out_dir>/<stem>.json`` and ``<stem>.md``: the same figures, for programs and for people."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"started": started, "seconds": round(seconds, 1), "quick": quick, "machine": machine,
               "benchmarks": results}
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(summary), encoding="utf-8")
    return json_path, md_path


def markdown(summary: dict[str, Any]) -> str:
    machine = summary["machine"]
    lines = [f"# Benchmarks ({'quick' if summary['quick'] else 'full'} run, {summary['started']})", "",
             ("Each row: measured and baseline from the same run (interleaved, best of N); "
              "ratio = measured / baseline."), "",
             "| machine | |", "|---|---|"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in machine.items()]
    lines += ["", f"Total {summary['seconds']} s.", ""]
    for bench in summary["benchmarks"]:
        lines.append(f"## {bench['name']} ({bench['script']}, {bench['status']}, {bench.get('seconds', '?')} s)")
        lines.append("")
        if bench["status"] == "failed":
            lines += ["```", (bench["error"] or "").strip(), "```", ""]
        if bench["rows"]:
            lines += ["| row | measured | baseline | ratio | unit | baseline is | notes |",
                      "|---|---|---|---|---|---|---|"]
            for r in bench["rows"]:
                if r["status"] == "ok":
                    lines.append(f"| {r['name']} | {r['measured']} | {r['baseline']} | {r['ratio']} | {r['unit']} "
                                 f"| {_cell(r.get('baseline_name', ''))} | {_cell(r['notes'])} |")
                else:
                    lines.append(f"| {r['name']} | {r['status']} | | | | | {_cell(r['notes'])} |")
            lines.append("")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
