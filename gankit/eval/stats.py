"""The statistics behind FID, KID, IS and PRDC, in float64.

The formulas are torchmetrics' and torch-fidelity's (FrechetInceptionDistance,
KernelInceptionDistance, InceptionScore; calculate_metrics); the random parts
(KID subsets, IS shuffling) draw from a generator the caller seeds, never
from the global RNG. KID's kernel MMD is torchmetrics' own ``poly_mmd``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gankit.eval.errors import EvalError


class FeatureStats:
    """One set's features (n x d, float64) with its mean and covariance computed on demand."""

    def __init__(self, features: Tensor):
        self.features = features.to(torch.float64)
        self.n, self.d = self.features.shape
        self._mu: Tensor | None = None
        self._centered: Tensor | None = None
        self._sigma: Tensor | None = None

    @property
    def mu(self) -> Tensor:
        if self._mu is None:
            self._mu = self.features.mean(dim=0)
        return self._mu

    @property
    def scaled_centered(self) -> Tensor:
        """A = (X - mu) / sqrt(n - 1), so that sigma = A^T A."""
        if self._centered is None:
            self._centered = (self.features - self.mu) / math.sqrt(self.n - 1)
        return self._centered

    @property
    def sigma(self) -> Tensor:
        """The unbiased covariance (np.cov's): sum_i (x_i - mu)(x_i - mu)^T / (n - 1)."""
        if self._sigma is None:
            a = self.scaled_centered
            self._sigma = a.T @ a
        return self._sigma

    def trace_sigma(self) -> float:
        return float(self.scaled_centered.square().sum())  # tr(A^T A) = ||A||_F^2


def _trace_sqrt_product(a: FeatureStats, b: FeatureStats) -> float:
    """tr sqrt(sigma_a sigma_b), the cross term of FID.

    torchmetrics and torch-fidelity take the eigenvalues of the non-symmetric
    product sigma_a sigma_b. The same number, computed more stably:

    - few samples (min(n_a, n_b) <= d): with sigma = A^T A, the non-zero
      eigenvalues of A^T A B^T B are those of (A B^T)(A B^T)^T, i.e. the
      squared singular values of the n_a x n_b matrix A B^T, so
      tr sqrt(sigma_a sigma_b) = sum of singular values of A B^T;
    - many samples: sigma_a sigma_b is similar to S sigma_b S with
      S = sigma_a^(1/2) (symmetric PSD), so the trace is
      sum sqrt(eigvalsh(S sigma_b S)), negative round-off clamped to 0.
    """
    if min(a.n, b.n) <= a.d:
        return float(torch.linalg.svdvals(a.scaled_centered @ b.scaled_centered.T).sum())
    w, v = torch.linalg.eigh(a.sigma)
    s = (v * w.clamp(min=0).sqrt()) @ v.T
    m = s @ b.sigma @ s
    m = (m + m.T) / 2
    return float(torch.linalg.eigvalsh(m).clamp(min=0).sqrt().sum())


def frechet_distance(real: FeatureStats, fake: FeatureStats) -> float:
    """FID = ||mu_r - mu_f||^2 + tr(sigma_r) + tr(sigma_f) - 2 tr sqrt(sigma_r sigma_f)."""
    for name, s in (("real", real), ("generated", fake)):
        if s.n < 2:
            raise EvalError(f"FID needs at least 2 {name} images (a covariance), got {s.n}")
    if real.d != fake.d:
        raise EvalError(f"real and generated features differ in size ({real.d} vs {fake.d})")
    for name, s in (("real", real), ("generated", fake)):
        if not torch.isfinite(s.features).all():
            raise EvalError(f"FID: the {name} features contain NaN or infinite values, a non-finite result")
    diff = real.mu - fake.mu
    try:
        cross = _trace_sqrt_product(real, fake)
    except torch.linalg.LinAlgError as exc:
        raise EvalError(f"FID: the covariance square root did not converge ({exc})") from None
    value = float(diff @ diff) + real.trace_sigma() + fake.trace_sigma() - 2 * cross
    if not math.isfinite(value):
        raise EvalError(f"FID came out {value} (non-finite features?): not logging a meaningless number")
    return value


def kid(real: Tensor, fake: Tensor, subsets: int, subset_size: int, rng: np.random.Generator) -> tuple[float, float]:
    """KID: the unbiased MMD^2 with kernel k(x, y) = (x.y / d + 1)^3, mean and std over random subsets.

    Each subset draws ``subset_size`` real and generated features without
    replacement; MMD^2 = [sum_{i!=j} k(x_i,x_j) + sum_{i!=j} k(y_i,y_j)] / (m(m-1))
    - 2 sum_{i,j} k(x_i,y_j) / m^2 (torchmetrics' ``poly_mmd``). std is the
    population std (numpy's, as torch-fidelity and torchmetrics report it).
    """
    from torchmetrics.image.kid import poly_mmd

    real, fake = real.to(torch.float64), fake.to(torch.float64)
    if subset_size < 2:
        raise EvalError(f"KID needs subsets of at least 2 images, got {subset_size}")
    scores = []
    for _ in range(subsets):
        r = torch.as_tensor(rng.choice(real.shape[0], subset_size, replace=False))
        f = torch.as_tensor(rng.choice(fake.shape[0], subset_size, replace=False))
        scores.append(float(poly_mmd(real[r.to(real.device)], fake[f.to(fake.device)])))
    value, std = float(np.mean(scores)), float(np.std(scores))
    if not math.isfinite(value):
        raise EvalError(f"KID came out {value}: not logging a meaningless number")
    return value, std


def inception_score(logits: Tensor, splits: int, generator: torch.Generator) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))), per split, then mean and population std over splits.

    The logits are shuffled (seeded) and cut into ``splits`` parts at
    i * N // splits, as torch-fidelity does; p(y) is each part's mean of p(y|x).
    """
    n = logits.shape[0]
    logits = logits.to(torch.float64)[torch.randperm(n, generator=generator).to(logits.device)]
    p, log_p = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        part, log_part = p[lo:hi], log_p[lo:hi]
        log_q = part.mean(dim=0, keepdim=True).log()
        scores.append(float((part * (log_part - log_q)).sum(dim=1).mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))


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
