"""The Python API: ``mmbench.evaluate(model, tasks=...)`` scores a model and returns its records.

The way notebooks and other tools use mmbench (MTEB's ``mteb.evaluate``, lm-eval's ``simple_evaluate``);
the ``mmbench run``/``eval`` commands are a thin layer on :func:`run_evaluation`. Records are written to
``output_dir`` exactly as the CLI writes them, so a rerun finds them and does no work.

>>> import mmbench
>>> records = mmbench.evaluate("cnn-mean", tasks=["emoji-retrieval"])       # doctest: +SKIP
>>> records = mmbench.evaluate(MyModel(), tasks=["rg65-xling"], data_dir="~/data/mmbench")  # doctest: +SKIP
>>> records[0]["main_score_name"], records[0]["main_score"]                # doctest: +SKIP

Every user error (unknown model or task, bad config value, unwritable output directory, ...) raises a
:class:`mmbench.errors.MMBenchError` before any model is prepared.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

from .errors import MMBenchError

if TYPE_CHECKING:
    from .models import Model
    from .runner import Outcome

ModelLike = Union[str, "Model"]
log = logging.getLogger("mmbench")


@dataclass
class Evaluation:
    """What :func:`run_evaluation` did: one :class:`~mmbench.runner.Outcome` per unit (and per aggregate)."""

    outcomes: list[Outcome] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # e.g. a user's card overriding a packaged one
    collisions: list[str] = field(default_factory=list)  # plugin names refused or ambiguous (docs/plugins.md)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The records written or found intact, in run order (skipped and failed units have none)."""
        return [o.record for o in self.outcomes if o.record is not None]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "error"]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)) or not isinstance(value, (list, tuple, set, frozenset)):
        return [value]
    return list(value)


def check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise MMBenchError(f"--limit {limit!r}: give a positive number of items per subset")
    return limit


