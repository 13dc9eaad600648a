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
from mmbench.errors import PluginError
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
        register(ToyModel, name="cnn-mean")  # would be refused, but nothing of a failed plugin is claimed
        raise RuntimeError("boom while registering")

    _, registry = plugins.load_plugins(extra_modules=(make_module("bad_plugin", register_models=register_models),))
    info = registry.plugins["bad_plugin"]
    assert info.error == "RuntimeError: boom while registering"
    assert "toy" not in registry.models and info.registered == []
    assert info.conflicts == [] and registry.conflicts == []
    assert "vectors" in registry.models and registry.models["cnn-mean"].plugin == "cnn_mean"  # the others still work


def test_invalid_hookimpl_and_duplicate_names_are_reported():
    @mmbench.hookimpl
    def register_models(wrong_argument):  # pluggy validates hookimpl signatures
        pass

    @mmbench.hookimpl
    def register_twice(register):
        register(ToyModel)
        register(ToyModel, name="toy")

    dup = make_module("dup_plugin")
    dup.register_models = mmbench.hookimpl(lambda register: register(ToyModel, name="vectors"))
    twice = make_module("twice_plugin", register_models=register_twice)
    _, registry = plugins.load_plugins(
        extra_modules=(make_module("sig_plugin", register_models=register_models), dup, twice))
    assert "wrong_argument" in registry.plugins["sig_plugin"].error
    # A plugin that registers one name twice is broken: rolled back as a whole.
    assert "'toy' is registered twice by this plugin" in registry.plugins["twice_plugin"].error
    assert "toy" not in registry.models and registry.plugins["twice_plugin"].registered == []
    # Another plugin's name is refused, not an error: the plugin loads, the name stays with its owner.
    info = registry.plugins["dup_plugin"]
    assert info.error is None and info.registered == []
    assert info.conflicts == ["model 'vectors' is first-party (plugin 'vectors'), "
                              "so the registration by 'dup_plugin' was refused"]
    assert registry.models["vectors"].plugin == "vectors"


@dataclass
class FakeEntryPoint:
    """An installed entry point as ``importlib.metadata`` describes it: name, value, dist, load()."""

    name: str
    module: types.ModuleType
    dist_name: str
    group: str = "mmbench"

    @property
    def value(self) -> str:
        return self.module.__name__

    @property
    def dist(self):
        return types.SimpleNamespace(name=self.dist_name, version="9.9.9")

    def load(self):
        return self.module


def install_entry_points(monkeypatch, *fakes: FakeEntryPoint) -> None:
    """The real entry points (mmbench's own) plus ``fakes``, as if their distributions were installed."""
    import importlib.metadata

    real = list(importlib.metadata.entry_points(group="mmbench"))
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [ep for ep in real + list(fakes) if ep.group == group])


def test_first_party_names_cannot_be_taken_over(monkeypatch):
    """A third-party plugin that loads alphabetically first cannot take a first-party model or task kind."""

    class Impostor(ToyModel):
        name = "imagevec"

    @mmbench.hookimpl
    def register_models(register):
        register(Impostor)
        register(ToyModel, name="fp-model")
        register(ToyModel, name="toy-extra")

    class FakeRetrieval(TaskKind):
        name = "retrieval"

    @mmbench.hookimpl
    def register_task_kinds(register):
        register(FakeRetrieval())

    @mmbench.hookimpl
    def register_first_party(register):
        register(ToyModel, name="fp-model", defaults={"dim": 2})

    impostor = make_module("aaa_impostor", register_models=register_models)
    kind_impostor = make_module("aab_kind_impostor", register_task_kinds=register_task_kinds)
    first = make_module("zzz_first", register_models=register_first_party)
    install_entry_points(monkeypatch, FakeEntryPoint("aaa_impostor", impostor, "mmbench-impostor"),
                         FakeEntryPoint("aab_kind_impostor", kind_impostor, "mmbench-impostor"),
                         FakeEntryPoint("zzz_first", first, "mmbench"))  # a first-party entry point named last
    _, registry = plugins.load_plugins()

    assert registry.models["imagevec"].plugin == "imagevec" and registry.models["imagevec"].cls is not Impostor
    assert resolve_model(registry, "imagevec").entry.plugin == "imagevec"  # what `mmbench run --model imagevec` uses
    assert registry.models["fp-model"].plugin == "zzz_first" and registry.plugins["zzz_first"].first_party
    assert registry.task_kinds["retrieval"] is registry.task_kind("retrieval")
    assert registry.owners[("task-kind", "retrieval")] == "mmbench.kinds.retrieval"
    # The impostor's other names still load; every refused one is reported on its PluginInfo.
    info = registry.plugins["aaa_impostor"]
    assert info.error is None and not info.first_party and info.registered == ["model:toy-extra"]
    assert registry.models["toy-extra"].plugin == "aaa_impostor"
    assert info.conflicts == [
        "model 'imagevec' is first-party (plugin 'imagevec'), so the registration by 'aaa_impostor' was refused",
        "model 'fp-model' is first-party (plugin 'zzz_first'), so the registration by 'aaa_impostor' was refused",
    ]
    assert registry.plugins["aab_kind_impostor"].conflicts == [
        "task-kind 'retrieval' is first-party (plugin 'mmbench.kinds.retrieval'), "
        "so the registration by 'aab_kind_impostor' was refused"]
    assert plugins.Conflict("model", "imagevec", ["aaa_impostor"], owner="imagevec") in registry.conflicts
    assert registry.plugins["imagevec"].conflicts == []  # the owner has nothing to fix


