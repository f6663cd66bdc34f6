"""How far the papers' ECE variants lie from ours on a trained model (docs/fidelity.md, section 3).

Trains the demo's small_resnet without augmentation on the synthetic demo set (plain SGD, a few
epochs on the CPU), predicts the clean test set and three corrupted copies with an fp32 softmax (as
the spatial-smoothing and Soft Augmentation releases), and prints per set: the fraction of
confidences that are exactly 1.0 in fp32, ours (`ece`, 10 bins [a, b)), `ece_reference` (spatial
smoothing: counted in (a, b], summed in [a, b)) and `ece_right_closed` (Soft Augmentation).

    uv run python benchmarks/ece_variants.py [--epochs 8] [--train 8000]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import typer

from mollify.corruptions import corrupt
from mollify.data.synthetic import generate
from mollify.evaluation.metrics import expected_calibration_error, reference_ece, right_closed_ece
from mollify.models import create_model


def main(epochs: int = 8, train: int = 8000, test: int = 1000, seed: int = 0) -> None:
    torch.manual_seed(seed)
    x, y = (torch.from_numpy(a) for a in generate(train, seed))
    xt, yt = (torch.from_numpy(a) for a in generate(test, seed + 1))
    mean, std = x.float().mean(dim=(0, 2, 3), keepdim=True), x.float().std(dim=(0, 2, 3), keepdim=True)
    model = create_model("small_resnet", 10)
    steps = epochs * (train // 128)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=steps)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(train).split(128)[: train // 128]:
            loss = F.cross_entropy(model((x[idx].float() - mean) / std), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    sets = {"clean": xt, **{f"{c} s{s}": corrupt(xt, c, s, seed=seed) for c, s in (("gaussian_noise", 3), ("contrast", 4), ("fog", 5))}}
    print("| set | err % | conf = 1.0 in fp32 % | ece % (ours, 10 bins) | ece_reference % | ece_right_closed % |")
    print("|---|---:|---:|---:|---:|---:|")
    with torch.no_grad():
        for name, images in sets.items():
            probs = torch.softmax(model((images.float() - mean) / std).float(), dim=1).double()
            err = float((probs.argmax(1) != yt).double().mean())
            ones = float((probs.max(1).values == 1.0).double().mean())
            print(f"| {name} | {100 * err:.2f} | {100 * ones:.1f} | {100 * expected_calibration_error(probs, yt, 10):.2f} | "
                  f"{100 * reference_ece(probs, yt):.2f} | {100 * right_closed_ece(probs, yt):.2f} |")


if __name__ == "__main__":
    typer.run(main)
