"""Run every benchmark (``benchmarks/bench_*.py`` with a ``run(quick)`` function) and write one summary.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--out DIR] [--timeout SECONDS]

Each benchmark runs in its own child process (fresh memory, its own imports and thread pools, and a crash,
even a segfault or the OOM killer, takes only that benchmark down): it is reported as failed with the tail
of its output and the others still run. The children inherit the environment, so set
``OMP_NUM_THREADS`` here for all of them. Writes ``<out>/latest.json`` and ``latest.md`` (default
``benchmarks/results/``) and each benchmark's output to ``<out>/logs/<name>.log``. Exit status 1 when a
benchmark failed. ``--quick`` fits the whole set in about 4 minutes on 2 quiet CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import harness

DEFAULT_OUT = harness.BENCH_DIR / "results"


def run_child(name: str, path: Path, quick: bool, log: Path, timeout: float | None) -> dict:
    """One benchmark in a child process; its result, or a failed one saying how the child ended."""
    with tempfile.TemporaryDirectory(prefix="mmbench-bench-") as scratch:
        result_file = Path(scratch) / "result.json"
        command = [sys.executable, __file__, "--child", name, "--result-file", str(result_file)]
        started = time.perf_counter()
        with open(log, "w", encoding="utf-8") as output:
            try:
                code = subprocess.run([*command, *(["--quick"] if quick else [])], stdout=output,
                                      stderr=subprocess.STDOUT, timeout=timeout, check=False).returncode
                ending = f"exit status {code}"
            except subprocess.TimeoutExpired:
                code, ending = None, f"timed out after {timeout:.0f} s"
        if code == 0 and result_file.is_file():
            return json.loads(result_file.read_text(encoding="utf-8"))
    tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
    return {"name": name, "script": f"benchmarks/{path.name}", "status": "failed", "rows": [], "details": {},
            "error": f"the benchmark process ended without a result ({ending}); its output ends:\n{tail}",
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole set in a few minutes")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these benchmarks (bench_NAME.py)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where latest.json and latest.md go")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a benchmark is stopped")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one benchmark in this process
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    found = harness.discover()
    if args.child:
        result = harness.run_one(args.child, found[args.child], args.quick)
        args.result_file.write_text(json.dumps(result, default=str), encoding="utf-8")
        return 0
    unknown = sorted(set(args.only or ()) - set(found))
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)} (known: {', '.join(found)})")
    chosen = {name: path for name, path in found.items() if not args.only or name in args.only}

    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.perf_counter()
    machine = harness.machine_facts()
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = []
    for name, path in chosen.items():
        print(f"{name:<14} ...", end=" ", flush=True, file=sys.stderr)
        result = run_child(name, path, args.quick, logs / f"{name}.log", args.timeout)
        results.append(result)
        print(f"{result['status']} ({result['seconds']} s)", file=sys.stderr)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    json_path, md_path = harness.write_summary(results, args.out, quick=args.quick, machine=machine,
                                               started=started_at, seconds=time.perf_counter() - started)
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 1 if any(r["status"] == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
