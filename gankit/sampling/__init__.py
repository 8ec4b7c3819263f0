"""Making images with a generator: latents, BatchNorm's sampling mode, grids.

    images = generate(G, 16, seed=0)               # (16, C, H, W) in [-1, 1], the same for a seed
    save_grid(images, "grid.png", scale=4)
    z = interpolation(a, b, steps=8, mode="slerp")  # (8, nz): a walk from a to b, both ends included
    prepare_for_sampling(G, "standing")            # BatchNorm on standing statistics: G(z) is the answer

The trainer's fixed-noise grids, evaluation, ``gankit sample``, every
export and the public :func:`gankit.generate` all sample the same way: the
run's ``sampling.batchnorm`` (:mod:`gankit.sampling.batchnorm`).
"""

from gankit.sampling.batchnorm import MODES, estimate_standing, has_batchnorm, prepare_for_sampling, sampling_mode
from gankit.sampling.images import generate, generate_from, has_own_truncation, sample_labels, save_gif, save_grid
from gankit.sampling.latents import fixed_noise, interpolation, latents, lerp, slerp, truncated_noise
from gankit.sampling.run_sampling import RunSampling

__all__ = ["MODES", "RunSampling", "estimate_standing", "fixed_noise", "generate", "generate_from",
           "has_batchnorm", "has_own_truncation", "interpolation", "latents", "lerp", "prepare_for_sampling",
           "sample_labels", "sampling_mode", "save_gif", "save_grid", "slerp", "truncated_noise"]
