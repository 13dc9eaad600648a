"""Where benchmark data lives on the user's machine.

Precedence: an explicit ``--data-dir`` > ``$MMBENCH_DATA`` > the per-user cache directory.
Restricted-license data (Multi30k, MUSE, RCV) is never shipped; users put it here.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_VAR = "MMBENCH_DATA"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve the data root directory (it need not exist)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("mmbench")) / "data"
