"""Model registry: `create_model(name, num_classes)`; adding an architecture is one entry here."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from mollify.models import resnets

MODELS: dict[str, Callable[[int], nn.Module]] = {
    "small_resnet": resnets.small_resnet,
    "resnet18": resnets.resnet18,
    "preact_resnet18": resnets.preact_resnet18,
    "preact_resnet50": resnets.preact_resnet50,
    "wrn28_10": resnets.wrn28_10,
}


def create_model(name: str, num_classes: int) -> nn.Module:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choices: {', '.join(MODELS)}")
    return MODELS[name](num_classes)
