"""Spatial smoothing (Park & Kim, "Blurs Behave Like Ensembles", ICML 2022) and MC dropout.

- TanhBlur: x -> T tanh(x / T) -> ReLU -> AvgPool2d(kernel 2, stride 1, padding 1), T = 10; the
  map grows by one pixel. One block after each residual stage (before each stride-2 stage and
  before global pooling), as in the reference's ResNets.
- MC dropout: dropout that stays on at test time, after the first conv-BN-ReLU of each basic
  block and after the 3x3 conv-BN-ReLU of each bottleneck, before its last 1x1 (the reference's
  resnet_mcdo_block.py / preresnet_mcdo_block.py); a prediction averages the softmax of n
  stochastic passes. BatchNorm stays in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class TanhBlur(nn.Module):
    def __init__(self, temperature: float = 10.0):
        super().__init__()
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.temperature * torch.tanh(x / self.temperature))
        return F.avg_pool2d(x, kernel_size=2, stride=1, padding=1, count_include_pad=True)


class MCDropout(nn.Dropout):
    """Dropout that is active in eval mode too (Gal & Ghahramani 2016)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True, inplace=self.inplace)


def add_spatial_smoothing(model: nn.Module, temperature: float = 10.0) -> nn.Module:
    """Append a TanhBlur block to each residual stage of a `ResidualNet`, in place."""
    for stage in model.stages:
        stage.append(TanhBlur(temperature))
    return model


def add_mc_dropout(model: nn.Module, p: float) -> nn.Module:
    """Put test-time-active dropout with rate p in every residual block, in place."""
    for stage in model.stages:
        for block in stage:
            if hasattr(block, "dropout"):
                block.dropout = MCDropout(p)
    return model


def is_stochastic(model: nn.Module) -> bool:
    return any(isinstance(m, MCDropout) for m in model.modules())
