"""Batches as a pure function of (seed, epoch, position): what makes resume exact and ranks agree.

Accepted data: a ``datasets.Dataset`` (read in torch format unless it has a format; a batch is a dict of
columns), a tensor or tuple of tensors of equal length (a batch is the same tuple, indexed), or any
map-style ``torch.utils.data.Dataset`` (a batch is ``collate([items])``, by default torch's
``default_collate``). A plugin's ``collate`` receives that raw batch and returns what its loss takes.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch

from mmbench.errors import ConfigError, DataError

from .distributed import split_sizes
from .rng import data_seed

Collate = Callable[[Any], Any]


def _is_hf_dataset(data: Any) -> bool:
    datasets = sys.modules.get("datasets")  # only loaded if the caller already uses it
    return datasets is not None and isinstance(data, datasets.Dataset)


def _fetcher(data: Any, collate: Collate | None) -> tuple[Callable[[torch.Tensor], Any], int]:
    """A function from an index tensor to a collated batch, and the number of examples."""
    finish = collate or (lambda batch: batch)
    if isinstance(data, torch.Tensor):
        data = (data,)
        finish = collate or (lambda batch: batch[0])
    if isinstance(data, tuple) and data and all(isinstance(t, torch.Tensor) for t in data):
        lengths = {len(t) for t in data}
        if len(lengths) != 1:
            raise DataError(f"training tensors differ in length: {[len(t) for t in data]}")
        tensors = tuple(data)
        return (lambda idx: finish(tuple(t[idx] for t in tensors))), lengths.pop()
    if _is_hf_dataset(data):
        table = data if data.format["type"] is not None else data.with_format("torch")
        return (lambda idx: finish(table[idx.tolist()])), len(data)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        finish = collate or torch.utils.data.default_collate
        return (lambda idx: finish([data[i] for i in idx.tolist()])), len(data)
    raise DataError(f"cannot train on {type(data).__name__}: give a datasets.Dataset, tensors or a torch Dataset")


class BatchSource:
    """Global batches of ``batch_size`` examples and each rank's contiguous share of them."""

    def __init__(self, data: Any, batch_size: int, *, seed: int, shuffle: bool = True,
                 drop_last: bool = False, collate: Collate | None = None, world_size: int = 1) -> None:
        self._fetch, self.num_examples = _fetcher(data, collate)
        if self.num_examples == 0:
            raise DataError("training data is empty")
        if drop_last and self.num_examples < batch_size:
            raise DataError(f"training data has {self.num_examples} examples, fewer than one batch of "
                            f"{batch_size} (drop_last=True)")
        remainder = self.num_examples % batch_size
        if world_size > 1 and batch_size < world_size:
            raise ConfigError(f"batch_size {batch_size} is smaller than the world size {world_size}")
        if world_size > 1 and not drop_last and 0 < remainder < world_size:
            raise ConfigError(f"the last batch of each epoch has {remainder} examples, too few for "
                              f"{world_size} ranks: set drop_last=True or change batch_size")
        self.batch_size, self.seed, self.shuffle, self.drop_last = batch_size, seed, shuffle, drop_last
        self.world_size = world_size
        self._order: tuple[int, torch.Tensor] | None = None

    @property
    def steps_per_epoch(self) -> int:
        if self.drop_last:
            return self.num_examples // self.batch_size
        return math.ceil(self.num_examples / self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """Permutation of the examples for ``epoch`` (identity without shuffling)."""
        if self._order is None or self._order[0] != epoch:
            if self.shuffle:
                generator = torch.Generator().manual_seed(data_seed(self.seed, epoch))
                order = torch.randperm(self.num_examples, generator=generator)
            else:
                order = torch.arange(self.num_examples)
            self._order = (epoch, order)
        return self._order[1]

    def global_indices(self, epoch: int, position: int) -> torch.Tensor:
        start = position * self.batch_size
        return self.order(epoch)[start : start + self.batch_size]

    def local_batch(self, epoch: int, position: int, rank: int = 0) -> tuple[Any, int, int]:
        """(this rank's collated batch, its number of examples, the global batch size)."""
        indices = self.global_indices(epoch, position)
        sizes = split_sizes(len(indices), self.world_size)
        start = sum(sizes[:rank])
        return self._fetch(indices[start : start + sizes[rank]]), sizes[rank], len(indices)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside nested dicts, lists and tuples to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)) and not isinstance(batch, str):
        moved = [to_device(value, device) for value in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


def batch_length(inputs: Any) -> int:
    """Number of rows of ``inputs`` (tensor, tuple of tensors, sequence, ``datasets.Dataset``)."""
    if isinstance(inputs, tuple) and inputs and all(isinstance(t, torch.Tensor) for t in inputs):
        return len(inputs[0])
    return len(inputs)


def slice_rows(inputs: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of ``inputs`` in the form ``batch_length`` accepts."""
    if isinstance(inputs, tuple) and inputs and all(isinstance(t, torch.Tensor) for t in inputs):
        return tuple(t[start:stop] for t in inputs)
    return inputs[start:stop]
