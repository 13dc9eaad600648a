"""Leaderboards built from result records: Markdown pages, CSV and JSON.

This package reads records only; it never runs a model. ``records`` reads, validates and aggregates,
``render`` turns rows into Markdown and CSV text, ``build`` writes the output folder.
"""

from .build import LeaderboardReport, build_leaderboards, task_slug
from .records import aggregate, assign_ranks, load_records, natural_key, record_problem
from .render import (
    csv_safe,
    escape_markdown,
    format_coverage,
    format_mean_sd,
    format_score,
    public_argument,
    public_record,
)

__all__ = [
    "LeaderboardReport",
    "aggregate",
    "assign_ranks",
    "build_leaderboards",
    "csv_safe",
    "escape_markdown",
    "format_coverage",
    "format_mean_sd",
    "format_score",
    "load_records",
    "natural_key",
    "public_argument",
    "public_record",
    "record_problem",
    "task_slug",
]
