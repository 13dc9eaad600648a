"""What the command line shows: the results table at any width, --format, --version/-h, suggestions for
mistyped names, exit codes, `list tasks` filters, `data verify`, Ctrl-C."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT, run_cli

from mmbench.cli import main, summary_lines
from mmbench.runner import Outcome

LONG_TASK = "emoji-retrieval-all-styles-very-long-name"


def outcomes():
    rows = [Outcome("imagevec-multilingual-language-unaware", 0, LONG_TASK, f"emoji-{lang}-noto-color", "done",
                    "mean_recall@10", 0.123456 + i, 0.98) for i, lang in enumerate(("en", "de", "zh_Hans"))]
    rows.append(Outcome("imagevec-multilingual-language-unaware", 0, LONG_TASK, "all", "exists",
                        "mean_recall@10", 1.1235, None))
    rows.append(Outcome("cnn-mean", 1, "rg65-xling", "en-de", "skipped", "spearman", None, None, "no words"))
    return rows


@pytest.mark.parametrize("width", [200, 80, 60, 40, 20])
def test_task_subset_and_main_score_are_never_cut(width):
    lines = summary_lines(outcomes(), width)
    text = "\n".join(line for line, _ in lines)
    for o in outcomes():
        assert o.task in text and o.subset in text
        if o.main_score is not None:
            assert f"{o.main_score_name}={o.main_score:.4f}" in text
    assert "imagevec-multilingual-language-unaware · seed 0" in text and "cnn-mean · seed 1" in text
    if width >= 80:
        assert all(len(line) <= width for line, _ in lines)
        assert "coverage" in text and "scored" in text and "found" in text  # room for every column
    if width == 200:
        assert not any(line.startswith(LONG_TASK + " / ") for line, _ in lines)  # one line per unit
    elif width == 60:
        assert all(len(line) <= width for line, status in lines if status is not None)  # score rows fit


def test_the_table_at_80_and_60_columns_from_the_command_line(tmp_path):
    vectors = tmp_path / "tiny.vec"
    vectors.write_text("cat 1 0 0\ndog 0 1 0\n", encoding="utf-8")
    args = ["eval", "--model", f"vectors:{vectors}", "--task", "wordsim-en", "--device", "cpu",
            "--output-dir", tmp_path / "res", "--data-dir", REPO_ROOT.parent / "shared" / "data"]
    import os

    for width in (80, 60):
        env = {**os.environ, "COLUMNS": str(width)}
        result = run_cli(args, env=env)
        if result.returncode == 1 and "needs" in result.stderr:
            pytest.skip("real benchmark data not found")
        assert result.returncode == 0, result.stderr
        rows = [line for line in result.stdout.splitlines() if line.startswith("wordsim-en")]
        assert rows and all(len(line) <= width and "spearman=" in line for line in rows), result.stdout
        assert "╭" not in result.stdout and "\x1b[" not in result.stdout  # plain text when not a terminal


def test_formats_csv_and_json_are_data_only(tmp_path, shared_data, capsys):
    vectors = tmp_path / "tiny.vec"
    vectors.write_text("cat 1 0 0\ndog 0 1 0\nking 1 1 0\nqueen 1 1 1\n", encoding="utf-8")
    base = ["eval", "--model", f"vectors:{vectors}", "--set", "shared_vocabulary=true", "--task", "rg65-xling",
            "--device", "cpu",
            "--output-dir", str(tmp_path / "res"), "--data-dir", str(shared_data)]
    assert main(base + ["--format", "json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert len(rows) == 7 and all(r["status"] == "done" and r["record"]["main_score"] == r["main_score"] for r in rows)
    assert "7 record(s) written" in captured.err
    assert main(base + ["--format", "csv"]) == 0  # a rerun: the rows it found
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["status"] for r in table] == ["exists"] * 7
    assert {r["subset"]: float(r["main_score"]) for r in table} == {r["subset"]: r["main_score"] for r in rows}
    assert main(base + ["--format", "yaml"]) == 2


def test_version_and_short_help(capsys):
    import mmbench

    assert main(["--version"]) == 0
    assert f"mmbench {mmbench.__version__}" in capsys.readouterr().out
    assert main(["-h"]) == 0
    assert "Usage" in capsys.readouterr().out
    assert main(["run", "-h"]) == 0
    assert "--limit" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "code", "expected"), [
    (["run", "--model", "cnn-maen", "--task", "rg65-xling"], 1, "did you mean 'cnn-mean'"),
    (["run", "--model", "cnn-mean", "--task", "rg65-xlign"], 1, "did you mean 'rg65-xling'"),
    (["run", "--model", "cnn-mean", "--suite", "defualt"], 1, "did you mean 'default'"),
    (["list", "tasks", "--kind", "retreival"], 1, "did you mean 'retrieval'"),
    (["list", "taks"], 1, "did you mean 'tasks'"),
    (["run", "--model", "cnn-mean"], 2, "no task given"),
    (["run", "--model", "cnn-mean", "--task", "rg65-xling", "--no-such-option"], 2, "No such option"),
    (["run", "--model", "cnn-mean", "--task", "rg65-xling", "--limit", "0"], 2, "--limit"),
])
def test_mistyped_names_suggest_and_exit_codes_are_consistent(tmp_path, capsys, args, code, expected):
    assert main([*args, *(["--output-dir", str(tmp_path)] if args[0] == "run" else [])]) == code
    captured = capsys.readouterr()
    assert expected in " ".join((captured.out + captured.err).split())


def test_list_tasks_filters_and_data_column(capsys, shared_data):
    assert main(["list", "tasks", "--kind", "word-similarity", "--data-dir", str(shared_data)]) == 0
    text = capsys.readouterr().out
    assert "rg65-xling" in text and "wordsim-en" in text and "emoji-retrieval" not in text
    assert "yes" in text and "data" in text
    assert main(["list", "tasks", "--language", "de", "--suite", "seeds"]) == 0
    text = capsys.readouterr().out
    assert "wordsim-de" in text and "wordsim-fr" not in text
    assert main(["list", "tasks", "--kind", "retrieval", "--data-dir", str(shared_data)]) == 0
    text = capsys.readouterr().out
    coco = next(line for line in text.splitlines() if "coco-1k" in line)
    emoji = next(line for line in text.splitlines() if "emoji-retrieval " in line)
    assert " no " in coco and "embedded" in emoji


def test_list_tasks_is_readable_at_80_columns():
    import os

    result = run_cli(["list", "tasks"], env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = {line.split()[0]: line.split() for line in lines if line.strip() and line.split()[0] in
            ("rg65-xling", "caption-xling-emoji", "visual-bli-bergsma500", "rcv")}
    # One line per task, name and kind whole (never broken into fragments), then the data column.
    assert rows["rg65-xling"][1:2] == ["word-similarity"] and rows["rcv"][1:2] == ["document-classification"]
    assert rows["caption-xling-emoji"][1:3] == ["caption-retrieval", "embedded"]
    assert rows["visual-bli-bergsma500"][1] == "visual-bli"


def test_data_verify_separates_missing_from_corrupt(tmp_path, shared_data, capsys):
    import shutil

    assert main(["data", "verify", "--data-dir", str(shared_data)]) == 0  # COCO is missing: not an error
    captured = capsys.readouterr()
    assert "missing" in captured.out and "0 corrupt" in captured.out
    copy = tmp_path / "data"
    shutil.copytree(shared_data / "wordsim", copy / "wordsim")
    damaged = copy / "wordsim" / "crosslingual" / "en+de.rg65.test.txt"
    damaged.write_text(damaged.read_text(encoding="utf-8") + "x\n", encoding="utf-8")
    assert main(["data", "verify", "--data-dir", str(copy), "--task", "rg65-xling", "--task", "wordsim-en"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "corrupt" in out and "1 corrupt" in out and "does not match" in out


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_says_interrupted_and_how_to_resume(plugin_env, shared_data, tmp_path):
    args = [sys.executable, "-m", "mmbench", "run", "--model", "charhash", "--task", "wordsim-en", "--device", "cpu",
            "--set", "delay=2", "--output-dir", str(tmp_path), "--data-dir", str(shared_data)]
    # A shell that runs the tests in the background ignores SIGINT and children inherit that: give the run
    # the default disposition, as a terminal's Ctrl-C finds it.
    process = subprocess.Popen(args, env=plugin_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Interrupt once a record exists: the run is then in its scoring loop, whose time is charhash's Python
    # sleep (2 s a call). A SIGINT that lands inside a C++ extension's callback (torch's pybind11) can abort
    # the interpreter before Python sees it; no Python code can catch that, so the test avoids that window.
    deadline = time.monotonic() + 120
    while not [p for p in tmp_path.rglob("*.json") if ".runs" not in p.parts] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "rerun" in stderr and "to resume" in stderr and "Traceback" not in stderr
