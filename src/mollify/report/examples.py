"""Example images of the pipeline's data (PNG, matplotlib): the corrupted test images (stage corrupt) and
DiffAug's estimates (stage diffusion); and the atomic figure writer the other figures use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mollify.io import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def corruption_grid(clean: np.ndarray, corrupted: dict[str, list[np.ndarray]], severities: list[int], path: Path) -> None:
    """One test image (uint8 C, H, W) under every corruption (rows) at every severity (columns)."""
    fig, axes = plt.subplots(len(corrupted), len(severities) + 1, figsize=(1.1 * (len(severities) + 1), 1.1 * len(corrupted)),
                             squeeze=False)
    for r, (name, images) in enumerate(corrupted.items()):
        for c, image in enumerate([clean, *images]):
            ax = axes[r, c]
            ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("clean" if c == 0 else f"s{severities[c - 1]}", fontsize=8)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    save_figure(fig, path)


def diffaug_examples(images: np.ndarray, diffaug: Any, timesteps: list[int], seed: int, path: Path) -> None:
    """DiffAug's Fig. 1: each row a test image (first column) and its one-step diffuse-and-denoise
    versions at the given t (one noise draw per image and t, from `seed`)."""
    import torch

    x = torch.from_numpy(images).float().to(diffaug.alphas_cumprod.device) / 255
    from mollify.device import seeded_generator

    columns = [x] + [diffaug(x, seeded_generator(seed, t, x.device), t) for t in timesteps]
    fig, axes = plt.subplots(len(x), len(columns), figsize=(1.2 * len(columns), 1.25 * len(x)), squeeze=False)
    for c, (batch, title) in enumerate(zip(columns, ["image"] + [f"t={t}" for t in timesteps])):
        shown = batch.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        for r in range(len(x)):
            axes[r, c].imshow(shown[r], interpolation="nearest")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[0, c].set_title(title, fontsize=8)
    fig.suptitle("DiffAug: one-step diffuse-and-denoise", fontsize=9)
    save_figure(fig, path)
