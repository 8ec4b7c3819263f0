"""The interval on every FID, KID and FD: a percentile bootstrap over the features already held.

One resample draws n_real reference features and n_fake generated features with replacement
(multinomial counts ``w``, drawn from evaluation's own seeded stream ``bootstrap``) and recomputes
the statistic; the interval is the 2.5th and 97.5th percentiles of ``resamples`` of them (50 by
default: ``eval.bootstrap_resamples``). It measures how much the number would move with another
draw of the same number of real and generated images; it is not a bias correction (FID from
fewer images is larger on average, whatever the interval says).

- **Fréchet distance** (FID, FD-DINOv2): per resample the weighted mean and covariance
  (n - 1 normalisation, as torchmetrics and dgm-eval) of each side, then
  ``‖μ_r − μ_f‖² + tr Σ_r + tr Σ_f − 2 tr √(Σ_r Σ_f)`` (:func:`frechet_weighted`: the trace of the
  square root from a symmetric eigenproblem or, with fewer drawn images than dimensions, from the
  singular values of an images x images product; several times cheaper than the general
  ``eigvals`` torchmetrics uses). In float64, as torchmetrics keeps its sums (with fewer images
  than dimensions float32 moves the near-zero eigenvalues enough to shift FID by 1e-4), but when
  both covariances are of full rank: there the products and the eigenvalues are float32 (about
  1e-6 relative, far inside any interval's width; the row's value itself is torchmetrics'), the
  Cholesky factor float64. Per resample that is ~2 n d² + 4 d³ floating-point operations.
- **KID**: KID averages the unbiased MMD² over random subsets; its expectation is the unbiased MMD²
  of all the features, which the resamples recompute exactly from the kernel matrices, built once
  in blocks: with counts ``w``, ``Σ_{i≠j} k(x_i*, x_j*) = wᵀKw − wᵀ diag(K)`` (pairs of distinct
  positions), so a resample costs ``O(n²)``, not another kernel.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gankit.eval.rng import torch_generator

LEVEL = 0.95
METHOD = "percentile bootstrap over resampled real and generated features"
BLOCK = 2048  # rows per kernel block: a 2048 x 2048 block of float64 is 32 MB


def counts(n: int, resamples: int, generator: torch.Generator) -> Tensor:
    """(resamples, n) multinomial counts: how often each of n items is drawn in each resample of n."""
    picks = torch.randint(0, n, (resamples, n), generator=generator)
    return torch.zeros(resamples, n, dtype=torch.float64).scatter_add_(1, picks, torch.ones(resamples, n,
                                                                                           dtype=torch.float64))


def percentiles(values: list[float] | np.ndarray) -> tuple[float, float]:
    alpha = (1.0 - LEVEL) / 2.0 * 100.0
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [alpha, 100.0 - alpha])
    return float(low), float(high)


def _centred(x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """The weighted mean of rows ``x`` drawn ``w`` times each, and A with Aᵀ A their covariance (n - 1), float64."""
    keep = w > 0  # about 37% of the rows are not drawn: no need to multiply them
    x, w = x[keep].double(), w[keep].double()
    n = float(w.sum())
    mean = (w[:, None] * x).sum(0) / n
    return mean, (x - mean) * (w / (n - 1)).sqrt()[:, None]


def frechet_weighted(real: Tensor, w_real: Tensor, fake: Tensor, w_fake: Tensor, *, exact: bool = False) -> float:
    """The Fréchet distance between Gaussians fitted to rows drawn ``w`` times each (float64 moments).

    ``tr √(Σ_r Σ_f)`` is the sum of the singular values of ``A_r A_fᵀ`` (``Σ = Aᵀ A``; the nonzero
    eigenvalues of ``Σ_r Σ_f`` are those of ``(A_r A_fᵀ)(A_r A_fᵀ)ᵀ``): the cheap form when a side has
    no more rows than dimensions (its covariance is singular). Otherwise ``Σ_r = L Lᵀ`` (Cholesky) and
    the eigenvalues of the symmetric ``Lᵀ Σ_f L``, in float32 unless ``exact`` (a reported value, not a
    resample: all in float64).
    """
    mu_r, a = _centred(real, w_real)
    mu_f, b = _centred(fake, w_fake)
    traces = float((a * a).sum() + (b * b).sum())
    nuclear = None
    if min(a.shape[0], b.shape[0]) > a.shape[1]:
        try:  # full rank: float32 but for the Cholesky factor (Inception's covariances are ill-conditioned)
            dtype = torch.float64 if exact else torch.float32
            af, bf = a.to(dtype), b.to(dtype)
            lower = torch.linalg.cholesky((af.T @ af).double()).to(dtype)
            middle = lower.T @ (bf.T @ bf) @ lower
            nuclear = float(torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().double().sum())
        except RuntimeError:  # numerically singular after all
            nuclear = None
    if nuclear is None:
        nuclear = float(torch.linalg.svdvals(a @ b.T).sum())
    return float(((mu_r - mu_f) ** 2).sum()) + traces - 2.0 * nuclear


def frechet_interval(real: Tensor, fake: Tensor, resamples: int, seed: int,
                     device: torch.device | str = "cpu") -> tuple[float, float] | None:
    """The 95% percentile interval of the Fréchet distance over ``resamples`` bootstrap resamples (None for
    non-finite features, whose value is refused anyway)."""
    if not (torch.isfinite(real).all() and torch.isfinite(fake).all()):
        return None
    g = torch_generator(seed, "bootstrap")
    w_real, w_fake = counts(real.shape[0], resamples, g), counts(fake.shape[0], resamples, g)
    real, fake = real.to(device), fake.to(device)
    return percentiles([frechet_weighted(real, w_real[b].to(device), fake, w_fake[b].to(device))
                        for b in range(resamples)])


def frechet_resamples_by_class(groups: list[tuple[Tensor, Tensor]], resamples: int, seed: int,
                               device: torch.device | str = "cpu") -> np.ndarray:
    """(classes, resamples) Fréchet distances, each class's real and generated features resampled within
    the class (a stratified bootstrap: an evaluation fixes how many images each class has)."""
    g = torch_generator(seed, "bootstrap")
    out = np.empty((len(groups), resamples))
    for c, (real, fake) in enumerate(groups):
        w_real, w_fake = counts(real.shape[0], resamples, g), counts(fake.shape[0], resamples, g)
        real, fake = real.to(device), fake.to(device)
        out[c] = [frechet_weighted(real, w_real[b].to(device), fake, w_fake[b].to(device)) for b in range(resamples)]
    return out


def _kernel(x: Tensor, y: Tensor) -> Tensor:
    """KID's polynomial kernel (x·y / d + 1)³, computed in float32, returned in float64."""
    return ((x @ y.T) / x.shape[1] + 1.0).double() ** 3


