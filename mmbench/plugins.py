"""Plugin loading: pluggy manager, entry points, the allow-list, and the registries hooks fill.

Core task kinds are ``DEFAULT_PLUGINS`` (always loaded). Every model plugin, first-party or not, is found
through the ``mmbench`` entry-point group. ``MMBENCH_LOAD_PLUGINS=a,b`` loads only the named entry points
(empty string: none). A plugin that fails to import or register is recorded and skipped.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
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

DEFAULT_PLUGINS = (
    "mmbench.kinds.word_similarity",
    "mmbench.kinds.retrieval",
    "mmbench.kinds.bli",
    "mmbench.kinds.visual_bli",
    "mmbench.kinds.matching",
    "mmbench.kinds.caption_retrieval",
    "mmbench.kinds.classification",
)


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    registered: list[str] = field(default_factory=list)
    error: str | None = None


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
class Registry:
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    task_kinds: dict[str, Any] = field(default_factory=dict)
    commands: list[tuple[Callable, str | None, str | None, str]] = field(default_factory=list)

    def model(self, name: str) -> ModelEntry:
        if name not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise PluginError(f"unknown model {name!r} (known: {known}; see `mmbench plugins`)")
        return self.models[name]

    def task_kind(self, name: str):
        if name not in self.task_kinds:
            raise PluginError(f"unknown task kind {name!r} (known: {', '.join(sorted(self.task_kinds))})")
        return self.task_kinds[name]


def _allowed(env_value: str | None) -> set[str] | None:
    if env_value is None:
        return None
    return {name.strip() for name in env_value.split(",") if name.strip()}


def _short_error(exc: BaseException) -> str:
    """One line: multi-line messages (pluggy's validation errors) are joined, long ones cut."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def _register_one(pm: pluggy.PluginManager, registry: Registry, info: PluginInfo, module: Any) -> None:
    """Register ``module`` and run its hooks into ``registry``; roll back everything it added on error."""

    def register_model(cls, name=None, defaults=None, description=None):
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise PluginError(f"register_models: {cls!r} is not a mmbench.Model subclass")
        model_name = name or cls.name
        if not model_name or ":" in model_name:
            raise PluginError(f"register_models: invalid model name {model_name!r}")
        if model_name in registry.models or model_name in staged_models:
            raise PluginError(f"model {model_name!r} is already registered")
        desc = description or cls.description or (cls.__doc__ or "").strip().split("\n")[0]
        staged_models[model_name] = ModelEntry(model_name, cls, dict(defaults or {}), desc, info.name)
        info.registered.append(f"model:{model_name}")

    def register_kind(kind):
        kind_name = getattr(kind, "name", None)
        if not kind_name or not callable(getattr(kind, "evaluate", None)):
            raise PluginError(f"register_task_kinds: {kind!r} has no name or evaluate()")
        if kind_name in registry.task_kinds or kind_name in staged_kinds:
            raise PluginError(f"task kind {kind_name!r} is already registered")
        staged_kinds[kind_name] = kind
        info.registered.append(f"task-kind:{kind_name}")

    def register_command(function, name=None, help=None):
        staged_commands.append((function, name, help, info.name))
        info.registered.append(f"command:{name or function.__name__.replace('_', '-')}")

    staged_models: dict[str, ModelEntry] = {}
    staged_kinds: dict[str, Any] = {}
    staged_commands: list = []
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
        info.registered.clear()
        raise
    registry.models.update(staged_models)
    registry.task_kinds.update(staged_kinds)
    registry.commands.extend(staged_commands)


def load_plugins(extra_modules: tuple[Any, ...] = ()) -> tuple[pluggy.PluginManager, Registry]:
    """Build a fresh plugin manager and registry from default plugins and entry points."""
    pm = pluggy.PluginManager("mmbench")
    pm.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
        pm.enable_tracing()
    registry = Registry()

    for module_name in DEFAULT_PLUGINS:
        info = PluginInfo(name=module_name, module=module_name, builtin=True, distribution="mmbench")
        info.version = _dist_version("mmbench")
        registry.plugins[info.name] = info
        try:
            _register_one(pm, registry, info, importlib.import_module(module_name))
        except Exception as exc:  # a broken core module is reported like any other plugin
            info.error = _short_error(exc)

    allowed = _allowed(os.environ.get(ALLOW_ENV))
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if allowed is not None and ep.name not in allowed:
            continue
        if ep.name in registry.plugins:
            continue  # the same distribution seen twice on sys.path
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
        )
        registry.plugins[info.name] = info
        try:
            module = ep.load()
            _register_one(pm, registry, info, module)
        except Exception as exc:
            info.error = _short_error(exc)

    for module in extra_modules:
        name = getattr(module, "__name__", repr(module))
        info = PluginInfo(name=name, module=name)
        registry.plugins[name] = info
        try:
            _register_one(pm, registry, info, module)
        except Exception as exc:
            info.error = _short_error(exc)
    return pm, registry


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
