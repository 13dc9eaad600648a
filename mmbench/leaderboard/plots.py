"""Leaderboard plots (PNG, matplotlib's Agg backend, imported only when a plot is drawn).

Every plot is a pure function of the rows (or records) the tables are built from, drawn with fixed sizes,
fonts and colours and saved without a timestamp or software tag, so rebuilding from the same records gives
byte-identical files:

* ``score_plot``: per model the main score with its 95 % interval (the seed sd where the records hold no
  per-item outputs), coverage written beside it, unranked models in grey.
* ``recall_curve_plot``: retrieval recall@K against K per model and direction, from per-item ranks.
* ``pos_plot``: visual BLI P@1 per part of speech (``p1_N``, ``p1_V``, ``p1_A``) per model.
* ``plot_training_curves``: values from a run's ``metrics.jsonl`` (loss, validation scores, tracked metrics
  such as the alignment ratio) against the step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmbench.errors import DataError

WIDTH_IN = 7.0
DPI = 100
RANKED, UNRANKED = "#1f77b4", "#9a9a9a"
POS_NAMES = {"N": "nouns", "V": "verbs", "A": "adjectives"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9, "svg.hashsalt": "mmbench",
                         "path.simplify": False})
    return plt


def save_png(figure, path: Path) -> Path:
    """Save without metadata that changes between builds (matplotlib writes its version as Software)."""
    figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    _pyplot().close(figure)
    return path


def _label(row: dict) -> str:
    return f"{row['model']} ({row['config_hash'][:6]})"


def score_plot(rows: Sequence[dict], out_png: Path, title: str, scale=lambda name, v: v, unit: str = "") -> Path:
    """Main score per model (best at the top) with 95 % bootstrap interval or ± seed sd, and coverage; where
    the table has OOV-penalised scores, each with its interval as a hollow marker just below (the score
    such tables rank by)."""
    plt = _pyplot()
    name = rows[0]["main_score_name"]
    height = 1.2 + 0.32 * len(rows)
    figure, axis = plt.subplots(figsize=(WIDTH_IN, height))
    for position, row in enumerate(reversed(rows)):
        mean = scale(name, row["main_mean"])
        if row.get("main_ci"):
            low, high = (scale(name, v) for v in row["main_ci"])
        else:
            sd = scale(name, row["main_sd"]) if row["main_sd"] is not None else 0.0
            low, high = mean - sd, mean + sd
        colour = UNRANKED if row.get("ranked") is False else RANKED
        axis.errorbar([mean], [position], xerr=[[max(0.0, mean - low)], [max(0.0, high - mean)]], fmt="o",
                      color=colour, capsize=3, markersize=4)
        if row.get("oov_penalised") is not None:
            penalised = scale(name, row["oov_penalised"])
            low_p, high_p = (scale(name, v) for v in row.get("oov_penalised_ci") or (row["oov_penalised"],) * 2)
            axis.errorbar([penalised], [position - 0.25], xerr=[[max(0.0, penalised - low_p)], [max(0.0, high_p - penalised)]],
                          fmt="o", mfc="white", color=colour, capsize=2, markersize=4, linewidth=0.8)
        if row["coverage_mean"] is not None:
            axis.annotate(f"{100 * row['coverage_mean']:.0f}% cov", (high, position), xytext=(4, -3),
                          textcoords="offset points", fontsize=7, color=colour)
    axis.set_yticks(range(len(rows)), [_label(r) for r in reversed(rows)])
    axis.set_xlabel(f"{name} ({unit})" if unit else name)
    if any(row.get("oov_penalised") is not None for row in rows):
        axis.set_xlabel(f"{axis.get_xlabel()}: filled = own score, hollow = OOV-penalised (ranks)")
    axis.set_title(title, fontsize=9)
    axis.grid(axis="x", color="#dddddd")
    axis.margins(x=0.15)
    figure.tight_layout()
    return save_png(figure, out_png)


def recall_curve_plot(curves: dict[str, dict[str, np.ndarray]], out_png: Path, title: str) -> Path:
    """``curves``: ``{model label: {direction: recall % at K = 1..len}}``; one panel per direction."""
    plt = _pyplot()
    directions = sorted({d for by_direction in curves.values() for d in by_direction})
    figure, axes = plt.subplots(1, len(directions), figsize=(WIDTH_IN, 3.2), squeeze=False)
    for axis, direction in zip(axes[0], directions):
        for label in sorted(curves):
            values = curves[label].get(direction)
            if values is not None:
                axis.plot(np.arange(1, len(values) + 1), values, label=label, linewidth=1.2)
        axis.set_xscale("log")
        axis.set_xlabel("K")
        axis.set_ylabel("recall@K (%)")
        axis.set_title(direction, fontsize=9)
        axis.grid(color="#dddddd")
    axes[0][-1].legend(fontsize=6, loc="lower right")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_png(figure, out_png)


def recall_curve(ranks: np.ndarray, max_k: int = 100) -> np.ndarray:
    """Recall@K in percent for K = 1..max_k from 0-based ranks."""
    ranks = np.asarray(ranks)
    return np.array([100.0 * float(np.mean(ranks < k)) for k in range(1, max_k + 1)])


def pos_plot(rows: Sequence[dict], out_png: Path, title: str) -> Path:
    """Grouped bars: P@1 (%) per part of speech per model (rows without POS scores are left out)."""
    plt = _pyplot()
    tags = [t for t in POS_NAMES if any(r["scores"].get(f"p1_{t}") is not None for r in rows)]
    figure, axis = plt.subplots(figsize=(WIDTH_IN, 3.4))
    width = 0.8 / max(1, len(tags))
    for index, tag in enumerate(tags):
        values = [r["scores"].get(f"p1_{tag}") or 0.0 for r in rows]
        axis.bar(np.arange(len(rows)) + index * width, values, width, label=POS_NAMES[tag])
    axis.set_xticks(np.arange(len(rows)) + width * (len(tags) - 1) / 2, [_label(r) for r in rows],
                    rotation=30, ha="right", fontsize=7)
    axis.set_ylabel("P@1 (%)")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7)
    axis.grid(axis="y", color="#dddddd")
    figure.tight_layout()
    return save_png(figure, out_png)


def read_metrics(metrics_jsonl_path: Path, keys: Sequence[str]) -> dict[str, tuple[list[float], list[float]]]:
    """``{key: (steps, values)}`` of the finite numbers a run's ``metrics.jsonl`` logged under each key."""
    path = Path(metrics_jsonl_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DataError(f"{path}: cannot read metrics log ({error.strerror or error})") from None
    series: dict[str, tuple[list[float], list[float]]] = {key: ([], []) for key in keys}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path}:{number}: not a JSON object (a metrics log has one per line)") from None
        if not isinstance(entry, dict):
            raise DataError(f"{path}:{number}: not a JSON object (a metrics log has one per line)")
        step = entry.get("step", number)
        for key in keys:
            value = entry.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                series[key][0].append(float(step))
                series[key][1].append(float(value))
    missing = [key for key, (steps, _) in series.items() if not steps]
    if missing:
        raise DataError(f"{path}: no finite values logged for {', '.join(missing)}")
    return series


def plot_training_curves(metrics_jsonl_path: Path, keys: Sequence[str], out_png: Path, title: str = "") -> Path:
    """One panel per key of a run's ``metrics.jsonl`` (e.g. ``loss/ranking``, an alignment ratio, R@1,
    rsum) against the step; deterministic PNG. A key never logged is a one-line ``DataError``."""
    if not keys:
        raise DataError("plot_training_curves needs at least one metric key")
    series = read_metrics(metrics_jsonl_path, keys)
    plt = _pyplot()
    figure, axes = plt.subplots(len(keys), 1, figsize=(WIDTH_IN, 1.2 + 1.8 * len(keys)), squeeze=False, sharex=True)
    for axis, key in zip(axes[:, 0], keys):
        steps, values = series[key]
        axis.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, linewidth=1.2)
        axis.set_ylabel(key, fontsize=8)
        axis.grid(color="#dddddd")
    axes[-1, 0].set_xlabel("step")
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_png(figure, Path(out_png))
