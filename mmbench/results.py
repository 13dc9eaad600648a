"""Result records: one JSON file per (model + config hash, seed, task, subset, split, protocol).

Records are written atomically (temp file in the same directory, fsync, rename), so a killed run never
leaves a partial record; an existing record means that unit of work is done. Schema: docs/results.md.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import stable_hash

SCHEMA_VERSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def slug(text: str, limit: int = 80) -> str:
    """A file-name-safe version of ``text`` (never empty, never '.' or '..')."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    return cleaned[:limit]


@dataclass(frozen=True)
class RecordKey:
    model: str
    config_hash: str
    seed: int
    task: str
    subset: str
    split: str
    protocol: str

    @property
    def record_id(self) -> str:
        return stable_hash(self.__dict__, length=16)

    def relative_path(self) -> Path:
        # Human-browsable layout; the record_id suffix keeps distinct keys apart after slugging.
        return (
            Path(slug(self.task))
            / f"{slug(self.model)}__{slug(self.config_hash)}"
            / f"seed-{self.seed}"
            / f"{slug(self.subset)}__{slug(self.split)}__{self.record_id}.json"
        )


class ResultStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: RecordKey) -> Path:
        return self.root / key.relative_path()

    def exists(self, key: RecordKey) -> bool:
        return self.path(key).is_file()

    def read(self, key: RecordKey) -> dict[str, Any] | None:
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def write(self, key: RecordKey, record: dict[str, Any]) -> Path:
        path = self.path(key)
        write_json_atomic(path, record)
        return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that readers see either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; records are ordinary shared files
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def make_record(
    key: RecordKey,
    *,
    model_argument: str | None,
    config: dict[str, Any],
    task_kind: str,
    languages: list[str],
    main_score_name: str,
    higher_is_better: bool,
    scores: dict[str, float],
    coverage: float | None,
    n_items: int,
    wall_time_s: float,
    created_at: str,
    details: dict[str, Any],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    if main_score_name not in scores:
        raise KeyError(f"main score {main_score_name!r} not among scores {sorted(scores)}")
    return {
        "schema_version": SCHEMA_VERSION,
        "record_id": key.record_id,
        "model": key.model,
        "model_argument": model_argument,
        "config_hash": key.config_hash,
        "config": config,
        "seed": key.seed,
        "task": key.task,
        "task_kind": task_kind,
        "subset": key.subset,
        "languages": languages,
        "split": key.split,
        "protocol": key.protocol,
        "main_score_name": main_score_name,
        "main_score": scores[main_score_name],
        "higher_is_better": higher_is_better,
        "scores": scores,
        "coverage": coverage,
        "n_items": n_items,
        "details": details,
        "wall_time_s": round(wall_time_s, 4),
        "created_at": created_at,
        "provenance": provenance,
    }
