"""Training throughput of the paper networks, eager and torch.compile'd: images/s and achieved
TFLOP/s (FLOPs of one forward + backward counted by torch.utils.flop_counter.FlopCounterMode),
and on a GPU the fraction of the device's dense bf16 peak.

    uv run python benchmarks/model_throughput.py                        # CPU: batch 8, 3 steps (short)
    uv run python benchmarks/model_throughput.py --device cuda --batch 512 --steps 30

A step is the training loop's: normalise the uint8 batch, forward under the precision's autocast
(`auto`: bf16 on CUDA, fp32 on CPU), cross-entropy, backward, SGD; channels_last. Timed as the
median of --steps steps after a warm-up step (which pays the compilation, reported apart).
"""

from __future__ import annotations

import shutil
import subprocess

import torch
import torch.nn.functional as F
import typer
from torch.utils.flop_counter import FlopCounterMode

from step_timing import median_step_times
from mollify.augment import BatchRecipe
from mollify.device import Normalize
from mollify.models import create_model

NETWORKS = ("resnet18", "preact_resnet18", "preact_resnet50", "wrn28_10")

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, matched as a
# substring of torch.cuda.get_device_name(); the first match wins (PCIe before the SXM default).
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0, "H200": 989.0, "GH200": 989.0, "B200": 2250.0,
    "A100": 312.0, "A10G": 70.0, "A10": 125.0, "L40S": 362.0, "L40": 181.0, "L4": 121.0, "RTX 4090": 165.0,
    "RTX 3090": 71.0, "A6000": 155.0,
}


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def train_flops(name: str, batch: int, size: int, classes: int) -> int:
    """FLOPs of one forward + backward of `name` on `batch` images (matmuls and convolutions; 2 per MAC)."""
    net = create_model(name, classes)
    x = torch.randn(batch, 3, size, size)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), torch.zeros(batch, dtype=torch.long)).backward()
    return counter.get_total_flops()


def main(
    device: str = "cpu",
    batch: int = typer.Option(8, help="images per step (CPU: keep small)"),
    steps: int = typer.Option(3, help="timed steps (median)"),
    size: int = typer.Option(32, help="image side (CIFAR 32, TinyImageNet 64)"),
    classes: int = 10,
    network: list[str] = typer.Option(list(NETWORKS), help="networks to time"),
    compile: list[bool] = typer.Option([False, True], help="eager and/or compiled"),
) -> None:
    """Print, per network and mode, the warm-up seconds, images/s, TFLOP/s and the fraction of peak."""
    dev = torch.device(device)
    peak = peak_tflops(dev)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    compiler = shutil.which("g++") or shutil.which("c++")
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}, "
          f"{torch.get_num_threads()} threads, batch {batch}, {size}px, C++ compiler: {compiler or 'none'}, "
          f"bf16 peak: {f'{peak:g} TFLOP/s' if peak else ('n/a' if dev.type == 'cpu' else 'not in PEAK_BF16_TFLOPS')}")
    print(f"{'network':16s} {'mode':8s} {'GFLOP/img':>9s} {'warm-up s':>9s} {'img/s':>9s} {'TFLOP/s':>8s}"
          + (f" {'of peak':>8s}" if peak else ""))
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, classes, (batch,), device=dev)
    normalize = Normalize((0.5,) * 3, (0.25,) * 3, dev, True)
    for name in network:
        flops = train_flops(name, batch, size, classes)
        for compiled in compile:
            if compiled and dev.type == "cpu" and compiler is None:
                print(f"{name:16s} {'compile':8s} skipped: torch.compile on CPU needs a C++ compiler")
                continue
            torch.manual_seed(0)
            model = create_model(name, classes).to(dev, memory_format=torch.channels_last)
            net = torch.compile(model) if compiled else model
            recipes = {"step": BatchRecipe(classes)}
            warm = median_step_times(net, recipes, images, labels, normalize, steps=1, warmup=0)["step"]  # compiles
            seconds = median_step_times(net, recipes, images, labels, normalize, steps=steps, warmup=0)["step"]
            tflops = flops / seconds / 1e12
            print(f"{name:16s} {'compile' if compiled else 'eager':8s} {flops / batch / 1e9:9.2f} {warm:9.1f} "
                  f"{batch / seconds:9.1f} {tflops:8.3f}" + (f" {tflops / peak:8.1%}" if peak else ""), flush=True)


if __name__ == "__main__":
    typer.run(main)
