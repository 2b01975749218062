"""The Fréchet distance between two Gaussians, and FID-lite on the course's images.

The Fréchet (2-Wasserstein) distance between :math:`\\mathcal N(\\mu_1, \\Sigma_1)` and
:math:`\\mathcal N(\\mu_2, \\Sigma_2)` is (Dowson & Landau 1982; Heusel et al. 2017, eq. 6)

.. math::
    d^2 = \\lVert \\mu_1 - \\mu_2 \\rVert^2
          + \\operatorname{tr}\\bigl(\\Sigma_1 + \\Sigma_2 - 2 (\\Sigma_1^{1/2} \\Sigma_2 \\Sigma_1^{1/2})^{1/2}\\bigr).

FID fits such a Gaussian to the features of a pretrained Inception network. FID-lite does the same
with the features of a small classifier trained in seconds on the course's own data
(:mod:`vdlearn.metrics.features`), so its numbers compare models *within this course*, not with
published FIDs. Used in lessons 04, 06, 07 and 10.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from .features import extract_features

__all__ = ["frechet_distance", "feature_statistics", "fid_lite"]


def _as_float64(x: "np.ndarray | torch.Tensor | float") -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (by eigh)."""
    w, v = scipy.linalg.eigh(matrix)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (module docstring).

    ``mu`` are vectors of length D (or scalars), ``sigma`` D×D covariance matrices (or scalar
    variances), as NumPy arrays or tensors. The trace of the matrix square root is computed as
    the sum of the square roots of the eigenvalues of the symmetric PSD matrix
    :math:`\\Sigma_1^{1/2}\\Sigma_2\\Sigma_1^{1/2}` (same eigenvalues as :math:`\\Sigma_1\\Sigma_2`),
    which stays real and exact where ``scipy.linalg.sqrtm`` of the non-symmetric product can
    return complex round-off for nearly singular covariances.
    """
    mu1, mu2 = np.atleast_1d(_as_float64(mu1)), np.atleast_1d(_as_float64(mu2))
    sigma1, sigma2 = np.atleast_2d(_as_float64(sigma1)), np.atleast_2d(_as_float64(sigma2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,):
        raise ValueError(f"mu1 and mu2 must be vectors of the same length; got shapes "
                         f"{mu1.shape} and {mu2.shape}")
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"sigma1 and sigma2 must be {d}x{d} covariance matrices to match mu "
                         f"(length {d}); got shapes {sigma1.shape} and {sigma2.shape}")
    for name, s in (("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{name} contains NaN or inf; were the features finite?")
        if not np.allclose(s, s.T, rtol=1e-5, atol=1e-8 * max(1.0, np.abs(s).max())):
            raise ValueError(f"{name} is not symmetric, so it is not a covariance matrix")
    sqrt1 = _sqrt_psd((sigma1 + sigma1.T) / 2)
    middle = sqrt1 @ sigma2 @ sqrt1
    eig = scipy.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    return float(max(value, 0.0))


def feature_statistics(features: "torch.Tensor | np.ndarray") -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of N feature vectors of shape (N, D), in float64."""
    f = _as_float64(features)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape (N, D) with N >= 2; got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def fid_lite(real_images: torch.Tensor, fake_images: torch.Tensor, dataset: str = "digits",
             *, batch_size: int = 500) -> float:
    """FID-lite: the Fréchet distance between feature Gaussians of real and generated images.

    Images are (N, C, H, W) in [-1, 1] (videos (N, C, T, H, W) are compared frame by frame);
    ``dataset`` ("digits" or "shapes") picks the feature network. Lower is better, 0 for
    identical statistics. Use a few hundred images or more per side: with few samples the
    estimate is biased upwards (by about D/N), so compare numbers computed with the same N.
    """
    real = extract_features(real_images, dataset, batch_size=batch_size)
    fake = extract_features(fake_images, dataset, batch_size=batch_size)
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))
