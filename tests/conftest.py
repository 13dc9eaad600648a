"""Shared fixtures: where the real benchmark data lives for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    env = os.environ.get("MMBENCH_DATA")
    candidates = [Path(env)] if env else []
    # The checkout sits next to ``shared/`` (…/main and …/shared), CI clones keep that layout.
    candidates += [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]
    for path in candidates:
        if (path / "README.md").is_file() or (path / "wordsim").is_dir():
            return path
    return None


SHARED_DATA = _shared_data_dir()


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Keep the tests' Arrow caches out of the user's cache directory (subprocesses inherit this)."""
    path = tmp_path_factory.mktemp("mmbench-cache")
    previous = os.environ.get("MMBENCH_CACHE_DIR")
    os.environ["MMBENCH_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("MMBENCH_CACHE_DIR", None)
    else:
        os.environ["MMBENCH_CACHE_DIR"] = previous


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A fresh Arrow cache per test, so cache behaviour is tested from a clean state."""
    return tmp_path / "arrow-cache"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Arrow cache for all real-data tests of a session: each real file is parsed once."""
    return tmp_path_factory.mktemp("arrow-cache-shared")


@pytest.fixture
def one_torch_thread():
    """Small networks on a shared 2-core machine: two intra-op threads contending with other processes ran
    a 64-unit GRU step 40x slower than one (1.7 s vs 0.04 s) and an imagevec-m30k run 5x slower. Modules
    that train use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch  # here, not at the top: most test modules never import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real benchmark data (``../shared/data`` or ``$MMBENCH_DATA``)."""
    if SHARED_DATA is None:
        pytest.skip("real benchmark data not found: set MMBENCH_DATA or place shared/data next to the repo")
    return SHARED_DATA


# -- a third-party plugin package, installed the way users install one ------------------------------
CHARHASH_MODULE = '''
"""A complete third-party model plugin: character-trigram hashing vectors (deterministic, no training)."""
import sys
import time
import zlib
from dataclasses import dataclass

import numpy as np

import mmbench


@dataclass(frozen=True)
class CharHashConfig:
    dim: int = 64
    delay: float = 0.0  # seconds to sleep per call; lets tests interrupt a run midway
    fail: str = ""  # "prepare", "exit" (sys.exit(0) in prepare), "exit-embed" or "nan": misbehave on purpose


class CharHash(mmbench.Model):
    """Hashed character trigrams (spelling similarity)."""

    name = "charhash"
    Config = CharHashConfig
    capabilities = frozenset({mmbench.Capability.WORDS})

    def prepare(self, ctx):
        if self.config.fail == "prepare":
            raise RuntimeError("charhash was told to fail")
        if self.config.fail == "exit":
            sys.exit(0)
        marker = ctx.work_dir / "prepared.txt"
        marker.parent.mkdir(parents=True, exist_ok=True)
        with open(marker, "a") as handle:
            handle.write("x")

    def embed_words(self, words, language):
        time.sleep(self.config.delay)
        if self.config.fail == "exit-embed":
            raise SystemExit(3)
        out = np.zeros((len(words), self.config.dim), dtype=np.float32)
        for row, word in enumerate(words):
            padded = f"<{word.lower()}>"
            for i in range(len(padded) - 2):
                out[row, zlib.crc32(padded[i:i + 3].encode()) % self.config.dim] += 1.0
        if self.config.fail == "nan":
            out[:] = np.nan
        return out, np.ones(len(words), dtype=bool)


@mmbench.hookimpl
def register_models(register):
    register(CharHash)
    register(CharHash, name="charhash-128", defaults={"dim": 128})
'''

CHARHASH_PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "mmbench-charhash"
version = "0.3.1"

[project.entry-points.mmbench]
charhash = "mmbench_charhash"

[tool.setuptools]
py-modules = ["mmbench_charhash"]
'''

BROKEN_MODULE = '''
raise ImportError("this plugin is broken on purpose")
'''

BROKEN_PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "mmbench-broken"
version = "0.0.1"

[project.entry-points.mmbench]
broken = "mmbench_broken"

[tool.setuptools]
py-modules = ["mmbench_broken"]
'''


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """A directory with two pip-installed plugin distributions: a working one and a broken one."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("plugins")
    target = root / "site"
    for name, module, pyproject, source in (
        ("charhash", "mmbench_charhash", CHARHASH_PYPROJECT, CHARHASH_MODULE),
        ("broken", "mmbench_broken", BROKEN_PYPROJECT, BROKEN_MODULE),
    ):
        package = root / name
        package.mkdir()
        (package / "pyproject.toml").write_text(pyproject)
        (package / f"{module}.py").write_text(source)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--target", str(target), str(package)],
            check=True, capture_output=True, text=True,
        )
    return target


@pytest.fixture()
def plugin_env(plugin_site, tmp_path) -> dict:
    """Environment for a subprocess that sees the installed plugin packages (and a private cache)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_site), env.get("PYTHONPATH")]))
    env.pop("MMBENCH_LOAD_PLUGINS", None)
    env.pop("MMBENCH_TASKS_PATH", None)
    env["COLUMNS"] = "200"
    return env


def run_cli(args, env=None, cwd=None, timeout=300):
    """Run ``python -m mmbench ARGS`` and return the CompletedProcess (text mode)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "mmbench", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def linked_groups(links):
    """Union-find over ``(a, b)`` links (each joins a's group into b's): every linked node -> its group root."""
    parent = {}

    def find(node):
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in links:
        parent[find(a)] = find(b)
    return {node: find(node) for node in list(parent)}


def assert_validate_reports_param(capsys, tmp_path, cards, old, new, field):
    """`mmbench validate` passes the packaged ``cards`` and names ``field`` once ``old`` becomes ``new`` in the first."""
    from mmbench.cli import main

    paths = [str(REPO_ROOT / "tasks" / f"{name}.toml") for name in cards]
    assert main(["validate", *paths]) == 0
    assert f"{len(paths)} card(s) checked, 0 problem(s)" in capsys.readouterr().out
    broken = tmp_path / "broken.toml"
    broken.write_text(Path(paths[0]).read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    assert main(["validate", str(broken)]) == 1
    captured = capsys.readouterr()
    assert "1 problem(s)" in captured.out and field in captured.err
