"""Training-time augmentations that act on whole batches of device tensors.

Per-image steps on uint8 (`compose`: flip, crop, rotate, TrivialAugment, RandAugment,
AutoAugment, AugMix) and batch-level steps on normalised floats (`Targets`: mixup / cutmix, then
`Mollification`).
"""

from mollify.augment.base import POLICIES, Augmentation, PerSample, compose, random_crop, random_flip, random_rotation
from mollify.augment.batch import MIXES, Targets
from mollify.augment.mollification import Mollification

__all__ = [
    "MIXES", "POLICIES", "Augmentation", "Mollification", "PerSample", "Targets",
    "compose", "random_crop", "random_flip", "random_rotation",
]
