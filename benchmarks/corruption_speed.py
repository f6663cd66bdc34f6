"""Time all 19 corruptions x 5 severities on 10,000 32-px images, against the reference generator.

    uv run python benchmarks/corruption_speed.py [--images 10000] [--device cpu] \\
        [--reference-python /tmp/refenv/bin/python --reference-checkout /tmp/robustness --reference-images 200]

With --reference-python (the throwaway environment of benchmarks/reference_fidelity.py) the
reference (hendrycks/robustness make_cifar_c.py) is timed in the same run, on the first
--reference-images of the same images: it is too slow for 10,000 x 95 here (about 40 minutes), so
its time is extrapolated per image. Without it, the per-image seconds stored in
tests/corruptions/reference_stats.json are used; they were measured when that file was made, and
this machine's speed varies by 2x and more over a day, so only a same-run ratio is a fair one.
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


def reference_seconds_per_image(images: np.ndarray, python: Path | None, checkout: Path | None) -> tuple[dict, str]:
    """Per corruption, the reference's seconds per image (5 severities), and where they come from."""
    if python is None:
        stored = json.loads(STORED.read_text())["seconds_per_image"]
        return {name: stored[f"{name}/32"] for name in CORRUPTIONS}, "stored in reference_stats.json (another day)"
    if checkout is None:
        raise typer.BadParameter("--reference-python needs --reference-checkout (a hendrycks/robustness clone)")
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "images.npy", images)
        subprocess.run([str(python), str(HERE / "reference_fidelity.py"), "time", str(checkout),
                        str(Path(tmp) / "images.npy"), str(Path(tmp) / "seconds.json")], check=True)
        return json.loads((Path(tmp) / "seconds.json").read_text()), f"timed now on {len(images)} of the images"


def main(
    images: int = 10_000,
    device: str = "cpu",
    batch_size: int = 1000,
    reference_python: Path = typer.Option(None, help="python of the reference's throwaway environment"),
    reference_checkout: Path = typer.Option(None, help="a clone of hendrycks/robustness"),
    reference_images: int = 200,
) -> None:
    """Print per-corruption seconds (5 severities), the total, and the ratio to the reference."""
    clean = generate(images, seed=0)[0]
    per_image, origin = reference_seconds_per_image(clean[:reference_images], reference_python, reference_checkout)
    x = torch.from_numpy(clean).to(device)
    corrupt(x[:8], "gaussian_noise", 1)  # first-call set-up out of the timings
    total = reference_total = 0.0
    print(f"{'corruption':18s} {'ours s':>8s} {'reference s':>12s} {'ratio':>7s}")
    for name in CORRUPTIONS:
        start = time.perf_counter()
        for severity in range(1, 6):
            corrupt(x, name, severity, seed=0, batch_size=batch_size)
        if device == "cuda":
            torch.cuda.synchronize()
        ours = time.perf_counter() - start
        reference = per_image[name] * images
        total, reference_total = total + ours, reference_total + reference
        print(f"{name:18s} {ours:8.2f} {reference:12.0f} {reference / ours:6.0f}x", flush=True)
    print(f"{'total':18s} {total:8.2f} {reference_total:12.0f} {reference_total / total:6.1f}x")
    print(f"{images} images x 19 corruptions x 5 severities on {device} ({torch.get_num_threads()} threads): "
          f"ours {total / 60:.2f} min ({images * 95 / total:,.0f} corrupted images/s); reference {reference_total / 60:.1f} min "
          f"({images * 95 / reference_total:,.0f} images/s), extrapolated per image, {origin}")


if __name__ == "__main__":
    typer.run(main)
