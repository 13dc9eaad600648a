"""mmbench: a benchmark suite for multilingual word and sentence embeddings learned from image-text data."""

from importlib.metadata import PackageNotFoundError, version

from .api import evaluate
from .hookspecs import hookimpl
from .models import Capability, Incompatible, Model, NoConfig, RunContext

try:
    __version__ = version("mmbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["evaluate", "Capability", "Incompatible", "Model", "NoConfig", "RunContext", "hookimpl", "__version__"]