def test_an_entry_point_name_taken_by_another_distribution_is_reported(monkeypatch):
    @mmbench.hookimpl
    def register_models(register):
        register(ToyModel, name="vectors-impostor")

    install_entry_points(monkeypatch, FakeEntryPoint("vectors", make_module("evil_vectors",
                                                                             register_models=register_models), "evil"))
    _, registry = plugins.load_plugins()
    assert registry.plugins["vectors"].distribution == "mmbench" and registry.models["vectors"].plugin == "vectors"
    info = registry.plugins["evil:vectors"]
    assert info.error.startswith("entry point name 'vectors' is already used by distribution 'mmbench'")
    assert "vectors-impostor" not in registry.models


def test_core_and_ambiguous_commands_are_refused():
    def run():
        print("an impostor")

    def hello():
        print("hello")

    def bye():
        print("bye")

    @mmbench.hookimpl
    def register_commands_a(register):
        register(run)  # named after the function, as Typer names it
        register(hello)
        register(bye)

    @mmbench.hookimpl
    def register_commands_b(register):
        register(hello, name="hello")
        register(bye, name="data")

    _, registry = plugins.load_plugins(extra_modules=(
        make_module("cmd_a", register_commands=register_commands_a),
        make_module("cmd_b", register_commands=register_commands_b),
    ))
    from mmbench import cli  # every command of the core CLI is reserved, and nothing else

    core = ({c.name for c in cli.app.registered_commands if c.callback.__module__ == cli.__name__}
            | {g.name for g in cli.app.registered_groups})  # plugin commands join the app once main() ran
    assert plugins.CORE_COMMANDS == core and {"run", "eval", "data", "plot-training"} <= core
    ours = [(function, name, plugin) for function, name, _help, plugin in registry.commands
            if plugin in ("cmd_a", "cmd_b")]  # installed plugins may add commands of their own
    assert ours == [(bye, "bye", "cmd_a")]
    ambiguous = ("command 'hello' is registered by two plugins, 'cmd_a' and 'cmd_b', so neither is used; "
                 "uninstall one or restrict with MMBENCH_LOAD_PLUGINS")
    assert registry.plugins["cmd_a"].conflicts == [
        "command 'run' is a core mmbench command, so the registration by 'cmd_a' was refused", ambiguous]
    assert registry.plugins["cmd_b"].conflicts == [
        ambiguous, "command 'data' is a core mmbench command, so the registration by 'cmd_b' was refused"]
    assert registry.plugins["cmd_a"].registered == ["command:bye"]
    assert registry.plugins["cmd_b"].registered == []


def test_a_model_or_kind_name_claimed_by_two_plugins_is_used_by_neither():
    class Echo(TaskKind):
        name = "echo"

    @mmbench.hookimpl
    def register_models_a(register):
        register(ToyModel, name="foo")

    @mmbench.hookimpl
    def register_models_b(register):
        register(ToyModel, name="foo")
        register(ToyModel, name="foo-b")

    @mmbench.hookimpl
    def register_task_kinds(register):
        register(Echo())

    a = make_module("a", register_models=register_models_a, register_task_kinds=register_task_kinds)
    b = make_module("b", register_models=register_models_b, register_task_kinds=register_task_kinds)
    c = make_module("c", register_models=register_models_a)
    _, registry = plugins.load_plugins(extra_modules=(a, b, c))

    assert "foo" not in registry.models and "echo" not in registry.task_kinds
    with pytest.raises(PluginError) as excinfo:
        resolve_model(registry, "foo")  # `mmbench run --model foo` fails instead of picking one
    message = ("model 'foo' is registered by three plugins, 'a', 'b' and 'c', so none is used; "
               "uninstall all but one or restrict with MMBENCH_LOAD_PLUGINS")
    assert str(excinfo.value) == message
    with pytest.raises(PluginError, match="task-kind 'echo' is registered by two plugins, 'a' and 'b'"):
        registry.task_kind("echo")
    assert registry.plugins["a"].registered == [] and registry.plugins["b"].registered == ["model:foo-b"]
    assert registry.plugins["c"].conflicts == [message]
    assert message in registry.plugins["a"].conflicts and message in registry.plugins["b"].conflicts
    assert plugins.Conflict("model", "foo", ["a", "b", "c"]) in registry.conflicts
    assert registry.models["foo-b"].plugin == "b"


def test_unknown_names_suggest_close_matches():
    _, registry = plugins.load_plugins()
    with pytest.raises(PluginError) as excinfo:
        registry.model("cnn-maen")
    assert str(excinfo.value).startswith("unknown model 'cnn-maen'; did you mean 'cnn-mean'? (known: ")
    assert "imagevec-300d" in str(excinfo.value) and "see `mmbench plugins`" in str(excinfo.value)
    with pytest.raises(PluginError, match="unknown task kind 'retreival'; did you mean 'retrieval'"):
        registry.task_kind("retreival")
    with pytest.raises(PluginError) as excinfo:
        registry.model("zzzzzz")
    assert "did you mean" not in str(excinfo.value) and "cnn-mean" in str(excinfo.value)


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
