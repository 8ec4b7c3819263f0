"""Differentiable augmentations of D's inputs, applied to real and fake images alike.

An augmentation is a callable ``aug(x, generator=g) -> x'`` on N x C x H x W
images in [-1, 1], differentiable in ``x``, drawing its randomness from
``generator`` (the run's augmentation stream, saved in checkpoints).
"""

from gankit.augment.diffaugment import TRANSFORMS, DiffAugment, brightness, contrast, cutout, parse_policy, saturation, translation

__all__ = ["TRANSFORMS", "DiffAugment", "brightness", "contrast", "cutout", "parse_policy", "saturation", "translation"]
