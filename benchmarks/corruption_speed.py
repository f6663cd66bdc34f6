"""Time all 19 corruptions x 5 severities on 10,000 32-px images, against the reference generator.

    uv run python benchmarks/corruption_speed.py [--images 10000] [--device cpu] [--repeats 2] \\
        [--reference-python /tmp/refenv/bin/python --reference-checkout /tmp/robustness --reference-images 100]

With --reference-python (the throwaway environment of benchmarks/reference_fidelity.py) the
reference (hendrycks/robustness make_cifar_c.py) is timed in the same run, corruption by
corruption right before ours, on the first --reference-images of the same images: it is too slow
for 10,000 x 95 here (about 45 minutes), so its time is extrapolated per image. Both sides take the
fastest of --repeats runs: this machine's speed changes by 2-7x from one minute to the next (CPU
steal), and interleaving plus the fastest run keeps that out of the ratio as far as it can.
Without --reference-python, the per-image seconds stored in tests/corruptions/reference_stats.json
are used; they were measured when that file was made, on another day.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import typer

from mollify.corruptions import CORRUPTIONS, corrupt
from mollify.data.synthetic import generate

HERE = Path(__file__).parent
STORED = HERE.parent / "tests" / "corruptions" / "reference_stats.json"


def reference_seconds_per_image(name: str, images: Path, python: Path | None, checkout: Path | None, repeats: int) -> float:
    """The reference's seconds per image for the 5 severities of `name` (fastest of `repeats`)."""
    if python is None:
        return json.loads(STORED.read_text())["seconds_per_image"][f"{name}/32"]
    if checkout is None:
        raise typer.BadParameter("--reference-python needs --reference-checkout (a hendrycks/robustness clone)")
    out = images.with_name("seconds.json")
    subprocess.run([str(python), str(HERE / "reference_fidelity.py"), "time", str(checkout), str(images), str(out),
                    "--names", name, "--repeats", str(repeats)], check=True)
    return json.loads(out.read_text())[name]


def ours_seconds(x: torch.Tensor, name: str, batch_size: int, repeats: int) -> float:
    """Seconds for the 5 severities of `name` on all of x (fastest of `repeats`)."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for severity in range(1, 6):
            corrupt(x, name, severity, seed=0, batch_size=batch_size)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - start)
    return min(runs)


def main(
    images: int = 10_000,
    device: str = "cpu",
    batch_size: int = 1000,
    repeats: int = 2,
    reference_python: Path = typer.Option(None, help="python of the reference's throwaway environment"),
    reference_checkout: Path = typer.Option(None, help="a clone of hendrycks/robustness"),
    reference_images: int = 100,
) -> None:
    """Print per-corruption seconds (5 severities), the total, and the ratio to the reference."""
    clean = generate(images, seed=0)[0]
    x = torch.from_numpy(clean).to(device)
    origin = (f"timed in this run on {min(reference_images, images)} of the images, interleaved" if reference_python
              else "stored in reference_stats.json (another day)")
    total = reference_total = 0.0
    print(f"{'corruption':18s} {'ours s':>8s} {'reference s':>12s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "images.npy"
        np.save(subset, clean[:reference_images])
        for name in CORRUPTIONS:
            reference = reference_seconds_per_image(name, subset, reference_python, reference_checkout, repeats) * images
            corrupt(x[:8], name, 1)  # first-call set-up (tables, photographs) out of the timing
            ours = ours_seconds(x, name, batch_size, repeats)
            total, reference_total = total + ours, reference_total + reference
            print(f"{name:18s} {ours:8.2f} {reference:12.0f} {reference / ours:6.0f}x", flush=True)
    print(f"{'total':18s} {total:8.2f} {reference_total:12.0f} {reference_total / total:6.1f}x")
    print(f"{images} images x 19 corruptions x 5 severities on {device} ({torch.get_num_threads()} threads), fastest of "
          f"{repeats}: ours {total / 60:.2f} min ({images * 95 / total:,.0f} corrupted images/s); reference "
          f"{reference_total / 60:.1f} min ({images * 95 / reference_total:,.0f} images/s), extrapolated per image, {origin}")


if __name__ == "__main__":
    typer.run(main)
