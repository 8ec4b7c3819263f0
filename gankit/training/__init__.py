"""Training: building the parts, the GAN step, the loop, checkpoints and resume."""
