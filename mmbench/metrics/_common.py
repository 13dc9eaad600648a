"""Helpers shared by the metric modules: input checks, cosine normalisation, tie-aware ranks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from ..errors import MMBenchError

Ties = Literal["pessimistic", "optimistic"]


class MetricInputError(MMBenchError, ValueError):
    """Arrays given to a metric have the wrong shape, are empty where that is undefined, or hold NaN/inf.

    A ``ValueError`` for library callers and an ``MMBenchError`` so the CLI prints it as one line.
    """


def as_matrix(x: Any, name: str, *, device: torch.device | None = None, allow_empty: bool = False) -> torch.Tensor:
    """A 2-D floating tensor from a numpy array or tensor (float64 kept, other dtypes -> float32).

    Tensors stay on their device (a CUDA tensor is scored on the GPU); arrays go to ``device`` or the CPU.
    """
    tensor = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if device is not None:
        tensor = tensor.to(device)
    if tensor.dtype != torch.float64:
        tensor = tensor.to(torch.float32)
    if tensor.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D array (rows x dims), got shape {tuple(tensor.shape)}")
    if not allow_empty and tensor.shape[0] == 0:
        raise MetricInputError(f"{name}: empty input (0 rows); the metric is undefined")
    if tensor.numel() and not all_finite(tensor):
        raise MetricInputError(f"{name}: contains NaN or infinite values")
    return tensor


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether every element is finite, without an elementwise mask the size of the input.

    A sum is NaN or infinite whenever an element is (inf + finite = inf, inf - inf = NaN, NaN stays),
    so a finite sum proves every element finite; only a non-finite sum (possibly an overflow of
    large finite values) needs the elementwise check.
    """
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def common_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 only if every input is float64 (so float64 references can be matched exactly)."""
    return torch.float64 if all(t.dtype == torch.float64 for t in tensors) else torch.float32


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm; an all-zero row stays zero (cosine 0 with everything, never NaN)."""
    norms = x.norm(dim=1, keepdim=True)
    return x / torch.where(norms > 0, norms, torch.ones_like(norms))


def unique_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Distinct rows of ``x`` and, if there were duplicates, the index of each original row among them.

    A matrix product can round the same dot product differently in different columns (edge tiles of
    the kernel), which would break exact ties between identical vectors. Scoring distinct rows once
    and copying the scores (``expand_columns``) keeps duplicates bit-identical.
    """
    if x.shape[0] < 2:
        return x, None
    # Cheap exact pre-check: an integer hash of the bit patterns of the first columns (identical rows
    # always collide); only if some hashes collide do we pay for the full row sort.
    bits = (x[:, :16] + 0.0).contiguous().view(torch.int32).to(torch.int64)  # + 0.0 turns -0.0 into 0.0
    multipliers = torch.arange(1, bits.shape[1] + 1, device=x.device, dtype=torch.int64) * 2_654_435 + 1
    if torch.unique(bits.mul_(multipliers).sum(dim=1)).numel() == x.shape[0]:
        return x, None
    distinct, inverse = torch.unique(x + 0.0, dim=0, return_inverse=True)
    return (x, None) if distinct.shape[0] == x.shape[0] else (distinct, inverse)


def expand_columns(scores: torch.Tensor, inverse: torch.Tensor | None) -> torch.Tensor:
    """Scores against distinct rows -> scores against the original rows (see ``unique_rows``)."""
    return scores if inverse is None else scores.index_select(1, inverse)


def check_ties(ties: str) -> None:
    if ties not in ("pessimistic", "optimistic"):
        raise MetricInputError(f"ties must be 'pessimistic' or 'optimistic', got {ties!r}")


class Scratch:
    """One reusable flat buffer handing out (rows x cols) views.

    Large temporaries freshly allocated per block cost more in page faults than the arithmetic on
    them, so blockwise loops write their scores into the same memory (``out=``) every time.
    """

    def __init__(self) -> None:
        self._flat: torch.Tensor | None = None

    def matrix(self, rows: int, cols: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        size = rows * cols
        flat = self._flat
        if flat is None or flat.numel() < size or flat.dtype != dtype or flat.device != device:
            flat = self._flat = torch.empty(size, dtype=dtype, device=device)
        return flat[:size].view(rows, cols)


def ranks_in_place(
    scores: torch.Tensor, correct: torch.Tensor, ties: Ties, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """0-based rank of the best-scoring correct item in each row; *overwrites* ``scores``.

    ``scores`` is (rows x items) and ``correct`` (rows x g) holds the column indices of each row's
    correct items (rows with fewer may be padded, with ``valid`` marking the real entries). The rank
    is the number of *wrong* items scoring above the best correct one; a wrong item with exactly the
    same score ranks before it when ``ties="pessimistic"`` and after it when ``"optimistic"``.
    Pessimistic ties keep a collapsed model (all scores equal) from scoring perfectly.
    """
    correct_scores = scores.gather(1, correct)
    if valid is not None:
        correct_scores = correct_scores.masked_fill(~valid, float("-inf"))
    best = correct_scores.amax(dim=1, keepdim=True)
    if ties == "pessimistic":
        # Every item >= best, minus the correct ones among them (they are not "wrong items before it").
        tied_correct = correct_scores >= best
        if valid is not None:
            tied_correct &= valid
        return _count(torch.ge(scores, best, out=scores)) - tied_correct.sum(dim=1)
    return _count(torch.gt(scores, best, out=scores))


def _count(indicator: torch.Tensor) -> torch.Tensor:
    """Row sums of a 0/1 float matrix as integers (float32 sums of ones are exact below 2**24)."""
    dtype = torch.float64 if indicator.shape[1] >= 1 << 24 else None
    return indicator.sum(dim=1, dtype=dtype).long()


def padded_index(groups: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(rows x longest) index tensor from lists of column indices, and a validity mask when ragged."""
    width = max((len(g) for g in groups), default=1)
    index = torch.tensor([list(g) + [g[0]] * (width - len(g)) for g in groups], dtype=torch.long, device=device)
    if all(len(g) == width for g in groups):
        return index.reshape(len(groups), width), None
    valid = torch.tensor([[True] * len(g) + [False] * (width - len(g)) for g in groups], device=device)
    return index, valid


def recall_at(ranks: np.ndarray, k: int) -> float:
    """Percentage (0-100) of 0-based ranks below k; 0.0 for no ranks."""
    return 100.0 * float(np.mean(ranks < k)) if len(ranks) else 0.0


def rows_per_block(n_columns: int, chunk_size: int) -> int:
    """Rows per matrix block so one block holds about ``chunk_size ** 2`` scores."""
    if chunk_size < 1:
        raise MetricInputError(f"chunk/block size must be positive, got {chunk_size}")
    return max(1, (chunk_size * chunk_size) // max(1, n_columns))
