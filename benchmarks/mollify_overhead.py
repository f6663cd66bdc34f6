"""Benchmark: the cost of mollification in a PreActResNet-18 training step (batch 128).

Prints the median time of a full SGD step (normalise -> targets -> forward -> backward -> update)
without and with mollification, their ratio, and the time of the mollification itself. Steps of
the two kinds are interleaved so that drift of the machine affects both alike.

    uv run python benchmarks/mollify_overhead.py [--steps 10] [--device cpu] [--batch 128]
"""

from __future__ import annotations

import statistics
import time

import torch
import typer

from mollify.augment import BatchRecipe, Mollification
from mollify.device import Normalize, resolve_device
from mollify.models import create_model
from step_timing import median_step_times, sync


def main(steps: int = 10, device: str = "auto", batch: int = 128, model: str = "preact_resnet18") -> None:
    dev = resolve_device(device)
    torch.manual_seed(0)
    net = create_model(model, 10).to(dev).to(memory_format=torch.channels_last)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (batch,), device=dev)
    normalize = Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), dev, channels_last=True)
    variants = {"plain": BatchRecipe(10), "mollify": BatchRecipe(10, mollification=Mollification(10))}
    medians = median_step_times(net, variants, images, labels, normalize, steps)
    g = torch.Generator(device=dev).manual_seed(0)

    mollification = variants["mollify"].mollification
    x = normalize(images)
    y = torch.nn.functional.one_hot(labels, 10).float()
    alone = []
    for _ in range(max(steps, 20)):
        sync(dev)
        start = time.perf_counter()
        mollification(x, y, g)
        sync(dev)
        alone.append(time.perf_counter() - start)

    plain, mollified = medians["plain"], medians["mollify"]
    print(f"device {dev}, {model}, batch {batch}, torch threads {torch.get_num_threads()}, {steps} steps each")
    print(f"training step without mollification: {1000 * plain:8.1f} ms  ({batch / plain:7.1f} img/s)")
    print(f"training step with mollification:    {1000 * mollified:8.1f} ms  ({batch / mollified:7.1f} img/s)")
    print(f"ratio with / without:                {mollified / plain:8.3f}  (overhead {100 * (mollified / plain - 1):+.1f}%)")
    print(f"mollification alone:                 {1000 * statistics.median(alone):8.2f} ms  "
          f"({100 * statistics.median(alone) / plain:.2f}% of a plain step)")


if __name__ == "__main__":
    typer.run(main)
