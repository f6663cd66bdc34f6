"""Training-time augmentations that act on whole batches of device tensors."""

from mollify.augment.base import POLICIES, Augmentation, PerSample, compose, random_crop, random_flip, random_rotation

__all__ = ["POLICIES", "Augmentation", "PerSample", "compose", "random_crop", "random_flip", "random_rotation"]
