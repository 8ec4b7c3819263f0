"""Building blocks that model plugins import: resampling filters, fused bias + activation,
equalised-learning-rate layers, conditioning helpers, class-conditional BatchNorm, spectral normalisation."""
