"""Fidelity statistics of our corruptions against the reference generator (hendrycks/robustness).

The reference's code never enters this repository: step 2 runs it from a checkout given on the
command line, in a throwaway environment with the old libraries it needs (it imports Wand, OpenCV,
scikit-image and SciPy and fails on NumPy 2):

    uv venv /tmp/refenv
    uv pip install --python /tmp/refenv "numpy<2" "scipy<1.12" scikit-image==0.20.0 \\
        opencv-python-headless==4.11.0.86 Wand==0.7.2 Pillow
    apt-get install -y libmagickwand-dev                    # ImageMagick 6 (Q16) for Wand
    git clone https://github.com/hendrycks/robustness /tmp/robustness

    # 1. the reference's statistics and per-image timing (throwaway environment) on the committed
    #    clean images, tests/corruptions/reference_images.npz (200 images at 32 px, 100 at 64 px)
    /tmp/refenv/bin/python benchmarks/reference_fidelity.py reference /tmp/robustness \\
        tests/corruptions/reference_images.npz tests/corruptions/reference_stats.json
    # 2. the table, ours vs the reference (main environment)
    uv run python benchmarks/reference_fidelity.py compare tests/corruptions/reference_stats.json

Step 2 loads only the distortion functions of make_cifar_c.py (32 px) and make_tinyimagenet_c.py
(64 px): the source up to "End Distortions", with empty stand-ins for the torch imports it does
not use, and skimage's `gaussian` accepting the removed `multichannel=True` (= `channel_axis=-1`).
It seeds NumPy once (0) and applies each function to each image as the reference's driver does,
`np.uint8(f(PIL image, severity))`. This file imports only NumPy at module level so that it runs
in both environments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

# The images the statistics are computed on (tests/corruptions/test_fidelity.py regenerates them).
IMAGES = {32: (200, 20_032), 64: (100, 20_064)}  # size: (count, seed of the demo generator that drew them)
# the clean images, drawn once by the demo generator of 2026-11 (its first design) and kept, so that
# the reference's statistics stay comparable whatever the demo data becomes
IMAGES_FILE = Path(__file__).resolve().parents[1] / "tests/corruptions/reference_images.npz"
SCRIPTS = {32: "make_cifar_c.py", 64: "make_tinyimagenet_c.py"}
NAMES = (  # ours and the reference's function names (mollify.corruptions.STANDARD + EXTRA)
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate",
)
PSNR_CAP = 60.0  # dB; an unchanged image would otherwise have an infinite PSNR


def change_stats(clean: np.ndarray, corrupted: np.ndarray) -> dict:
    """Mean absolute change (0..255), per-image PSNR mean and standard deviation, and the sha256 of
    the corrupted uint8 (N, C, H, W) array (equal hashes: bit-identical outputs)."""
    diff = corrupted.astype(np.float64) - clean.astype(np.float64)
    mse = np.maximum((diff**2).reshape(len(diff), -1).mean(axis=1), 255.0**2 * 10 ** (-PSNR_CAP / 10))
    psnr = 10 * np.log10(255.0**2 / mse)
    return {
        "mean_abs": float(np.abs(diff).mean()),
        "psnr_mean": float(psnr.mean()),
        "psnr_std": float(psnr.std()),
        "sha256": hashlib.sha256(np.ascontiguousarray(corrupted, dtype=np.uint8).tobytes()).hexdigest(),
    }


def _load_reference(checkout: Path, size: int) -> dict:
    """The distortion functions of the reference script for `size`, without its driver code."""
    import sys
    import types

    import skimage.filters

    for name in ("torch", "torch.utils", "torch.utils.data", "torchvision", "torchvision.datasets", "torchvision.transforms"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torch.utils.data"].Dataset = object  # base class of make_tinyimagenet_c's unused loader
    gaussian = getattr(skimage.filters.gaussian, "original", skimage.filters.gaussian)

    def gaussian_compat(image, *args, multichannel=None, **kwargs):
        return gaussian(image, *args, channel_axis=-1 if multichannel else None, **kwargs)

    gaussian_compat.original = gaussian
    skimage.filters.gaussian = gaussian_compat
    folder = checkout / "ImageNet-C" / "create_c"
    source = (folder / SCRIPTS[size]).read_text()
    source = source[: source.index("# /////////////// End Distortions")]
    namespace: dict = {"__name__": f"reference_{size}"}
    exec(compile(source, str(folder / SCRIPTS[size]), "exec"), namespace)  # noqa: S102
    return namespace


def _reference_runs(checkout: Path, clean: np.ndarray, names: tuple[str, ...] = NAMES):
    """Yield (name, severity, corrupted uint8 (N, C, H, W), seconds) for each corruption of `names`
    and severity, the reference's functions applied image by image as its driver does."""
    import os

    from PIL import Image

    functions = _load_reference(checkout, clean.shape[-1])
    pil = [Image.fromarray(im.transpose(1, 2, 0)) for im in clean]
    os.chdir(checkout / "ImageNet-C" / "create_c")  # frost reads ./frost<k>.png
    np.random.seed(0)
    for name in names:
        for severity in range(1, 6):
            start = time.perf_counter()
            corrupted = [np.uint8(functions[name](im, severity)) for im in pil]
            seconds = time.perf_counter() - start
            yield name, severity, np.stack(corrupted).transpose(0, 3, 1, 2), seconds


