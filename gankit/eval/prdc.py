"""Precision, recall, density and coverage (Naeem et al. 2020) on feature vectors, in float64."""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.eval.errors import EvalError


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """||a_i - b_j||^2 = ||a_i||^2 + ||b_j||^2 - 2 a_i.b_j, clamped at 0 against round-off."""
    return ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T).clamp(min=0)


def _kth_nn_sq_radii(x: Tensor, k: int, chunk: int) -> Tensor:
    """Squared distance of each point to its k-th nearest neighbour in its own set (self excluded)."""
    out = []
    for rows in x.split(chunk):
        out.append(_sq_dists(rows, x).kthvalue(k + 1, dim=1).values)  # the (k+1)-th smallest is the k-th other
    return torch.cat(out)


def prdc(real: Tensor, fake: Tensor, k: int = 5, chunk: int = 1024) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) with k-NN balls.

    With B(x, r) the ball around x reaching its k-th nearest neighbour:
    precision = share of fakes inside some real ball; recall = share of reals
    inside some fake ball; density = (1/k) * mean number of real balls holding
    a fake; coverage = share of real balls holding at least one fake.
    """
    real, fake = real.to(torch.float64), fake.to(torch.float64)
    for name, x in (("real", real), ("generated", fake)):
        if x.shape[0] <= k:
            raise EvalError(f"PRDC with k={k} needs more than {k} {name} images, got {x.shape[0]}")
    r_real = _kth_nn_sq_radii(real, k, chunk)
    r_fake = _kth_nn_sq_radii(fake, k, chunk)
    inside_any = torch.zeros(fake.shape[0], dtype=torch.bool, device=fake.device)
    balls_per_fake = torch.zeros(fake.shape[0], dtype=torch.float64, device=fake.device)
    recalled, covered = [], []
    for lo in range(0, real.shape[0], chunk):
        d = _sq_dists(real[lo:lo + chunk], fake)  # rows: reals, columns: fakes
        in_real_ball = d < r_real[lo:lo + chunk, None]
        inside_any |= in_real_ball.any(dim=0)
        balls_per_fake += in_real_ball.sum(dim=0)
        recalled.append((d < r_fake[None, :]).any(dim=1))
        covered.append(d.min(dim=1).values < r_real[lo:lo + chunk])
    return {
        "precision": float(inside_any.double().mean()),
        "recall": float(torch.cat(recalled).double().mean()),
        "density": float(balls_per_fake.mean() / k),
        "coverage": float(torch.cat(covered).double().mean()),
    }
