"""DDP under `torchrun`: process group (gloo on CPU, nccl on CUDA), device and thread choice, small collectives.

Without torchrun's environment (WORLD_SIZE unset or 1) everything here is a no-op and training runs in-process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _pick_device(requested: str, local_rank: int) -> torch.device:
    if requested != "auto":
        return torch.device(requested)
    return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")


def setup(device: str = "auto", threads: int | None = None) -> DistInfo:
    """Join torchrun's process group if there is one; pin the CUDA device; share the CPU cores between local ranks."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    dev = _pick_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // local_world))
    return DistInfo(rank, world, local_rank, local_world, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of a tensor over ranks (the tensor itself without DDP)."""
    if info.distributed:
        values = values.to(_comm_device(info), copy=True)
        dist.all_reduce(values)
    return values


def weights_in_sync(model: torch.nn.Module, info: DistInfo) -> bool:
    """Whether every rank holds bitwise the same weights (compares each rank's checksums with rank 0's)."""
    if not info.distributed:
        return True
    sums = torch.stack([p.detach().double().sum() for p in model.parameters()]).to(_comm_device(info))
    reference = sums.clone()
    dist.broadcast(reference, src=0)
    same = torch.tensor(float(torch.equal(sums, reference)), device=_comm_device(info))
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same.item())


def _comm_device(info: DistInfo) -> torch.device:
    return info.device if info.device.type == "cuda" else torch.device("cpu")
