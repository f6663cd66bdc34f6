"""One run over several GPUs: data parallelism under `torchrun` (PyTorch DDP).

Launched as `torchrun --nproc_per_node N stages/train.py ...`, every process trains the same
model on its share of each global batch (train.batch_size / N images) and DDP averages the
gradients, so the schedule, step count and learning rate are those of one device with the whole
batch. Per-sample augmentation draws differ per rank; batch-level operations (mixup, cutmix,
mollification, NFM, DiffAug) act on the rank's batch, as each would on one GPU with that batch.
BatchNorm normalises with per-rank batch statistics (no SyncBN, as the references' multi-GPU
runs); its running statistics are rank 0's, which DDP broadcasts before every forward pass. Rank
0 alone writes checkpoints, models and logs."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.nn as nn


def world_size() -> int:
    """The number of processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """The process that writes outputs: rank 0, or the only one."""
    return rank() == 0


def init(device: torch.device) -> None:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU); nothing without torchrun."""
    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the ranks (itself with one process)."""
    if world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / world_size()


class Step(nn.Module):
    """The forward pass of a training step as one module, so that DDP sees it whole: NFM runs the
    network's stages itself (`model.stem`, `model.stages`), not `model(x)`."""

    def __init__(self, model: nn.Module, forward):
        super().__init__()
        self.model = model
        self._forward = forward

    def forward(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self._forward(self.model, x, y, g)


def wrap(model: nn.Module, forward) -> nn.Module:
    """`forward(model, x, y, g)` as a module: under DDP when several processes train."""
    step = Step(model, forward)
    if world_size() == 1:
        return step
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None)
