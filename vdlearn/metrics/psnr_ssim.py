"""Per-clip PSNR and SSIM, and the best of k samples (lesson 08).

Prediction is uncertain: from two frames a model may continue a clip in several plausible ways,
and a sample that is plausible but not *the* future scores badly against it. Video prediction
papers (SVG, SAVP, MCVD) therefore draw k samples per clip and report the best, which measures
whether the true future is among what the model considers likely.

- PSNR of clips in [-1, 1] (peak-to-peak 2): :math:`10 \\log_{10}(2^2 / \\mathrm{MSE})` dB.
- SSIM (Wang et al. 2004, eq. 13) per frame with an 11×11 Gaussian window (σ = 1.5), on
  values mapped to [0, 1], :math:`C_1 = (0.01)^2`, :math:`C_2 = (0.03)^2`, averaged over pixels,
  channels and frames:

  .. math:: \\mathrm{SSIM}(x, y) = \\frac{(2\\mu_x\\mu_y + C_1)(2\\sigma_{xy} + C_2)}{(\\mu_x^2 + \\mu_y^2 + C_1)(\\sigma_x^2 + \\sigma_y^2 + C_2)}.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..data.clips import gaussian_blur

__all__ = ["psnr", "ssim", "ssim_map", "best_of_k"]


def _pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 5:
        raise ValueError(f"prediction and target must be clips (B, C, T, H, W) of one shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (B,) in dB of clips in [-1, 1]: :math:`10\\log_{10}(4/\\mathrm{MSE})`, capped at 100 dB for equal clips."""
    _pair(pred, target)
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(4.0 / mse.clamp(min=4e-10))).clamp(max=100.0)


def ssim_map(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5,
             padding: str = "valid") -> torch.Tensor:
    """The SSIM of every pixel (eq. 13 of Wang et al. 2004) of images (N, C, H, W) in [-1, 1]: (N, C, H', W').

    ``padding="valid"`` keeps the pixels whose whole window lies inside (as the reference code, H' = H - window
    + 1); ``"replicate"`` keeps the size (to average SSIM over a region, e.g. what a camera revealed).
    """
    x, y = (pred.float() + 1) / 2, (target.float() + 1) / 2
    n, c, h, w = x.shape
    size = min(window, h, w)
    size -= 1 - size % 2  # an odd window that fits small frames

    def blur(z: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(z.reshape(n * c, 1, *z.shape[-2:]), sigma, radius=(size - 1) // 2,
                             padding=padding).reshape(n, c, *(z.shape[-2:] if padding != "valid" else
                                                              (h - size + 1, w - size + 1)))

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM (B,) of clips in [-1, 1] (eq. 13 of Wang et al. 2004), averaged over frames; 1 for equal clips."""
    _pair(pred, target)
    b, c, t, h, w = pred.shape
    s = ssim_map(pred.transpose(1, 2).reshape(b * t, c, h, w), target.transpose(1, 2).reshape(b * t, c, h, w),
                 window, sigma)
    return s.flatten(1).mean(1).view(b, t).mean(1)


def best_of_k(samples: torch.Tensor, target: torch.Tensor,
              metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = psnr) -> torch.Tensor:
    """The best score (B,) among k samples (k, B, C, T, H, W) of each clip of ``target`` (B, C, T, H, W).

    "Best" is the largest value of ``metric`` (PSNR, SSIM: higher is better).
    """
    if samples.ndim != 6 or samples.shape[1:] != target.shape:
        raise ValueError(f"samples must be (k, B, C, T, H, W) = (k, *{tuple(target.shape)}), k samples per clip, "
                         f"got {tuple(samples.shape)}")
    k = samples.shape[0]
    scores = metric(samples.flatten(0, 1), target.unsqueeze(0).expand(k, *target.shape).flatten(0, 1))
    return scores.view(k, -1).max(0).values