def _weighted_pairs(x: Tensor, y: Tensor | None, wx: Tensor, wy: Tensor) -> Tensor:
    """Per resample: Σ_ij wx_i wy_j k(x_i, y_j) in blocks; with ``y`` None (x with itself) minus Σ_i w_i k(x_i, x_i)."""
    same = y is None
    y = x if same else y
    total = torch.zeros(wx.shape[0], dtype=torch.float64, device=x.device)
    for lo in range(0, x.shape[0], BLOCK):
        xa = x[lo:lo + BLOCK]
        for lo2 in range(0, y.shape[0], BLOCK):
            k = _kernel(xa, y[lo2:lo2 + BLOCK])
            total += ((wx[:, lo:lo + BLOCK] @ k) * wy[:, lo2:lo2 + BLOCK]).sum(1)
    if same:
        diagonal = ((x * x).sum(1).double() / x.shape[1] + 1.0) ** 3
        total -= wx @ diagonal
    return total


def mmd_interval(real: Tensor, fake: Tensor, resamples: int, seed: int,
                 device: torch.device | str = "cpu") -> tuple[float, float] | None:
    """The 95% percentile interval of the unbiased MMD² (KID's kernel) over ``resamples`` bootstrap resamples
    (None for non-finite features)."""
    if not (torch.isfinite(real).all() and torch.isfinite(fake).all()):
        return None
    g = torch_generator(seed, "bootstrap")
    w_real = counts(real.shape[0], resamples, g).to(device)
    w_fake = counts(fake.shape[0], resamples, g).to(device)
    real, fake = real.float().to(device), fake.float().to(device)
    m, n = real.shape[0], fake.shape[0]
    rr = _weighted_pairs(real, None, w_real, w_real) / (m * (m - 1))
    ff = _weighted_pairs(fake, None, w_fake, w_fake) / (n * (n - 1))
    rf = _weighted_pairs(real, fake, w_real, w_fake) / (m * n)
    return percentiles((rr + ff - 2 * rf).cpu().numpy())


def details(resamples: int, seed: int, seconds: float) -> dict:
    """What every row with an interval says about it (``ci_seconds``: what computing it took)."""
    return {"ci_level": LEVEL, "ci_method": METHOD, "ci_resamples": resamples, "ci_seed": seed,
            "ci_stream": "bootstrap", "ci_seconds": round(seconds, 3)}
