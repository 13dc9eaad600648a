"""Leaderboards from result records: aggregation, ranking, rendering, robustness, determinism."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from mmbench.errors import DataError
from mmbench.leaderboard import (
    aggregate,
    build_leaderboards,
    csv_safe,
    escape_markdown,
    format_coverage,
    format_score,
    load_records,
    public_argument,
    task_slug,
)

HOSTILE = "a|b*c_[x](y)<script>`z`"


def make_record(**overrides) -> dict:
    """A valid schema-1 record; ``record_id`` is derived from the fields that identify it."""
    record = {
        "schema_version": 1, "model": "cnn-mean", "model_argument": None, "config_hash": "a1b2c3d4e5f6",
        "config": {"dim": 300}, "seed": 0, "task": "rg65-xling", "task_kind": "word-similarity",
        "subset": "en-de", "languages": ["en", "de"], "split": "test", "protocol": "multiskip-rg65/dev+test",
        "main_score_name": "spearman", "main_score": 0.61, "higher_is_better": True,
        "scores": {"spearman": 0.61, "pearson": 0.58}, "coverage": 0.96, "n_items": 125, "wall_time_s": 0.4,
        "created_at": "2026-11-22T10:00:00Z", "provenance": {"mmbench_version": "0.1.0"},
    }
    record.update(overrides)
    if "record_id" not in overrides:
        ident = "|".join(str(record[k]) for k in ("task", "subset", "split", "model", "config_hash", "seed",
                                                    "main_score_name", "model_argument"))
        record["record_id"] = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return record


def write_records(directory: Path, records: list[dict], nested: bool = True) -> None:
    for index, record in enumerate(records):
        folder = directory / record["task"] / record["model"] if nested else directory
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:03d}-{record['record_id']}.json").write_text(json.dumps(record), encoding="utf-8")


def split_row(line: str) -> list[str]:
    """Cells of a Markdown table row, splitting only at pipes not escaped by a backslash."""
    cells, current, index = [], "", 0
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line):
            current += line[index:index + 2]
            index += 2
            continue
        if char == "|":
            cells.append(current)
            current = ""
        else:
            current += char
        index += 1
    cells.append(current)
    return [cell.strip() for cell in cells[1:-1]]


def unescaped_pipes(line: str) -> int:
    return len(split_row(line)) + 1


def tables(markdown: str) -> list[list[list[str]]]:
    """Every table of a Markdown page as a list of rows of cells (header first, separator dropped)."""
    found, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append(split_row(line))
        elif current:
            found.append([current[0], *current[2:]])
            current = []
    return found


def seeded(values: list[float], **overrides) -> list[dict]:
    return [make_record(seed=seed, main_score=value, scores={"spearman": value, "pearson": value / 2}, **overrides)
            for seed, value in enumerate(values)]


def test_mean_and_sample_sd_over_seeds_match_numpy() -> None:
    values = [0.61, 0.55, 0.7, 0.64]
    coverages = [0.9, 0.95, None, 1.0]
    records = [make_record(seed=s, main_score=v, coverage=c, scores={"spearman": v, "pearson": v - 0.1, "nan": None})
               for s, (v, c) in enumerate(zip(values, coverages))]
    records.append(make_record(model="solo", main_score=0.3, scores={"spearman": 0.3}, record_id="0" * 16))
    rows = aggregate(records)
    assert [r["model"] for r in rows] == ["cnn-mean", "solo"]  # table order, best first
    many = next(r for r in rows if r["model"] == "cnn-mean")
    assert many["main_mean"] == pytest.approx(np.mean(values), abs=1e-12)
    assert many["main_sd"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    assert many["n_seeds"] == 4 and many["seeds"] == [0, 1, 2, 3]
    assert many["coverage_mean"] == pytest.approx(np.mean([0.9, 0.95, 1.0]))  # null coverage is skipped
    assert many["scores"]["pearson"] == pytest.approx(np.mean(values) - 0.1)
    assert many["scores"]["nan"] is None
    assert many["n_items"] == 125 and many["languages"] == ["en", "de"]
    solo = next(r for r in rows if r["model"] == "solo")
    assert solo["main_sd"] is None and solo["n_seeds"] == 1


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_ranking_follows_score_direction(tmp_path: Path, higher_is_better: bool) -> None:
    means = {"mid": 0.5, "low": 0.2, "high": 0.9, "tie-b": 0.5}
    records = [make_record(model=m, main_score=v, higher_is_better=higher_is_better, main_score_name="err",
                           scores={"err": v}) for m, v in means.items()]
    write_records(tmp_path / "results", records)
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    page = (tmp_path / "out" / "rg65-xling.md").read_text(encoding="utf-8")
    (table,) = tables(page)
    order = [row[1] for row in table[1:]]
    ranks = [row[0] for row in table[1:]]
    if higher_is_better:
        assert order == ["high", "mid", "tie-b", "low"] and ranks == ["1", "2", "2", "4"]
    else:
        assert order == ["low", "mid", "tie-b", "high"] and ranks == ["1", "2", "2", "4"]
    assert table[0] == ["Rank", "Model", "Config", "err (0-1) mean ± sd", "95% CI", "vs best", "Coverage",
                        "n scored / total", "Seeds"]
    assert "Protocol: `multiskip-rg65/dev+test`" in page  # once per section, not in every row


def test_output_is_byte_identical_whatever_the_file_order(tmp_path: Path) -> None:
    records = seeded([0.61, 0.58, 0.66])
    records += seeded([0.4, 0.45], model="vectors", model_argument="fasttext-en")
    records += [make_record(task="flickr-retrieval", task_kind="retrieval", subset=s, model=m, main_score=v,
                            main_score_name="recall@10", scores={"recall@1": v / 3, "recall@10": v, "recall@5": v / 2},
                            coverage=None, seed=seed)
                for s in ("de", "en", "all") for m, v in (("cnn-mean", 0.5), ("vectors", 0.42)) for seed in (0, 1)]
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    write_records(tmp_path / "one", records)
    write_records(tmp_path / "two", shuffled, nested=False)
    first = build_leaderboards(tmp_path / "one", tmp_path / "out1")
    second = build_leaderboards(tmp_path / "two", tmp_path / "out2")
    names = sorted(p.name for p in first.files)
    assert names == sorted(p.name for p in second.files)
    assert names == ["README.md", "flickr-retrieval.csv", "flickr-retrieval.md", "flickr-retrieval.score.png",
                     "leaderboard.json", "rg65-xling.csv", "rg65-xling.md", "rg65-xling.score.png"]
    for name in names:
        assert (tmp_path / "out1" / name).read_bytes() == (tmp_path / "out2" / name).read_bytes(), name
    text = (tmp_path / "out1" / "leaderboard.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert first.n_records == len(records) and first.warnings == []


def test_hostile_model_name_stays_in_one_cell(tmp_path: Path) -> None:
    name = HOSTILE + "\nnext | row\\"
    write_records(tmp_path / "results", [make_record(model=name, model_argument="#arg|x"),
                                         make_record(model="plain", main_score=0.1)], nested=False)
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    for page in ("rg65-xling.md", "README.md"):
        markdown = (tmp_path / "out" / page).read_text(encoding="utf-8")
        assert "<script>" not in markdown
        (table,) = tables(markdown)
        header_pipes = len(table[0]) + 1
        hostile_lines = [line for line in markdown.splitlines() if "script" in line]
        assert len(hostile_lines) == 1  # the newline in the name did not break the row
        assert unescaped_pipes(hostile_lines[0]) == header_pipes
        cell = next(c for c in split_row(hostile_lines[0]) if "script" in c)
        assert re.sub(r"\\(.)", r"\1", cell).startswith(HOSTILE + " next | row\\")


def test_escape_markdown_rules() -> None:
    assert escape_markdown("# title") == "\\# title"
    assert escape_markdown("a # b") == "a # b"
    assert escape_markdown("x_y*z") == "x\\_y\\*z"
    assert escape_markdown("line\r\nbreak") == "line break"
    assert escape_markdown("<b>`c`</b>") == "\\<b\\>\\`c\\`\\</b\\>"
    assert escape_markdown("a\\|b") == "a\\\\\\|b"


def test_bad_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_records(results, [make_record(), make_record(model="other", main_score=0.2)])
    (results / "corrupt.json").write_text('{"schema_version": 1, "model": ', encoding="utf-8")
    (results / "future.json").write_text(json.dumps(make_record(schema_version=3)), encoding="utf-8")
    (results / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (results / "empty.json").write_text("", encoding="utf-8")
    (results / "list.json").write_text("[1, 2]", encoding="utf-8")
    (results / "no-score.json").write_text(json.dumps(make_record(main_score=None)), encoding="utf-8")
    (results / "nan-score.json").write_text(json.dumps(make_record(main_score=float("nan"))), encoding="utf-8")
    (results / "evil.json").write_text(json.dumps(make_record(task="../../etc")), encoding="utf-8")
    (results / ".hidden.json").write_text("not json", encoding="utf-8")
    (results / "partial.json.tmp").write_text("not json", encoding="utf-8")
    report = build_leaderboards(results, tmp_path / "out")
    joined = "\n".join(report.warnings)
    expected = {"corrupt.json": "invalid JSON at line 1", "future.json": "schema_version 3",
                "binary.json": "not UTF-8", "empty.json": "empty file", "list.json": "not a JSON object",
                "no-score.json": "main_score", "nan-score.json": "main_score", "evil.json": "unsafe task name"}
    assert len(report.warnings) == len(expected)
    for name, reason in expected.items():
        assert re.search(rf"skipped {re.escape(name)}: .*{re.escape(reason)}", joined), name
    assert ".hidden" not in joined and ".tmp" not in joined
    assert report.n_records == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "README.md", "leaderboard.json", "rg65-xling.csv", "rg65-xling.md", "rg65-xling.score.png"]
    assert "cnn-mean" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")


def test_csv_parses_back_to_the_same_numbers(tmp_path: Path) -> None:
    records = seeded([0.61, 0.58, 0.66]) + [make_record(model="solo", main_score=1.5, coverage=None,
                                                        scores={"spearman": 1.5, "recall@10": 0.25})]
    write_records(tmp_path / "results", records)
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    rows = {r["model"]: r for r in aggregate(records)}
    with open(tmp_path / "out" / "rg65-xling.csv", newline="", encoding="utf-8") as handle:
        parsed = {line["model"]: line for line in csv.DictReader(handle)}
    assert set(parsed) == {"cnn-mean", "solo"}
    for model, row in rows.items():
        line = parsed[model]
        assert float(line["main_mean"]) == row["main_mean"]
        assert (line["main_sd"] == "") if row["main_sd"] is None else float(line["main_sd"]) == row["main_sd"]
        assert line["seeds"].split() == [str(s) for s in row["seeds"]]
        for name, value in row["scores"].items():
            assert float(line[f"score.{name}"]) == value
    assert parsed["solo"]["coverage_mean"] == "" and parsed["solo"]["score.pearson"] == ""
    assert parsed["cnn-mean"]["higher_is_better"] == "true" and parsed["cnn-mean"]["rank"] == "2"


def test_index_links_point_to_existing_pages(tmp_path: Path) -> None:
    records = [make_record(task=t, main_score=0.5) for t in ("rg65-xling", "Multi30k Retrieval", "README",
                                                             "multi30k-retrieval")]
    write_records(tmp_path / "results", records, nested=False)
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    index = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", index)
    assert len(links) == 4 and len(set(links)) == 4
    for link in links:
        assert (tmp_path / "out" / link).is_file() and (tmp_path / "out" / link).parent == tmp_path / "out"
    assert index.startswith("# mmbench leaderboards")  # the task named README did not overwrite the index


def test_coverage_column_and_number_formats(tmp_path: Path) -> None:
    write_records(tmp_path / "results", [make_record(coverage=0.96), make_record(model="none", coverage=None),
                                         make_record(model="big", main_score=12.345)])
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    (table,) = tables((tmp_path / "out" / "rg65-xling.md").read_text(encoding="utf-8"))
    column = table[0].index("Coverage")
    cells = {row[1]: row for row in table[1:]}
    assert cells["cnn-mean"][column] == "96.0%" and cells["none"][column] == "—"
    assert cells["big"][3] == "12.35" and cells["cnn-mean"][3] == "0.610"
    assert "pearson (0-1)" in table[0] and "spearman (0-1) mean ± sd" in table[0]
    assert format_score(-0.0) == "0.00" and format_score(0.012345) == "0.0123" and format_score(None) == "—"
    assert format_coverage(1.0) == "100.0%"


def test_mixed_score_directions_warn_and_split_tables(tmp_path: Path) -> None:
    records = [make_record(), make_record(model="loss-based", main_score_name="mse", higher_is_better=False,
                                          main_score=0.2, scores={"mse": 0.2})]
    write_records(tmp_path / "results", records)
    report = build_leaderboards(tmp_path / "results", tmp_path / "out")
    assert any("different main scores" in w for w in report.warnings)
    page = (tmp_path / "out" / "rg65-xling.md").read_text(encoding="utf-8")
    assert len(tables(page)) == 2


@pytest.mark.parametrize(("n_subsets", "has_grid"), [(1, False), (3, True), (12, True), (13, False)])
def test_summary_grid_for_two_to_twelve_subsets(tmp_path: Path, n_subsets: int, has_grid: bool) -> None:
    subsets = ["all"] + [f"l{i}" for i in range(n_subsets - 1)]
    records = [make_record(subset=s, model=m, main_score=v) for s in subsets for m, v in (("x", 0.3), ("y", 0.4))]
    write_records(tmp_path / "results", records)
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    page = (tmp_path / "out" / "rg65-xling.md").read_text(encoding="utf-8")
    assert ("## Summary by subset" in page) == has_grid
    found = tables(page)
    assert len(found) == n_subsets + has_grid
    if has_grid:
        assert found[0][0] == ["Model", "Config", *subsets]
        assert found[0][2][2] == "**0.400** (96.0%)" and found[0][1][2] == "0.300 (96.0%)"  # coverage beside
    index = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    # The split label follows the protocol (dev+test); the coverage sits beside the score.
    assert "| all (dev+test) | y `a1b2c3d4e5f6` | spearman (0-1) 0.400 | — | 96.0% |" in index


def test_duplicate_seed_keeps_newest_record(tmp_path: Path) -> None:
    old = make_record(record_id="0" * 16, main_score=0.1, created_at="2026-01-01T00:00:00Z")
    new = make_record(record_id="f" * 16, main_score=0.9, created_at="2026-02-01T00:00:00Z")
    warnings: list[str] = []
    (row,) = aggregate([new, old, dict(new)], warnings)
    assert row["main_mean"] == 0.9 and row["n_seeds"] == 1
    assert any("kept " + "f" * 16 in w for w in warnings) and any("counted once" in w for w in warnings)


def test_stale_task_pages_are_removed_on_rebuild(tmp_path: Path) -> None:
    write_records(tmp_path / "results", [make_record(task="gone"), make_record()])
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    (tmp_path / "out" / "notes.md").write_text("mine", encoding="utf-8")
    for path in (tmp_path / "results" / "gone").rglob("*.json"):
        path.unlink()
    report = build_leaderboards(tmp_path / "results", tmp_path / "out")
    assert sorted(p.name for p in report.removed) == ["gone.csv", "gone.md", "gone.score.png"]
    assert (tmp_path / "out" / "notes.md").is_file()


def test_missing_results_dir_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="results directory not found"):
        load_records(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    report = build_leaderboards(tmp_path / "empty", tmp_path / "out")
    assert report.n_records == 0 and any("no result records" in w for w in report.warnings)
    assert "No result records found." in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")


def test_output_inside_results_dir_is_not_read_back(tmp_path: Path) -> None:
    write_records(tmp_path, [make_record()])
    build_leaderboards(tmp_path, tmp_path / "leaderboards")
    report = build_leaderboards(tmp_path, tmp_path / "leaderboards")
    assert report.warnings == [] and report.n_records == 1


def test_task_slug_is_a_safe_file_stem() -> None:
    assert task_slug("RG65 XLing") == "rg65-xling"
    assert task_slug("wörter/../x") == "worter-..-x"
    assert task_slug("...") == "task"


def test_index_reports_the_main_table(tmp_path: Path) -> None:
    # No "all" subset: the test split wins over train, then the subset with the most models.
    records = [make_record(subset="de", model=m, main_score=v) for m, v in (("p", 0.9), ("q", 0.1))]
    records += [make_record(subset="en", model=m, main_score=v) for m, v in (("p", 0.2), ("q", 0.3), ("r", 0.25))]
    records += [make_record(subset="aa", split="train", model=m, main_score=0.99) for m in "pqrs"]
    write_records(tmp_path / "results", records)
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    index = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    (table,) = tables(index)
    assert table[1][2:] == ["4", "en (dev+test)", "q `a1b2c3d4e5f6`", "spearman (0-1) 0.300", "—", "96.0%", "own score"]


def test_model_argument_is_not_part_of_the_key_nor_published_as_a_path(tmp_path: Path) -> None:
    # One vectors file scored from two local paths: same config hash (it includes the file's sha256).
    paths = ["/home/alice/emb/wiki.en.vec", "/mnt/scratch/copy of/wiki.en.vec"]
    records = [make_record(model="vectors:wiki.en.vec", model_argument=paths[seed], seed=seed, subset=subset,
                           main_score=0.4 + seed / 10, created_at=f"2026-0{seed + 1}-01T00:00:00Z")
               for seed in (0, 1) for subset in ("all", "en-de")]
    # Same file name, other content: another config hash, so another model entry.
    records.append(make_record(model="vectors:wiki.en.vec", model_argument="/home/bob/wiki.en.vec",
                               config_hash="ffffeeeedddd", main_score=0.2, subset="all"))
    write_records(tmp_path / "results", records, nested=False)
    report = build_leaderboards(tmp_path / "results", tmp_path / "out")
    assert report.warnings == [] and report.n_rows == 3

    rows = [r for r in aggregate(records) if r["config_hash"] == "a1b2c3d4e5f6"]
    assert len(rows) == 2 and all(r["n_seeds"] == 2 and r["seeds"] == [0, 1] for r in rows)
    assert all(r["main_mean"] == pytest.approx(0.45) and r["model_argument"] == paths[1] for r in rows)

    with open(tmp_path / "out" / "rg65-xling.csv", newline="", encoding="utf-8") as handle:
        lines = [line for line in csv.DictReader(handle) if line["config_hash"] == "a1b2c3d4e5f6"]
    assert [line["model_argument"] for line in lines] == ["wiki.en.vec", "wiki.en.vec"]  # base name only
    summary = json.loads((tmp_path / "out" / "leaderboard.json").read_text(encoding="utf-8"))
    assert {r["model_argument"] for r in summary["rows"]} == {"wiki.en.vec"}
    for published in (tmp_path / "out").iterdir():
        text = published.read_bytes().decode("latin-1")  # PNG plots too
        assert "/home/" not in text and "/mnt/" not in text and "copy of" not in text, published.name

    pages = sorted((tmp_path / "out").glob("*.md"))
    assert [p.name for p in pages] == ["README.md", "rg65-xling.md"]
    for page in pages:
        markdown = page.read_text(encoding="utf-8")
        assert "/home/" not in markdown and "/mnt/" not in markdown and "copy of" not in markdown, page.name
        assert "wiki.en.vec" in markdown
    page = (tmp_path / "out" / "rg65-xling.md").read_text(encoding="utf-8")
    assert "- Models: 2 · result records: 5" in page
    grid, all_table, _ = tables(page)
    assert [row[:2] for row in grid[1:]] == [["vectors:wiki.en.vec", "`a1b2c3d4e5f6`"],
                                             ["vectors:wiki.en.vec", "`ffffeeeedddd`"]]
    seeds = all_table[0].index("Seeds")
    assert [row[1:4] + [row[seeds]] for row in all_table[1:]] == [
        ["vectors:wiki.en.vec", "`a1b2c3d4e5f6`", "0.450 ± 0.0707", "2"],
        ["vectors:wiki.en.vec", "`ffffeeeedddd`", "0.200", "1"]]


def test_same_record_from_two_paths_counts_once_and_keeps_the_newest_argument() -> None:
    old = make_record(model_argument="/old/place/x.vec", record_id="1" * 16, created_at="2026-01-01T00:00:00Z")
    new = make_record(model_argument="/new/place/x.vec", record_id="1" * 16, created_at="2026-03-01T00:00:00Z")
    for order in ([old, new], [new, old]):
        warnings: list[str] = []
        (row,) = aggregate(order, warnings)
        assert row["n_seeds"] == 1 and row["model_argument"] == "/new/place/x.vec"
        assert warnings == ["record " + "1" * 16 + " appears in several files; counted once"]


# -- published files are safe to open: no spreadsheet formulas, no local paths ------------------------------

FORMULA = '=HYPERLINK("http://x","y")'


def csv_lines(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csv_neutralises_formula_cells_but_keeps_negative_numbers(tmp_path: Path) -> None:
    hostile = make_record(model=FORMULA, model_argument=FORMULA, subset="+1+cmd|' /C calc'!A0", split="@SUM(A1)",
                          protocol="-2+3", task_kind="\tkind", main_score=-0.25, coverage=None,
                          languages=["=en", "de"], scores={"spearman": -0.25, "=evil": -1.5, "pearson": -3})
    write_records(tmp_path / "results", [hostile, make_record(model="plain", model_argument="-1")], nested=False)
    build_leaderboards(tmp_path / "results", tmp_path / "out")
    lines = {line["config_hash"] + line["model"]: line for line in csv_lines(tmp_path / "out" / "rg65-xling.csv")}
    line = lines["a1b2c3d4e5f6" + "'" + FORMULA]
    assert line["model_argument"] == "'" + FORMULA
    assert line["subset"] == "'+1+cmd|' /C calc'!A0" and line["split"] == "'@SUM(A1)"
    assert line["protocol"] == "'-2+3" and line["task_kind"] == "'\tkind" and line["languages"] == "'=en de"
    assert line["main_mean"] == "-0.25" and line["score.spearman"] == "-0.25" and line["score.pearson"] == "-3.0"
    assert line["score.=evil"] == "-1.5"  # header "score.=evil" starts with "s": harmless
    assert lines["a1b2c3d4e5f6plain"]["model_argument"] == "-1"  # a plain number stays a number
    with open(tmp_path / "out" / "rg65-xling.csv", newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    for cell in cells:
        assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
        assert not cell.startswith("-") or float(cell) < 0, cell


def test_csv_neutralises_formulas_in_the_task_name(tmp_path: Path) -> None:
    write_records(tmp_path / "results", [make_record(task="=1+1")], nested=False)
    report = build_leaderboards(tmp_path / "results", tmp_path / "out")
    (csv_path,) = [path for path in report.files if path.suffix == ".csv"]
    (line,) = csv_lines(csv_path)
    assert line["task"] == "'=1+1"


def test_no_local_path_in_any_published_file(tmp_path: Path) -> None:
    secret = tmp_path / "home" / "alice" / "secret"
    records = [make_record(model="vectors:x.vec", model_argument=str(secret / "x.vec"), seed=0),
               make_record(model=f"vectors:{secret}/x.vec", model_argument=f"{secret}/x.vec", seed=1),
               make_record(model="precomputed:emb", model_argument=str(secret) + "/emb/", config_hash="b" * 12),
               make_record(model="vectors:y.vec", model_argument="~/alice/secret/y.vec", config_hash="c" * 12),
               make_record(model="vectors:z.vec", model_argument="C:\\Users\\alice\\secret\\z.vec",
                           config_hash="d" * 12),
               make_record(model="vectors:w.vec", model_argument="../alice/secret/w.vec", config_hash="e" * 12),
               make_record(model="vectors", model_argument=FORMULA, config_hash="f" * 12)]
    write_records(tmp_path / "results", records, nested=False)
    report = build_leaderboards(tmp_path / "results", tmp_path / "out")
    assert report.warnings == []
    for published in (tmp_path / "out").iterdir():
        text = published.read_bytes().decode("latin-1")  # PNG plots too
        assert "alice" not in text and "secret" not in text and str(tmp_path) not in text, published.name
    summary = json.loads((tmp_path / "out" / "leaderboard.json").read_text(encoding="utf-8"))
    shown = {(r["model"], r["model_argument"]) for r in summary["rows"]}
    assert shown == {("vectors:x.vec", "x.vec"), ("precomputed:emb", "emb"), ("vectors:y.vec", "y.vec"),
                     ("vectors:z.vec", "z.vec"), ("vectors:w.vec", "w.vec"), ("vectors", FORMULA)}
    (pooled,) = [r for r in summary["rows"] if r["model"] == "vectors:x.vec"]
    assert pooled["n_seeds"] == 2  # the same model (config hash) from two paths is one entry
    assert summary["tasks"][0]["best"]["model_argument"] in {"x.vec", "emb", "y.vec", "z.vec", "w.vec", FORMULA}
    # The records themselves are left as they were.
    assert {json.loads(p.read_text(encoding="utf-8"))["model_argument"]
            for p in (tmp_path / "results").iterdir()} >= {str(secret / "x.vec"), "~/alice/secret/y.vec"}


@pytest.mark.parametrize(
    ("argument", "shown"),
    [(None, None), ("fasttext-en", "fasttext-en"), ("emb/x.vec", "emb/x.vec"), (FORMULA, FORMULA),
     ("/home/a/x.vec", "x.vec"), ("/data/emb/", "emb"), ("~/x.vec", "x.vec"), ("~", ""), ("/", ""),
     ("./x.vec", "x.vec"), ("..\\a\\x.vec", "x.vec"), ("D:/a/x.vec", "x.vec"), ("\\\\server\\share\\x.vec", "x.vec"),
     ("file:///home/a/x.vec", "x.vec")],
)
def test_public_argument(argument: str | None, shown: str | None) -> None:
    assert public_argument(argument) == shown


@pytest.mark.parametrize(
    ("text", "safe"),
    [("=1+1", "'=1+1"), ("+1", "+1"), ("+A1", "'+A1"), ("-", "'-"), ("-0.5", "-0.5"), ("-1e-3", "-1e-3"),
     ("@x", "'@x"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("a=1", "a=1"), ("", ""), ("en-de", "en-de")],
)
def test_csv_safe(text: str, safe: str) -> None:
    assert csv_safe(text) == safe
