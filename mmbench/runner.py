"""The harness: resolve models and task cards, skip finished work, prepare models, score, write records.

Data flows one way: cards name data, kinds load it, models embed, metrics score, records store numbers.
A model is prepared (loaded / trained) only when at least one of its records is missing, so a rerun of a
finished command does no work. Every failure is contained to its (model, seed) or (model, task, subset).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import math
import os
import platform
import re
import subprocess
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from .cards import Subset, TaskCard, data_overlap, select_cards, validate_against_kind, verify_files  # noqa: F401 (re-exported)
from .config import build_config, parse_set_options, read_config_file, stable_hash
from .errors import MMBenchError, PluginError
from .kinds import EvalContext, Score, TaskKind, protocol_suffix
from .models import Incompatible, Model, RunContext, config_to_dict
from .plugins import ModelEntry, Registry
from .results import RecordKey, ResultStore, make_record, slug


# -- resolving ------------------------------------------------------------------------------------
def parse_model_spec(spec: str) -> tuple[str, str | None]:
    """``"vectors:/x/y.vec"`` -> ``("vectors", "/x/y.vec")``; ``"ame"`` -> ``("ame", None)``."""
    name, sep, argument = spec.partition(":")
    if not name:
        raise PluginError(f"invalid model spec {spec!r}")
    return name, (argument if sep else None)


@dataclass
class ResolvedModel:
    spec: str
    display_name: str
    entry: ModelEntry
    model: Model
    config: dict[str, Any]
    config_hash: str
    plugin_version: str | None = None


def resolve_model(
    registry: Registry, spec: str, set_options: Sequence[str] = (), config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> ResolvedModel:
    """A model spec (``name``, ``variant`` or ``name:ARG``) with its config: the registered defaults, then
    ``config_file`` (TOML), then ``overrides`` (a dict, from Python), then ``set_options`` (``key=value``)."""
    name, argument = parse_model_spec(spec)
    entry = registry.model(name)
    if entry.cls.argument and not argument:
        raise PluginError(f"model {name!r} needs an argument: --model {name}:{entry.cls.argument}")
    if argument and not entry.cls.argument:
        raise PluginError(f"model {name!r} takes no argument (got {spec!r})")
    layers = [entry.defaults]
    if config_file is not None:
        layers.append(read_config_file(config_file))
    if overrides:
        layers.append(dict(overrides))
    layers.append(parse_set_options(set_options))
    config = build_config(entry.cls.Config, *layers, model_name=name)
    try:
        model = entry.cls(config, argument)
    except (MMBenchError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # SystemExit included: a plugin never ends the process
        raise PluginError(f"model {name!r} (plugin {entry.plugin!r}) failed to initialise: {_said(exc)}".splitlines()[0]) from None
    return _resolved(registry, spec, entry, model, argument)


def resolve_instance(registry: Registry, model: Model) -> ResolvedModel:
    """A model the caller built in Python. An instance of a registered class under its registered name is
    the same model as ``--model NAME`` with that config (same config hash, same records); any other class is
    keyed by its module and class too, so it never shares records with a registered model of that name."""
    if not isinstance(model, Model):
        raise PluginError(f"a model must be a name, a NAME:ARG spec or an mmbench.Model instance, not {type(model).__name__}")
    cls = type(model)
    name = model.name or cls.__name__.lower()
    entry = registry.models.get(name)
    if entry is None or entry.cls is not cls:
        entry = ModelEntry(name, cls, {}, (cls.__doc__ or "").strip().split("\n")[0],
                           plugin=f"python:{cls.__module__}.{cls.__qualname__}")
    return _resolved(registry, name, entry, model, model.argument_value)


def _said(exc: BaseException) -> str:
    return f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"


def _resolved(registry: Registry, spec: str, entry: ModelEntry, model: Model, argument: str | None) -> ResolvedModel:
    name = entry.name
    try:
        identity = model.identity()
    except (MMBenchError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise PluginError(f"model {name!r} (plugin {entry.plugin!r}) failed to initialise: {_said(exc)}".splitlines()[0]) from None
    config_dict = config_to_dict(model.config)
    payload = {"model": name, "config": config_dict, "identity": identity}
    if entry.plugin.startswith("python:"):
        payload["class"] = entry.plugin
    config_hash = stable_hash(payload)
    display = name if argument is None else f"{name}:{_argument_label(argument)}"
    info = registry.plugins.get(entry.plugin)
    return ResolvedModel(spec, display, entry, model, config_dict, config_hash, info.version if info else None)


_LANGUAGE_FILE = re.compile(r"^([a-z]{2,3}(?:[_-][A-Za-z0-9]+)?)=(.+)$")  # ``en=/x/wiki.en.vec``


def _argument_label(argument: str) -> str:
    """What a model argument looks like in a record's model name: file names, never local paths.

    ``/x/y.vec`` -> ``y.vec``; ``en=/x/wiki.en.vec,de=/y/wiki.de.vec`` -> ``en=wiki.en.vec,de=wiki.de.vec``
    (one file per language, when every comma-separated part is ``LANG=PATH``)."""
    matches = [_LANGUAGE_FILE.match(part.strip()) for part in argument.split(",")]
    if all(matches):
        return ",".join(f"{m.group(1)}={Path(m.group(2)).name}" for m in matches)
    return Path(argument).name


# -- the live display: mmbench.display (re-exported: the CLI nests the trainer's steps in its display) --
from .display import current_display, nested_display  # noqa: E402,F401


# -- provenance -----------------------------------------------------------------------------------
def _version(dist: str | None) -> str | None:
    if not dist:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@functools.cache
def _base_provenance() -> dict[str, Any]:
    import numpy

    return {
        "mmbench_version": _version("mmbench"),
        "torch_version": _version("torch"),  # from metadata: importing torch costs seconds
        "numpy_version": numpy.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(terse=True),
        "git_commit": _git_commit(),
    }


def resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise MMBenchError("--device cuda requested but CUDA is not available on this machine")
    elif device != "cpu":
        raise MMBenchError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return device


def is_main_process() -> bool:
    """Rank 0 under torchrun (read from the environment, so no torch import is needed)."""
    return os.environ.get("RANK", "0") == "0"


# -- running --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    model: str
    seed: int
    task: str
    subset: str
    status: str  # "done", "exists", "skipped", "error"
    main_score_name: str = ""
    main_score: float | None = None
    coverage: float | None = None
    message: str = ""
    traceback: str | None = None
    path: Path | None = None
    record: dict[str, Any] | None = None  # the record as written (done) or found (exists)


@dataclass
class RunOptions:
    results_dir: Path
    data_dir: Path
    seeds: Sequence[int] = (0,)
    device: str = "cpu"
    overwrite: bool = False
    train: bool = True
    checkpoint: Path | None = None
    work_dir: Path | None = None
    # Cards reached only through a suite: when their data is not installed (e.g. COCO, which no one may
    # redistribute) they are skipped with the reason; a card named with --task still fails.
    skip_missing_data: frozenset[str] = frozenset()
    # Smoke runs: at most ``limit`` items per subset, recorded under the protocol ``<protocol>+limit=N`` so
    # they never count as the card's protocol (leaderboards leave them out).
    limit: int | None = None


def limited_protocol(protocol: str, limit: int | None) -> str:
    """The protocol a record is filed under: ``"vse++"`` or, for a ``--limit`` smoke run, ``"vse++ +limit=N"``."""
    return protocol if limit is None else f"{protocol}{LIMIT_MARK}{limit}"


LIMIT_MARK = "+limit="


@dataclass
class _Unit:
    card: TaskCard
    kind: TaskKind
    subset: Subset
    key: RecordKey
    note: str = ""  # e.g. why an existing record is being recomputed


def _key(resolved: ResolvedModel, seed: int, card: TaskCard, subset_name: str, split: str,
         limit: int | None = None) -> RecordKey:
    # A model scored with its own similarity (e.g. AME's order embeddings) is another protocol variant.
    return RecordKey(resolved.display_name, resolved.config_hash, seed, card.name, subset_name, split,
                     limited_protocol(card.protocol + protocol_suffix(resolved.model, card), limit))


def _absent_data(card: TaskCard, subset: Subset, options: RunOptions) -> str | None:
    """Why ``subset`` cannot run because a data file is not installed, or None (sha256 is checked later)."""
    for data_file in subset.files:
        try:
            path = data_file.resolve(card.directory, options.data_dir)
        except MMBenchError:
            return None  # e.g. a path escaping its base: verify_files reports it as this unit's error
        if data_file.base != "package" and not path.is_file():  # a missing package file is a broken install
            hint = f"; get it from {data_file.url}" if data_file.url else ""
            return f"data not installed: {data_file.path} (looked in {path.parent}){hint}"
    return None


def _missing_capabilities(model: Model, kind: TaskKind) -> list[str]:
    return sorted(str(c) for c in kind.requires - model.capabilities)


def run(
    registry: Registry,
    models: Sequence[ResolvedModel],
    cards: Sequence[TaskCard],
    options: RunOptions,
    on_event: Callable[[str, Any], None] = lambda kind, payload: None,
) -> list[Outcome]:
    """Run every (model, seed, card, subset); return one Outcome per unit (and per aggregate)."""
    store = ResultStore(options.results_dir)
    outcomes: list[Outcome] = []

    def emit(outcome: Outcome) -> None:
        outcomes.append(outcome)
        on_event("outcome", outcome)

    if is_main_process():
        store.remove_stale_temp_files()
    on_event("plan", len(models) * len(options.seeds) * sum(len(card.subsets) for card in cards))
    for resolved in models:
        seen, seen_error = _contained(resolved, resolved.model.seen_data)
        for seed in options.seeds:
            work_dir = _work_dir(resolved, seed, options)
            # One run per (model, seed) at a time: a second run on the same results waits, then finds the
            # records the first one wrote (only rank 0 locks: the other ranks follow it).
            with run_lock(work_dir, on_event) if is_main_process() else contextlib.nullcontext():
                first = len(outcomes)
                pending = _plan(registry, resolved, seed, cards, store, options, seen, seen_error, emit)
                if pending:
                    _run_pending(resolved, seed, pending, store, options, emit, on_event, work_dir)
                recomputed = {o.task for o in outcomes[first:] if o.status == "done"}
                for card in cards:
                    if card.aggregate and is_main_process():
                        _write_aggregate(resolved, seed, card, registry.task_kind(card.kind), store, options, emit,
                                         refresh=card.name in recomputed)
    return outcomes


def _work_dir(resolved: ResolvedModel, seed: int, options: RunOptions) -> Path:
    base = options.work_dir or options.results_dir / ".runs"
    return base / f"{slug(resolved.display_name)}__{resolved.config_hash}" / f"seed-{seed}"


@contextlib.contextmanager
def run_lock(work_dir: Path, on_event: Callable[[str, Any], None] = lambda kind, payload: None):
    """Hold ``<work_dir>.lock`` (an OS file lock, released when the process dies, even by kill -9)."""
    from filelock import FileLock, Timeout

    work_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(work_dir) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        on_event("waiting", lock.lock_file)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _plan(registry, resolved, seed, cards, store, options, seen, seen_error, emit) -> list[_Unit]:
    """Emit the outcome of every unit that needs no work; return the units to compute."""
    pending: list[_Unit] = []
    for card in cards:
        kind = registry.task_kind(card.kind)
        missing = _missing_capabilities(resolved.model, kind)
        for subset in card.subsets:
            key = _key(resolved, seed, card, subset.name, subset.split, options.limit)
            base = Outcome(resolved.display_name, seed, card.name, subset.name, "", card.main_score)
            absent = _absent_data(card, subset, options) if card.name in options.skip_missing_data else None
            if seen_error:
                base.status, (base.message, base.traceback) = "error", seen_error
                emit(base)
                continue
            leaked = data_overlap(seen, subset.evaluates_on)
            existing, damage = (None, None) if options.overwrite else store.inspect(key)
            if missing:
                base.status, base.message = "skipped", f"model lacks capability {', '.join(missing)}"
                emit(base)
            elif options.limit is not None and not kind.supports_limit:
                base.status, base.message = "skipped", f"task kind {kind.name!r} does not support --limit"
                emit(base)
            elif leaked:
                base.status, base.message = "skipped", f"model trained on {', '.join(leaked)}, which this task scores"
                emit(base)
            elif absent:
                base.status, base.message = "skipped", absent
                emit(base)
            elif existing is not None:
                base.status, base.path = "exists", store.path(key)
                base.main_score, base.coverage = existing["main_score"], existing["coverage"]
                base.record = existing
                emit(base)
            else:
                note = f"recomputed: the stored record was damaged ({damage})" if damage else ""
                pending.append(_Unit(card, kind, subset, key, note))
    return pending


def _contained(resolved: ResolvedModel, call: Callable[[], Any]) -> tuple[Any, tuple[str, str | None] | None]:
    """Call plugin code; any failure but Ctrl-C (SystemExit included) becomes ``(None, (message, tb))``."""
    try:
        return call(), None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin calling sys.exit() must not end the whole run
        return None, _describe(exc, resolved)


def _run_pending(resolved, seed, pending, store, options, emit, on_event, work_dir: Path) -> None:
    ctx = RunContext(
        seed=seed, device=options.device, data_dir=options.data_dir, work_dir=work_dir,
        train=options.train, checkpoint=options.checkpoint,
    )
    on_event("prepare", resolved.display_name)
    _, failure = _contained(resolved, lambda: resolved.model.prepare(ctx))
    if failure:  # one broken model must not stop the others
        message, tb = failure
        for unit in pending:
            emit(Outcome(resolved.display_name, seed, unit.card.name, unit.subset.name, "error",
                         unit.card.main_score, message=f"preparing model: {message}", traceback=tb))
        return
    if not is_main_process():
        return  # under torchrun every rank trains; only rank 0 scores and writes records
    eval_ctx = EvalContext(data_dir=options.data_dir, seed=seed, device=options.device, limit=options.limit)
    for unit in pending:
        on_event("start", unit)
        emit(_evaluate_unit(resolved, seed, unit, store, options, eval_ctx))


def _describe(exc: BaseException, resolved: ResolvedModel) -> tuple[str, str | None]:
    if isinstance(exc, MMBenchError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__, traceback.format_exc()
    where = f"plugin {resolved.entry.plugin!r}"
    if isinstance(exc, SystemExit):
        return f"{where} tried to end the process (sys.exit({exc.code!r}))", traceback.format_exc()
    return f"internal error in {where}: {type(exc).__name__}: {exc}".splitlines()[0], traceback.format_exc()


def _evaluate_unit(resolved, seed, unit: _Unit, store: ResultStore, options: RunOptions, ctx: EvalContext) -> Outcome:
    card, subset, kind = unit.card, unit.subset, unit.kind
    outcome = Outcome(resolved.display_name, seed, card.name, subset.name, "error", card.main_score)
    started = time.perf_counter()
    try:
        data_files = verify_files(card, subset, options.data_dir)
        score = kind.evaluate(resolved.model, card, subset, ctx)
        _check_score(score, card)
    except Incompatible as exc:
        outcome.status, outcome.message = "skipped", str(exc).splitlines()[0]
        return outcome
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from a plugin included
        outcome.message, outcome.traceback = _describe(exc, resolved)
        return outcome
    record = _record(resolved, seed, unit.key, card, kind, subset.languages, score,
                     time.perf_counter() - started, data_files, options)
    outcome.path = store.write(unit.key, record)
    outcome.status, outcome.main_score, outcome.coverage = "done", record["main_score"], record["coverage"]
    outcome.message, outcome.record = unit.note, record
    return outcome


def _check_score(score: Score, card: TaskCard) -> None:
    bad = [name for name, value in score.scores.items() if not isinstance(value, (int, float)) or not math.isfinite(value)]
    if bad:
        raise MMBenchError(f"task {card.name!r}: non-finite scores {', '.join(bad)} (NaN/inf embeddings?)")
    if card.main_score not in score.scores:
        raise MMBenchError(f"task {card.name!r}: kind produced no {card.main_score!r} score")


def _record(resolved, seed, key, card, kind, languages, score: Score, wall, data_files, options) -> dict:
    provenance = {
        **_base_provenance(),
        "plugin": resolved.entry.plugin,
        "plugin_version": resolved.plugin_version,
        "device": options.device,
        "card_path": str(card.path) if card.path else None,
        "card_sha256": card.sha256,
        "data": data_files,
        "model_identity": resolved.model.identity(),
    }
    return make_record(
        key, model_argument=resolved.model.argument_value, config=resolved.config, task_kind=kind.name,
        languages=list(languages), main_score_name=card.main_score,
        higher_is_better=kind.higher_is_better(card.main_score),
        scores={k: float(v) for k, v in score.scores.items()}, coverage=score.coverage, n_items=score.n_items,
        wall_time_s=wall, created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        details={**score.details, **({"limit": options.limit} if options.limit is not None else {})},
        provenance=provenance,
    )


def _write_aggregate(resolved, seed, card: TaskCard, kind: TaskKind, store, options, emit, refresh: bool) -> None:
    """The 'all' record: every score averaged over the card's subsets (needs all subset records).

    Rewritten when a subset record was (re)computed in this run or the stored one is damaged.
    """
    split = card.subsets[0].split
    key = _key(resolved, seed, card, "all", split, options.limit)
    existing, damage = store.inspect(key)
    if existing is not None and not (options.overwrite or refresh):
        # Counted and shown like every other record found intact (a rerun reports all it found).
        emit(Outcome(resolved.display_name, seed, card.name, "all", "exists", card.main_score,
                     existing["main_score"], existing["coverage"], path=store.path(key), record=existing))
        return
    records = [store.read(_key(resolved, seed, card, s.name, s.split, options.limit)) for s in card.subsets]
    if any(r is None for r in records):
        return
    names = sorted(set.intersection(*(set(r["scores"]) for r in records)))
    scores = {n: sum(r["scores"][n] for r in records) / len(records) for n in names}
    coverages = [r["coverage"] for r in records if r["coverage"] is not None]
    languages = sorted({lang for r in records for lang in r["languages"]})
    record = make_record(
        key, model_argument=records[0]["model_argument"], config=records[0]["config"], task_kind=kind.name,
        languages=languages, main_score_name=card.main_score, higher_is_better=kind.higher_is_better(card.main_score),
        scores=scores, coverage=(sum(coverages) / len(coverages)) if coverages else None,
        n_items=sum(r["n_items"] for r in records), wall_time_s=sum(r["wall_time_s"] for r in records),
        created_at=max(r["created_at"] for r in records),
        details={"aggregate": "mean", "subsets": [s.name for s in card.subsets],
                 **({"limit": options.limit} if options.limit is not None else {})},
        provenance={**records[0]["provenance"], "data": [d for r in records for d in r["provenance"]["data"]]},
    )
    path = store.write(key, record)
    note = f"recomputed: the stored record was damaged ({damage})" if damage else ""
    emit(Outcome(resolved.display_name, seed, card.name, "all", "done", card.main_score,
                 record["main_score"], record["coverage"], message=note, path=path, record=record))
