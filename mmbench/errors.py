"""Exceptions whose message is meant for the user.

The CLI prints ``MMBenchError`` messages as one line and exits non-zero; any other exception is a bug
and shows a traceback only under ``--debug``.
"""


class MMBenchError(Exception):
    """An error the user can fix: bad input, missing data, incompatible choices."""


class CardError(MMBenchError):
    """A task card is malformed (message names file, field and problem)."""


class DataError(MMBenchError):
    """A data file is missing, corrupt or malformed (message names file and, if known, line)."""


class ConfigError(MMBenchError):
    """A model configuration override or config file is invalid."""


class PluginError(MMBenchError):
    """A plugin could not be loaded, or a requested model/task kind does not exist."""
