"""`mmbench plot-training`: training curves from a run's metrics log (AME's Figure 2 is one of these)."""

from __future__ import annotations

import json

from conftest import run_cli

from mmbench.cli import main


def write_log(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def test_plots_the_default_metrics_of_a_work_dir_deterministically(tmp_path):
    log = tmp_path / "work" / "train" / "metrics.jsonl"
    write_log(log, [{"step": 0, "alignment_ratio/en-de": 0.1, "note/alignment_ratio/en-de": "34 of 1500"},
                    {"step": 10, "loss/ranking": 3.0, "lr/ranking": 0.001},
                    {"step": 20, "loss/ranking": 2.0, "val/rsum": 400.0, "val/t2i_r1/en": 12.5},
                    {"step": 20, "alignment_ratio/en-de": 0.2}])
    assert main(["plot-training", str(tmp_path / "work")]) == 0
    png = log.with_name("curves.png")
    first = png.read_bytes()
    assert first.startswith(b"\x89PNG")
    assert main(["plot-training", str(log), "--key", "val/rsum", "--out", str(tmp_path / "one.png")]) == 0
    assert main(["plot-training", str(tmp_path / "work")]) == 0
    assert png.read_bytes() == first  # the same log gives the same bytes


def test_bad_input_is_one_error_line(tmp_path):
    missing = run_cli(["plot-training", str(tmp_path / "nowhere")])
    assert missing.returncode == 1 and "no metrics.jsonl" in missing.stderr and "Traceback" not in missing.stderr
    log = tmp_path / "metrics.jsonl"
    write_log(log, [{"step": 1, "lr/ranking": 0.1}])
    nothing = run_cli(["plot-training", str(log)])
    assert nothing.returncode == 1 and "--key" in nothing.stderr and "Traceback" not in nothing.stderr
    log.write_text("not json\n", encoding="utf-8")
    broken = run_cli(["plot-training", str(log)])
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
