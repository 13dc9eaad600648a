"""Wall time and peak memory of the main job, ``mmbench run --model cnn-mean --suite default``.

Each run is a fresh child process writing into a fresh results directory (cold: nothing to skip); its
peak resident memory and CPU time are the child's own (``os.wait4``), so runs do not mask each other.
CPU time (user + system) is printed beside wall time: on a shared machine it is the steadier of the two.
The baseline, measured in the same session and interleaved with the runs, is a bare
``python -c "import numpy"``. ``--checkout DIR`` adds the same job run from another source tree (e.g. an
export of an older commit: ``git archive HEAD | tar -x -C DIR``, with ``DIR/mmbench_plugins`` and
``DIR/mmbench_tasks`` symlinked to ``plugins`` and ``tasks``), so before/after figures come from one run.
``--cold-cache`` gives every run an empty Arrow cache (``MMBENCH_CACHE_DIR``), which adds the one-time
cache build; by default the cache is built once, before timing.

Run ``python benchmarks/bench_default_run.py [--repeat 3] [--checkout DIR] [--json out.json]``.
Prints seconds and peak RSS (MiB) with ratios to the baseline; asserts nothing. On a shared machine,
report the load: best-of-N filters out a busy neighbour only partly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

JOB = ["-m", "mmbench", "run", "--model", "cnn-mean", "--suite", "default"]
BASELINE = "baseline: python -c 'import numpy'"
THIS_TREE = "mmbench run (this tree)"


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds (user + system), peak RSS in MiB, exit status) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 and child.stderr is not None:
        sys.stderr.write(child.stderr.read().decode(errors="replace")[-2000:])
    if child.stderr is not None:
        child.stderr.close()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, child.returncode  # ru_maxrss is in KiB on Linux


def measure_all(repeat: int, checkout: Path | None = None, cold_cache: bool = False,
                keep: Path | None = None) -> dict[str, dict[str, float]]:
    """Best wall time, CPU time and peak RSS of each contender over ``repeat`` interleaved rounds."""
    base_env = dict(os.environ)
    contenders: dict[str, tuple[list[str], dict[str, str]]] = {
        BASELINE: ([sys.executable, "-c", "import numpy"], base_env),
        THIS_TREE: ([sys.executable, *JOB], base_env),
    }
    if checkout:
        other = dict(base_env, PYTHONPATH=str(checkout.resolve()))
        contenders[f"mmbench run ({checkout})"] = ([sys.executable, *JOB], other)

    with tempfile.TemporaryDirectory(prefix="mmbench-bench-") as scratch:
        cache = Path(scratch) / "cache"
        if not cold_cache:  # build the Arrow cache once, untimed
            for argv, env in list(contenders.values())[1:]:
                measure([*argv, "--output-dir", str(Path(scratch) / "warm")], dict(env, MMBENCH_CACHE_DIR=str(cache)))
        best: dict[str, dict[str, float]] = {}
        for round_ in range(repeat):
            for name, (argv, env) in contenders.items():
                run_dir = Path(scratch) / f"run{round_}-{len(best.get(name, {}))}-{abs(hash(name))}"
                run_env = dict(env, MMBENCH_CACHE_DIR=str(Path(run_dir) / "cache" if cold_cache else cache))
                full = argv if argv[1] == "-c" else [*argv, "--output-dir", str(run_dir / "results")]
                wall, cpu, rss, code = measure(full, run_env)
                if code != 0:
                    raise SystemExit(f"{name}: exit status {code}")
                entry = best.setdefault(name, {"wall_s": float("inf"), "cpu_s": float("inf"),
                                               "peak_rss_mib": float("inf")})
                entry["wall_s"] = min(entry["wall_s"], wall)
                entry["cpu_s"] = min(entry["cpu_s"], cpu)
                entry["peak_rss_mib"] = min(entry["peak_rss_mib"], rss)
                if keep and argv[1] != "-c":
                    kept = keep / ("this" if name.endswith("(this tree)") else "checkout")
                    subprocess.run(["rm", "-rf", str(kept)], check=True)
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    subprocess.run(["cp", "-r", str(run_dir / "results"), str(kept)], check=True)
    return best


def run(quick: bool) -> dict:
    """Rows for ``run_all.py``: the job from this tree against the numpy baseline, warm Arrow cache, best of
    1 (quick) or 3 rounds."""
    repeat = 1 if quick else 3
    try:
        best = measure_all(repeat)
    except SystemExit as exc:  # measure_all's way of saying the job failed; a failed benchmark here
        raise RuntimeError(str(exc)) from None
    base, this = best[BASELINE], best[THIS_TREE]
    what = f"mmbench run --model cnn-mean --suite default, warm Arrow cache, best of {repeat}"
    rows = [harness.row("wall", this["wall_s"], base["wall_s"], "s", BASELINE, what),
            harness.row("cpu", this["cpu_s"], base["cpu_s"], "s (user + system)", BASELINE, what),
            harness.row("peak_rss", this["peak_rss_mib"], base["peak_rss_mib"], "MiB", BASELINE, what)]
    return {"rows": rows, "details": {"repeat": repeat, "results": best}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many interleaved runs")
    parser.add_argument("--checkout", type=Path, help="also time the job from this source tree (before/after)")
    parser.add_argument("--cold-cache", action="store_true", help="an empty Arrow cache for every run")
    parser.add_argument("--keep", type=Path, help="keep each contender's last results directory under here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    best = measure_all(args.repeat, args.checkout, args.cold_cache, args.keep)
    baseline = best[next(iter(best))]
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}, best of {args.repeat}, "
          f"{'cold' if args.cold_cache else 'warm'} Arrow cache, fresh results directory per run")
    for name, entry in best.items():
        print(f"  {name:<45} {entry['wall_s']:7.2f} s  ({entry['wall_s'] / baseline['wall_s']:6.1f}x baseline)"
              f"   CPU {entry['cpu_s']:7.2f} s   peak RSS {entry['peak_rss_mib']:7.0f} MiB  ({entry['peak_rss_mib'] / baseline['peak_rss_mib']:5.1f}x)")
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "repeat": args.repeat, "results": best}, indent=2))


if __name__ == "__main__":
    main()