def reference_stats(checkout: Path, images: Path, out: Path) -> None:
    arrays = np.load(images)
    stats: dict = {"images": {str(s): {"count": n, "seed": seed} for s, (n, seed) in IMAGES.items()}, "stats": {}, "seconds_per_image": {}}
    for size in IMAGES:
        clean = arrays[f"size{size}"]
        for name, severity, corrupted, seconds in _reference_runs(checkout, clean):
            stats["stats"][f"{name}/{size}/{severity}"] = change_stats(clean, corrupted)
            key = f"{name}/{size}"
            stats["seconds_per_image"][key] = stats["seconds_per_image"].get(key, 0.0) + seconds / (5 * len(clean))
            if severity == 5:
                print(name, size, stats["stats"][f"{name}/{size}/5"]["mean_abs"], flush=True)
    Path(out).write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")


def reference_seconds(checkout: Path, images: Path, out: Path, names: tuple[str, ...], repeats: int) -> None:
    """Time the reference on the uint8 (N, C, H, W) array in `images` (.npy): seconds per image for
    all 5 severities of each corruption of `names`, the fastest of `repeats` runs, as JSON."""
    clean = np.load(images)
    runs = []
    for _ in range(repeats):
        seconds = dict.fromkeys(names, 0.0)
        for name, _, _, elapsed in _reference_runs(checkout, clean, names):
            seconds[name] += elapsed / len(clean)
        runs.append(seconds)
    Path(out).write_text(json.dumps({name: min(run[name] for run in runs) for name in names}, indent=1) + "\n")


def our_stats(size: int) -> dict:
    """Ours on the same images, as the test computes them: {"name/size/severity": change_stats}."""
    from mollify.corruptions import corrupt

    import torch

    clean = torch.from_numpy(np.load(IMAGES_FILE)[f"size{size}"])
    return {f"{name}/{size}/{s}": change_stats(clean.numpy(), corrupt(clean, name, s, seed=0).numpy())
            for name in NAMES for s in range(1, 6)}


def compare(path: Path) -> None:
    """Print, per corruption, size and severity, ours vs the reference (markdown table)."""
    reference = json.loads(Path(path).read_text())["stats"]
    print("| corruption | px | mean abs change 1..5: ours / reference | PSNR dB 1..5: ours / reference | identical |")
    print("|---|---|---|---|---|")
    for size in IMAGES:
        ours = our_stats(size)
        for name in NAMES:
            keys = [f"{name}/{size}/{s}" for s in range(1, 6)]
            mac = " ".join(f"{ours[k]['mean_abs']:.2f}/{reference[k]['mean_abs']:.2f}" for k in keys)
            psnr = " ".join(f"{ours[k]['psnr_mean']:.1f}/{reference[k]['psnr_mean']:.1f}" for k in keys)
            same = sum(ours[k]["sha256"] == reference[k]["sha256"] for k in keys)
            print(f"| {name} | {size} | {mac} | {psnr} | {same}/5 |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reference", help="run the reference generator (throwaway environment)")
    p.add_argument("checkout", type=Path)
    p.add_argument("images", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("time", help="time the reference on a .npy of uint8 images (throwaway environment)")
    p.add_argument("checkout", type=Path)
    p.add_argument("images", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--names", default=",".join(NAMES), help="comma-separated corruptions")
    p.add_argument("--repeats", type=int, default=1)
    p = sub.add_parser("compare", help="print ours vs the reference (main environment)")
    p.add_argument("stats", type=Path)
    args = parser.parse_args()
    if args.command == "reference":
        reference_stats(args.checkout, args.images, args.out)
    elif args.command == "time":
        reference_seconds(args.checkout, args.images, args.out, tuple(args.names.split(",")), args.repeats)
    else:
        compare(args.stats)


if __name__ == "__main__":
    main()
