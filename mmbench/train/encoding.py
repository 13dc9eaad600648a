"""Batched embedding at evaluation time, optionally split across ranks and gathered back in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .data import batch_length, slice_rows, to_device
from .distributed import (
    all_gather_ordered,
    is_distributed,
    rank,
    split_sizes,
    world_size,
)


def encode(
    fn: Callable[[Any], torch.Tensor],
    inputs: Any,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    *,
    distributed: bool = False,
    output_device: str | torch.device = "cpu",
) -> torch.Tensor:
    """``fn`` applied to ``inputs`` in batches of ``batch_size`` rows, concatenated in input order.

    ``inputs`` is a tensor, a tuple of equal-length tensors, a list (of strings, token lists, ...) or a
    ``datasets.Dataset``; ``fn`` gets a slice of it (tensors moved to ``device`` when given) and returns
    one output row per input row. Runs under ``torch.inference_mode``, with ``fn`` in eval mode when it is
    a module. With ``distributed=True`` under torchrun each rank encodes a contiguous share and every
    rank receives all rows in the single-process order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = batch_length(inputs)
    start, stop = 0, total
    split = distributed and is_distributed() and total >= world_size()
    if split:
        sizes = split_sizes(total, world_size())
        start = sum(sizes[: rank()])
        stop = start + sizes[rank()]
    was_training = isinstance(fn, torch.nn.Module) and fn.training
    if was_training:
        fn.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for first in range(start, stop, batch_size):
                last = min(first + batch_size, stop)
                rows = slice_rows(inputs, first, last)
                output = fn(to_device(rows, torch.device(device)) if device is not None else rows)
                if not isinstance(output, torch.Tensor) or output.dim() == 0 or output.shape[0] != last - first:
                    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                    raise ValueError(f"encode: fn returned {shape} for a batch of {last - first} rows")
                outputs.append(output)
            if not outputs:
                raise ValueError("encode: no inputs")
            local = torch.cat(outputs)
            result = all_gather_ordered(local) if split else local
    finally:
        if was_training:
            fn.train()
    return result.to(output_device)
