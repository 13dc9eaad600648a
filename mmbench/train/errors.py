"""Errors raised by the trainer; all are ``MMBenchError`` so the CLI prints them as one line."""

from __future__ import annotations

from mmbench.errors import MMBenchError


class TrainingError(MMBenchError):
    """Training cannot go on (the message says at which step and why)."""


class NonFiniteLossError(TrainingError):
    """A loss or gradient norm became NaN or infinite; the message names the step and objective."""


class CheckpointError(MMBenchError):
    """A checkpoint is missing, corrupt, tampered with, or does not fit the model being trained."""
