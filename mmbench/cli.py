"""The ``mmbench`` command line (Typer + rich). User errors are one line and a non-zero exit."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .errors import CardError, MMBenchError
from .plugins import get_registry

app = typer.Typer(
    name="mmbench",
    help="Benchmark multilingual word and sentence embeddings learned from image-text data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Benchmark data: what is known, where it is, checksums.", no_args_is_help=True)
app.add_typer(data_app, name="data")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, however long
_state = {"debug": bool(os.environ.get("MMBENCH_DEBUG"))}

# Exit codes (docs/guarantees.md): 0 every requested unit was scored or already had an intact record;
# 1 a unit or the command failed (user error, broken model, bad data); 2 usage or task-card error;
# 3 nothing was scored because every requested unit was skipped (capability, contamination, missing data).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_SCORED = 0, 1, 2, 3

ModelOpt = Annotated[list[str], typer.Option("--model", "-m", help="Model name, variant or NAME:ARG (e.g. vectors:PATH); repeatable.")]
TaskOpt = Annotated[Optional[list[str]], typer.Option("--task", "-t", help="Task card name; repeatable.")]
SuiteOpt = Annotated[Optional[list[str]], typer.Option("--suite", help="Run every task card in this suite; repeatable.")]
SeedOpt = Annotated[Optional[list[int]], typer.Option("--seed", help="Seed; repeatable (default 0).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
OutOpt = Annotated[Path, typer.Option("--output-dir", "-o", help="Results directory.")]
DataOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Benchmark data root (default $MMBENCH_DATA, else the user cache).")]
TasksDirOpt = Annotated[Optional[list[Path]], typer.Option("--tasks-dir", help="Extra directory of task cards; repeatable.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Model config override key=value; repeatable.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML file of model config values.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Recompute records that already exist.")]


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False) -> None:
    if debug:
        _state["debug"] = True


# -- listing --------------------------------------------------------------------------------------
@app.command("list")
def list_things(
    what: Annotated[str, typer.Argument(help="models, tasks or kinds")] = "all",
    tasks_dir: TasksDirOpt = None,
) -> None:
    """List registered models, task cards and task kinds."""
    from .cards import discover_cards

    if what not in ("all", "models", "tasks", "kinds"):
        raise MMBenchError(f"cannot list {what!r}: use models, tasks or kinds")
    registry = get_registry()
    if what in ("all", "models"):
        table = Table(title="Models")
        for column in ("name", "capabilities", "plugin", "description"):
            table.add_column(column)
        for name, entry in sorted(registry.models.items()):
            label = f"{name}:{entry.cls.argument}" if entry.cls.argument else name
            caps = ", ".join(sorted(str(c) for c in entry.capabilities))
            table.add_row(escape(label), caps, escape(entry.plugin), escape(entry.description))
        out.print(table)
    if what in ("all", "tasks"):
        cards, errors = discover_cards(tasks_dir or [])
        table = Table(title="Tasks")
        rows = [(name, card.kind, ", ".join(card.suites), str(len(card.subsets)), card.main_score, card.protocol)
                for name, card in sorted(cards.items())]
        # Names stay whole (users copy them); on a narrow terminal the other columns fold.
        table.add_column("name", no_wrap=True, min_width=max([4] + [len(r[0]) for r in rows]))
        for column in ("kind", "suites", "subsets", "main score", "protocol"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*map(escape, row))
        out.print(table)
        for line in errors:
            err.print(f"[yellow]invalid card skipped:[/] {escape(line)}")
    if what in ("all", "kinds"):
        table = Table(title="Task kinds")
        for column in ("kind", "needs", "scores", "description"):
            table.add_column(column)
        for name, kind in sorted(registry.task_kinds.items()):
            table.add_row(name, ", ".join(sorted(map(str, kind.requires))), ", ".join(kind.scores), kind.description)
        out.print(table)


@app.command("plugins")
def plugins_command() -> None:
    """Each plugin: distribution, version, what it registered, load errors and refused (colliding) names."""
    registry = get_registry()
    table = Table(title="Plugins")
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
def _run(models, tasks, suites, seeds, device, output_dir, data_dir, tasks_dir, set_options, config, overwrite,
         train: bool, checkpoint: Path | None = None) -> None:
    from .data.root import data_root
    from .runner import (
        RunOptions,
        is_main_process,
        resolve_device,
        resolve_model,
        run,
        select_cards,
    )

    registry = get_registry()
    notices: list[str] = []
    cards = select_cards(registry, tasks or [], suites or [], tasks_dir or [], notices=notices)
    resolved = [resolve_model(registry, spec, set_options or [], config) for spec in models]
    # Everything a user can get wrong is checked before any model is prepared.
    for seed in seeds or []:
        if not 0 <= seed < 2**32:
            raise MMBenchError(f"--seed {seed}: a seed must be an integer in [0, 2**32)")
    if checkpoint is not None and not checkpoint.is_dir():
        raise MMBenchError(f"--checkpoint {checkpoint}: no such checkpoint directory")
    _check_writable(output_dir)
    for line in notices:
        err.print(f"[yellow]notice:[/] {escape(line)}")
    for conflict in registry.conflicts:
        err.print(f"[yellow]name collision:[/] {escape(conflict.message)}")
    options = RunOptions(
        results_dir=output_dir, data_dir=data_root(data_dir), seeds=list(dict.fromkeys(seeds or [0])),
        device=resolve_device(device), overwrite=overwrite, train=train, checkpoint=checkpoint,
        skip_missing_data=frozenset(c.name for c in cards) - set(tasks or []),
    )
    total = len(resolved) * len(options.seeds) * sum(len(c.subsets) for c in cards)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)
    with progress:
        bar = progress.add_task("scoring", total=total)

        def on_event(kind, payload):
            if kind == "prepare":
                progress.update(bar, description=f"preparing {payload}")
            elif kind == "start":
                progress.update(bar, description=f"{payload.card.name} / {payload.subset.name}")
            elif kind == "outcome" and payload.subset != "all":  # aggregates are extra, not planned units
                progress.advance(bar)
            elif kind == "waiting":
                progress.console.print(f"another mmbench run holds {escape(str(payload))}; waiting for it to finish")

        outcomes = run(registry, resolved, cards, options, on_event)
    if not is_main_process():
        return
    _summary(outcomes, output_dir)
    if any(o.status == "error" for o in outcomes):
        raise typer.Exit(EXIT_FAILED)
    if all(o.status == "skipped" for o in outcomes):
        err.print("[red]Error:[/] nothing was scored: every requested unit was skipped (reasons above)")
        raise typer.Exit(EXIT_NOTHING_SCORED)


def _check_writable(directory: Path) -> None:
    """Fail before any work if results cannot be written to ``directory``."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".mmbench-write-check"):
            pass
    except OSError as exc:
        raise MMBenchError(f"--output-dir {directory}: cannot write results there ({exc.strerror or exc})") from None


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}%" if percent else f"{value:.4g}"


