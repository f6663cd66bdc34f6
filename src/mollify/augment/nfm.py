"""Noisy Feature Mixup (Lim, Erichson, Hodgkinson, Mahoney et al., ICLR 2022).

Per batch: lam ~ Beta(alpha, alpha), a random pairing perm, a mixing point k (the input, or the
output of one residual stage: uniform over the input and every stage but the last when
`manifold`, else the input), and noise scales b1, b2 ~ Beta(2, 5). At point k the features become

    h' = (mult_level * b2 * U(-1, 1) + 1) * (lam h + (1 - lam) h[perm]) + add_level * b1 * N(0, 1)

(elementwise draws), and the loss is lam CE(f, y) + (1 - lam) CE(f, y[perm]), which equals the
soft-target cross-entropy against lam y + (1 - lam) y[perm]. With both levels 0 it is (manifold)
mixup; as in the reference, noise is only injected on the mixup path (alpha > 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class NoisyFeatureMixup:
    alpha: float = 1.0
    add_level: float = 0.4
    mult_level: float = 0.2
    manifold: bool = True

    def mixing_points(self, model: nn.Module) -> int:
        """Number of allowed mixing points: the input, plus every residual stage but the last."""
        return len(model.stages) if self.manifold else 1

    def draw(self, batch: int, points: int, device: torch.device, g: torch.Generator) -> dict[str, torch.Tensor]:
        """The per-batch random quantities (Beta variates from torch's global generator of `device`, which
        has no Beta sampler taking a generator; the rest from `g`): drawn on the device, no host copy."""
        beta = lambda a, b: torch.distributions.Beta(torch.tensor(float(a), device=device),  # noqa: E731
                                                     torch.tensor(float(b), device=device)).sample()
        return {
            "lam": beta(self.alpha, self.alpha) if self.alpha > 0 else torch.tensor(1.0, device=device),
            "perm": torch.randperm(batch, generator=g, device=device),
            "k": torch.randint(points, (), generator=g, device=device),
            "b_add": beta(2, 5),
            "b_mult": beta(2, 5),
        }

    def mix(self, h: torch.Tensor, draws: dict[str, torch.Tensor], g: torch.Generator) -> torch.Tensor:
        """The noisy mix of features `h`, in fp32 whatever h's dtype: under bf16 autocast a stage
        returns bf16, and lam rounded to bf16 would not be the lam of the mixed targets."""
        h = h.float()
        lam = draws["lam"].float()
        mixed = lam * h + (1 - lam) * h[draws["perm"]]
        if self.alpha <= 0:
            return mixed
        add = self.add_level * draws["b_add"] * torch.randn(h.shape, generator=g, device=h.device)
        mult = self.mult_level * draws["b_mult"] * (2 * torch.rand(h.shape, generator=g, device=h.device) - 1) + 1
        return mult * mixed + add

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward `model` (stem -> stages -> head) with the mix at a random point; returns the
        logits and the mixed soft targets."""
        draws = self.draw(x.shape[0], self.mixing_points(model), x.device, g)
        k = int(draws["k"])  # one host read per step: which stage to stop at is control flow
        h = self.mix(x, draws, g) if k == 0 else x
        h = model.stem(h)
        for i, stage in enumerate(model.stages, start=1):
            h = stage(h)
            if i == k:
                h = self.mix(h, draws, g)
        lam = draws["lam"].to(y.dtype)
        return model.head(h), lam * y + (1 - lam) * y[draws["perm"]]
