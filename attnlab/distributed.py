"""Several processes or GPUs through torchrun: process-group set-up, the device of this rank, and the
few collective operations the trainer needs. One process without torchrun is world size 1 and
nothing here talks to anyone.

    torchrun --nproc_per_node=N -m attnlab train --config ... --out ...

Backend: NCCL when CUDA is there, gloo on CPU (PyTorch DistributedDataParallel in both cases).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from attnlab.errors import AttnlabError


@dataclass
class Distributed:
    rank: int  # this process's index in the group
    world: int  # number of processes
    device: torch.device  # where this rank's model and batches live

    @property
    def main(self) -> bool:
        """Rank 0 alone logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def sum(self, values: list[float]) -> list[float]:
        """All-reduce a few numbers (sum over ranks)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is True on some rank (to stop together)."""
        return self.sum([float(flag)])[0] > 0 if self.active else flag

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' (CUDA if present, else CPU), 'cpu' or 'cuda'."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise AttnlabError("train.device = 'cuda' but no CUDA device is available")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise AttnlabError(f"train.device must be auto, cpu or cuda, got {name!r}")
    return torch.device("cpu")


def setup(device: str = "auto") -> Distributed:
    """Join the torchrun process group when WORLD_SIZE > 1; otherwise a group of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world == 1:
        return Distributed(0, 1, dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), dev)
