"""Distributed data parallel training through ``torchrun`` (NCCL on GPUs, gloo on CPUs).

``torchrun --nproc_per_node=N -m tsla train ...`` starts N processes with RANK, WORLD_SIZE and LOCAL_RANK set;
:func:`init_distributed` reads them. Without them everything here is a no-op, so one code path serves one process
and many. Metrics are reduced as sums across ranks and divided once, never averaged as means of means.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_primary(self) -> bool:
        """Only the primary rank writes files and prints."""
        return self.rank == 0


def init_distributed(device_name: str) -> tuple[DistInfo, str]:
    """Join the process group torchrun set up (if any); return the rank info and the device this rank uses
    ('cuda:<local rank>' on GPUs, else the given device name)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device_name
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info, (f"cuda:{info.local_rank}" if use_cuda else "cpu")


def check_batch(batch_size: int, info: DistInfo) -> None:
    if batch_size % info.world_size:
        raise ConfigError(f"--batch-size {batch_size} (the global batch) must be a multiple of the "
                          f"{info.world_size} processes")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any (so all ranks stop at the same step)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    return bool(all_reduce_sum(torch.tensor([1.0 if flag else 0.0], device=device)).item() > 0)


def broadcast_int(value: int | None, device: torch.device) -> int | None:
    """Rank 0's ``value`` (None allowed) on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([-1 if value is None else value], device=device, dtype=torch.long)
    dist.broadcast(t, src=0)
    return None if int(t) < 0 else int(t)


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank; the value itself in a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)  # on NCCL it travels through the current CUDA device
    return box[0]


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, so all ranks evaluate the same model:
    DistributedDataParallel broadcasts them at the start of each training forward, but the last step's update
    leaves each rank with its own."""
    if dist.is_available() and dist.is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
