"""Training-time augmentations that act on whole batches of device tensors.

Per-sample steps on uint8 (`compose`: flip, crop, rotate, TrivialAugment, RandAugment,
AutoAugment, AugMix) and batch-level steps on normalised floats (`BatchRecipe`: soft crop or mixup / cutmix, then
`Mollification`; `NoisyFeatureMixup` inside the network; `DiffAug` beside the clean batch).

The names below are imported from their modules on first use (PEP 562), so that importing one
module of this package (the diffusion stage's `augment.diffaug`) runs none of the others: each
stage depends on the augmentation code it runs (mollify.dag), not on all of it.
"""

from mollify.lazy import names_from

_MODULES = {
    "POLICIES": "base", "Augmentation": "base", "compose": "base", "make_policy": "base", "make_augmix_views": "base",
    "random_crop": "base", "random_flip": "base", "random_rotation": "base",
    "MIXES": "batch", "BatchRecipe": "batch",
    "DiffAug": "diffaug", "NormalizedDiffAug": "diffaug", "ensemble_timesteps": "diffaug",
    "Mollification": "mollification",
    "NoisyFeatureMixup": "nfm",
    "SoftAugmentation": "soft_augmentation",
}
__all__ = list(_MODULES)

__getattr__ = names_from(__name__, _MODULES)
