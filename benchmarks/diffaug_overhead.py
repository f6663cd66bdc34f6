"""Benchmark: the extra cost of DiffAug per training step (Sastry et al., 2024).

A DiffAug step diffuses-and-denoises the batch with the DDPM's UNet (no gradient) and trains on
the clean + DiffAug images in one pass (twice the classifier work). Prints, per configuration,
the median plain and DiffAug step, their ratio and the UNet's share:

- demo: small_resnet with the demo UNet (what `dvc repro` trains);
- cifar: PreActResNet-18 with a DDPM-CIFAR-10-size UNet (35.7M parameters, untrained weights;
  speed does not depend on them).

    uv run python benchmarks/diffaug_overhead.py [--steps 3] [--device cpu] [--batch 128]
"""

from __future__ import annotations

import time

import torch
import typer

from mollify.augment import BatchRecipe, DiffAug, NormalizedDiffAug
from mollify.device import Normalize, resolve_device
from mollify.diffusion.model import make_unet
from mollify.models import create_model
from step_timing import median_step_times, sync

CONFIGURATIONS = {"demo": ("small_resnet", "demo"), "cifar": ("preact_resnet18", "ddpm_cifar10")}


def main(steps: int = 3, device: str = "auto", batch: int = 128, configurations: str = "demo,cifar") -> None:
    dev = resolve_device(device)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (batch,), device=dev)
    normalize = Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26), dev, channels_last=True)
    print(f"device {dev}, batch {batch}, torch threads {torch.get_num_threads()}, {steps} steps each (medians)")
    for name in configurations.split(","):
        model, unet_name = CONFIGURATIONS[name]
        torch.manual_seed(0)
        net = create_model(model, 10).to(dev).to(memory_format=torch.channels_last)
        unet = make_unet(unet_name, 32).to(dev)
        diffaug = NormalizedDiffAug(DiffAug(unet), normalize)
        medians = median_step_times(net, {"plain": BatchRecipe(10), "diffaug": BatchRecipe(10, diffaug=diffaug)},
                                    images, labels, normalize, steps)
        g = torch.Generator(device=dev).manual_seed(0)
        sync(dev)
        start = time.perf_counter()
        for _ in range(steps):
            diffaug(images, g)
        sync(dev)
        alone = (time.perf_counter() - start) / steps
        plain, with_diffaug = medians["plain"], medians["diffaug"]
        parameters = sum(p.numel() for p in unet.parameters()) / 1e6
        print(f"[{name}] {model} + UNet {unet_name} ({parameters:.2f}M parameters)")
        print(f"  plain step:        {1000 * plain:9.1f} ms  ({batch / plain:7.1f} img/s)")
        print(f"  DiffAug step:      {1000 * with_diffaug:9.1f} ms  ({batch / with_diffaug:7.1f} img/s)")
        print(f"  ratio:             {with_diffaug / plain:9.2f}x")
        print(f"  DiffAug alone:     {1000 * alone:9.1f} ms  ({100 * alone / with_diffaug:.0f}% of a DiffAug step)")


if __name__ == "__main__":
    typer.run(main)
