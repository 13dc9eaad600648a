"""Leaderboard plots: linked from the pages, deterministic bytes, training curves from a metrics log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from test_leaderboard import make_record

from mmbench.errors import DataError
from mmbench.leaderboard import build_leaderboards
from mmbench.leaderboard.plots import plot_training_curves, recall_curve
from mmbench.results import encode_column, encode_items

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def retrieval_record(model: str, quality: float, seed: int) -> dict:
    rng = np.random.default_rng(seed + int(quality * 100))
    i2t = np.minimum(rng.geometric(quality, size=50) - 1, 249)
    t2i = np.minimum(rng.geometric(quality, size=250) - 1, 49)
    scores = {f"{d}_r{k}": 100 * float(np.mean(r < k)) for d, r in (("i2t", i2t), ("t2i", t2i)) for k in (1, 5, 10)}
    scores["rsum"] = sum(scores.values())
    items = encode_items("image", 50, {"i2t_rank": encode_column(i2t.tolist()), "t2i_rank": encode_column(t2i.tolist())},
                         per_item={"t2i_rank": 5})
    return make_record(schema_version=2, task="toy-retrieval", task_kind="retrieval", model=model, seed=seed,
                       config_hash=hashlib.sha256(model.encode()).hexdigest()[:12], main_score_name="rsum",
                       main_score=scores["rsum"], scores=scores, coverage=1.0, n_items=50, protocol="vse++",
                       details={"items": items}, subset="all", split="test")


def test_retrieval_pages_link_deterministic_score_and_recall_plots(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    for model, quality in (("strong", 0.5), ("weak", 0.15)):
        for seed in (0, 1):
            record = retrieval_record(model, quality, seed)
            (results / f"{record['record_id']}.json").write_text(json.dumps(record), encoding="utf-8")
    build_leaderboards(results, tmp_path / "a")
    build_leaderboards(results, tmp_path / "b")
    page = (tmp_path / "a" / "toy-retrieval.md").read_text(encoding="utf-8")
    for name in ("toy-retrieval.score.png", "toy-retrieval.recall.png"):
        assert f"]({name})" in page
        data = (tmp_path / "a" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and b"matplotlib" not in data  # no Software tag
        assert data == (tmp_path / "b" / name).read_bytes()  # rebuilt: identical bytes
    summary = json.loads((tmp_path / "a" / "leaderboard.json").read_text(encoding="utf-8"))
    assert summary["tasks"][0]["plots"] == ["toy-retrieval.score.png", "toy-retrieval.recall.png"]
    # Plots of a task without records any more are removed with its page.
    for path in results.iterdir():
        path.unlink()
    build_leaderboards(results, tmp_path / "a")
    assert not list((tmp_path / "a").glob("*.png"))


def test_recall_curve_is_the_share_of_ranks_below_k() -> None:
    assert recall_curve(np.array([0, 1, 1, 5]), max_k=3).tolist() == [25.0, 75.0, 75.0]


def test_training_curves_from_a_sparse_metrics_log(tmp_path: Path) -> None:
    lines = []
    for step in range(10, 210, 10):
        entry = {"step": step, "loss/ranking": 5 / step}
        if step % 50 == 0:
            entry.update({"val/rsum": step / 2, "align/ratio": step / 400})
        lines.append(json.dumps(entry))
    log = tmp_path / "metrics.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    keys = ["loss/ranking", "val/rsum", "align/ratio"]
    first = plot_training_curves(log, keys, tmp_path / "a.png").read_bytes()
    again = plot_training_curves(log, keys, tmp_path / "b.png").read_bytes()
    assert first.startswith(PNG_MAGIC) and first == again
    with pytest.raises(DataError, match="no finite values logged for val/r1$"):
        plot_training_curves(log, ["loss/ranking", "val/r1"], tmp_path / "c.png")
    (tmp_path / "bad.jsonl").write_text('{"step": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not a JSON object"):
        plot_training_curves(tmp_path / "bad.jsonl", ["loss"], tmp_path / "d.png")
    with pytest.raises(DataError, match="cannot read metrics log"):
        plot_training_curves(tmp_path / "missing.jsonl", ["loss"], tmp_path / "e.png")