def _summary(outcomes, output_dir: Path) -> None:
    table = Table(title="Results")
    for column in ("model", "seed", "task", "subset", "status", "main score", "coverage"):
        table.add_column(column)
    existing = 0
    notes: dict[tuple[str, str, str], list[str]] = {}
    for o in outcomes:
        if o.status == "exists":
            existing += 1
            continue
        style = {"done": "green", "skipped": "yellow", "error": "red"}.get(o.status, "")
        score = f"{o.main_score_name}={_fmt(o.main_score)}" if o.main_score is not None else "—"
        table.add_row(escape(o.model), str(o.seed), escape(o.task), escape(o.subset), f"[{style}]{o.status}[/]",
                      score, _fmt(o.coverage, percent=True))
        if o.message:
            notes.setdefault((o.status, o.model, o.message), []).append(f"{o.task}/{o.subset}")
        if o.traceback and _state["debug"]:
            err.print(o.traceback)
    if table.row_count:
        out.print(table)
    for (status, model, message), units in notes.items():
        where = units[0] if len(units) == 1 else f"{len(units)} units"
        colour = "red" if status == "error" else "yellow"
        err.print(f"[{colour}]{status}:[/] {escape(model)} ({escape(where)}): {escape(message)}")
    if existing:
        out.print(f"{existing} record(s) already existed in {output_dir} and were not recomputed (use --overwrite).")
    done = sum(o.status == "done" for o in outcomes)
    errors = sum(o.status == "error" for o in outcomes)
    out.print(f"{done} record(s) written to {output_dir}, {errors} error(s).")


@app.command("run")
def run_command(
    model: ModelOpt, task: TaskOpt = None, suite: SuiteOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = "auto", output_dir: OutOpt = Path("results"), data_dir: DataOpt = None,
    tasks_dir: TasksDirOpt = None, set_option: SetOpt = None, config: ConfigOpt = None, overwrite: OverwriteOpt = False,
) -> None:
    """Train (if needed) and score models on tasks; one JSON record per result."""
    _run(model, task, suite, seed, device, output_dir, data_dir, tasks_dir, set_option, config, overwrite, train=True)


@app.command("eval")
def eval_command(
    model: ModelOpt, task: TaskOpt = None, suite: SuiteOpt = None, seed: SeedOpt = None,
    device: DeviceOpt = "auto", output_dir: OutOpt = Path("results"), data_dir: DataOpt = None,
    tasks_dir: TasksDirOpt = None, set_option: SetOpt = None, config: ConfigOpt = None, overwrite: OverwriteOpt = False,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Checkpoint directory to load.")] = None,
) -> None:
    """Score an existing model, checkpoint or vectors file without training."""
    _run(model, task, suite, seed, device, output_dir, data_dir, tasks_dir, set_option, config, overwrite,
         train=False, checkpoint=checkpoint)


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


