"""``mmbench data ...``: what benchmark data is known, where it is, its counts and checksums; builds the emoji set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .cli_output import CONTEXT, EXIT_FAILED, DataOpt, TaskOpt, TasksDirOpt, _table, err, out
from .errors import MMBenchError

data_app = typer.Typer(help="Benchmark data: what is known, where it is, checksums.", no_args_is_help=True,
                       context_settings=CONTEXT)


@data_app.command("list")
def data_list(data_dir: DataOpt = None) -> None:
    """Known datasets: where they are expected, whether present, license."""
    from .data.catalog import catalog_status
    from .data.root import data_root

    root = data_root(data_dir)
    table = _table(f"Datasets (data root: {root})")
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
    table = _table(name)
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
    """Check every data file named by the task cards against its sha256.

    A file that is not installed is "missing" (restricted data you add yourself, e.g. COCO: exit 0); a file
    whose sha256 differs, that cannot be read or that leaves its base directory is "corrupt" (exit 1)."""
    from .cards import check_files, discover_cards, suggest
    from .data.root import data_root

    root = data_root(data_dir)
    cards, _ = discover_cards(tasks_dir or [])
    for name in task or []:
        if name not in cards:
            raise MMBenchError(suggest(name, cards, "task", "see `mmbench list tasks`"))
    table = _table(f"Data files under {root}")
    table.add_column("task", no_wrap=True)
    table.add_column("subset", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    counts = {"ok": 0, "missing": 0, "corrupt": 0}
    styles = {"ok": "green", "missing": "yellow", "corrupt": "red"}
    for name, card in sorted(cards.items()):
        if task and name not in task:
            continue
        for subset in card.subsets:
            results = check_files(card, subset, root)
            if not results:
                continue
            for _file, status, _detail in results:
                counts[status] += 1
            worst = next((s for s in ("corrupt", "missing", "ok") if any(r[1] == s for r in results)))
            details = "; ".join(detail for _file, status, detail in results if status == worst and status != "ok")
            label = f"{worst} ({sum(r[1] == worst for r in results)}/{len(results)})" if worst != "ok" else "ok"
            table.add_row(escape(name), escape(subset.name), f"[{styles[worst]}]{label}[/]", escape(details))
    out.print(table)
    out.print(f"{counts['ok']} file(s) ok, {counts['missing']} missing (not installed; optional unless you run "
              f"those tasks), {counts['corrupt']} corrupt", soft_wrap=True)
    if counts["corrupt"]:
        raise typer.Exit(EXIT_FAILED)
