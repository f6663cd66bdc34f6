"""Time all 19 corruptions x 5 severities on 10,000 32-px images on this machine, against the reference.

    uv run python benchmarks/corruption_speed.py [--images 10000] [--device cpu]

The reference generator (hendrycks/robustness make_cifar_c.py) is too slow to run on 10,000 images
x 95 here; its time is extrapolated from its per-image seconds measured on the 200 fidelity images
(tests/corruptions/reference_stats.json, `seconds_per_image`, written by
benchmarks/reference_fidelity.py on this machine), times the number of images.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import typer

from mollify.corruptions import CORRUPTIONS, corrupt
from mollify.data.synthetic import generate

REFERENCE = Path(__file__).parents[1] / "tests" / "corruptions" / "reference_stats.json"


def main(images: int = 10_000, device: str = "cpu", batch_size: int = 1000) -> None:
    """Print per-corruption seconds (5 severities), the total, and the ratio to the reference."""
    x = torch.from_numpy(generate(images, seed=0)[0]).to(device)
    per_image = json.loads(REFERENCE.read_text())["seconds_per_image"]
    total = reference_total = 0.0
    print(f"{'corruption':18s} {'ours s':>8s} {'reference s (extrapolated)':>27s} {'ratio':>7s}")
    for name in CORRUPTIONS:
        start = time.perf_counter()
        for severity in range(1, 6):
            corrupt(x, name, severity, seed=0, batch_size=batch_size)
        if device == "cuda":
            torch.cuda.synchronize()
        ours = time.perf_counter() - start
        reference = per_image[f"{name}/32"] * 5 * images
        total, reference_total = total + ours, reference_total + reference
        print(f"{name:18s} {ours:8.2f} {reference:27.0f} {reference / ours:7.0f}x", flush=True)
    print(f"{'total':18s} {total:8.2f} {reference_total:27.0f} {reference_total / total:7.0f}x")
    print(f"{images} images x 19 corruptions x 5 severities on {device} ({torch.get_num_threads()} threads): "
          f"{total / 60:.2f} min; reference extrapolated from 200 images: {reference_total / 60:.1f} min")


if __name__ == "__main__":
    typer.run(main)
