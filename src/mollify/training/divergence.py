"""Stop a diverging training run before anything is saved, without a host sync per step.

The first step whose loss is non-finite or above a bound is remembered on the device;
`check()` reads it at the loop's existing synchronisation points (progress updates, epoch
ends, before a checkpoint) and raises `Diverged`, so a run that blows up writes no model,
checkpoint or metrics.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from mollify.errors import MollifyError

BOUND_FACTOR = 100.0


def classifier_loss_bound(num_classes: int, terms: int = 1) -> float:
    """100 x the loss of the uniform prediction, log K per loss term: soft-target CE with one-hot,
    smoothed or mixed targets (mass <= 1) is log K at the uniform softmax, NCE adds log Z <= log K,
    BCE is log 2 <= log K per class, DiffAug sums two CE `terms` (clean and DiffAug rows).
    Training starts near that value; a mean loss 100x above it puts the labelled classes at
    probability K^-100, which only a network whose weights are exploding reaches."""
    return BOUND_FACTOR * terms * math.log(max(num_classes, 2))


# DDPM's loss ||eps - eps_theta||^2 with eps ~ N(0, I) is 1 for the prediction 0 (where training starts)
DIFFUSION_LOSS_BOUND = BOUND_FACTOR


class Diverged(MollifyError):
    """The loss became non-finite or exceeded the bound: the message names the step, loss and lr."""


class DivergenceGuard:
    """Remembers, on the loss's device, the first step with a loss that is not finite or > `bound`."""

    def __init__(self, bound: float, device: torch.device):
        self.bound = bound
        self.step = torch.full((), -1, dtype=torch.long, device=device)
        self.loss = torch.zeros((), device=device)

    def update(self, step: int, loss: torch.Tensor) -> None:
        """Asynchronous: a few elementwise ops on the device, no transfer to the host."""
        loss = loss.detach().float()
        first = (~torch.isfinite(loss) | (loss > self.bound)) & (self.step < 0)
        self.step = torch.where(first, step, self.step)
        self.loss = torch.where(first, loss, self.loss)

    def check(self, lr_at: Callable[[int], float], hint: str) -> None:
        """Raise `Diverged` if a bad step was seen (one host sync: call where the loop syncs anyway)."""
        step = int(self.step)
        if step < 0:
            return
        loss = float(self.loss)
        why = "not finite" if not math.isfinite(loss) else f"above the divergence bound {self.bound:.4g}"
        raise Diverged(f"training diverged at step {step + 1}: loss {loss:.4g} is {why} (learning rate "
                       f"{lr_at(step):.4g}); nothing was saved. {hint}")
