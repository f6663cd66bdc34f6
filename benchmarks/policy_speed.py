"""Images per second of the batched policies (mollify.augment.policies) against the per-image loop
of torchvision's policies and against the reference repositories' way (PIL images through
torchvision's v1 policy, one image at a time, in a DataLoader with 2 worker processes).

    uv run python benchmarks/policy_speed.py [--batch 128 --batch 512] [--images 2048] [--repeats 3] [--device cpu]

The three are timed in turns (ours, loop, DataLoader, ours, ...) and each keeps its fastest of
--repeats passes over --images images, so that the load of a shared machine (printed by `uptime`
before and after) affects all alike. On CUDA, the policy's time per batch is also given as a
fraction of one PreActResNet-18 bf16 training step (channels_last) at that batch size.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import torch
import typer
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as v1
from torchvision.transforms import v2

from step_timing import median_step_times, sync
from mollify.augment import BatchRecipe, make_policy
from mollify.augment.policies import POLICIES
from mollify.data.synthetic import generate
from mollify.device import Normalize
from mollify.models import create_model

V1 = {"trivaug": v1.TrivialAugmentWide, "randaug": v1.RandAugment, "autoaug": v1.AutoAugment, "augmix": v1.AugMix}
V2 = {"trivaug": v2.TrivialAugmentWide, "randaug": v2.RandAugment, "autoaug": v2.AutoAugment, "augmix": v2.AugMix}


class PilImages(Dataset):
    """The reference repositories' input path: uint8 array -> PIL image -> policy -> tensor."""

    def __init__(self, images: np.ndarray, policy: str):
        self.images, self.transform = images, v1.Compose([V1[policy](), v1.PILToTensor()])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(Image.fromarray(self.images[i].transpose(1, 2, 0)))


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(
    batch: list[int] = typer.Option([128, 512], help="batch sizes"),
    images: int = typer.Option(2048, help="images per timed pass"),
    repeats: int = typer.Option(3, help="passes per method; the fastest counts"),
    device: str = "cpu",
    policy: list[str] = typer.Option(list(POLICIES), help="policies to time"),
    workers: int = typer.Option(2, help="DataLoader workers of the reference way"),
) -> None:
    """Print images/s of ours, the per-image loop and the PIL DataLoader, and the ratios."""
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, {images} images per pass")
    dev = torch.device(device)
    array = generate(images, seed=0)[0]
    x = torch.from_numpy(array).to(dev)
    print(f"{'policy':8s} {'batch':>5s} {'ours img/s':>11s} {'loop img/s':>11s} {'PIL DL img/s':>13s} "
          f"{'ours/loop':>9s} {'ours/PIL':>9s}" + ("  policy/step" if dev.type == "cuda" else ""))
    for name in policy:
        ours, per_image = make_policy(name), V2[name]()
        for b in batch:
            g = torch.Generator(device=dev).manual_seed(0)
            batches = x.split(b)

            def run_ours() -> None:
                for chunk in batches:
                    ours(chunk, g)
                sync(dev)

            def run_loop() -> None:
                for chunk in batches:
                    torch.stack([per_image(image) for image in chunk])
                sync(dev)

            loader = DataLoader(PilImages(array, name), batch_size=b, num_workers=workers, persistent_workers=workers > 0)
            best = {"ours": float("inf"), "loop": float("inf"), "pil": float("inf")}
            for _ in loader:  # start the workers
                pass
            run_ours()  # warm-up
            for _ in range(repeats):
                best["ours"] = min(best["ours"], _seconds(run_ours))
                best["loop"] = min(best["loop"], _seconds(run_loop))
                best["pil"] = min(best["pil"], _seconds(lambda: [xb.to(dev) for xb in loader]))
            del loader
            rate = {k: images / s for k, s in best.items()}
            line = (f"{name:8s} {b:5d} {rate['ours']:11.0f} {rate['loop']:11.0f} {rate['pil']:13.0f} "
                    f"{rate['ours'] / rate['loop']:8.1f}x {rate['ours'] / rate['pil']:8.1f}x")
            if dev.type == "cuda":
                line += f"  {best['ours'] / len(batches) / _step_seconds(b, dev):10.1%}"
            print(line, flush=True)
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


def _step_seconds(b: int, dev: torch.device) -> float:
    """Median seconds of a PreActResNet-18 bf16 (autocast) channels_last training step on b images."""
    net = create_model("preact_resnet18", 10).to(dev, memory_format=torch.channels_last)
    images = torch.randint(0, 256, (b, 3, 32, 32), dtype=torch.uint8, device=dev)
    labels = torch.randint(0, 10, (b,), device=dev)
    normalize = Normalize((0.5,) * 3, (0.25,) * 3, dev, True)
    return median_step_times(net, {"step": BatchRecipe(10)}, images, labels, normalize, steps=20)["step"]


if __name__ == "__main__":
    typer.run(main)
