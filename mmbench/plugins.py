"""Plugin loading: pluggy manager, entry points, the allow-list, and the registries hooks fill.

Core task kinds are ``DEFAULT_PLUGINS`` (always loaded). Every model plugin, first-party or not, is found
through the ``mmbench`` entry-point group. ``MMBENCH_LOAD_PLUGINS=a,b`` loads only the named entry points
(empty string: none). A plugin that fails to import or register is recorded and skipped.

Names are guarded (docs/plugins.md, "Name collisions"): first-party plugins (``DEFAULT_PLUGINS`` and the
entry points of the ``mmbench`` distribution) load first and keep their names; a core command name
(``CORE_COMMANDS``) is never given to a plugin; a name claimed by two plugins of the same standing is given to
neither. Each refusal is a ``Conflict`` on ``Registry.conflicts`` and a line on the plugins' ``PluginInfo``.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import PluginError
from .models import Model

ENTRY_POINT_GROUP = "mmbench"
ALLOW_ENV = "MMBENCH_LOAD_PLUGINS"
TRACE_ENV = "MMBENCH_TRACE_HOOKS"
FIRST_PARTY_DISTRIBUTION = "mmbench"

DEFAULT_PLUGINS = (
    "mmbench.kinds.word_similarity",
    "mmbench.kinds.retrieval",
    "mmbench.kinds.bli",
    "mmbench.kinds.visual_bli",
    "mmbench.kinds.matching",
    "mmbench.kinds.caption_retrieval",
    "mmbench.kinds.classification",
)

# The CLI's own commands: a plugin command with one of these names is refused.
CORE_COMMANDS = frozenset({"list", "plugins", "validate", "run", "eval", "leaderboard", "plot-training", "inspect",
                           "data"})
CORE = "mmbench"  # the owner of a core command in a Conflict


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    first_party: bool = False
    registered: list[str] = field(default_factory=list)  # "model:NAME", "task-kind:NAME", "command:NAME" it holds
    error: str | None = None  # why it did not load at all (nothing it registered was kept)
    conflicts: list[str] = field(default_factory=list)  # one line per name it claimed but was refused


@dataclass
class ModelEntry:
    name: str
    cls: type[Model]
    defaults: dict[str, Any]
    description: str
    plugin: str

    @property
    def capabilities(self):
        return self.cls.capabilities


@dataclass
class Conflict:
    """A name some plugins claimed and did not get.

    ``owner`` keeps the name (a first-party plugin, or ``"mmbench"`` for a core command) and every plugin in
    ``plugins`` was refused; with ``owner=None`` the name is ambiguous: all of ``plugins`` claimed it and none
    has it.
    """

    kind: str  # "model", "task-kind" or "command"
    name: str
    plugins: list[str]
    owner: str | None = None

    @property
    def message(self) -> str:
        who = _quoted(self.plugins)
        if self.owner is None:
            count = {2: "two", 3: "three"}.get(len(self.plugins), str(len(self.plugins)))
            none, keep = ("neither", "uninstall one") if len(self.plugins) == 2 else ("none", "uninstall all but one")
            return (f"{self.kind} {self.name!r} is registered by {count} plugins, {who}, so {none} is used; "
                    f"{keep} or restrict with {ALLOW_ENV}")
        refused = (f"the registration by {who} was refused" if len(self.plugins) == 1
                   else f"the registrations by {who} were refused")
        if self.owner == CORE and self.kind == "command":
            return f"command {self.name!r} is a core mmbench command, so {refused}"
        return f"{self.kind} {self.name!r} is first-party (plugin {self.owner!r}), so {refused}"


@dataclass
class Registry:
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    task_kinds: dict[str, Any] = field(default_factory=dict)
    command_table: dict[str, tuple[Callable, str, str | None, str]] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> plugin that holds it

    @property
    def commands(self) -> list[tuple[Callable, str, str | None, str]]:
        """Accepted plugin commands as ``(function, name, help, plugin)``: safe to add to the CLI as they are."""
        return list(self.command_table.values())

    def table(self, kind: str) -> dict[str, Any]:
        return {"model": self.models, "task-kind": self.task_kinds, "command": self.command_table}[kind]

    def conflict(self, kind: str, name: str) -> Conflict | None:
        return next((c for c in self.conflicts if c.kind == kind and c.name == name), None)

    def model(self, name: str) -> ModelEntry:
        return self._lookup("model", name, "see `mmbench plugins`")

    def task_kind(self, name: str):
        return self._lookup("task-kind", name, "see `mmbench list kinds`")

    def _lookup(self, kind: str, name: str, see: str):
        table = self.table(kind)
        if name in table:
            return table[name]
        conflict = self.conflict(kind, name)
        if conflict is not None and conflict.owner is None:
            raise PluginError(conflict.message)
        close = difflib.get_close_matches(name, list(table), n=3)
        hint = f"; did you mean {_quoted(close, 'or')}?" if close else ""
        known = ", ".join(sorted(table)) or "none"
        raise PluginError(f"unknown {kind.replace('-', ' ')} {name!r}{hint} (known: {known}; {see})")


def _quoted(names: list[str], last: str = "and") -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"


def _is_first_party(distribution: str | None) -> bool:
    return distribution is not None and re.sub(r"[-_.]+", "-", distribution).lower() == FIRST_PARTY_DISTRIBUTION


def _allowed(env_value: str | None) -> set[str] | None:
    if env_value is None:
        return None
    return {name.strip() for name in env_value.split(",") if name.strip()}


def _short_error(exc: BaseException) -> str:
    """One line: multi-line messages (pluggy's validation errors) are joined, long ones cut."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def _register_one(pm: pluggy.PluginManager, registry: Registry, info: PluginInfo, module: Any) -> None:
    """Register ``module`` and run its hooks into ``registry``; roll back everything it added on error.

    What the hooks register is staged; only when all of them succeed is each name claimed (``_claim``).
    """

    def stage(kind: str, name: str, value: Any) -> None:
        if (kind, name) in staged:
            raise PluginError(f"{kind} {name!r} is registered twice by this plugin")
        staged[(kind, name)] = value

    def register_model(cls, name=None, defaults=None, description=None):
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise PluginError(f"register_models: {cls!r} is not a mmbench.Model subclass")
        model_name = name or cls.name
        if not model_name or ":" in model_name:
            raise PluginError(f"register_models: invalid model name {model_name!r}")
        desc = description or cls.description or (cls.__doc__ or "").strip().split("\n")[0]
        stage("model", model_name, ModelEntry(model_name, cls, dict(defaults or {}), desc, info.name))

    def register_kind(kind):
        kind_name = getattr(kind, "name", None)
        if not kind_name or not callable(getattr(kind, "evaluate", None)):
            raise PluginError(f"register_task_kinds: {kind!r} has no name or evaluate()")
        stage("task-kind", kind_name, kind)

    def register_command(function, name=None, help=None):
        command_name = name or function.__name__.lower().replace("_", "-")  # Typer's default name
        stage("command", command_name, (function, command_name, help, info.name))

    staged: dict[tuple[str, str], Any] = {}
    pm.register(module, name=info.name)  # validates hookimpl names and signatures
    try:
        # Call this plugin's implementations only, so one plugin's failure cannot hide another's work.
        for hook_name, callback in (
            ("register_models", register_model),
            ("register_task_kinds", register_kind),
            ("register_commands", register_command),
        ):
            others = [plugin for plugin in pm.get_plugins() if plugin is not module]
            pm.subset_hook_caller(hook_name, remove_plugins=others)(register=callback)
    except Exception:
        pm.unregister(name=info.name)
        raise
    for (kind, name), value in staged.items():
        _claim(registry, info, kind, name, value)


def _claim(registry: Registry, info: PluginInfo, kind: str, name: str, value: Any) -> None:
    """Give ``name`` to ``info``'s plugin unless it is a core command, first-party, or already contested."""
    table = registry.table(kind)
    conflict = registry.conflict(kind, name)
    if conflict is not None:  # refused or ambiguous already: one more claimant
        conflict.plugins.append(info.name)
    elif kind == "command" and name in CORE_COMMANDS:
        registry.conflicts.append(Conflict(kind, name, [info.name], owner=CORE))
    elif (kind, name) not in registry.owners:
        table[name] = value
        registry.owners[(kind, name)] = info.name
        info.registered.append(f"{kind}:{name}")
    else:
        holder = registry.plugins[registry.owners[(kind, name)]]
        if holder.first_party and not info.first_party:
            registry.conflicts.append(Conflict(kind, name, [info.name], owner=holder.name))
        else:  # the same standing: neither gets the name
            del table[name], registry.owners[(kind, name)]
            holder.registered.remove(f"{kind}:{name}")
            registry.conflicts.append(Conflict(kind, name, [holder.name, info.name]))


def load_plugins(extra_modules: tuple[Any, ...] = ()) -> tuple[pluggy.PluginManager, Registry]:
    """Build a fresh plugin manager and registry: default plugins, then first-party entry points, then the rest.

    ``extra_modules`` (tests, embedding code) load last and count as third-party.
    """
    pm = pluggy.PluginManager("mmbench")
    pm.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
        pm.enable_tracing()
    registry = Registry()

    def load(info: PluginInfo, get_module: Callable[[], Any]) -> None:
        registry.plugins[info.name] = info
        try:
            _register_one(pm, registry, info, get_module())
        except Exception as exc:  # a broken plugin (core ones included) is reported, the others keep working
            info.error = _short_error(exc)

    for module_name in DEFAULT_PLUGINS:
        info = PluginInfo(name=module_name, module=module_name, builtin=True, first_party=True,
                          distribution=FIRST_PARTY_DISTRIBUTION, version=_dist_version(FIRST_PARTY_DISTRIBUTION))
        load(info, lambda: importlib.import_module(info.module))

    allowed = _allowed(os.environ.get(ALLOW_ENV))
    entry_points = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
                    if allowed is None or ep.name in allowed]
    # First-party entry points first, whatever their names: they must hold their names before anyone else.
    for ep in sorted(entry_points, key=lambda e: (not _is_first_party(_dist_name(e)), e.name)):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(name=ep.name, module=ep.value, distribution=_dist_name(ep),
                          version=dist.version if dist else None, first_party=_is_first_party(_dist_name(ep)))
        seen = registry.plugins.get(ep.name)
        if seen is not None:
            if seen.distribution == info.distribution:
                continue  # the same distribution seen twice on sys.path
            info.name = f"{info.distribution}:{ep.name}"
            info.error = (f"entry point name {ep.name!r} is already used by distribution {seen.distribution!r}; "
                          "not loaded (rename the entry point)")
            registry.plugins[info.name] = info
            continue
        load(info, ep.load)

    for module in extra_modules:
        name = getattr(module, "__name__", repr(module))
        load(PluginInfo(name=name, module=name), lambda: module)

    for conflict in registry.conflicts:
        for plugin in conflict.plugins:
            registry.plugins[plugin].conflicts.append(conflict.message)
    return pm, registry


def _dist_name(ep) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.name if dist else None


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


_CACHED: tuple[pluggy.PluginManager, Registry] | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry (loaded once)."""
    global _CACHED
    if _CACHED is None or refresh:
        _CACHED = load_plugins()
    return _CACHED[1]
