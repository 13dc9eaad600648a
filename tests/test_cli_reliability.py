"""The harness never lies (issue 10): damaged records, concurrent runs, plugins that exit or collide,
bad values caught before any work, and exit codes that say whether anything was scored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli


def records_in(directory: Path) -> dict[str, dict]:
    return {p.relative_to(directory).as_posix(): json.loads(p.read_text())
            for p in directory.rglob("*.json") if not any(part.startswith(".") for part in p.relative_to(directory).parts)}


def run_args(shared_data, out, *extra):
    return ["run", "--data-dir", shared_data, "--output-dir", out, "--device", "cpu", *extra]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- damaged records --------------------------------------------------------------------------------
def test_damaged_records_are_recomputed_and_reported(plugin_env, shared_data, tmp_path):
    out = tmp_path / "res"
    args = run_args(shared_data, out, "--model", "charhash", "--task", "rg65-xling")
    assert run_cli(args, env=plugin_env).returncode == 0
    before = records_in(out)
    assert len(before) == 7
    by_subset = {r["subset"]: p for p, r in before.items()}
    (out / by_subset["en-de"]).write_text((out / by_subset["en-de"]).read_text()[:50])  # truncated
    (out / by_subset["en-fr"]).write_text("")  # emptied
    (out / by_subset["all"]).write_text("{}")  # the aggregate, gutted

    rerun = run_cli(args, env=plugin_env)
    assert rerun.returncode == 0, rerun.stderr
    text = " ".join((rerun.stdout + rerun.stderr).split())
    assert "damaged" in text and "4 record(s) already existed" in text
    after = records_in(out)  # every file parses again
    assert set(after) == set(before)
    for path, record in before.items():
        assert after[path]["scores"] == record["scores"]
    markers = list((out / ".runs").rglob("prepared.txt"))
    assert markers[0].read_text() == "xx"  # prepared again, because there was work to do


# -- concurrent runs --------------------------------------------------------------------------------
def test_two_runs_on_one_output_dir_do_the_work_once(plugin_env, shared_data, tmp_path):
    out = tmp_path / "res"
    args = [sys.executable, "-m", "mmbench", *map(str, run_args(shared_data, out, "--model", "charhash",
                                                                 "--task", "rg65-xling", "--set", "delay=0.3"))]
    first = subprocess.Popen(args, env=plugin_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(args, env=plugin_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, results
    records = records_in(out)
    assert len(records) == 7 and len({r["record_id"] for r in records.values()}) == 7
    marker = next((out / ".runs").rglob("prepared.txt"))
    assert marker.read_text() == "x"  # one run prepared and scored; the other waited and found the records
    outputs = " ".join(" ".join(r) for r in results)
    assert "7 record(s) already existed" in outputs
    assert not list(out.rglob("*.tmp"))


def test_stale_temp_files_of_a_killed_run_are_cleaned(plugin_env, shared_data, tmp_path):
    from mmbench import results

    out = tmp_path / "res"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = out / "rg65-xling" / f".x.json.~{results._HOST}~{dead.pid}~abcdef.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"partial": ')
    result = run_cli(run_args(shared_data, out, "--model", "charhash", "--task", "rg65-xling"), env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert not stale.exists()


# -- plugins that end the process -------------------------------------------------------------------
@pytest.mark.parametrize("fail", ["exit", "exit-embed"])
def test_a_plugin_calling_sys_exit_is_contained(plugin_env, shared_data, tmp_path, fail):
    out = tmp_path / "res"
    result = run_cli(run_args(shared_data, out, "--model", "charhash-128", "--model", "charhash",
                              "--task", "rg65-xling", "--set", f"fail={fail}"), env=plugin_env)
    # --set applies to both models: each fails on its own, and the run says so instead of exiting 0.
    assert result.returncode == 1
    assert "tried to end the process" in " ".join(result.stderr.split())
    assert records_in(out) == {}

    mixed = run_cli(["run", "--data-dir", shared_data, "--output-dir", out, "--model", "charhash",
                     "--task", "rg65-xling", "--set", f"fail={fail}"], env=plugin_env)
    good = run_cli(run_args(shared_data, out, "--model", "charhash-128", "--task", "rg65-xling"), env=plugin_env)
    assert mixed.returncode == 1 and good.returncode == 0
    assert {r["model"] for r in records_in(out).values()} == {"charhash-128"}


# -- values checked before any work -----------------------------------------------------------------
def test_bad_values_are_one_line_errors_before_any_work(plugin_env, shared_data, tmp_path):
    vectors = tmp_path / "v.vec"
    vectors.write_text("2 3\nen:cat 0.1 0.2 0.3\nde:katze 0.1 0.2 0.3\n")
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    out = tmp_path / "res"
    cases = [
        (run_args(shared_data, out, "--model", f"vectors:{vectors}", "--task", "rg65-xling", "--set", "max_words=-3"),
         "max_words must be a positive"),
        (run_args(shared_data, out, "--model", "charhash", "--task", "rg65-xling", "--seed", "-1"), "--seed -1"),
        (run_args(shared_data, out, "--model", "charhash", "--task", "rg65-xling", "--seed", str(2**32)), "[0, 2**32)"),
        (run_args(shared_data, a_file, "--model", "charhash", "--task", "rg65-xling"), "cannot write results there"),
        (run_args(shared_data, a_file / "sub", "--model", "charhash", "--task", "rg65-xling"), "cannot write results there"),
        (["eval", "--data-dir", shared_data, "--output-dir", out, "--model", "charhash", "--task", "rg65-xling",
          "--checkpoint", tmp_path / "nonexistent"], "no such checkpoint directory"),
    ]
    for args, expected in cases:
        result = run_cli(args, env=plugin_env)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert expected in one_line(result.stderr), (args, result.stderr)
    assert not out.exists() or records_in(out) == {}
    assert not list(tmp_path.rglob("prepared.txt"))  # no model was prepared


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_output_dir_fails_before_any_work(plugin_env, shared_data, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = run_cli(run_args(shared_data, out, "--model", "charhash", "--task", "rg65-xling"), env=plugin_env)
    finally:
        out.chmod(0o755)
    assert result.returncode == 1 and "cannot write results there" in one_line(result.stderr)


# -- exit codes -------------------------------------------------------------------------------------
def test_a_run_that_scores_nothing_fails_with_the_reason(plugin_env, shared_data, tmp_path):
    # charhash embeds words only; emoji-retrieval needs texts and images: every unit is skipped.
    result = run_cli(run_args(shared_data, tmp_path, "--model", "charhash", "--task", "emoji-retrieval"), env=plugin_env)
    assert result.returncode == 3
    text = " ".join(result.stderr.split())
    assert "lacks capability" in text and "nothing was scored" in text
    # Skips beside real work are fine.
    mixed = run_cli(run_args(shared_data, tmp_path, "--model", "charhash", "--task", "emoji-retrieval",
                             "--task", "rg65-xling"), env=plugin_env)
    assert mixed.returncode == 0, mixed.stderr


# -- name collisions through the installed entry points ---------------------------------------------
IMPOSTOR_MODULE = '''
import numpy as np
import mmbench


class Impostor(mmbench.Model):
    name = "cnn-mean"
    capabilities = frozenset({mmbench.Capability.WORDS})

    def embed_words(self, words, language):
        return np.ones((len(words), 4), dtype=np.float32), np.ones(len(words), dtype=bool)


def hijack():
    """Not the real run."""
    print("HIJACKED")


@mmbench.hookimpl
def register_models(register):
    register(Impostor)
    register(Impostor, name="impostor-own-name")


@mmbench.hookimpl
def register_commands(register):
    register(hijack, name="run")
'''

IMPOSTOR_PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "aaa-impostor"
version = "6.6.6"

[project.entry-points.mmbench]
aaa_impostor = "aaa_impostor"

[tool.setuptools]
py-modules = ["aaa_impostor"]
'''


@pytest.fixture(scope="module")
def impostor_env(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("impostor")
    (root / "pkg").mkdir()
    (root / "pkg" / "pyproject.toml").write_text(IMPOSTOR_PYPROJECT)
    (root / "pkg" / "aaa_impostor.py").write_text(IMPOSTOR_MODULE)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(root / "site"), str(root / "pkg")], check=True, capture_output=True, text=True)
    env = dict(os.environ, PYTHONPATH=str(root / "site"), COLUMNS="250")
    env.pop("MMBENCH_LOAD_PLUGINS", None)
    return env


def test_an_impostor_plugin_cannot_take_a_first_party_model_or_a_core_command(impostor_env, shared_data, tmp_path):
    listing = run_cli(["plugins"], env=impostor_env)
    assert listing.returncode == 0
    text = " ".join((listing.stdout + listing.stderr).split())
    assert "aaa_impostor" in text and "cnn-mean" in text and "run" in text and "name collision" in text

    result = run_cli(run_args(shared_data, tmp_path, "--model", "cnn-mean", "--task", "rg65-xling"),
                     env=impostor_env, timeout=600)
    assert "HIJACKED" not in result.stdout  # the core `run` command ran
    assert result.returncode == 0, result.stderr
    records = list(records_in(tmp_path).values())
    assert records and {r["provenance"]["plugin"] for r in records} == {"cnn_mean"}  # the real model
    assert "name collision" in result.stderr


@pytest.mark.parametrize(
    "spec, key, value, expected",
    [
        ("cnn-mean", "split", "bogus", "split must be one of"),
        ("cnn-mean", "styles", "comic-sans", "styles must be a non-empty subset"),
        ("vectors:x.vec", "max_words", "0", "max_words must be a positive"),
        ("vectors:x.vec", "max_words", "-3", "max_words must be a positive"),
        ("visual-bli-knn", "k", "0", "k and clusters must be >= 1"),
    ],
)
def test_first_party_configs_refuse_values_that_would_score_garbage(spec, key, value, expected):
    from mmbench.errors import ConfigError
    from mmbench.plugins import get_registry
    from mmbench.runner import resolve_model

    with pytest.raises(ConfigError, match=expected):
        resolve_model(get_registry(), spec, [f"{key}={value}"])
