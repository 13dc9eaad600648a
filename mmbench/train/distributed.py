"""Process-group helpers: the same code runs alone or under ``torchrun --nproc-per-node N``.

``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; when
``WORLD_SIZE > 1`` :func:`init_from_env` joins the group (NCCL on CUDA, Gloo on CPU). Without it every
helper degrades to the single-process answer, so plugin code never branches on the launch mode.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device_type: str) -> bool:
    """Join the process group described by torchrun's environment; returns whether one is active."""
    if env_world_size() <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo", init_method="env://")
    return is_distributed()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def split_sizes(total: int, parts: int) -> list[int]:
    """Contiguous near-equal shares, the first ``total % parts`` one larger (as ``numpy.array_split``)."""
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def _gather_sizes(tensor: torch.Tensor) -> list[int]:
    size = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _all_gather_padded(tensor: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    longest = max(sizes)
    padded = tensor.contiguous()
    if tensor.shape[0] < longest:
        filler = tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))
        padded = torch.cat([padded, filler])
    chunks = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(chunks, padded)
    return torch.cat([chunk[:size] for chunk, size in zip(chunks, sizes)])


class _AllGatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:  # type: ignore[override]
        ctx.sizes = sizes
        return _all_gather_padded(tensor, sizes)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        # Every rank's loss depends on every rank's rows: a row's gradient is the sum over ranks.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: rank()])
        return grad[start : start + ctx.sizes[rank()]], None


def all_gather_with_grad(tensor: torch.Tensor, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, in rank order, keeping gradients to every rank.

    For in-batch negatives across ranks: with the trainer's contiguous split of each global batch the result
    is the global batch in its original order, and a loss that is the mean over the local rows gives the
    same gradients as one process with the whole batch. Ranks may hold different numbers of rows (pass
    ``sizes`` when known to skip one small collective). Without a process group it returns ``tensor``.
    """
    if not is_distributed():
        return tensor
    sizes = list(sizes) if sizes is not None else _gather_sizes(tensor)
    return _AllGatherWithGrad.apply(tensor, sizes)


def gather_with_offset(tensor: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``all_gather_with_grad(tensor)`` and the row where this rank's rows start in it (the target offset)."""
    if not is_distributed():
        return tensor, 0
    sizes = _gather_sizes(tensor)
    return _AllGatherWithGrad.apply(tensor, sizes), sum(sizes[: rank()])


@torch.no_grad()
def all_gather_ordered(tensor: torch.Tensor) -> torch.Tensor:
    """``all_gather_with_grad`` without the gradient: every rank's rows, concatenated in rank order."""
    if not is_distributed():
        return tensor
    return _all_gather_padded(tensor, _gather_sizes(tensor))


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_float(value: float, device: torch.device, src: int = 0) -> float:
    """Rank ``src``'s value on every rank (so all ranks take the same early-stopping decision)."""
    if not is_distributed():
        return value
    holder = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(holder, src=src)
    return float(holder.item())


def gather_objects(obj: object) -> list[object]:
    """Every rank's ``obj`` (small, picklable, exchanged in memory only; used for RNG states)."""
    if not is_distributed():
        return [obj]
    gathered: list[object] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def shutdown() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
