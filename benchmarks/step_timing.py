"""Shared by the overhead benchmarks: median time of full SGD training steps for several batch
recipes, interleaved so that drift of the machine affects all alike."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn

from mollify.augment import BatchRecipe
from mollify.device import Normalize, autocast
from mollify.training.losses import soft_cross_entropy


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_step_times(net: nn.Module, recipes: dict[str, BatchRecipe], images: torch.Tensor, labels: torch.Tensor,
                      normalize: Normalize, steps: int, warmup: int = 1) -> dict[str, float]:
    """Seconds per step (normalise -> targets -> forward -> loss -> backward -> update), per recipe,
    after `warmup` untimed steps of each."""
    device = images.device
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator(device=device).manual_seed(0)

    def step(recipe: BatchRecipe) -> float:
        sync(device)
        start = time.perf_counter()
        x, y = recipe.prepare(images, labels, lambda x, g: x, normalize, g)
        with autocast(device, "auto"):
            logits, y = recipe.forward(net, x, y, g)
        loss = recipe.loss(soft_cross_entropy, logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        return time.perf_counter() - start

    for _ in range(warmup):
        for recipe in recipes.values():
            step(recipe)
    times: dict[str, list[float]] = {name: [] for name in recipes}
    for _ in range(steps):
        for name, recipe in recipes.items():
            times[name].append(step(recipe))
    return {name: statistics.median(t) for name, t in times.items()}
