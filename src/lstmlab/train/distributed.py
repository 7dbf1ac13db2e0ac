"""Many processes, many machines: the training loop under ``torchrun``.

Every training command runs unchanged under torchrun, which starts the processes and sets
RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address in their environment:

    torchrun --nproc_per_node 2 -m lstmlab lm train ...                     # one machine
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d \\
             --rdzv_endpoint HOST:29500 --rdzv_id RUN -m lstmlab lm train ...   # on each machine

``World.from_environment`` joins the process group once (gloo on CPU, nccl on CUDA). The loop
then wraps the model in DistributedDataParallel, gives each rank its share of every batch's rows
(``Batch.shard``) and scales each rank's loss by its share, so the averaged gradient equals the
gradient of the whole batch's mean loss: K steps on N processes reach the weights of K steps on
one process with the same global batch (up to float summation order). Only rank 0 prints,
writes checkpoints and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints, writes checkpoints and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @classmethod
    def from_environment(cls, device: torch.device) -> World:
        """The world torchrun describes (WORLD_SIZE > 1), joined once; else a world of one."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
        if not dist.is_available():
            raise ValueError("this PyTorch build has no torch.distributed; run without torchrun")
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        return cls(dist.get_rank(), dist.get_world_size(),
                   int(os.environ.get("LOCAL_RANK", "0")))

    def all_max(self, value: int) -> int:
        """The largest ``value`` over the ranks (itself when alone): decisions every rank
        must share, such as stopping."""
        if not self.distributed:
            return value
        flag = torch.tensor([value], dtype=torch.long)
        if dist.get_backend() == "nccl":
            flag = flag.cuda()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def all_mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks (for reporting, e.g. the loss)."""
        if not self.distributed:
            return value
        total = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            total = total.cuda()
        dist.all_reduce(total)
        return float(total.item()) / self.size


def resolve_device(device: str | torch.device | None, world: World | None = None
                   ) -> torch.device:
    """"cpu", "cuda" or "cuda:N" (None: cpu). Under torchrun a plain "cuda" means this rank's
    own GPU (LOCAL_RANK). A CUDA request without a GPU is a clear error."""
    device = torch.device("cpu" if device is None else device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA GPU is available here; use --device cpu")
        if device.index is None:
            local = int(os.environ.get("LOCAL_RANK", "0")) if world is None else world.local_rank
            device = torch.device("cuda", local)
    elif device.type != "cpu":
        raise ValueError(f"device must be cpu or cuda, got {device}")
    return device
