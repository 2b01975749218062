"""The VAE objective: reparameterisation, the Gaussian KL, likelihoods and the ELBO (lessons 01-02).

For data :math:`x`, an encoder :math:`q_\\phi(z|x) = \\mathcal N(\\mu, \\operatorname{diag}\\sigma^2)`,
a prior :math:`p(z)` and a decoder :math:`p_\\theta(x|z)`, the evidence lower bound is

.. math::
    \\log p_\\theta(x) \\ge \\mathcal L(x) =
        \\mathbb E_{q_\\phi(z|x)}[\\log p_\\theta(x|z)] - \\mathrm{KL}(q_\\phi(z|x)\\,\\|\\,p(z)).

A VAE is trained by minimising :math:`-\\mathbb E[\\log p(x|z)] + \\beta\\,\\mathrm{KL}` (``beta=1``
is the ELBO itself). Every quantity here is *per example*: summed over all dimensions except the
first (batch) one, in nats. Divide by ``D log 2`` for bits per dimension (:func:`bits_per_dim`).

Conventions: ``logvar`` is :math:`\\log\\sigma^2` (a variance, not a standard deviation); a
Bernoulli decoder outputs *logits*, and its targets are probabilities in [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "reparameterize",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "bernoulli_log_likelihood",
    "ELBOTerms",
    "elbo",
    "bits_per_dim",
    "log_mean_exp",
]

LOG_2PI = math.log(2 * math.pi)


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the first (batch); a 1-D tensor is one example."""
    if t.ndim <= 1:
        return t.sum()
    return t.flatten(1).sum(1)


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; they "
            f"must match element for element (e.g. a (B, C, H, W) batch and its (B, C, H, W) "
            "reconstruction). Check the decoder's output size and that both are batched the same way."
        )


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample :math:`z = \\mu + \\sigma\\odot\\epsilon,\\ \\epsilon\\sim\\mathcal N(0, I),\\
    \\sigma = e^{\\frac12\\log\\sigma^2}` that gradients flow through (lesson 01, the
    reparameterisation trick).

    The randomness sits in :math:`\\epsilon`, which does not depend on :math:`(\\mu, \\sigma)`, so
    :math:`\\partial z/\\partial\\mu = 1` and :math:`\\partial z/\\partial\\sigma = \\epsilon`.
    """
    _check_same_shape(mu, logvar, "mu", "logvar")
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype,
                      device=generator.device if generator is not None else mu.device).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor,
                prior_mu: torch.Tensor | float | None = None,
                prior_logvar: torch.Tensor | float | None = None) -> torch.Tensor:
    """Closed-form :math:`\\mathrm{KL}(\\mathcal N(\\mu_1,\\sigma_1^2)\\,\\|\\,\\mathcal N(\\mu_2,\\sigma_2^2))`
    for diagonal Gaussians, summed per example (lesson 01).

    .. math::
        \\mathrm{KL} = \\tfrac12 \\sum_i \\Big[\\log\\frac{\\sigma_{2,i}^2}{\\sigma_{1,i}^2}
            + \\frac{\\sigma_{1,i}^2 + (\\mu_{1,i}-\\mu_{2,i})^2}{\\sigma_{2,i}^2} - 1\\Big]

    With no prior given it is the standard normal, and the formula becomes
    :math:`\\tfrac12\\sum_i[\\mu_i^2 + \\sigma_i^2 - 1 - \\log\\sigma_i^2]`.
    """
    _check_same_shape(mu, logvar, "mu", "logvar")
    if prior_mu is None and prior_logvar is None:
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    else:
        p_mu = torch.as_tensor(0.0 if prior_mu is None else prior_mu, dtype=mu.dtype, device=mu.device)
        p_lv = torch.as_tensor(0.0 if prior_logvar is None else prior_logvar,
                               dtype=mu.dtype, device=mu.device)
        kl = 0.5 * (p_lv - logvar + (logvar.exp() + (mu - p_mu).pow(2)) * torch.exp(-p_lv) - 1.0)
    return _sum_per_example(kl)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor,
                            logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """:math:`\\log\\mathcal N(x;\\,m,\\,\\sigma^2 I) = -\\tfrac12\\sum_i[\\log 2\\pi + \\log\\sigma^2
    + (x_i-m_i)^2/\\sigma^2]`, summed per example (a density, in nats)."""
    _check_same_shape(x, mean, "x", "mean (the reconstruction)")
    logvar = torch.as_tensor(logvar, dtype=mean.dtype, device=mean.device)
    ll = -0.5 * (LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar))
    return _sum_per_example(ll.expand_as(x))


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """:math:`\\log p(x|z) = \\sum_i [x_i\\log\\pi_i + (1-x_i)\\log(1-\\pi_i)],\\ \\pi=\\mathrm{sigmoid}
    (\\text{logits})`, summed per example (lesson 02).

    ``x`` are probabilities in [0, 1] (binary pixels give a true log-probability; grey values give
    the cross-entropy most VAE code trains with). Computed from logits, as
    :math:`x\\,\\ell - \\operatorname{softplus}(\\ell)`, so it never takes ``log(0)``.
    """
    _check_same_shape(x, logits, "x", "logits (the decoder output)")
    lo, hi = x.min().item(), x.max().item()
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"a Bernoulli likelihood needs targets in [0, 1], but x lies in [{lo:.3g}, {hi:.3g}]. "
            "Course images are in [-1, 1]: pass (x + 1) / 2, or use a Gaussian likelihood."
        )
    return -_sum_per_example(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))


def bits_per_dim(nats: torch.Tensor | float, num_dims: int, *,
                 bin_width: float | None = None) -> torch.Tensor:
    """Convert a negative log-likelihood (or negative ELBO) per example in nats to bits per dimension.

    .. math:: \\text{bits/dim} = \\frac{\\text{nats}}{D\\,\\ln 2}

    For a *density* over continuous values (a Gaussian decoder), pass the width of one quantisation
    bin (``2/255`` for 8-bit data scaled to [-1, 1]) to get the bits of the discrete data:
    :math:`P(\\text{bin}) \\approx p(x)\\,\\Delta`, so it adds :math:`-\\log_2\\Delta` per dimension.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    bpd = torch.as_tensor(nats, dtype=torch.float64) / (num_dims * math.log(2))
    if bin_width is not None:
        if not bin_width > 0:
            raise ValueError(f"bin_width must be positive, got {bin_width}")
        bpd = bpd - math.log2(bin_width)
    return bpd


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """:math:`\\log\\frac1K\\sum_k e^{v_k}`, computed stably (importance-weighted bounds, lesson 01)."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


@dataclass
class ELBOTerms:
    """The two terms of the ELBO per example (nats), and the β the training loss uses."""

    log_likelihood: torch.Tensor  #: a one-sample estimate of E_q[log p(x|z)], shape (B,)
    kl: torch.Tensor              #: KL(q(z|x) || p(z)), shape (B,)
    num_dims: int                 #: D, the number of data dimensions per example
    beta: float = 1.0

    @property
    def elbo(self) -> torch.Tensor:
        """:math:`\\mathcal L = \\mathbb E_q[\\log p(x|z)] - \\mathrm{KL}`, per example."""
        return self.log_likelihood - self.kl

    @property
    def loss(self) -> torch.Tensor:
        """The training loss :math:`\\operatorname{mean}_x[-\\mathbb E_q\\log p(x|z) + \\beta\\,\\mathrm{KL}]`."""
        return (self.beta * self.kl - self.log_likelihood).mean()

    @property
    def nats(self) -> torch.Tensor:
        """The negative ELBO, averaged over the batch (nats per example)."""
        return -self.elbo.mean()

    @property
    def bits_per_dim(self) -> torch.Tensor:
        """The negative ELBO in bits per dimension."""
        return bits_per_dim(self.nats.detach(), self.num_dims)

    def metrics(self) -> dict[str, torch.Tensor]:
        """Numbers for a training log: ``neg_elbo``, ``recon`` (= -E log p(x|z)) and ``kl``."""
        return {"neg_elbo": self.nats.detach(), "recon": -self.log_likelihood.mean().detach(),
                "kl": self.kl.mean().detach()}


def elbo(x: torch.Tensor, decoder_out: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *,
         likelihood: str = "bernoulli", obs_logvar: torch.Tensor | float = 0.0, beta: float = 1.0,
         prior_mu: torch.Tensor | float | None = None,
         prior_logvar: torch.Tensor | float | None = None) -> ELBOTerms:
    """The ELBO's terms for a batch, from one reparameterised sample (lessons 01-02).

    .. math:: \\mathcal L(x) \\approx \\log p(x|z^{(1)}) - \\mathrm{KL}(q(z|x)\\,\\|\\,p(z)),\\quad
              z^{(1)} = \\mu + \\sigma\\odot\\epsilon

    ``decoder_out`` is the decoder's output for that sample: logits (``likelihood="bernoulli"``,
    ``x`` in [0, 1]) or the mean (``"gaussian"``, with observation log-variance ``obs_logvar``).
    """
    # sums of many terms: keep them in float32 or better even when the networks ran in bf16
    dtype = torch.promote_types(x.dtype, torch.float32)
    decoder_out, mu, logvar = decoder_out.to(dtype), mu.to(dtype), logvar.to(dtype)
    if likelihood == "bernoulli":
        ll = bernoulli_log_likelihood(x, decoder_out)
    elif likelihood == "gaussian":
        ll = gaussian_log_likelihood(x, decoder_out, obs_logvar)
    else:
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
    if x.ndim >= 2 and mu.shape[0] != x.shape[0]:
        raise ValueError(
            f"x has a batch of {x.shape[0]} examples but mu has {mu.shape[0]}: the latents must come "
            "from encoding this same batch."
        )
    kl = gaussian_kl(mu, logvar, prior_mu, prior_logvar)
    num_dims = x[0].numel() if x.ndim >= 2 else x.numel()
    return ELBOTerms(ll, kl, num_dims, float(beta))
