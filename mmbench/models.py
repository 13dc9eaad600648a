"""The model plugin contract.

A model declares what it can embed (its capabilities) and a typed config dataclass; tasks declare which
capabilities they need. Embedding methods take plain Python/NumPy inputs and return float32 arrays, so a
model can wrap anything (a vectors file, a torch module, an external library).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import MMBenchError


class Capability(str, enum.Enum):
    WORDS = "words"  # embed_words(words, language) + vocabulary(language)
    TEXT = "text"  # embed_texts(texts, language): captions, names, documents
    IMAGES = "images"  # embed_images(features, source=...): precomputed image features
    IMAGE_SETS = "image-sets"  # score_image_sets(source_sets, target_sets, source=...): visual BLI
    TRAINABLE = "trainable"  # prepare() trains when no checkpoint exists

    def __str__(self) -> str:
        return self.value


class Incompatible(MMBenchError):
    """Raised by a model when it cannot serve a particular task (e.g. language or feature space unknown).

    The harness records the (model, task) pair as skipped with this message, not as a failure.
    """


@dataclass(frozen=True)
class NoConfig:
    """Config of a model that has no options."""


@dataclass
class RunContext:
    """What the harness hands a model when it prepares it."""

    seed: int = 0
    device: str = "cpu"  # resolved: "cpu" or "cuda[:N]"
    data_dir: Path = field(default_factory=lambda: Path("."))
    work_dir: Path = field(default_factory=lambda: Path("."))  # per (model, config hash, seed): checkpoints
    train: bool = True  # False under `mmbench eval`: load, never train
    checkpoint: Path | None = None  # explicit checkpoint to load (`mmbench eval --checkpoint`)
    progress: Any = None  # a rich Progress (or None) for long steps


class Model:
    """Base class of every model plugin.

    Subclasses set ``name``, ``capabilities`` and optionally ``Config`` (a dataclass with defaults) and
    ``argument`` (a metavar such as ``"PATH"`` when the model spec takes one: ``vectors:PATH``), and
    implement the embedding methods matching their capabilities. Heavy work (loading files, training)
    belongs in :meth:`prepare`, which the harness calls only when there is something to evaluate.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    argument: ClassVar[str | None] = None

    def __init__(self, config: Any = None, argument: str | None = None):
        self.config = config if config is not None else self.Config()
        self.argument_value = argument

    # -- identity ---------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """Extra facts that make two instances different models (hashed with the config).

        E.g. the sha256 of a vectors file, so the same file scored from two places is one model.
        """
        return {"argument": self.argument_value} if self.argument_value is not None else {}

    def seen_data(self) -> frozenset[str]:
        """``"dataset:split"`` ids of evaluation data this model (as configured) trains or builds on.

        The harness skips a task subset whose ``evaluates_on`` overlaps them (e.g. a model trained on
        the multi30k-mini train photos, which are test_2016_flickr images, is never scored on
        ``multi30k:test_2016_flickr``). Known from the config alone, so nothing is trained to decide it.
        """
        return frozenset()

    # -- lifecycle --------------------------------------------------------------------------------
    def prepare(self, ctx: RunContext) -> None:
        """Load weights or train (trainable models checkpoint to ``ctx.work_dir``)."""

    # -- embeddings -------------------------------------------------------------------------------
    def similarity(self) -> str | None:
        """The similarity its embeddings are meant to be compared with, or None to use the card's.

        ``"cosine"``, ``"dot"`` or ``"order"`` (order embeddings, Vendrov et al. 2016: a caption scores
        ``-||max(0, caption - image)||^2`` against an image). Image<->text and caption<->caption retrieval
        use it; when it differs from the card's, the record's protocol gets a ``+sim=<name>`` suffix, so
        such rows never rank beside the card's own similarity. Known from the config alone (before
        ``prepare``), because the harness names the record before it evaluates.
        """
        return None

    def languages(self) -> Sequence[str] | None:
        """Languages the model knows, or None if it does not say (e.g. untagged vectors)."""
        return None

    def vocabulary(self, language: str) -> list[str]:
        """All words the model has for ``language`` (BLI searches over the full vocabulary)."""
        raise Incompatible(f"model {self.name!r} does not expose a vocabulary")

    def embed_words(self, words: Sequence[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(vectors (n, d) float32, found (n,) bool)``; rows of words not found are zero."""
        raise Incompatible(f"model {self.name!r} does not embed words")

    def embed_texts(self, texts: Sequence[str], language: str) -> np.ndarray:
        """Return ``(n, d)`` float32 embeddings of whole texts (captions, names, documents)."""
        raise Incompatible(f"model {self.name!r} does not embed texts")

    def embed_images(self, features: np.ndarray, *, source: str) -> np.ndarray:
        """Map precomputed image features (rows) from feature space ``source`` to ``(n, d)`` embeddings."""
        raise Incompatible(f"model {self.name!r} does not embed images")

    def score_image_sets(
        self, source_sets: Sequence[np.ndarray], target_sets: Sequence[np.ndarray], *, source: str
    ) -> np.ndarray:
        """``(S, T)`` translation scores (higher = more likely) between words given as image sets.

        Each word is an ``(images, d)`` float32 array of features from feature space ``source``; every
        set has at least one image. Visual bilingual lexicon induction (Bergsma & Van Durme 2011).
        """
        raise Incompatible(f"model {self.name!r} does not score image sets")


def added_field(default: Any) -> Any:
    """A config field added after models with this config have published results.

    It enters :func:`config_to_dict` (and so the model's config hash and its records' identity) only when
    it differs from ``default``: adding it leaves every existing model's hash, and its stored records,
    as they were.
    """
    return field(default=default, metadata={"omit_default": True})


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config dataclass (nested dataclasses as dicts); :func:`added_field`
    fields at their default are left out, display-only fields (``metadata={"hash_as_default": True}``)
    read as their default."""
    if not dataclasses.is_dataclass(config):
        return {}
    out: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if item.metadata.get("omit_default") and value == item.default:
            continue
        if item.metadata.get("hash_as_default"):  # display-only settings never make another model
            value = item.default
        out[item.name] = (config_to_dict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type)
                          else copy.deepcopy(value))
    return out