# -- data -----------------------------------------------------------------------------------------
@data_app.command("list")
def data_list(data_dir: DataOpt = None) -> None:
    """Known datasets: where they are expected, whether present, license."""
    from .data.catalog import catalog_status
    from .data.root import data_root

    root = data_root(data_dir)
    table = Table(title=f"Datasets (data root: {root})")
    for column in ("name", "present", "path", "license"):
        table.add_column(column)
    table.add_row("emoji", "[green]embedded[/]", "(inside the mmbench package)", "see mmbench/data/emoji/NOTICE.md")
    missing = []
    for row in catalog_status(root):
        table.add_row(row["name"], "[green]yes[/]" if row["present"] else "[red]no[/]", escape(str(row["path"])),
                      escape(row["license"]))
        if not row["present"]:
            missing.append(f"{row['name']}: {row['obtain']}")
    out.print(table)
    for line in missing:
        out.print(f"[dim]{escape(line)}[/]")


@data_app.command("info")
def data_info(name: Annotated[str, typer.Argument(help="Dataset name (see `mmbench data list`).")],
              data_dir: DataOpt = None) -> None:
    """Counts per split / language of one dataset."""
    from .data.root import data_root

    if name == "emoji":
        from .data.emoji import load_emoji

        counts = load_emoji().manifest["counts"]
    else:
        from .data.catalog import dataset_counts

        counts = dataset_counts(name, data_root(data_dir))
    table = Table(title=name)
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in _flatten(counts):
        table.add_row(escape(key), str(value))
    out.print(table)


def _flatten(counts, prefix: str = ""):
    for key, value in counts.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@data_app.command("build")
def data_build(
    name: Annotated[str, typer.Argument(help="Dataset to build (emoji).")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where to write the artifact.")] = Path("emoji-artifact"),
) -> None:
    """Regenerate an embedded dataset from its sources (emoji: Debian fonts/CLDR + EfficientNet-Lite0)."""
    if name != "emoji":
        raise MMBenchError(f"cannot build {name!r}: only the embedded 'emoji' dataset is built locally")
    from .data.emoji.build import build_emoji

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err)
    tasks: dict[str, int] = {}
    with progress:
        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)

        path = build_emoji(output_dir, progress=report)
    out.print(f"emoji artifact written to {path}; compare with the packaged one: mmbench/data/emoji/artifact/manifest.json")


@data_app.command("verify")
def data_verify(data_dir: DataOpt = None, tasks_dir: TasksDirOpt = None, task: TaskOpt = None) -> None:
    """Check every data file named by the task cards against its sha256."""
    from .cards import discover_cards, verify_files
    from .data.root import data_root

    root = data_root(data_dir)
    cards, _ = discover_cards(tasks_dir or [])
    table = Table(title=f"Data files under {root}")
    for column in ("task", "subset", "status"):
        table.add_column(column)
    failures = 0
    for name, card in sorted(cards.items()):
        if task and name not in task:
            continue
        for subset in card.subsets:
            if not subset.files:
                continue
            try:
                verify_files(card, subset, root)
                table.add_row(name, subset.name, "[green]ok[/]")
            except MMBenchError as exc:
                failures += 1
                table.add_row(name, subset.name, f"[red]{escape(str(exc))}[/]")
    out.print(table)
    if failures:
        raise typer.Exit(1)


_added_commands: set[int] = set()


def _add_plugin_commands() -> None:
    for function, name, help_text, _plugin in get_registry().commands:
        if id(function) not in _added_commands:  # main() may run several times in one process (tests)
            _added_commands.add(id(function))
            app.command(name=name, help=help_text)(function)


# -- entry point ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    _add_plugin_commands()
    command = typer.main.get_command(app)
    try:
        # Standalone mode: click reports its own usage errors (exit 2) and raises SystemExit.
        command.main(args=argv if argv is not None else sys.argv[1:], prog_name="mmbench", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MMBenchError as exc:
        if _state["debug"]:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.print(f"[red]Error:[/] {escape(message)}")
        return EXIT_USAGE if isinstance(exc, CardError) else EXIT_FAILED
    except KeyboardInterrupt:
        err.print("Interrupted.")
        return 130
    except Exception as exc:  # a bug: one line unless --debug
        if _state["debug"]:
            traceback.print_exc()
        else:
            err.print(f"[red]Internal error:[/] {type(exc).__name__}: {escape(str(exc).splitlines()[0] if str(exc) else '')} (rerun with --debug)")
        return 1
    return 0
