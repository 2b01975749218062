"""The GAN game on densities we can write down (lesson 03).

With the generator's density :math:`p_g` fixed, the value function

.. math:: V(D, G) = \\int p_{\\rm data}(x) \\log D(x) + p_g(x) \\log(1 - D(x))\\, dx

is maximised pointwise by the optimal discriminator (Goodfellow et al. 2014, Prop. 1)

.. math:: D^*(x) = \\frac{p_{\\rm data}(x)}{p_{\\rm data}(x) + p_g(x)},

and at :math:`D^*` the game measures the Jensen-Shannon divergence (Theorem 1):

.. math:: V(D^*, G) = -\\log 4 + 2\\,\\mathrm{JS}(p_{\\rm data} \\,\\|\\, p_g).

The functions take densities sampled on an evenly spaced 1-D grid with spacing ``dx`` and
integrate with the rectangle rule.
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "gaussian_pdf",
    "optimal_discriminator",
    "value_on_grid",
    "kl_divergence",
    "js_divergence",
]


def gaussian_pdf(x: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """The density of :math:`\\mathcal{N}(\\text{mean}, \\text{std}^2)` at ``x``."""
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """:math:`D^*(x) = p_{\\rm data}(x) / (p_{\\rm data}(x) + p_g(x))` (1/2 where both are 0)."""
    if p_data.shape != p_g.shape:
        raise ValueError(f"p_data and p_g must have the same shape, got {tuple(p_data.shape)} "
                         f"and {tuple(p_g.shape)}")
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(torch.finfo(total.dtype).tiny),
                       torch.full_like(total, 0.5))


def _xlogy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x * log(y) with the convention 0 * log(anything) = 0."""
    return torch.where(x > 0, x * torch.log(y.clamp_min(torch.finfo(y.dtype).tiny)),
                       torch.zeros_like(x))


def value_on_grid(p_data: torch.Tensor, p_g: torch.Tensor, d: torch.Tensor, dx: float) -> torch.Tensor:
    """:math:`V(D, G) = \\int p_{\\rm data}\\log D + p_g \\log(1 - D)\\,dx` on a grid (eq. 1)."""
    return (_xlogy(p_data, d) + _xlogy(p_g, 1 - d)).sum() * dx


def kl_divergence(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """:math:`\\mathrm{KL}(p\\|q) = \\int p \\log(p/q)\\,dx` on a grid (0 log 0 = 0)."""
    return (_xlogy(p, p) - _xlogy(p, q)).sum() * dx


def js_divergence(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """:math:`\\mathrm{JS}(p\\|q) = \\tfrac12\\mathrm{KL}(p\\|m) + \\tfrac12\\mathrm{KL}(q\\|m)`, :math:`m = (p+q)/2`.

    Between 0 (equal densities) and :math:`\\log 2` (disjoint supports).
    """
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m, dx) + 0.5 * kl_divergence(q, m, dx)
