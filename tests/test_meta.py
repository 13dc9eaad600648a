"""Meta-tests that keep code, tests and docs in step (as datasette does)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from mmbench import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, obj in vars(hookspecs).items()
               if callable(obj) and hasattr(obj, "mmbench_spec"))


def test_there_are_hooks():
    assert HOOKS == ["register_commands", "register_models", "register_task_kinds"]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook):
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    signature = f"{hook}{inspect.signature(getattr(hookspecs, hook))}"
    assert f"### `{signature}`" in docs, f"docs/plugins.md lacks a '### `{signature}`' section"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"^def test_hook_{hook}\b", tests, re.MULTILINE), f"no test_hook_{hook} in tests/"


def test_every_package_directory_ships():
    """setup.py finds mmbench.* packages; a directory without __init__.py would silently not ship."""
    missing = [str(d.relative_to(ROOT)) for d in (ROOT / "mmbench").rglob("*")
               if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")) and not (d / "__init__.py").exists()]
    assert missing == []


# The package is a stack: cli -> runner/api -> {plugins, kinds, leaderboard} -> {metrics, data, train}.
# A lower layer never imports an upper one (at module level or inside a function).
LOWER = ("metrics", "data", "train")
UPPER = ("cli", "cli_output", "cli_data", "runner", "api", "kinds", "leaderboard", "plugins")


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_never_import_upper_ones(layer):
    package = ROOT / "mmbench" / layer
    pattern = re.compile(r"^\s*(?:from|import)\s+(?:mmbench\.|\.\.)(%s)\b" % "|".join(UPPER), re.MULTILINE)
    offenders = [f"{path.relative_to(package.parent)}: {match.group(0).strip()}"
                 for path in sorted(package.rglob("*.py"))
                 for match in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert not offenders, "\n".join(offenders)
