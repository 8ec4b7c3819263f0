"""One GAN training iteration, as in the PyTorch DCGAN tutorial (``dcgan/main.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def grad_norm(module: nn.Module) -> Tensor:
    """The L2 norm of all of ``module``'s gradients together."""
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.cat(grads))


def gan_step(
    G: nn.Module,
    D: nn.Module,
    loss,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: Tensor,
    nz: int,
    grad_norms: bool = False,
) -> dict[str, Tensor]:
    """One D update then one G update on the same fake batch; returns detached stats."""
    ############################
    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    ############################
    z = torch.randn(real.shape[0], nz, device=real.device)
    fake = G(z)
    opt_d.zero_grad(set_to_none=True)
    # D sees the real batch and the fake batch separately (BatchNorm statistics per batch);
    # fake.detach(): this update must not reach G.
    loss_d, stats = loss.d_loss(D, real, fake.detach())
    loss_d.backward()
    if grad_norms:
        stats["grad_norm_d"] = grad_norm(D)
    opt_d.step()

    ############################
    # (2) Update G network: maximize log(D(G(z)))
    ############################
    opt_g.zero_grad(set_to_none=True)
    # The same fakes, now through the freshly updated D and with gradients into G.
    loss_g, g_stats = loss.g_loss(D, fake)
    loss_g.backward()
    if grad_norms:
        stats["grad_norm_g"] = grad_norm(G)
    opt_g.step()
    stats.update(g_stats)
    return stats
