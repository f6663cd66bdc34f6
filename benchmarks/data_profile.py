"""The demo data's corruption profile against the published one, cheaply: train the `baseline`
recipe (flip + crop, small_resnet) on a small generated training set for a few epochs, corrupt the
first test images with the 15 standard corruptions at severities 1-5, and print each corruption's
error beside the published standard CIFAR-10 model's (conf/reference_profile.csv), with the
criterion of mollify.report.profile (Spearman rank correlation, mCE / clean-error ratio).

    uv run python benchmarks/data_profile.py --train 4000 --test 300 --epochs 6

A proxy for the design of mollify.data.synthetic, not the pipeline: the plot stage checks the
same criterion on the demo's trained baseline.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
import typer

from mollify.augment import BatchRecipe, compose
from mollify.corruptions.generate import corrupt
from mollify.corruptions.names import STANDARD
from mollify.data.synthetic import DESIGNS, Design, generate
from mollify.device import Normalize
from mollify.evaluation.predict import predict_probs
from mollify.models import create_model
from mollify.report.profile import compare_profile, load_reference_profile
from mollify.training.loop import TrainSettings, train
from mollify.training.losses import LOSSES


def main(train_size: int = typer.Option(4000, "--train"), test_size: int = typer.Option(300, "--test"),
         epochs: int = 6, seed: int = 0, threads: int = 2, batch_size: int = 128, lr: float = 0.1,
         base: str = typer.Option("cifar_like", "--design", help=f"the design to start from: {', '.join(DESIGNS)}"),
         change: list[str] = typer.Option([], "--set", help="a Design field, e.g. --set detail=0.1,0.2 --set leaves=24")) -> None:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    fields = {f.name: f.type for f in dataclasses.fields(Design)}
    changes = {}
    for item in change:
        key, _, value = item.partition("=")
        numbers = tuple(float(v) for v in value.split(","))
        changes[key] = numbers if len(numbers) > 1 else (int(numbers[0]) if fields[key] == "int" else numbers[0])
    design = dataclasses.replace(DESIGNS[base], **changes)
    x, y = generate(train_size, seed, design=design)
    xt, yt = generate(test_size, seed + 1, design=design)
    mean = tuple(float(m) for m in x.mean(axis=(0, 2, 3)) / 255)
    std = tuple(float(s) for s in x.std(axis=(0, 2, 3)) / 255)
    device = torch.device("cpu")
    normalize = Normalize(mean, std, device, True)
    torch.manual_seed(seed)
    model = create_model("small_resnet", 10).to(memory_format=torch.channels_last)
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4,
                             warmup_epochs=1, seed=seed)
    history = train(model, torch.from_numpy(x), torch.from_numpy(y), compose(["flip", "crop"], 4, 15), normalize,
                    BatchRecipe(10, None), LOSSES["ce"], settings, show_progress=False)
    generated = time.perf_counter()

    def error(images: np.ndarray | torch.Tensor) -> float:
        return float((predict_probs(model, images, normalize, device).argmax(1).numpy() != yt).mean())

    clean = error(xt)
    images = torch.from_numpy(xt)
    errors = {c: float(np.mean([error(corrupt(images, c, s, seed)) for s in range(1, 6)])) for c in STANDARD}
    reference = load_reference_profile()
    result = compare_profile(errors, clean, reference)
    typer.echo(f"design: {design}; train {train_size} x {epochs} epochs (batch {batch_size}, lr {lr}), test {test_size}")
    typer.echo(f"train acc (last epoch) {history[-1]['train_acc']:.3f}; clean err {100 * clean:.2f} %")
    typer.echo(result.table())
    typer.echo(result.summary())
    typer.echo(f"time: train {generated - start:.0f} s, corrupted evaluation {time.perf_counter() - generated:.0f} s")


if __name__ == "__main__":
    typer.run(main)
