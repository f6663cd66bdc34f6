"""Training-time augmentations that act on whole batches of device tensors.

Per-sample steps on uint8 (`compose`: flip, crop, rotate, TrivialAugment, RandAugment,
AutoAugment, AugMix) and batch-level steps on normalised floats (`BatchRecipe`: soft crop or mixup / cutmix, then
`Mollification`; `NoisyFeatureMixup` inside the network; `DiffAug` beside the clean batch).
"""

from mollify.augment.base import POLICIES, Augmentation, compose, make_policy, random_crop, random_flip, random_rotation
from mollify.augment.batch import MIXES, BatchRecipe
from mollify.augment.diffaug import DiffAug, NormalizedDiffAug, ensemble_timesteps
from mollify.augment.mollification import Mollification
from mollify.augment.nfm import NoisyFeatureMixup
from mollify.augment.soft_augmentation import SoftAugmentation

__all__ = [
    "MIXES", "POLICIES", "Augmentation", "DiffAug", "Mollification", "NormalizedDiffAug", "ensemble_timesteps", "BatchRecipe",
    "NoisyFeatureMixup", "SoftAugmentation", "compose", "make_policy", "random_crop", "random_flip", "random_rotation",
]