def check_writable(directory: Path) -> None:
    """Fail before any work if results cannot be written to ``directory``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".mmbench-write-check"):
            pass
    except OSError as exc:
        raise MMBenchError(f"--output-dir {directory}: cannot write results there ({exc.strerror or exc})") from None


def run_evaluation(
    models: ModelLike | Sequence[ModelLike],
    tasks: str | Sequence[str] | None = None,
    suites: str | Sequence[str] | None = None,
    seeds: int | Sequence[int] | None = None,
    output_dir: str | os.PathLike = "results",
    data_dir: str | os.PathLike | None = None,
    device: str = "auto",
    config: Mapping[str, Any] | str | os.PathLike | None = None,
    overwrite: bool = False,
    train: bool = True,
    limit: int | None = None,
    *,
    set_options: Sequence[str] = (),
    tasks_dir: Sequence[str | os.PathLike] = (),
    checkpoint: str | os.PathLike | None = None,
    on_event: Callable[[str, Any], None] | None = None,
    before_run: Callable[[Evaluation], None] | None = None,
) -> Evaluation:
    """Check everything, then run; see :func:`evaluate` for the arguments.

    ``on_event(kind, payload)`` sees the runner's events (``prepare``, ``start``, ``outcome``, ``waiting``);
    ``before_run(evaluation)`` is called once every input is checked, with the notices filled in.
    """
    from .data.root import data_root
    from .plugins import get_registry
    from .runner import RunOptions, resolve_device, resolve_instance, resolve_model, run, select_cards

    registry = get_registry()
    evaluation = Evaluation()
    task_names = [str(t) for t in _as_list(tasks)]
    cards = select_cards(registry, task_names, [str(s) for s in _as_list(suites)],
                         [Path(d) for d in _as_list(tasks_dir)], notices=evaluation.notices)
    config_file = overrides = None
    if isinstance(config, Mapping):
        overrides = dict(config)
    elif config is not None:
        config_file = Path(config)
    resolved = []
    for model in _as_list(models) or []:
        if isinstance(model, str):
            resolved.append(resolve_model(registry, model, list(set_options), config_file, overrides))
        else:
            if config is not None or set_options:
                raise MMBenchError(f"config given for the model instance {getattr(model, 'name', model)!r}: "
                                   "build the instance with its config instead")
            resolved.append(resolve_instance(registry, model))
    if not resolved:
        raise MMBenchError("no model given")
    # Everything a user can get wrong is checked before any model is prepared.
    seed_list = [0] if seeds is None else _as_list(seeds)
    for seed in seed_list:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise MMBenchError(f"--seed {seed}: a seed must be an integer in [0, 2**32)")
    check_limit(limit)
    if checkpoint is not None and not Path(checkpoint).is_dir():
        raise MMBenchError(f"--checkpoint {checkpoint}: no such checkpoint directory")
    output = Path(output_dir).expanduser()
    check_writable(output)
    evaluation.collisions = [conflict.message for conflict in registry.conflicts]
    options = RunOptions(
        results_dir=output, data_dir=data_root(Path(data_dir).expanduser() if data_dir is not None else None),
        seeds=list(dict.fromkeys(seed_list)), device=resolve_device(device), overwrite=overwrite, train=train,
        checkpoint=Path(checkpoint) if checkpoint is not None else None,
        skip_missing_data=frozenset(c.name for c in cards) - set(task_names), limit=limit,
    )
    if before_run is not None:
        before_run(evaluation)
    else:
        for line in evaluation.notices + evaluation.collisions:
            log.warning("%s", line)
    evaluation.outcomes = run(registry, resolved, cards, options, on_event or (lambda kind, payload: None))
    return evaluation


def evaluate(
    model: ModelLike | Sequence[ModelLike],
    tasks: str | Sequence[str] | None = None,
    suites: str | Sequence[str] | None = None,
    seeds: int | Sequence[int] | None = None,
    output_dir: str | os.PathLike = "results",
    data_dir: str | os.PathLike | None = None,
    device: str = "auto",
    config: Mapping[str, Any] | str | os.PathLike | None = None,
    overwrite: bool = False,
    train: bool = True,
    limit: int | None = None,
    *,
    tasks_dir: Sequence[str | os.PathLike] = (),
    checkpoint: str | os.PathLike | None = None,
    raise_error: bool = True,
) -> list[dict[str, Any]]:
    """Score ``model`` on ``tasks`` and/or ``suites``; return the records, as written to ``output_dir``.

    - ``model``: a name, variant or ``NAME:ARG`` spec (``"vectors:wiki.multi.vec"``), an
      :class:`mmbench.Model` instance you built, or a list of them.
    - ``tasks`` / ``suites``: task card names / suite names (``mmbench list tasks``).
    - ``seeds``: an int or a list (default ``[0]``); ``device``: ``auto``, ``cpu`` or ``cuda``.
    - ``config``: model config values, a dict (``{"dim": 300}``) or a TOML file; only for named models.
    - ``overwrite``: recompute records that exist; ``train=False`` loads and never trains (``mmbench eval``).
    - ``limit``: at most this many items per subset, a smoke run recorded under the protocol
      ``<protocol>+limit=N`` and left out of leaderboards.

    Records already in ``output_dir`` are returned without recomputing them. Units that are skipped
    (capability, contamination guard, data not installed for a suite's card) return no record. A failed unit
    raises :class:`~mmbench.errors.MMBenchError` after the others ran (``raise_error=False``: logged and left
    out). Ctrl-C raises ``KeyboardInterrupt``; the records written so far are kept and a rerun resumes.
    """
    evaluation = run_evaluation(model, tasks, suites, seeds, output_dir, data_dir, device, config, overwrite,
                                train, limit, tasks_dir=tasks_dir, checkpoint=checkpoint)
    for outcome in evaluation.outcomes:
        if outcome.status == "skipped":
            log.warning("skipped %s %s/%s: %s", outcome.model, outcome.task, outcome.subset, outcome.message)
    failed = evaluation.errors
    if failed:
        first = failed[0]
        message = (f"{len(failed)} unit(s) failed; first: {first.model} {first.task}/{first.subset}: {first.message}")
        if raise_error:
            raise MMBenchError(message)
        log.error("%s", message)
    return evaluation.records
