"""A latent-variable model whose evidence and posterior are exact: the linear-Gaussian model (lesson 01).

.. math::
    z \\sim \\mathcal N(0, I_k), \\qquad x\\,|\\,z \\sim \\mathcal N(Wz + b,\\ \\sigma^2 I_d)

(probabilistic PCA). Everything a VAE can only bound or estimate is available in closed form:

* evidence: :math:`p(x) = \\mathcal N(x;\\ b,\\ WW^\\top + \\sigma^2 I_d)`
* posterior: :math:`p(z|x) = \\mathcal N\\big(M^{-1}W^\\top(x-b)/\\sigma^2,\\ M^{-1}\\big)`,
  :math:`M = I_k + W^\\top W/\\sigma^2`
* the ELBO of a diagonal Gaussian :math:`q(z) = \\mathcal N(m, \\operatorname{diag} s^2)`:

  .. math::
      \\mathcal L(q) = -\\tfrac d2\\log 2\\pi\\sigma^2
        - \\frac{\\lVert x - Wm - b\\rVert^2 + \\operatorname{tr}(W\\operatorname{diag}(s^2)W^\\top)}{2\\sigma^2}
        - \\mathrm{KL}(q\\,\\|\\,\\mathcal N(0, I))

so the identity :math:`\\log p(x) - \\mathcal L(q) = \\mathrm{KL}(q(z)\\,\\|\\,p(z|x))` can be
checked to the last digit.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import MultivariateNormal, kl_divergence

from .objectives import LOG_2PI, gaussian_kl

__all__ = ["LinearGaussian"]


class LinearGaussian:
    """:math:`z\\sim\\mathcal N(0,I_k),\\ x|z\\sim\\mathcal N(Wz+b,\\sigma^2 I_d)` with exact inference.

    Works in float64 so that closed forms and Monte Carlo estimates can be compared tightly.
    Batched methods take ``x`` of shape ``(B, d)`` and ``z`` of shape ``(B, k)`` (or ``(N, B, k)``).
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, sigma: float):
        W = torch.as_tensor(W, dtype=torch.float64)
        b = torch.as_tensor(b, dtype=torch.float64)
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise ValueError(f"W must be (d, k) and b (d,); got W {tuple(W.shape)}, b {tuple(b.shape)}")
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.W, self.b, self.sigma = W, b, float(sigma)
        self.d, self.k = W.shape

    @classmethod
    def random(cls, d: int = 2, k: int = 1, sigma: float = 0.5, seed: int = 0) -> "LinearGaussian":
        """A model with a random ``W`` (entries N(0, 1)) and ``b`` (N(0, 1)), seeded."""
        g = torch.Generator().manual_seed(seed)
        return cls(torch.randn(d, k, generator=g, dtype=torch.float64),
                   torch.randn(d, generator=g, dtype=torch.float64), sigma)

    def _x(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.shape[-1] != self.d:
            raise ValueError(f"x must end in the data dimension d={self.d}; got shape {tuple(x.shape)}")
        return x

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: ``(x, z)`` with ``x`` (n, d) and ``z`` (n, k)."""
        z = torch.randn(n, self.k, generator=generator, dtype=torch.float64)
        noise = torch.randn(n, self.d, generator=generator, dtype=torch.float64)
        return self.decoder_mean(z) + self.sigma * noise, z

    def decoder_mean(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`Wz + b`."""
        return z @ self.W.T + self.b

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\mathcal N(z; 0, I_k)`, summed over the last dimension."""
        return -0.5 * (self.k * LOG_2PI + z.pow(2).sum(-1))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\mathcal N(x; Wz+b, \\sigma^2 I_d)`, summed over the last dimension."""
        x = self._x(x)
        sq = (x - self.decoder_mean(z)).pow(2).sum(-1)
        return -0.5 * (self.d * (LOG_2PI + 2 * math.log(self.sigma)) + sq / self.sigma**2)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p(x, z) = \\log p(z) + \\log p(x|z)`."""
        return self.log_prior(z) + self.log_likelihood(x, z)

    def marginal(self) -> MultivariateNormal:
        """:math:`p(x) = \\mathcal N(b,\\ WW^\\top + \\sigma^2 I_d)`."""
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(self.d, dtype=torch.float64)
        return MultivariateNormal(self.b, covariance_matrix=cov)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """The exact evidence :math:`\\log p(x)`, shape (B,)."""
        return self.marginal().log_prob(self._x(x))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact posterior :math:`p(z|x)`: its means (B, k) and its covariance (k, k)."""
        x = self._x(x)
        M = torch.eye(self.k, dtype=torch.float64) + self.W.T @ self.W / self.sigma**2
        cov = torch.linalg.inv(M)
        mean = (x - self.b) @ self.W @ cov.T / self.sigma**2
        return mean, cov

    def elbo(self, x: torch.Tensor, q_mu: torch.Tensor, q_logvar: torch.Tensor) -> torch.Tensor:
        """The ELBO of :math:`q(z) = \\mathcal N(m, \\operatorname{diag} e^{\\log s^2})` in closed form,
        shape (B,) (the equation in the module docstring)."""
        x = self._x(x)
        q_mu = torch.as_tensor(q_mu, dtype=torch.float64)
        q_logvar = torch.as_tensor(q_logvar, dtype=torch.float64)
        resid = (x - self.decoder_mean(q_mu)).pow(2).sum(-1)
        trace = (self.W.pow(2) * q_logvar.exp().unsqueeze(-2)).sum((-1, -2))
        expected_ll = -0.5 * (self.d * (LOG_2PI + 2 * math.log(self.sigma))
                              + (resid + trace) / self.sigma**2)
        return expected_ll - gaussian_kl(q_mu, q_logvar)

    def kl_to_posterior(self, x: torch.Tensor, q_mu: torch.Tensor,
                        q_logvar: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathrm{KL}(q(z)\\,\\|\\,p(z|x))` for a diagonal Gaussian ``q``, shape (B,)."""
        mean, cov = self.posterior(x)
        q_mu = torch.as_tensor(q_mu, dtype=torch.float64)
        q_var = torch.as_tensor(q_logvar, dtype=torch.float64).exp()
        q = MultivariateNormal(q_mu, covariance_matrix=torch.diag_embed(q_var))
        return kl_divergence(q, MultivariateNormal(mean, covariance_matrix=cov.expand(len(mean), -1, -1)))

    def best_diagonal_q(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The diagonal Gaussian that maximises the ELBO: the posterior mean and
        :math:`s_i^2 = 1/M_{ii}` (the mean-field optimum; exact when :math:`W^\\top W` is diagonal)."""
        mean, _ = self.posterior(x)
        M = torch.eye(self.k, dtype=torch.float64) + self.W.T @ self.W / self.sigma**2
        return mean, (-torch.log(torch.diagonal(M))).expand_as(mean).clone()
