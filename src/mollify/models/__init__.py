"""Model registry: `create_model(name, num_classes)`; adding an architecture is one entry here."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from mollify.models import resnets
from mollify.models.smoothing import add_mc_dropout, add_spatial_smoothing, is_stochastic

__all__ = ["MODELS", "create_model", "is_stochastic"]

MODELS: dict[str, Callable[[int], nn.Module]] = {
    "small_resnet": resnets.small_resnet,
    "resnet18": resnets.resnet18,
    "preact_resnet18": resnets.preact_resnet18,
    "preact_resnet18_nfm": resnets.preact_resnet18_nfm,
    "preact_wide_resnet18_nfm": resnets.preact_wide_resnet18_nfm,
    "preact_resnet50": resnets.preact_resnet50,
    "wrn28_10": resnets.wrn28_10,
}


def create_model(name: str, num_classes: int, smoothing: bool = False, mc_dropout: float = 0.0) -> nn.Module:
    """A registered network, optionally with TanhBlur spatial smoothing after each stage and
    test-time MC dropout of rate `mc_dropout` in each block (models/smoothing.py)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choices: {', '.join(MODELS)}")
    model = MODELS[name](num_classes)
    if smoothing:
        add_spatial_smoothing(model)
    if mc_dropout > 0:
        add_mc_dropout(model, mc_dropout)
    return model
