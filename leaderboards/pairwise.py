"""Pairwise coverage-fair comparison of one model against others, from the records' per-item outputs.

    python leaderboards/pairwise.py RESULTS_DIR MODEL OTHER [OTHER ...] --task rg65-xling [--task ...]

For each task and each other model, on every subset both were scored on: both models' scores on the
items *both* cover (the pair's common subset, seeds averaged), 95 % bootstrap intervals (items resampled,
paired; seeds resampled too), the two-sided paired-bootstrap p-value of the difference, and each model's
OOV-penalised score on all items with its interval. ``all`` is the mean over the subsets both have.
The statistics are the leaderboards' (``mmbench.leaderboard.stats``); only the pairing differs: the
leaderboard's common subset spans every well-covering model of a table, this one just the two compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from mmbench.leaderboard.stats import (
    N_RESAMPLES,
    decode_items,
    paired_p_value,
    percentile_interval,
    resample_counts,
    resampled,
    score_from_items,
    seed_picks,
)


def load(results: Path, tasks: set[str], models: set[str]) -> dict:
    """(task, subset, model) -> {"name": main score, "seeds": [Items, ...]} (one config per model: newest)."""
    found: dict = defaultdict(lambda: {"seeds": {}, "name": None})
    for path in sorted(results.glob("*/*/seed-*/*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("task") not in tasks or record.get("model") not in models or "+limit" in record["protocol"]:
            continue
        raw = (record.get("details") or {}).get("items")
        if not raw:
            continue
        entry = found[(record["task"], record["subset"], record["model"])]
        entry["name"] = record["main_score_name"]
        entry["seeds"][record["seed"]] = decode_items(raw)
    return {key: {"name": value["name"], "seeds": [value["seeds"][s] for s in sorted(value["seeds"])]}
            for key, value in found.items()}


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "little")


def compare(data: dict, task: str, model: str, other: str) -> dict:
    subsets = sorted({s for t, s, m in data if t == task and m == model} & {s for t, s, m in data if t == task and m == other})
    parts = []
    for subset in subsets:
        a, b = data[(task, subset, model)], data[(task, subset, other)]
        name = a["name"]
        mask = np.logical_and.reduce([items.covered() for items in a["seeds"] + b["seeds"]])
        if mask.sum() < 10:
            continue
        counts = resample_counts(len(mask), N_RESAMPLES, _seed(task, subset))
        row = {"subset": subset, "n_common": int(mask.sum()), "n": int(len(mask))}
        for label, entry in (("a", a), ("b", b)):
            picks = seed_picks(len(entry["seeds"]), N_RESAMPLES, _seed(task, subset, label))
            row[f"{label}_common"] = float(np.mean([score_from_items(name, s, mask) for s in entry["seeds"]]))
            row[f"{label}_common_boot"] = resampled(name, entry["seeds"], counts, picks, mask)
            row[f"{label}_penalised"] = float(np.mean([score_from_items(name, s, None, True) for s in entry["seeds"]]))
            row[f"{label}_penalised_boot"] = resampled(name, entry["seeds"], counts, picks, None, True)
            row[f"{label}_coverage"] = float(np.mean([s.covered().mean() for s in entry["seeds"]]))
            row[f"{label}_seeds"] = len(entry["seeds"])
        parts.append(row)
    if len(parts) > 1:
        total = {"subset": "all", "n_common": sum(p["n_common"] for p in parts), "n": sum(p["n"] for p in parts)}
        for key in parts[0]:
            if key.startswith(("a_", "b_")):
                values = [p[key] for p in parts]
                if key.endswith("_seeds"):
                    total[key] = min(values)
                else:
                    total[key] = np.mean(values, axis=0) if isinstance(values[0], np.ndarray) else float(np.mean(values))
        parts.append(total)
    for row in parts:
        row["p_common"] = paired_p_value(row["a_common_boot"], row["b_common_boot"])
        row["p_penalised"] = paired_p_value(row["a_penalised_boot"], row["b_penalised_boot"])
    return {"subsets": parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("model")
    parser.add_argument("others", nargs="+")
    parser.add_argument("--task", action="append", required=True)
    parser.add_argument("--subset", action="append", help="only these subsets (default: all, and 'all')")
    args = parser.parse_args()
    data = load(args.results, set(args.task), {args.model, *args.others})

    def fmt(row: dict, key: str) -> str:
        low, high = percentile_interval(row[f"{key}_boot"])
        return f"{row[key]:.3g} [{low:.3g}, {high:.3g}]"

    print(f"| task | subset | vs | n common / all | {args.model} common | other common | p | "
          f"{args.model} OOV-pen. | other OOV-pen. | p | coverage (model / other) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for task in args.task:
        for other in args.others:
            for row in compare(data, task, args.model, other)["subsets"]:
                if args.subset and row["subset"] not in args.subset:
                    continue
                print(f"| {task} | {row['subset']} | {other} ({row['b_seeds']}) | {row['n_common']} / {row['n']} | "
                      f"{fmt(row, 'a_common')} | {fmt(row, 'b_common')} | {row['p_common']:.3f} | "
                      f"{fmt(row, 'a_penalised')} | {fmt(row, 'b_penalised')} | {row['p_penalised']:.3f} | "
                      f"{100 * row['a_coverage']:.0f}% / {100 * row['b_coverage']:.0f}% |")


if __name__ == "__main__":
    main()
