"""Start-up time of the command line, as a ratio to a bare ``python -c pass`` measured in the same run.

Commands timed (each a fresh process, stdout discarded): ``python -c pass`` (the baseline), ``mmbench
--version`` (no plugins loaded), ``mmbench --help`` (loads every plugin, to list their commands) and
``mmbench list`` (plugins, cards and their data status). Reported per command: the median wall time of
``--repeats`` interleaved runs, its ratio to the baseline, and which heavy libraries (torch, datasets, scipy,
pandas, sklearn) the command imported and who imported them first, so a regression names its cause.

usage: python benchmarks/bench_startup.py [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import harness

HEAVY = ("torch", "datasets", "scipy", "pandas", "sklearn")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "mmbench --version": [sys.executable, "-m", "mmbench", "--version"],
    "mmbench --help": [sys.executable, "-m", "mmbench", "--help"],
    "mmbench list": [sys.executable, "-m", "mmbench", "list"],
}
# Which module imported each heavy library first: a tiny import hook run inside the timed command's process.
PROBE = """
import builtins, runpy, sys
first = {}
real_import = builtins.__import__
def spy(name, globals=None, locals=None, fromlist=(), level=0):
    top = name.split('.')[0]
    if top in HEAVY and top not in sys.modules and top not in first:
        first[top] = (globals or {}).get('__name__', '?')
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = spy
sys.argv = ['mmbench'] + ARGS
try:
    runpy.run_module('mmbench', run_name='__main__')
except SystemExit:
    pass
finally:
    sys.stderr.write('\\nHEAVY ' + repr(first) + '\\n')
"""


def time_command(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - started


def heavy_imports(args: list[str], env: dict) -> dict[str, str]:
    code = f"HEAVY = {HEAVY!r}\nARGS = {args!r}\n" + PROBE
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    line = next((x for x in result.stderr.splitlines() if x.startswith("HEAVY ")), "HEAVY {}")
    return eval(line[6:], {})


def measure_all(repeats: int) -> list[dict]:
    """Per command: median wall time over ``repeats`` interleaved runs, its ratio to ``python -c pass``, and
    the heavy libraries it imported (and who imported them first)."""
    env = {**os.environ, "COLUMNS": "80"}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name, command in COMMANDS.items():  # warm the file cache once
        time_command(command, env)
    for _ in range(repeats):  # interleaved: load changes hit every command alike
        for name, command in COMMANDS.items():
            times[name].append(time_command(command, env))
    baseline = statistics.median(times["python -c pass"])
    rows = []
    for name, command in COMMANDS.items():
        median = statistics.median(times[name])
        heavy = heavy_imports(command[3:], env) if name.startswith("mmbench") else {}
        rows.append({"command": name, "median_s": round(median, 3), "ratio": round(median / baseline, 1),
                     "heavy_imports": heavy, "baseline_s": baseline})
    return rows


def run(quick: bool) -> dict:
    """Rows for ``run_all.py``: each command against ``python -c pass``, median of 3 (quick) or 5 runs."""
    repeats = 3 if quick else 5
    found = measure_all(repeats)
    rows = []
    for entry in found[1:]:
        heavy = ", ".join(f"{lib} (first by {who})" for lib, who in entry["heavy_imports"].items()) or "none"
        rows.append(harness.row(entry["command"], entry["median_s"], entry["baseline_s"], "s", "python -c pass",
                                f"median of {repeats}; heavy imports: {heavy}"))
    return {"rows": rows, "details": {"repeats": repeats, "commands": found}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    options = parser.parse_args()
    rows = measure_all(options.repeats)
    if options.json:
        print(json.dumps({"cpus": os.cpu_count(), "repeats": options.repeats, "results": rows}, indent=2))
        return
    print(f"{options.repeats} runs each, {os.cpu_count()} CPUs; ratio = median time / median `python -c pass`")
    for row in rows:
        heavy = ", ".join(f"{lib} (first by {who})" for lib, who in row["heavy_imports"].items()) or "none"
        print(f"{row['command']:<20} {row['median_s']:7.3f} s  x{row['ratio']:<6} heavy imports: {heavy}")


if __name__ == "__main__":
    main()
