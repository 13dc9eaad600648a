"""`mmbench run` end to end: idempotent reruns, kill and resume, contained failures, one-line errors."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from conftest import run_cli


def records_in(directory: Path) -> dict[str, dict]:
    return {p.relative_to(directory).as_posix(): json.loads(p.read_text())
            for p in directory.rglob("*.json") if not any(part.startswith(".") for part in p.relative_to(directory).parts)}


def base_args(shared_data, out, *extra):
    return ["run", "--data-dir", shared_data, "--output-dir", out, "--device", "cpu", *extra]


def test_second_run_does_no_work(plugin_env, shared_data, tmp_path):
    args = base_args(shared_data, tmp_path / "res", "--model", "charhash", "--task", "rg65-xling")
    first = run_cli(args, env=plugin_env)
    assert first.returncode == 0, first.stderr
    before = records_in(tmp_path / "res")
    assert len(before) == 7
    markers = list((tmp_path / "res" / ".runs").rglob("prepared.txt"))
    assert len(markers) == 1 and markers[0].read_text() == "x"

    second = run_cli(args, env=plugin_env)
    assert second.returncode == 0
    # Aggregates count like every other record, and a rerun shows the scores it found.
    assert "0 record(s) written" in second.stdout and "7 record(s) already existed" in second.stdout
    found = [line.split() for line in second.stdout.splitlines() if " found" in line]
    assert len(found) == 7 and all(row[2].startswith("spearman=") for row in found)
    assert {row[2] for row in found} == {f"spearman={r['main_score']:.4f}" for r in before.values()}
    assert markers[0].read_text() == "x"  # the model was not even prepared
    assert records_in(tmp_path / "res") == before

    third = run_cli(args + ["--overwrite"], env=plugin_env)
    assert third.returncode == 0 and "7 record(s) written" in third.stdout
    assert markers[0].read_text() == "xx"


def test_killed_run_leaves_no_partial_record_and_resumes(plugin_env, shared_data, tmp_path):
    out = tmp_path / "res"
    args = base_args(shared_data, out, "--model", "charhash", "--task", "wordsim-en", "--set", "delay=0.4")
    process = subprocess.Popen([sys.executable, "-m", "mmbench", *map(str, args)], env=plugin_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.rglob("*.json"))) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = records_in(out)  # every file parses: json.loads would raise on a torn record
    assert 3 <= len(partial) < 14

    resumed = run_cli(args, env=plugin_env)
    assert resumed.returncode == 0, resumed.stderr
    final = records_in(out)
    assert len(final) == 14  # 13 sets + the mean over sets, each exactly once
    assert len({r["record_id"] for r in final.values()}) == 14
    for path, record in partial.items():
        assert final[path] == record  # finished work was kept, not redone
    assert not [p for p in out.rglob("*.tmp")]  or all(p.name.startswith(".") for p in out.rglob("*.tmp"))


def test_third_party_scores_match_an_independent_computation(plugin_env, shared_data, tmp_path):
    result = run_cli(base_args(shared_data, tmp_path, "--model", "charhash", "--task", "rg65-xling"), env=plugin_env)
    assert result.returncode == 0, result.stderr
    record = next(r for r in records_in(tmp_path).values() if r["subset"] == "en-de")
    sys.path.insert(0, plugin_env["PYTHONPATH"].split(":")[0])
    from mmbench_charhash import CharHash  # the installed plugin module itself

    model = CharHash()
    gold, sims = [], []
    for name in ("dev", "test"):
        for line in (shared_data / f"wordsim/crosslingual/en+de.rg65.{name}.txt").read_text().splitlines():
            left, right, score = line.split("\t")
            (a, _), (b, _) = model.embed_words([left[3:]], "en"), model.embed_words([right[3:]], "de")
            sims.append(float(a[0] @ b[0] / (np.linalg.norm(a[0]) * np.linalg.norm(b[0]))))
            gold.append(float(score))
    assert record["n_items"] == 125 and record["coverage"] == 1.0
    assert abs(record["main_score"] - spearmanr(sims, gold).correlation) < 1e-9


def test_one_crashing_model_does_not_stop_the_others(plugin_env, shared_data, tmp_path):
    corrupt = tmp_path / "corrupt.vec"
    corrupt.write_text("2 3\nen:cat 0.1 0.2 0.3\nen:dog 0.1 oops\n")
    result = run_cli(base_args(shared_data, tmp_path / "res", "--model", f"vectors:{corrupt}", "--model", "charhash",
                               "--task", "rg65-xling"), env=plugin_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{corrupt}:3" in " ".join(result.stderr.split())  # the error names file and line
    records = records_in(tmp_path / "res")
    assert len(records) == 7 and {r["model"] for r in records.values()} == {"charhash"}


def test_nan_embeddings_are_an_error_not_a_record(plugin_env, shared_data, tmp_path):
    result = run_cli(base_args(shared_data, tmp_path, "--model", "charhash", "--task", "rg65-xling",
                               "--set", "fail=nan"), env=plugin_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "non-finite" in result.stderr or "NaN" in result.stderr
    assert records_in(tmp_path) == {}


def test_user_errors_are_one_line(plugin_env, shared_data, tmp_path):
    cases = [
        (["--model", "no-such-model", "--task", "rg65-xling"], "unknown model"),
        (["--model", "charhash", "--task", "no-such-task"], "unknown task"),
        (["--model", "charhash", "--task", "rg65-xling", "--set", "dim=abc"], "expected int"),
        (["--model", "charhash", "--task", "rg65-xling", "--set", "nope=1"], "no config key"),
        (["--model", "vectors", "--task", "rg65-xling"], "needs an argument"),
        (["--model", "charhash", "--task", "rg65-xling", "--device", "tpu"], "unknown device"),
    ]
    for extra, expected in cases:
        result = run_cli(base_args(shared_data, tmp_path, *extra), env=plugin_env)
        assert result.returncode != 0, extra
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], (extra, result.stderr)


def test_missing_data_is_reported_per_task(plugin_env, tmp_path):
    result = run_cli(base_args(tmp_path / "empty", tmp_path / "res", "--model", "charhash", "--task", "rg65-xling"),
                     env=plugin_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "wordsim/crosslingual/en+de.rg65.dev.txt" in result.stderr and "MMBENCH_DATA" in result.stderr
    assert records_in(tmp_path / "res") == {}


def test_suite_skips_a_card_whose_data_is_not_installed(plugin_env, tmp_path):
    cards = tmp_path / "cards"
    write_card(cards, "my-sim", PAIRS)
    absent = write_card(cards, "absent-sim", PAIRS)
    absent.with_suffix(".tsv").unlink()  # the user has not installed this set (e.g. COCO)
    args = ["--tasks-dir", cards, "--model", "charhash", "--output-dir", tmp_path / "res", "--data-dir", tmp_path]
    suite = run_cli(["run", "--suite", "mine", *args], env=plugin_env)
    assert suite.returncode == 0, suite.stderr
    assert "data not installed: absent-sim.tsv" in suite.stdout + suite.stderr
    assert [r["task"] for r in records_in(tmp_path / "res").values()] == ["my-sim"]
    named = run_cli(["run", "--task", "absent-sim", *args], env=plugin_env)  # asked for by name: an error
    assert named.returncode == 1 and "absent-sim.tsv" in named.stderr


def write_card(directory: Path, name: str, pairs: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / f"{name}.tsv"
    data.write_text(pairs, encoding="utf-8")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    card = directory / f"{name}.toml"
    card.write_text(f'''
name = "{name}"
kind = "word-similarity"
description = "A user's own similarity set"
main_score = "spearman"
protocol = "user/v1"
license = "CC0"
citation = ""
splits = ["test"]
suites = ["mine"]

[[subsets]]
name = "en"
languages = ["en"]
files = [{{ path = "{data.name}", sha256 = "{digest}", base = "card" }}]
''', encoding="utf-8")
    return card


PAIRS = "cat\tcats\t9.0\ncat\tdog\t5.0\nhouse\thouses\t9.5\ncar\tbanana\t0.5\nstone\tstones\t8.0\n"


def test_card_from_tasks_dir_runs_with_its_own_data(plugin_env, tmp_path):
    cards = tmp_path / "cards"
    write_card(cards, "my-sim", PAIRS)
    result = run_cli(["run", "--tasks-dir", cards, "--task", "my-sim", "--model", "charhash", "--output-dir",
                      tmp_path / "res", "--data-dir", tmp_path / "nodata"], env=plugin_env)
    assert result.returncode == 0, result.stderr
    (record,) = records_in(tmp_path / "res").values()
    assert record["n_items"] == 5 and record["protocol"] == "user/v1" and record["coverage"] == 1.0
    assert record["main_score"] > 0.5  # plural pairs share spelling and are rated similar

    plugin_env["MMBENCH_TASKS_PATH"] = str(cards)
    via_env = run_cli(["run", "--suite", "mine", "--model", "charhash", "--output-dir", tmp_path / "res2"], env=plugin_env)
    assert via_env.returncode == 0, via_env.stderr
    assert len(records_in(tmp_path / "res2")) == 1

    assert run_cli(["validate", cards], env=plugin_env).returncode == 0


def test_bad_cards_fail_validation_with_file_and_field(plugin_env, tmp_path):
    cards = tmp_path / "cards"
    card = write_card(cards, "broken-sim", PAIRS)
    card.write_text(card.read_text().replace('main_score = "spearman"', 'main_score = 3'))
    result = run_cli(["validate", cards], env=plugin_env)
    assert result.returncode == 1
    assert "broken-sim.toml" in result.stderr and "main_score" in result.stderr and "expected str" in result.stderr

    run = run_cli(["run", "--tasks-dir", cards, "--task", "broken-sim", "--model", "charhash", "--output-dir",
                   tmp_path / "res"], env=plugin_env)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "main_score" in run.stderr

    tampered = write_card(tmp_path / "cards2", "tampered", PAIRS)
    (tampered.parent / "tampered.tsv").write_text(PAIRS + "sun\tmoon\t3.0\n")
    run = run_cli(["run", "--tasks-dir", tampered.parent, "--task", "tampered", "--model", "charhash",
                   "--output-dir", tmp_path / "res"], env=plugin_env)
    assert run.returncode == 1 and "does not match" in run.stderr


def test_eval_and_leaderboard(plugin_env, shared_data, tmp_path):
    vectors = tmp_path / "tiny.vec"
    rng = np.random.default_rng(0)
    words = ["cat", "dog", "car", "automobile", "gem", "jewel"]
    vectors.write_text("".join(f"{w} " + " ".join(f"{x:.5f}" for x in rng.standard_normal(8)) + "\n" for w in words))
    result = run_cli(["eval", "--model", f"vectors:{vectors}", "--task", "wordsim-en", "--data-dir", shared_data,
                      "--output-dir", tmp_path / "res"], env=plugin_env)
    assert result.returncode == 0, result.stderr
    records = records_in(tmp_path / "res")
    rg = next(r for r in records.values() if r["subset"] == "rg-65")
    assert 0 < rg["coverage"] < 0.1 and rg["details"]["oov_policy"] == "drop"

    board = run_cli(["leaderboard", "--results-dir", tmp_path / "res", "--output-dir", tmp_path / "lb"], env=plugin_env)
    assert board.returncode == 0, board.stderr
    page = (tmp_path / "lb" / "wordsim-en.md").read_text()
    assert "vectors:tiny.vec" in page and "Coverage" in page


def test_only_rank_zero_scores_and_writes(plugin_env, shared_data, tmp_path):
    """Under torchrun every rank prepares (trains) the model; only rank 0 evaluates and writes."""
    args = base_args(shared_data, tmp_path, "--model", "charhash", "--task", "rg65-xling")
    worker = run_cli(args, env={**plugin_env, "RANK": "1", "WORLD_SIZE": "2"})
    assert worker.returncode == 0, worker.stderr
    assert records_in(tmp_path) == {} and worker.stdout.strip() == ""
    assert len(list((tmp_path / ".runs").rglob("prepared.txt"))) == 1  # it did prepare
    main = run_cli(args, env={**plugin_env, "RANK": "0", "WORLD_SIZE": "2"})
    assert main.returncode == 0 and len(records_in(tmp_path)) == 7


def test_debug_flag_shows_the_traceback(plugin_env, tmp_path):
    plain = run_cli(["run", "--model", "no-such-model", "--task", "rg65-xling", "-o", tmp_path], env=plugin_env)
    debug = run_cli(["--debug", "run", "--model", "no-such-model", "--task", "rg65-xling", "-o", tmp_path],
                    env=plugin_env)
    assert plain.returncode == debug.returncode == 1
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr


def test_config_file_and_set_reach_the_record(plugin_env, shared_data, tmp_path):
    config = tmp_path / "charhash.toml"
    config.write_text("dim = 32\n")
    result = run_cli(base_args(shared_data, tmp_path / "res", "--model", "charhash", "--task", "rg65-xling",
                               "--config", config), env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert {r["config"]["dim"] for r in records_in(tmp_path / "res").values()} == {32}
    result = run_cli(base_args(shared_data, tmp_path / "res", "--model", "charhash", "--task", "rg65-xling",
                               "--config", config, "--set", "dim=48"), env=plugin_env)
    dims = sorted({(r["config"]["dim"], r["config_hash"]) for r in records_in(tmp_path / "res").values()})
    assert [d for d, _ in dims] == [32, 48] and dims[0][1] != dims[1][1]  # --set wins; a new config is a new model


def test_usage_errors_are_reported_by_the_cli_not_as_internal_errors(plugin_env):
    result = run_cli(["run", "--task", "rg65-xling"], env=plugin_env)
    assert result.returncode == 2
    assert "Missing option" in result.stderr and "--model" in result.stderr
    assert "Internal error" not in result.stderr and "Traceback" not in result.stderr
