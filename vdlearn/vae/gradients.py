"""Two ways to differentiate an expectation over a Gaussian (lesson 01).

For :math:`J(\\mu, \\log\\sigma^2) = \\mathbb E_{z\\sim\\mathcal N(\\mu,\\sigma^2)}[f(z)]`:

* the **pathwise** (reparameterisation) estimator writes :math:`z = \\mu + \\sigma\\epsilon` and
  differentiates through :math:`f`:
  :math:`\\hat g_\\mu = f'(z),\\ \\hat g_{\\log\\sigma^2} = f'(z)\\,\\tfrac12\\sigma\\epsilon`;
* the **score-function** (REINFORCE, likelihood-ratio) estimator only evaluates :math:`f`:
  :math:`\\hat g = (f(z) - b)\\,\\nabla\\log q(z)` with
  :math:`\\partial_\\mu\\log q = (z-\\mu)/\\sigma^2` and
  :math:`\\partial_{\\log\\sigma^2}\\log q = \\tfrac12[(z-\\mu)^2/\\sigma^2 - 1]`.

Both are unbiased; the pathwise one usually has far lower variance, which is why VAEs use it.
Each function returns one gradient estimate *per sample* so that its mean and variance can be
measured.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["pathwise_gradient", "score_function_gradient"]

Objective = Callable[[torch.Tensor], torch.Tensor]


def _draw(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int,
          generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have one shape")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    eps = torch.randn((num_samples, *mu.shape), generator=generator, dtype=mu.dtype)
    return eps.to(mu.device), torch.exp(0.5 * logvar)


def pathwise_gradient(f: Objective, mu: torch.Tensor, logvar: torch.Tensor, num_samples: int, *,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample reparameterisation gradients of :math:`\\mathbb E_{\\mathcal N(\\mu,\\sigma^2)}[f(z)]`.

    ``f`` maps samples ``(N, *mu.shape)`` to values ``(N,)`` elementwise per sample and must be
    differentiable. Returns ``(g_mu, g_logvar)``, each ``(N, *mu.shape)``; their means estimate
    the gradient.
    """
    eps, sigma = _draw(mu.detach(), logvar.detach(), num_samples, generator)
    z = (mu.detach() + sigma * eps).requires_grad_(True)
    with torch.enable_grad():
        values = f(z)
        if values.shape != (num_samples,):
            raise ValueError(f"f must return one value per sample, shape ({num_samples},); "
                             f"got {tuple(values.shape)}")
        (df_dz,) = torch.autograd.grad(values.sum(), z)
    return df_dz, df_dz * 0.5 * sigma * eps


def score_function_gradient(f: Objective, mu: torch.Tensor, logvar: torch.Tensor, num_samples: int,
                            *, baseline: float | torch.Tensor = 0.0,
                            generator: torch.Generator | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample score-function (REINFORCE) gradients :math:`(f(z) - b)\\nabla\\log q(z)`.

    ``f`` needs no gradient. A constant ``baseline`` :math:`b` keeps the estimator unbiased
    (:math:`\\mathbb E[\\nabla\\log q] = 0`) and, chosen near :math:`\\mathbb E f`, lowers its variance.
    """
    mu, logvar = mu.detach(), logvar.detach()
    eps, sigma = _draw(mu, logvar, num_samples, generator)
    z = mu + sigma * eps
    with torch.no_grad():
        values = f(z)
    if values.shape != (num_samples,):
        raise ValueError(f"f must return one value per sample, shape ({num_samples},); "
                         f"got {tuple(values.shape)}")
    weight = (values - baseline).reshape(num_samples, *([1] * mu.ndim))
    score_mu = (z - mu) / sigma.pow(2)                     # = eps / sigma
    score_logvar = 0.5 * ((z - mu).pow(2) / sigma.pow(2) - 1.0)  # = (eps^2 - 1) / 2
    return weight * score_mu, weight * score_logvar
