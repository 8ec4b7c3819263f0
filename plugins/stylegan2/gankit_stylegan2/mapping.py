"""The mapping network: z (and a class label) -> w, with the running mean of w and truncation.

    ws = G.mapping(z, labels)                       # N x num_ws x w_dim, w_avg updated in training mode
    ws = G.mapping(z, truncation_psi=0.7)           # pulled towards w_avg (the "truncation trick")

z and the label's embedding are each normalised to unit second moment,
concatenated and sent through ``num_layers`` equalised-lr fully connected
layers with lr multiplier 0.01 (a slow learner). In training mode every call
moves ``w_avg`` towards the batch mean of w, ``w_avg = lerp(mean w, w_avg,
0.995)``. The discriminator's conditioning (``cmap``) uses the same network
without z, without ``w_avg`` and without broadcasting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.nn.conditional import cycle_labels
from gankit.nn.equalized import EqualizedLinear


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x / √(mean x² + ε) along ``dim``: unit second moment per sample."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def class_vectors(labels: Tensor | None, num_classes: int, n: int, device: torch.device) -> Tensor:
    """Labels as the official one-hot ``c`` (N x num_classes, float32).

    ``labels`` is int64 (N,) as gankit passes them, or already a float (N x
    num_classes) class vector (one-hot or soft, as the official ``c``); None
    draws the classes in turn (gankit's convention for conditional models).
    """
    if labels is None:
        labels = cycle_labels(n, num_classes, device)
    if labels.dtype.is_floating_point:
        if labels.shape != (n, num_classes):
            raise ValueError(f"class vectors must be N x {num_classes}, got {tuple(labels.shape)}")
        return labels.to(torch.float32)
    if labels.shape != (n,):
        raise ValueError(f"labels must be int64 of shape ({n},), got {tuple(labels.shape)}")
    return F.one_hot(labels.long(), num_classes).to(torch.float32)


class MappingNetwork(nn.Module):
    """(z (N x z_dim), labels) -> w (N x w_dim), or N x num_ws x w_dim when ``num_ws`` is set.

    ``z_dim=0``: labels only (the discriminator's cmap). ``w_avg_beta=None``:
    no running mean (and no truncation).
    """

    def __init__(self, z_dim: int, num_classes: int | None, w_dim: int, num_ws: int | None,
                 num_layers: int = 8, embed_dim: int | None = None, layer_dim: int | None = None,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.num_classes, self.w_dim, self.num_ws = z_dim, num_classes, w_dim, num_ws
        self.w_avg_beta = w_avg_beta
        embed_dim = (w_dim if embed_dim is None else embed_dim) if num_classes else 0
        layer_dim = w_dim if layer_dim is None else layer_dim
        widths = [z_dim + embed_dim] + [layer_dim] * (num_layers - 1) + [w_dim]
        self.embed = EqualizedLinear(num_classes, embed_dim) if num_classes else None
        self.layers = nn.ModuleList(
            EqualizedLinear(widths[i], widths[i + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            for i in range(num_layers)
        )
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))
        else:
            self.w_avg = None

    def forward(self, z: Tensor | None, labels: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = True) -> Tensor:
        """w for ``z`` and ``labels``; in training mode (and ``update_w_avg``) moves ``w_avg``;
        ``truncation_psi`` < 1 pulls the first ``truncation_cutoff`` ws (all when None) towards it."""
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.embed is not None:
            n = z.shape[0] if z is not None else labels.shape[0]
            c = class_vectors(labels, self.num_classes, n, self.embed.weight.device)
            parts.append(normalize_2nd_moment(self.embed(c)))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = layer(x)  # N x w_dim after the last

        if self.w_avg is not None and self.training and update_w_avg:
            mean = x.detach().float().mean(dim=0)  # float32 under autocast too
            self.w_avg.copy_(mean.lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # the same w for every layer
        if truncation_psi != 1:
            x = self.truncate(x, truncation_psi, truncation_cutoff)
        return x

    def truncate(self, w: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
        """``w_avg + psi · (w - w_avg)`` for w (N x w_dim) or the first ``cutoff`` of ws (N x num_ws x w_dim)."""
        if self.w_avg is None:
            raise ValueError("truncation needs w_avg, which this mapping network does not track")
        w = w.to(self.w_avg.dtype)  # float32 (a no-op unless under autocast)
        if cutoff is None or w.ndim == 2:
            return self.w_avg.lerp(w, psi)
        w = w.clone()
        w[:, :cutoff] = self.w_avg.lerp(w[:, :cutoff], psi)
        return w
