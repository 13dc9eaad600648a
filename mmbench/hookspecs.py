"""The plugin hooks. Each hook receives a ``register`` callback, so a plugin can add zero or many things."""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("mmbench")
hookimpl = HookimplMarker("mmbench")


@hookspec
def register_models(register):
    """Register model classes: ``register(ModelClass, name=None, defaults=None, description=None)``.

    ``name`` defaults to ``ModelClass.name``; registering one class under several names with different
    config ``defaults`` declares variants (e.g. ``imagevec-300d``).
    """


@hookspec
def register_task_kinds(register):
    """Register task kinds: ``register(kind)`` where ``kind`` is a ``mmbench.tasks.TaskKind`` instance."""


@hookspec
def register_commands(register):
    """Register CLI commands: ``register(function, name=None, help=None)``; becomes ``mmbench NAME``."""
