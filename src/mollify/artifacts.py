"""The pipeline's stored models, loaded by path: a trained classifier of the train stage and the
diffusion stage's model wrapped as DiffAug."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn as nn

from mollify import paths
from mollify.augment.diffaug import DiffAug
from mollify.diffusion.model import load_unet
from mollify.errors import MollifyError
from mollify.io import load_torch
from mollify.models import create_model


def load_diffaug(dataset: str, device: torch.device, precision: str = "fp32") -> DiffAug:
    """DiffAug with the diffusion stage's model of `dataset`."""
    return DiffAug(load_unet(paths.diffusion_dir(dataset)).to(device), precision)


def load_model(dataset: str, method: str, device: torch.device, seed: int = 0) -> nn.Module:
    return load_model_file(paths.model_file(dataset, method, seed), device)


def load_model_file(path: Path, device: torch.device) -> nn.Module:
    state = load_torch(path)
    try:
        model = create_model(state["model"], state["num_classes"], **state.get("options", {}))
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise MollifyError(f"{path} does not hold weights of a known model ({e}); re-run its train stage.") from None
    return model.to(device)


def training_machine(dataset: str, method: str, seed: int = 0) -> dict | None:
    """The machine that trained a run (mollify.device.machine_info, saved with its weights)."""
    return load_torch(paths.model_file(dataset, method, seed)).get("machine")


def diffusion_fingerprint(dataset: str) -> str:
    """Hash of the diffusion stage's model files of `dataset` (a DiffAug run's checkpoint is resumed
    only with the same model)."""
    digest = hashlib.sha256()
    for path in sorted(paths.diffusion_dir(dataset).rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
