"""Typed model configs: defaults from the dataclass, overrides from a TOML file and ``--set key=value``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Sequence, Union

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a TOML value or a command-line string to the field's declared type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"config key {key!r}: cannot read {value!r} as {annotation}")
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ConfigError(f"config key {key!r}: {value!r} is not one of {', '.join(map(str, args))}")
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        items = value
        if isinstance(value, str) and value.strip().startswith("["):  # --set styles=["noto", "symbola"]
            try:
                items = tomllib.loads(f"value = {value.strip()}")["value"]
            except tomllib.TOMLDecodeError:
                raise ConfigError(f"config key {key!r}: {value!r} is not a valid list (use a,b or [\"a\", \"b\"])") from None
        elif isinstance(value, str):  # --set styles=noto,symbola
            items = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        converted = [_coerce(v, item_type, key) for v in items]
        return tuple(converted) if origin is tuple or annotation is tuple else converted
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"config key {key!r}: expected true/false, got {value!r}")
    if annotation in (int, float, str):
        if isinstance(value, (list, tuple, dict)):
            raise ConfigError(f"config key {key!r}: expected {annotation.__name__}, got {value!r}")
        if isinstance(value, bool) and annotation is not str:
            raise ConfigError(f"config key {key!r}: expected {annotation.__name__}, got {value!r}")
        try:
            converted = annotation(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key {key!r}: expected {annotation.__name__}, got {value!r}") from None
        if annotation is int and isinstance(value, float) and value != converted:
            raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}")
        if annotation is float and converted != converted:
            raise ConfigError(f"config key {key!r}: NaN is not a valid value")
        return converted
    if annotation is Path:
        return Path(value)
    return value


def _field_types(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(config_cls)}


def parse_set_options(options: Sequence[str]) -> dict[str, str]:
    """``["dim=300", "lr=0.1"]`` -> ``{"dim": "300", "lr": "0.1"}``."""
    pairs = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {option!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not valid UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _nest(layer: dict[str, Any]) -> dict[str, Any]:
    """``{"train.lr": 1}`` -> ``{"train": {"lr": 1}}``; TOML tables are already nested."""
    nested: dict[str, Any] = {}
    for key, value in layer.items():
        *parents, leaf = key.split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"config key {key!r}: {part!r} is a value, not a table")
        target[leaf] = _merge(target[leaf], value) if isinstance(target.get(leaf), dict) and isinstance(value, dict) else value
    return nested


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(merged.get(key), dict) and isinstance(value, dict) else value
    return merged


def _instantiate(config_cls: type, values: dict[str, Any], prefix: str, model_name: str, base: Any = None) -> Any:
    """Build ``config_cls`` (starting from ``base`` if given); nested dataclass fields take tables."""
    types_by_name = _field_types(config_cls)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in types_by_name:
            known = ", ".join(prefix + name for name in types_by_name) or "none"
            raise ConfigError(f"model {model_name!r} has no config key {prefix + key!r} (known: {known})")
        annotation = types_by_name[key]
        if dataclasses.is_dataclass(annotation):
            if not isinstance(raw, dict):
                raise ConfigError(f"config key {prefix + key!r}: expected a table of {annotation.__name__} fields")
            current = getattr(base, key) if base is not None else _field_default(fields[key])
            kwargs[key] = _instantiate(annotation, raw, f"{prefix}{key}.", model_name, current)
        else:
            kwargs[key] = _coerce(raw, annotation, prefix + key)
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {model_name!r}: invalid config{' ' + prefix.rstrip('.') if prefix else ''}: {exc}") from None


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def build_config(config_cls: type, *layers: dict[str, Any], model_name: str = "model") -> Any:
    """Instantiate ``config_cls`` from its defaults updated by each layer in turn (later wins).

    Keys may be dotted (``train.lr``) or TOML tables to reach fields of nested dataclass configs.
    """
    if not dataclasses.is_dataclass(config_cls):
        raise ConfigError(f"model {model_name!r} has no dataclass Config")
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, _nest(layer))
    return _instantiate(config_cls, merged, "", model_name)


def stable_hash(payload: Any, length: int = 12) -> str:
    """Hex digest of a JSON-serialisable payload, independent of key order."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
