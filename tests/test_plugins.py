"""The plugin system: entry points, allow-list, isolation of broken plugins, and every hook."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass

import numpy as np
import pytest

import mmbench
from mmbench import plugins
from mmbench.cards import parse_card
from mmbench.kinds import Score, TaskKind
from mmbench.runner import RunOptions, resolve_model, run

from conftest import run_cli


def make_module(name: str, **functions) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in functions.items():
        setattr(module, key, value)
    return module


@dataclass(frozen=True)
class ToyConfig:
    dim: int = 4
    scale: float = 1.0


class ToyModel(mmbench.Model):
    name = "toy"
    Config = ToyConfig
    capabilities = frozenset({mmbench.Capability.WORDS})

    def embed_words(self, words, language):
        vectors = np.array([[len(w) * self.config.scale] * self.config.dim for w in words], dtype=np.float32)
        return vectors, np.ones(len(words), dtype=bool)


def test_first_party_models_come_through_the_entry_point_group():
    import importlib.metadata

    _, registry = plugins.load_plugins()
    entry_points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="mmbench")}
    assert entry_points["vectors"] == "mmbench_plugins.vectors"
    assert entry_points["cnn_mean"] == "mmbench_plugins.cnn_mean"
    info = registry.plugins["vectors"]
    assert info.distribution == "mmbench" and info.error is None and not info.builtin
    assert "model:vectors" in info.registered
    assert registry.models["cnn-mean"].plugin == "cnn_mean"
    # Core task kinds are default plugins, registered through the same hooks.
    for module in plugins.DEFAULT_PLUGINS:
        assert registry.plugins[module].builtin and registry.plugins[module].error is None
    assert {"word-similarity", "retrieval"} <= set(registry.task_kinds)


def test_allow_list_restricts_entry_points(monkeypatch):
    monkeypatch.setenv("MMBENCH_LOAD_PLUGINS", "vectors")
    _, registry = plugins.load_plugins()
    assert set(registry.models) == {"vectors"}
    assert "word-similarity" in registry.task_kinds  # core kinds always load
    monkeypatch.setenv("MMBENCH_LOAD_PLUGINS", "")
    _, registry = plugins.load_plugins()
    assert registry.models == {}


def test_hook_register_models():
    @mmbench.hookimpl
    def register_models(register):
        register(ToyModel)
        register(ToyModel, name="toy-wide", defaults={"dim": 16}, description="wide toy")

    _, registry = plugins.load_plugins(extra_modules=(make_module("toy_plugin", register_models=register_models),))
    assert registry.plugins["toy_plugin"].registered == ["model:toy", "model:toy-wide"]
    wide = resolve_model(registry, "toy-wide", ["scale=2"])
    assert wide.model.config == ToyConfig(dim=16, scale=2.0)
    assert registry.models["toy-wide"].description == "wide toy"
    plain = resolve_model(registry, "toy")
    assert plain.config_hash != wide.config_hash


def test_hook_register_task_kinds(tmp_path):
    class MeanLength(TaskKind):
        name = "mean-length"
        requires = frozenset({mmbench.Capability.WORDS})
        scores = {"mean_norm": True}
        needs_files = False

        def evaluate(self, model, card, subset, ctx):
            words = card.params["words"]
            vectors, found = model.embed_words(words, subset.languages[0])
            return Score({"mean_norm": float(np.linalg.norm(vectors, axis=1).mean())}, n_items=len(words),
                         coverage=float(found.mean()))

    @mmbench.hookimpl
    def register_task_kinds(register):
        register(MeanLength())

    @mmbench.hookimpl
    def register_models(register):
        register(ToyModel)

    module = make_module("kind_plugin", register_task_kinds=register_task_kinds, register_models=register_models)
    _, registry = plugins.load_plugins(extra_modules=(module,))
    assert registry.plugins["kind_plugin"].registered == ["model:toy", "task-kind:mean-length"]
    card = parse_card({
        "name": "lengths", "kind": "mean-length", "description": "d", "main_score": "mean_norm",
        "protocol": "p", "license": "l", "citation": "", "splits": ["test"], "params": {"words": ["ab", "abcd"]},
        "subsets": [{"name": "en", "languages": ["en"]}],
    }, "lengths.toml")
    outcomes = run(registry, [resolve_model(registry, "toy")], [card],
                   RunOptions(results_dir=tmp_path, data_dir=tmp_path))
    assert [o.status for o in outcomes] == ["done"]
    record = json.loads(outcomes[0].path.read_text())
    assert record["main_score"] == pytest.approx(np.mean([2 * 2, 4 * 2]))  # |(l,l,l,l)| = 2l
    assert record["task_kind"] == "mean-length" and record["coverage"] == 1.0


def test_hook_register_commands(monkeypatch, capsys):
    def hello(name: str = "world"):
        """Say hello."""
        print(f"hello {name}")

    @mmbench.hookimpl
    def register_commands(register):
        register(hello, name="hello")

    loaded = plugins.load_plugins(extra_modules=(make_module("cmd_plugin", register_commands=register_commands),))
    monkeypatch.setattr(plugins, "_CACHED", loaded)
    from mmbench.cli import main

    assert main(["hello", "--name", "mmbench"]) == 0
    assert "hello mmbench" in capsys.readouterr().out


def test_failing_hook_is_reported_and_rolled_back():
    @mmbench.hookimpl
    def register_models(register):
        register(ToyModel)
        raise RuntimeError("boom while registering")

    _, registry = plugins.load_plugins(extra_modules=(make_module("bad_plugin", register_models=register_models),))
    info = registry.plugins["bad_plugin"]
    assert info.error == "RuntimeError: boom while registering"
    assert "toy" not in registry.models and info.registered == []
    assert "vectors" in registry.models  # the others still work


def test_invalid_hookimpl_and_duplicate_names_are_reported():
    @mmbench.hookimpl
    def register_models(wrong_argument):  # pluggy validates hookimpl signatures
        pass

    dup = make_module("dup_plugin")
    dup.register_models = mmbench.hookimpl(lambda register: register(ToyModel, name="vectors"))
    _, registry = plugins.load_plugins(extra_modules=(make_module("sig_plugin", register_models=register_models), dup))
    assert "wrong_argument" in registry.plugins["sig_plugin"].error
    assert "already registered" in registry.plugins["dup_plugin"].error
    assert registry.models["vectors"].plugin == "vectors"


def test_installed_third_party_plugin_is_listed_and_runs(plugin_env, shared_data, tmp_path):
    listing = run_cli(["plugins"], env=plugin_env)
    assert listing.returncode == 0, listing.stderr
    charhash_row = next(line for line in listing.stdout.splitlines() if "mmbench-charhash" in line)
    assert "0.3.1" in charhash_row and "model:charhash" in charhash_row
    broken_row = next(line for line in listing.stdout.splitlines() if "mmbench-broken" in line)
    assert "this plugin is broken on purpose" in broken_row

    models = run_cli(["list", "models"], env=plugin_env)
    assert models.returncode == 0 and "charhash-128" in models.stdout and "cnn-mean" in models.stdout

    result = run_cli(["run", "--model", "charhash-128", "--task", "rg65-xling", "--data-dir", shared_data,
                      "--output-dir", tmp_path / "res", "--device", "cpu"], env=plugin_env)
    assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "res").rglob("*.json")]
    assert len(records) == 7  # six pairs + the mean over pairs
    assert {r["model"] for r in records} == {"charhash-128"}
    assert all(r["config"]["dim"] == 128 and r["provenance"]["plugin_version"] == "0.3.1" for r in records)
    # Spelling overlap correlates with similarity across these related languages.
    aggregate = next(r for r in records if r["subset"] == "all")
    assert 0.05 < aggregate["main_score"] < 0.9


def test_allow_list_in_a_subprocess_skips_the_broken_plugin(plugin_env):
    plugin_env["MMBENCH_LOAD_PLUGINS"] = "charhash"
    listing = run_cli(["plugins"], env=plugin_env)
    assert listing.returncode == 0
    assert "mmbench-broken" not in listing.stdout and "charhash" in listing.stdout
    assert "vectors" not in listing.stdout.replace("mmbench.kinds", "")


def test_hook_tracing(plugin_env):
    plugin_env["MMBENCH_TRACE_HOOKS"] = "1"
    result = run_cli(["list", "kinds"], env=plugin_env)
    assert result.returncode == 0
    assert "register_models" in result.stderr and "register_task_kinds" in result.stderr
