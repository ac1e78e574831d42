"""Decisions and figures that every process of a multi-process run must share.

A stop seen by one rank must stop all of them: a rank that leaves the loop alone leaves the others
waiting forever in their next collective (gradient all-reduce, save). Metrics and the adaptive KL
coefficient are averaged over ranks so that every rank logs and steers by the same numbers.
Without torch.distributed (one process) each function returns its input.
"""

from __future__ import annotations

import torch


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _device() -> torch.device:
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if _distributed() else 0


def any_rank(flag: bool) -> bool:
    """True on every rank as soon as it is True on one."""
    if not _distributed():
        return flag
    import torch.distributed as dist

    tensor = torch.tensor([1.0 if flag else 0.0], device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean of each figure over all ranks (every rank must pass the same keys)."""
    if not _distributed() or not values:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    tensor /= dist.get_world_size()
    return dict(zip(keys, tensor.tolist(), strict=True))
