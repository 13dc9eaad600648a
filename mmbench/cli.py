"""The ``mmbench`` command line (Typer + rich): a thin layer on :mod:`mmbench.api`.

User errors are one line and a non-zero exit (docs/guarantees.md lists the codes). Start-up stays light:
rich's live display, the cards, the runner and the plugins are imported by the commands that use them.
"""

from __future__ import annotations

import shlex
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .cli_data import data_app
from .cli_output import (
    CONTEXT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOTHING_SCORED,
    EXIT_OK,
    EXIT_USAGE,
    DataOpt,
    TaskOpt,
    TasksDirOpt,
    _print_report,
    _state,
    _summary,
    _table,
    err,
    out,
    summary_lines,  # noqa: F401  (tests import it from here)
)
from .errors import CardError, MMBenchError

app = typer.Typer(
    name="mmbench",
    help="Benchmark multilingual word and sentence embeddings learned from image-text data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)
app.add_typer(data_app, name="data")

FORMATS = ("table", "csv", "json")
ModelOpt = Annotated[list[str], typer.Option("--model", "-m", help="Model name, variant or NAME:ARG (e.g. vectors:PATH); repeatable.")]
SuiteOpt = Annotated[Optional[list[str]], typer.Option("--suite", help="Run every task card in this suite; repeatable.")]
SeedOpt = Annotated[Optional[list[int]], typer.Option("--seed", help="Seed; repeatable (default 0).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
OutOpt = Annotated[Path, typer.Option("--output-dir", "-o", help="Results directory.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Model config override key=value; repeatable.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML file of model config values.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Recompute records that already exist.")]
LimitOpt = Annotated[Optional[int], typer.Option(
    "--limit", min=1, help="Smoke run: at most N items per subset, recorded as protocol '<protocol>+limit=N' "
                           "and never shown on leaderboards.")]
FormatOpt = Annotated[str, typer.Option(
    "--format", "-f", help="Summary on stdout: table (plain text when not a terminal), csv or json.")]


def _version_callback(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"mmbench {__version__} (Python {sys.version.split()[0]})")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    if debug:
        _state["debug"] = True


def get_registry():
    from .plugins import get_registry as load

    return load()


# -- listing --------------------------------------------------------------------------------------
@app.command("list")
def list_things(
    what: Annotated[str, typer.Argument(help="models, tasks or kinds (default: all three)")] = "all",
    tasks_dir: TasksDirOpt = None,
    kind: Annotated[Optional[str], typer.Option("--kind", help="Only tasks of this kind.")] = None,
    language: Annotated[Optional[str], typer.Option("--language", "-l", help="Only tasks with a subset in this language.")] = None,
    suite: Annotated[Optional[str], typer.Option("--suite", help="Only tasks of this suite.")] = None,
    data_dir: DataOpt = None,
) -> None:
    """List registered models, task cards (with whether their data is installed) and task kinds."""
    if what not in ("all", "models", "tasks", "kinds"):
        from .cards import suggest

        raise MMBenchError(suggest(what, ("models", "tasks", "kinds"), "list", "use models, tasks or kinds"))
    if (kind or language or suite) and what == "all":
        what = "tasks"
    if what in ("all", "models"):
        registry = get_registry()
        table = _table("Models")
        table.add_column("name", no_wrap=True)
        table.add_column("capabilities", overflow="fold")
        table.add_column("plugin", overflow="fold")
        table.add_column("description", overflow="fold", ratio=1)
        for name, entry in sorted(registry.models.items()):
            label = f"{name}:{entry.cls.argument}" if entry.cls.argument else name
            caps = ", ".join(sorted(str(c) for c in entry.capabilities))
            table.add_row(escape(label), caps, escape(entry.plugin), escape(entry.description))
        out.print(table)
    if what in ("all", "tasks"):
        _list_tasks(tasks_dir, kind, language, suite, data_dir)
    if what in ("all", "kinds"):
        registry = get_registry()
        table = _table("Task kinds")
        table.add_column("kind", no_wrap=True)
        for column in ("needs", "scores", "description"):
            table.add_column(column, overflow="fold")
        for name, task_kind in sorted(registry.task_kinds.items()):
            scores = list(task_kind.scores)
            shown = " ".join(scores[:4]) + (f" +{len(scores) - 4}" if len(scores) > 4 else "")
            table.add_row(name, ", ".join(sorted(map(str, task_kind.requires))), shown, task_kind.description)
        out.print(table)


def _languages(card) -> str:
    langs = sorted({lang for subset in card.subsets for lang in subset.languages})
    return " ".join(langs) if len(langs) <= 2 else f"{langs[0]} +{len(langs) - 1}"


def _list_tasks(tasks_dir, kind, language, suite, data_dir) -> None:
    from .cards import data_status, discover_cards, suggest
    from .data.root import data_root

    cards, errors = discover_cards(tasks_dir or [])
    if kind and kind not in {c.kind for c in cards.values()}:
        raise MMBenchError(suggest(kind, {c.kind for c in cards.values()}, "task kind", "see `mmbench list kinds`"))
    if suite and suite not in {s for c in cards.values() for s in c.suites}:
        raise MMBenchError(suggest(suite, {s for c in cards.values() for s in c.suites}, "suite", "see `mmbench list tasks`"))
    root = data_root(data_dir)
    selected = [card for _, card in sorted(cards.items())
                if (not kind or card.kind == kind) and (not suite or suite in card.suites)
                and (not language or any(language in s.languages for s in card.subsets))]
    from rich import box
    from rich.table import Table

    # Names and kinds stay whole (users copy them); languages and suites wrap at word boundaries.
    table = Table(title="Tasks", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("data", no_wrap=True)
    table.add_column("langs", no_wrap=True)
    table.add_column("suites", no_wrap=True)
    styles = {"yes": "green", "embedded": "green", "no": "red", "partial": "yellow"}
    for card in selected:
        status = data_status(card, root)
        table.add_row(escape(card.name), escape(card.kind), f"[{styles.get(status, '')}]{status}[/]",
                      escape(_languages(card)), escape(", ".join(card.suites)))
    out.print(table)
    if not selected:
        out.print("no task matches these filters")
    for line in errors:
        err.print(f"[yellow]invalid card skipped:[/] {escape(line)}")


@app.command("plugins")
def plugins_command() -> None:
    """Each plugin: distribution, version, what it registered, load errors and refused (colliding) names."""
    registry = get_registry()
    table = _table("Plugins")
    for column in ("plugin", "distribution", "version", "registered", "problems"):
        table.add_column(column)
    for info in registry.plugins.values():
        problems = ([f"[red]{escape(info.error)}[/]"] if info.error else []) + [
            f"[yellow]{escape(c)}[/]" for c in info.conflicts]
        table.add_row(
            escape(info.name), escape(info.distribution or "—"), escape(info.version or "—"),
            escape(", ".join(info.registered) or "—"), "; ".join(problems),
        )
    out.print(table)
    for conflict in registry.conflicts:
        err.print(f"[yellow]name collision:[/] {escape(conflict.message)}")


@app.command("validate")
def validate_command(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Card files or directories (default: all known cards).")] = None,
) -> None:
    """Check task cards: schema, fields, and the kind's own rules."""
    from .cards import discover_cards, load_card
    from .cards import validate_against_kind

    registry = get_registry()
    problems: list[str] = []
    checked = 0
    if paths:
        files = []
        for path in paths:
            if path.is_dir():
                files += sorted(path.glob("*.toml"))
            elif path.exists():
                files.append(path)
            else:
                problems.append(f"{path}: no such file or directory")
        for file in files:
            checked += 1
            try:
                validate_against_kind(registry, load_card(file))
            except CardError as exc:
                problems.append(str(exc))
    else:
        cards, problems = discover_cards()
        for card in cards.values():
            checked += 1
            try:
                validate_against_kind(registry, card)
            except CardError as exc:
                problems.append(str(exc))
    for line in problems:
        err.print(f"[red]invalid:[/] {escape(line)}")
    out.print(f"{checked} card(s) checked, {len(problems)} problem(s)")
    if problems:
        raise typer.Exit(1)


# -- running --------------------------------------------------------------------------------------
def _live_display():
    """The one live display of a run (stderr, transient): the harness's units, the trainer's steps nested in it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    # Three columns short of the terminal: the "^C" a terminal echoes then stays on the display's last line
    # (and is erased with it) instead of wrapping to a new line that would strand a copy of the display.
    console = Console(stderr=True, highlight=False, width=max(20, err.width - 3)) if err.is_terminal else err
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=True,
                    disable=not err.is_terminal)


def _run(models, tasks, suites, seeds, device, output_dir, data_dir, tasks_dir, set_options, config, overwrite,
         train: bool, checkpoint: Path | None = None, limit: int | None = None, fmt: str = "table") -> None:
    from .api import run_evaluation
    from .runner import is_main_process, nested_display

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    progress = _live_display()
    bar = None

    def before_run(evaluation) -> None:
        for line in evaluation.notices:
            err.print(f"[yellow]notice:[/] {escape(line)}")
        for line in evaluation.collisions:
            err.print(f"[yellow]name collision:[/] {escape(line)}")

    def on_event(kind, payload):
        nonlocal bar
        if bar is None:
            bar = progress.add_task("scoring", total=None, info="")
        if kind == "plan":
            progress.update(bar, total=payload)
        elif kind == "prepare":
            progress.update(bar, description=f"preparing {escape(str(payload))}")
        elif kind == "start":
            progress.update(bar, description=escape(f"{payload.card.name} / {payload.subset.name}"))
        elif kind == "outcome" and payload.subset != "all":  # aggregates are extra, not planned units
            progress.advance(bar)
        elif kind == "waiting":
            progress.console.print(f"another mmbench run holds {escape(str(payload))}; waiting for it to finish")

    try:
        with progress, nested_display(progress):
            evaluation = run_evaluation(
                models, tasks, suites, seeds, output_dir, data_dir, device, config, overwrite, train, limit,
                set_options=set_options or [], tasks_dir=tasks_dir or [], checkpoint=checkpoint,
                on_event=on_event, before_run=before_run)
    except KeyboardInterrupt:  # click would say "Aborted!" and exit 1
        raise typer.Exit(_interrupted(_state["argv"])) from None
    outcomes = evaluation.outcomes
    if not is_main_process():
        return
    _summary(outcomes, output_dir, fmt)
    if limit is not None:
        err.print(f"smoke run: at most {limit} item(s) per subset, filed under protocol '…+limit={limit}'; "
                  "these records never count as full runs and are left out of leaderboards", soft_wrap=True)
    if any(o.status == "error" for o in outcomes):
        raise typer.Exit(EXIT_FAILED)
    if all(o.status == "skipped" for o in outcomes):
        err.print("[red]Error:[/] nothing was scored: every requested unit was skipped (reasons above)")
        raise typer.Exit(EXIT_NOTHING_SCORED)


@app.command("run")
def run_command(
    model: ModelOpt, task: TaskOpt = None, suite: SuiteOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = "auto", output_dir: OutOpt = Path("results"), data_dir: DataOpt = None,
    tasks_dir: TasksDirOpt = None, set_option: SetOpt = None, config: ConfigOpt = None, overwrite: OverwriteOpt = False,
    limit: LimitOpt = None, fmt: FormatOpt = "table",
) -> None:
    """Train (if needed) and score models on tasks; one JSON record per result."""
    _run(model, task, suite, seed, device, output_dir, data_dir, tasks_dir, set_option, config, overwrite,
         train=True, limit=limit, fmt=fmt)


@app.command("eval")
def eval_command(
    model: ModelOpt, task: TaskOpt = None, suite: SuiteOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = "auto", output_dir: OutOpt = Path("results"), data_dir: DataOpt = None,
    tasks_dir: TasksDirOpt = None, set_option: SetOpt = None, config: ConfigOpt = None, overwrite: OverwriteOpt = False,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Checkpoint directory to load.")] = None,
    limit: LimitOpt = None, fmt: FormatOpt = "table",
) -> None:
    """Score an existing model, checkpoint or vectors file without training."""
    _run(model, task, suite, seed, device, output_dir, data_dir, tasks_dir, set_option, config, overwrite,
         train=False, checkpoint=checkpoint, limit=limit, fmt=fmt)


@app.command("leaderboard")
def leaderboard_command(
    results_dir: Annotated[Path, typer.Option("--results-dir", help="Where the records are.")] = Path("results"),
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where to write pages.")] = Path("leaderboards"),
) -> None:
    """Build markdown, CSV and JSON leaderboards from result records."""
    from .leaderboard import build_leaderboards

    if not results_dir.is_dir():
        raise MMBenchError(f"results directory not found: {results_dir}")
    report = build_leaderboards(results_dir, output_dir)
    for line in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(line)}")
    out.print(f"wrote {len(report.files)} file(s) to {output_dir}")


PLOTTED_BY_DEFAULT = ("val/", "alignment_ratio/", "loss/")


@app.command("plot-training")
def plot_training_command(
    run: Annotated[Path, typer.Argument(help="A run's metrics.jsonl, its run dir, or the model's work dir.")],
    key: Annotated[list[str] | None, typer.Option("--key", "-k", help="Metric to plot (repeatable); default: "
                                                  "every val/*, alignment_ratio/* and loss/* metric.")] = None,
    png: Annotated[Path | None, typer.Option("--out", "-o", help="PNG to write (default: curves.png beside the "
                                             "log).")] = None,
) -> None:
    """Plot training curves (loss, validation scores, tracked metrics such as AME's alignment ratio)."""
    import json

    from .leaderboard.plots import plot_training_curves

    candidates = [run, run / "metrics.jsonl", run / "train" / "metrics.jsonl"]
    log = next((c for c in candidates if c.is_file()), None)
    if log is None:
        raise MMBenchError(f"no metrics.jsonl at {run} (give a training run's directory or its metrics.jsonl)")
    if not key:
        seen: dict[str, None] = {}
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line) if line.strip() else {}
            except json.JSONDecodeError:
                raise MMBenchError(f"{log}: not a metrics log (each line must be a JSON object)") from None
            for name, value in (entry.items() if isinstance(entry, dict) else ()):
                if name.startswith(PLOTTED_BY_DEFAULT) and isinstance(value, (int, float)):
                    seen.setdefault(name)
        key = sorted(seen)
        if not key:
            raise MMBenchError(f"{log}: no val/*, alignment_ratio/* or loss/* metric to plot; name one with --key")
    written = plot_training_curves(log, key, png or log.with_name("curves.png"), title=str(log.parent))
    out.print(f"wrote {written}")


@app.command("inspect")
def inspect_command(
    record: Annotated[Optional[Path], typer.Argument(help="A result record (.json), or a results directory to "
                                                     "pick one from with the filters.")] = None,
    results_dir: Annotated[Optional[Path], typer.Option("--results-dir", help="Results directory to pick the "
                                                        "record from (default: results).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Only records of this model.")] = None,
    task: Annotated[Optional[str], typer.Option("--task", "-t", help="Only records of this task.")] = None,
    subset: Annotated[Optional[str], typer.Option("--subset", "-s", help="Only records of this subset.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Only records of this seed.")] = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="Rows in each list of worst items.")] = 10,
    names: Annotated[bool, typer.Option("--names/--no-names", help="Name the items (word pairs, source words, "
                                        "captions) from the task data when it is the data the record was scored "
                                        "on.")] = True,
    data_dir: DataOpt = None, tasks_dir: TasksDirOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Error analysis of one record from its per-item outputs: the worst items, recomputed scores."""
    import json

    from .inspect import AmbiguousRecord, find_record, inspect_record, read_record

    if fmt not in ("table", "json"):
        raise typer.BadParameter(f"{fmt!r} is not one of table, json", param_hint="--format")
    if record is not None and results_dir is not None:
        raise typer.BadParameter("give a record (file or directory) or --results-dir, not both", param_hint="RECORD")
    filters = {"model": model, "task": task, "subset": subset, "seed": seed}
    if record is not None and record.is_file():
        if any(value is not None for value in filters.values()):
            raise typer.BadParameter("--model, --task, --subset and --seed pick a record from a results directory, "
                                     "not from a record file", param_hint="RECORD")
        path, data = record, read_record(record)
    elif record is not None and not record.is_dir():
        raise MMBenchError(f"no record or results directory at {record}")
    else:
        try:
            path, data = find_record(record or results_dir or Path("results"), **filters)
        except AmbiguousRecord as exc:
            for match, found in exc.matches:
                err.print(f"  {escape(str(match))}  ({escape(found['model'])}, seed {found['seed']}, "
                          f"{escape(found['task'])}/{escape(found['subset'])}, {escape(found['protocol'])})",
                          soft_wrap=True)
            err.print(f"[red]Error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from None
    report = inspect_record(data, path, top=top, names=names, data_dir=data_dir, tasks_dirs=tasks_dir or [])
    if fmt == "json":
        sys.stdout.write(json.dumps(report.as_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        sys.stdout.flush()
        return
    _print_report(report)


_added_commands: set[int] = set()


def _add_plugin_commands() -> None:
    for function, name, help_text, _plugin in get_registry().commands:
        if id(function) not in _added_commands:  # main() may run several times in one process (tests)
            _added_commands.add(id(function))
            app.command(name=name, help=help_text)(function)


# -- entry point ----------------------------------------------------------------------------------
def _needs_plugin_commands(args: list[str]) -> bool:
    """Plugin commands are added (which loads every plugin) unless a core command or --version is asked for."""
    from .plugins import CORE_COMMANDS

    words = [a for a in args if not a.startswith("-")]
    if any(a in ("--version", "-V") for a in args) and not words:
        return False
    return not (words and words[0] in CORE_COMMANDS)


def _interrupted(args: list[str]) -> int:
    rerun = shlex.join(["mmbench", *args])
    err.print(f"interrupted: the records written so far are kept; rerun [bold]{escape(rerun)}[/] to resume",
              soft_wrap=True)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    _state["argv"] = args
    if _needs_plugin_commands(args):
        _add_plugin_commands()
    command = typer.main.get_command(app)
    try:
        # Standalone mode: click reports its own usage errors (exit 2) and raises SystemExit.
        command.main(args=args, prog_name="mmbench", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MMBenchError as exc:
        if _state["debug"]:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.print(f"[red]Error:[/] {escape(message)}")
        return EXIT_USAGE if isinstance(exc, CardError) else EXIT_FAILED
    except KeyboardInterrupt:
        return _interrupted(args)
    except Exception as exc:  # a bug: one line unless --debug
        if _state["debug"]:
            traceback.print_exc()
        else:
            err.print(f"[red]Internal error:[/] {type(exc).__name__}: {escape(str(exc).splitlines()[0] if str(exc) else '')} (rerun with --debug)")
        return 1
    return 0
