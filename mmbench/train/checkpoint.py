"""Checkpoints without pickle: tensors in safetensors, everything else in JSON, published atomically.

Layout under ``<run_dir>/checkpoints/``::

    step-00000120/tensors.safetensors   model, optimizer state tensors, torch RNG states (flat names)
    step-00000120/state.json            position, optimizer hyper-parameters, scaler, Python/NumPy RNG,
                                        best metric, and the SHA-256 of tensors.safetensors
    latest.json, best.json              pointers: {"name": "step-00000120", ...}

A checkpoint directory is written under a temporary name, fsynced, renamed into place, and only then
is ``latest.json`` replaced (``os.replace``), so a crash at any point leaves the previous checkpoint as
the one that loads. Loading checks the hash and every name and shape, and raises ``CheckpointError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .errors import CheckpointError

FORMAT = "mmbench-train-checkpoint"
VERSION = 1
TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"


@dataclass
class Checkpoint:
    """A loaded, verified checkpoint: flat tensors and the JSON state."""

    path: Path
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors under ``prefix/`` with the prefix removed."""
        cut = len(prefix) + 1
        return {key[cut:]: value for key, value in self.tensors.items() if key.startswith(prefix + "/")}


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


# -- flattening ---------------------------------------------------------------------------------------

def cpu_tensors(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached contiguous CPU tensors under ``prefix/``; shared storage (tied weights) is copied apart."""
    seen: set[int] = set()
    flat = {}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"cannot checkpoint {prefix}/{key}: {type(value).__name__} is not a tensor")
        value = value.detach().cpu().contiguous()
        pointer = value.untyped_storage().data_ptr()
        if pointer in seen:
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        flat[f"{prefix}/{key}"] = value
    return flat


def flatten_optimizer(prefix: str, state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state dict -> (named tensors, JSON: param groups and non-tensor per-parameter values)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param_id}/{key}"] = value
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return cpu_tensors(prefix, tensors), {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], json_part: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        param_id, _, name = key.partition("/")
        state.setdefault(int(param_id), {})[name] = value
    for param_id, values in json_part["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    groups = [{key: tuple(value) if isinstance(value, list) and key != "params" else value
               for key, value in group.items()} for group in json_part["param_groups"]]
    return {"state": state, "param_groups": groups}


# -- writing ------------------------------------------------------------------------------------------

def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_file(path: Path, payload: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` so that readers see either the old or the complete new file."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _write_file(temporary, json.dumps(payload, indent=1, allow_nan=False).encode("utf-8"))
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def write_checkpoint(directory: Path, name: str, tensors: dict[str, torch.Tensor], state: dict[str, Any],
                     pointers: tuple[str, ...] = ("latest",)) -> Path:
    """Publish ``directory/name`` (tensors + state.json) atomically, then point each of ``pointers`` at it."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    if final.exists() and name in referenced_names(directory):
        # Published already at this step; its content is the same, by determinism.
        for which in pointers:
            write_pointer(directory, which, {"name": name, "step": state.get("step")})
        return final
    payload = save_safetensors(tensors)
    staging = directory / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    _write_file(staging / TENSORS_FILE, payload)
    state = {"format": FORMAT, "version": VERSION, "tensors_file": TENSORS_FILE,
             "tensors_sha256": hashlib.sha256(payload).hexdigest(), **state}
    _write_file(staging / STATE_FILE, json.dumps(state, indent=1, allow_nan=False).encode("utf-8"))
    _fsync_dir(staging)
    if final.exists():  # left by a crashed run after its rename, never pointed to: stale
        shutil.rmtree(final)
    os.replace(staging, final)
    _fsync_dir(directory)
    for which in pointers:
        write_pointer(directory, which, {"name": name, "step": state.get("step")})
    return final


def write_pointer(directory: Path, which: str, payload: dict[str, Any]) -> None:
    write_json_atomic(directory / f"{which}.json", payload)


def read_pointer(directory: Path, which: str) -> dict[str, Any] | None:
    path = directory / f"{which}.json"
    if not path.exists():
        return None
    try:
        pointer = json.loads(path.read_text(encoding="utf-8"))
        name = pointer["name"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint pointer ({exc})") from None
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        raise CheckpointError(f"{path}: invalid checkpoint name {name!r}")
    return pointer


def referenced_names(directory: Path) -> set[str]:
    names = set()
    for which in ("latest", "best"):
        try:
            pointer = read_pointer(directory, which)
        except CheckpointError:
            continue
        if pointer:
            names.add(pointer["name"])
    return names


def prune(directory: Path, keep: int) -> None:
    """Delete leftovers and all but the newest ``keep`` checkpoints (and the ones pointers name)."""
    if not directory.is_dir():
        return
    keep_names = referenced_names(directory)
    steps = sorted(p.name for p in directory.iterdir() if p.is_dir() and p.name.startswith("step-"))
    keep_names.update(steps[-keep:])
    for path in directory.iterdir():
        stale_step = path.name.startswith("step-") and path.name not in keep_names
        if path.is_dir() and (stale_step or path.name.startswith(".tmp-")):
            shutil.rmtree(path, ignore_errors=True)


# -- reading ------------------------------------------------------------------------------------------

def _tensors_path(path: Path, name: Any, state_path: Path) -> Path:
    """The tensors file ``state.json`` names, refused unless it is a plain file name in ``path``.

    A crafted state must not make loading read a file elsewhere: an absolute name, a path separator,
    ``.``/``..`` and a symlink (or anything else) that resolves outside ``path`` are all refused.
    """
    def refuse(why: str) -> CheckpointError:
        return CheckpointError(f"{state_path}: tensors_file {name!r} {why}; expected a file name inside {path}")

    if not isinstance(name, str) or name in ("", ".", "..") or "\0" in name:
        raise refuse("is not a file name")
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
        raise refuse("is an absolute path")
    if "/" in name or "\\" in name:
        raise refuse("contains a path separator")
    candidate = path / name
    try:
        base = path.resolve(strict=True)
        inside = candidate.resolve().parent == base
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        raise refuse("cannot be resolved") from None
    if not inside:
        raise refuse("resolves outside the checkpoint directory")
    return candidate


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint directory (never unpickles anything)."""
    state_path = path / STATE_FILE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{state_path}: checkpoint state file is missing") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{state_path}: corrupt checkpoint state ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{state_path}: not an mmbench training checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{state_path}: checkpoint version {state.get('version')!r}, expected {VERSION}")
    tensors_path = _tensors_path(path, state.get("tensors_file", TENSORS_FILE), state_path)
    try:
        payload = tensors_path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{tensors_path}: checkpoint tensors file is missing") from None
    except OSError as exc:
        raise CheckpointError(f"{tensors_path}: cannot read checkpoint tensors ({exc.strerror or exc})") from None
    if hashlib.sha256(payload).hexdigest() != state.get("tensors_sha256"):
        raise CheckpointError(f"{tensors_path}: SHA-256 does not match {state_path} (corrupt or modified)")
    try:
        tensors = load_safetensors(payload)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{tensors_path}: unreadable safetensors ({exc})") from None
    return Checkpoint(path=path, tensors=tensors, state=state)


def load_named(directory: Path, which: str = "latest") -> Checkpoint | None:
    """The checkpoint a pointer names, or None when there is no pointer yet."""
    pointer = read_pointer(directory, which)
    if pointer is None:
        return None
    return load_checkpoint(directory / pointer["name"])


def load_model_weights(model: torch.nn.Module, checkpoint: Checkpoint) -> None:
    """Copy the checkpoint's model tensors into ``model`` (names and shapes must match exactly)."""
    try:
        model.load_state_dict(checkpoint.section("model"), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{checkpoint.path}: weights do not fit the model: "
                              f"{' '.join(line.strip() for line in first[:3])}") from None


def state_field(checkpoint: Checkpoint, *keys: str) -> Any:
    """``state[k1][k2]...`` or a CheckpointError naming the missing field."""
    value: Any = checkpoint.state
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise CheckpointError(f"{checkpoint.path / STATE_FILE}: missing field {'.'.join(keys)!r}")
        value = value[key]
    return value
