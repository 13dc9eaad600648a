"""The benchmark scripts stay runnable: every ``benchmarks/bench_*.py`` imports and exposes ``run(quick)``,
and the runner's discovery, failure handling and JSON + markdown summary work on tiny fake benchmarks.
No timing is asserted (performance is measured by the scripts, never by tests)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import harness

FAKE_OK = '''
import harness

def run(quick):
    return {"rows": [harness.row("fast", 2.0, 4.0, "s", "slow way", "half the time"),
                     harness.skipped("gpu", "no CUDA device on this machine")],
            "details": {"quick": quick}}
'''
FAKE_BROKEN = '''
def run(quick):
    raise RuntimeError("kaboom")
'''
FAKE_CRASH = '''
import os

def run(quick):
    os._exit(3)  # dies without a result, as a segfault or the OOM killer would
'''


def test_every_benchmark_imports_and_exposes_run():
    found = harness.discover()
    assert {"ame", "skipgram", "trainer", "metrics", "default_run", "startup", "liwe", "iesg",
            "lazy_adam"} <= set(found)
    for name, path in found.items():
        module = harness.load(path)
        assert list(inspect.signature(module.run).parameters) == ["quick"], name
        assert module.__doc__, f"{path.name} needs a docstring saying what it measures"


def test_run_one_reports_rows_and_turns_an_exception_into_a_failure(tmp_path):
    (tmp_path / "bench_fake.py").write_text(FAKE_OK)
    (tmp_path / "bench_broken.py").write_text(FAKE_BROKEN)
    (tmp_path / "helper.py").write_text("")  # not a bench_ file: not discovered
    found = harness.discover(tmp_path)
    assert list(found) == ["broken", "fake"]

    ok = harness.run_one("fake", found["fake"], quick=True)
    assert ok["status"] == "ok" and ok["details"] == {"quick": True}
    fast, gpu = ok["rows"]
    assert (fast["measured"], fast["baseline"], fast["ratio"], fast["unit"]) == (2.0, 4.0, 0.5, "s")
    assert gpu["status"] == "skipped" and gpu["ratio"] is None

    broken = harness.run_one("broken", found["broken"], quick=True)
    assert broken["status"] == "failed" and "RuntimeError: kaboom" in broken["error"]


def test_summary_json_and_markdown(tmp_path):
    (tmp_path / "bench_fake.py").write_text(FAKE_OK)
    (tmp_path / "bench_broken.py").write_text(FAKE_BROKEN)
    results = [harness.run_one(name, path, quick=True) for name, path in harness.discover(tmp_path).items()]
    machine = {"cpu": "test cpu", "cpus": 2, "torch": "x"}
    json_path, md_path = harness.write_summary(results, tmp_path / "out", quick=True, machine=machine,
                                               started="2026-01-01T00:00:00+00:00", seconds=1.0)
    summary = json.loads(json_path.read_text())
    assert summary["quick"] is True and summary["machine"] == machine
    assert [b["status"] for b in summary["benchmarks"]] == ["failed", "ok"]
    text = md_path.read_text()
    assert "| fast | 2.0 | 4.0 | 0.5 | s | slow way | half the time |" in text
    assert "| gpu | skipped |" in text and "kaboom" in text and "test cpu" in text


def test_attempt_keeps_the_other_rows_when_one_variant_breaks():
    def broken() -> list[dict]:
        raise ValueError("no such kernel")

    assert harness.attempt("cuda/x", broken)[0]["status"] == "failed"
    assert harness.attempt("cpu/x", lambda: [harness.row("cpu/x", 1.0, 1.0, "s", "b")])[0]["ratio"] == 1.0


def test_interleaved_best_keeps_each_contenders_least_time_and_cpu():
    cpu = harness.CpuSeconds()
    figures = iter([3.0, 1.0, 2.0, 5.0])
    best = harness.interleaved_best({"a": lambda: cpu.timer("a", lambda: None) * 0 + next(figures),
                                     "b": lambda: next(figures)}, repeats=2)
    assert best == {"a": 2.0, "b": 1.0} and set(cpu.best) == {"a"} and cpu.best["a"] >= 0


def test_machine_facts_name_the_machine():
    facts = harness.machine_facts()
    assert facts["cpu"] and facts["cpus"] >= 1 and "load_average" in facts and "torch" in facts


def test_run_all_survives_a_crashing_child_and_writes_the_summary(tmp_path, monkeypatch):
    """The real runner, in subprocesses, over fake benchmarks (one exits without a result)."""
    fake_dir = tmp_path / "benchmarks"
    fake_dir.mkdir()
    for name in ("harness.py", "run_all.py"):
        (fake_dir / name).write_text((BENCH_DIR / name).read_text())
    (fake_dir / "bench_fake.py").write_text(FAKE_OK)
    (fake_dir / "bench_crash.py").write_text(FAKE_CRASH)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(fake_dir / "run_all.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr  # a benchmark failed
    summary = json.loads((out / "latest.json").read_text())
    status = {b["name"]: b["status"] for b in summary["benchmarks"]}
    assert status == {"crash": "failed", "fake": "ok"}
    crash = next(b for b in summary["benchmarks"] if b["name"] == "crash")
    assert "exit status 3" in crash["error"]
    assert (out / "latest.md").is_file() and (out / "logs" / "fake.log").is_file()

    only = subprocess.run([sys.executable, str(fake_dir / "run_all.py"), "--only", "fake", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert only.returncode == 0, only.stderr
    assert [b["name"] for b in json.loads((out / "latest.json").read_text())["benchmarks"]] == ["fake"]


def test_run_all_rejects_an_unknown_name():
    done = subprocess.run([sys.executable, str(BENCH_DIR / "run_all.py"), "--only", "nope"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2 and "no benchmark named nope" in done.stderr
