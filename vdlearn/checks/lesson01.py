"""Checks for lesson 01, the mathematics of VAEs."""
from __future__ import annotations

import math

import torch

from ..vae.linear_gaussian import LinearGaussian
from ..vae.objectives import gaussian_kl as reference_kl
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_elbo_monte_carlo", "check_gaussian_kl", "check_reparameterize",
           "check_score_function_gradient"]

D = torch.float64


@exercise("01.elbo_monte_carlo")
def check_elbo_monte_carlo(elbo_monte_carlo) -> None:
    """A Monte Carlo ELBO of the linear-Gaussian model against its closed form."""
    model = LinearGaussian(torch.tensor([[1.0, 0.6], [0.3, 0.9]], dtype=D),
                           torch.tensor([0.5, -0.2], dtype=D), 0.5)
    x = torch.tensor([[1.2, 0.4], [-0.8, 1.5], [0.1, -1.0]], dtype=D)
    q_mu = torch.tensor([[0.5, 0.2], [-1.0, 1.2], [0.3, -0.9]], dtype=D)
    q_logvar = torch.tensor([[-1.0, -0.5], [-2.0, -1.5], [-0.3, -1.2]], dtype=D)
    n = 40_000
    torch.manual_seed(0)
    got = elbo_monte_carlo(model, x, q_mu, q_logvar, n)
    expect_shape(got, (3,), "elbo_monte_carlo(model, x of shape (3, 2), ...)")
    got = got.detach().to(D)
    exact = model.elbo(x, q_mu, q_logvar)
    # what typical slips give, to say which one it is
    z = q_mu + (0.5 * q_logvar).exp() * torch.randn(n, 3, 2, dtype=D)
    log_q = (-0.5 * (math.log(2 * math.pi) + q_logvar + (z - q_mu) ** 2 / q_logvar.exp())).sum(-1)
    sd = (model.log_joint(x, z) - log_q).std(0)
    tol = 6 * sd / math.sqrt(n) + 1e-6
    if not ((got - exact).abs() <= tol).all():
        slips = {
            "the average of log p(x, z) alone: subtract log q(z) (the entropy term)":
                model.log_joint(x, z).mean(0),
            "the average of log p(x|z) alone: add log p(z) and subtract log q(z)":
                model.log_likelihood(x, z).mean(0),
            "log p(x|z) + log q(z) - log p(z): the sign of the two log-densities of z is swapped":
                (model.log_likelihood(x, z) + log_q - model.log_prior(z)).mean(0),
            "the log of the average weight, log mean p(x, z)/q(z): that is the importance-sampled "
            "log p(x), not the ELBO (Jensen: the log goes inside the expectation)":
                torch.logsumexp(model.log_joint(x, z) - log_q, 0) - math.log(n),
        }
        for what, value in slips.items():
            if ((got - value).abs() <= 10 * tol).all():
                expect(False, f"your estimate matches {what}.")
        expect(False, f"your ELBO estimates {got.tolist()} differ from the exact values "
                      f"{exact.tolist()} by more than Monte Carlo error ({tol.max():.3g}). Draw "
                      "z = mu + exp(logvar / 2) * eps and average log p(x, z) - log q(z); "
                      "model.log_joint(x, z) gives log p(x, z).")


@exercise("01.gaussian_kl")
def check_gaussian_kl(gaussian_kl) -> None:
    """KL(N(mu, e^logvar) || N(prior_mu, e^prior_logvar)), summed over the last dimension."""
    zero = torch.zeros(4, 3, dtype=D)
    got = gaussian_kl(zero, zero, zero, zero)
    expect_shape(got, (4,), "gaussian_kl on (4, 3) inputs (one KL per row, summed over the last dim)")
    expect_close(got, torch.zeros(4, dtype=D), what="KL(N(0, 1) || N(0, 1))",
                 hint="the KL of a distribution to itself is 0; check the '- 1' term")
    mu, lv = torch.tensor([[1.0, -0.5]], dtype=D), torch.tensor([[0.4, -1.0]], dtype=D)
    pm, plv = torch.tensor([[0.2, 0.3]], dtype=D), torch.tensor([[-0.6, 0.8]], dtype=D)
    want = reference_kl(mu, lv, pm, plv)
    got = gaussian_kl(mu, lv, pm, plv)
    if not torch.allclose(got.to(D), want, atol=1e-6):
        hints = [
            (reference_kl(pm, plv, mu, lv), "that is KL(prior || q): the KL is not symmetric; the "
             "first distribution is q = N(mu, e^logvar), the expectation is under q"),
            (reference_kl(mu, 2 * lv, pm, 2 * plv), "it looks like logvar was used as log sigma; "
             "logvar is log sigma^2, so sigma^2 = exp(logvar)"),
            (reference_kl(mu, lv), "that is the KL to N(0, 1): use prior_mu and prior_logvar"),
            (want / mu.shape[-1], "that is the mean over the dimensions: the KL of independent "
             "dimensions is their sum, so sum over the last dimension"),
            (0.5 * (mu.pow(2) + lv.exp() - 1 - lv).sum(-1) - 0.5 * (pm.pow(2) + plv.exp() - 1 - plv).sum(-1),
             "a difference of two KLs to N(0, 1) is not the KL between the two Gaussians"),
        ]
        for value, hint in hints:
            if torch.allclose(got.to(D), value, atol=1e-6):
                expect(False, f"gaussian_kl gives {got.tolist()}, expected {want.tolist()}: {hint}.")
        expect_close(got, want, what="KL(N(mu, e^logvar) || N(prior_mu, e^prior_logvar))", atol=1e-6,
                     hint="0.5 * sum(prior_logvar - logvar + (e^logvar + (mu - prior_mu)^2) "
                          "/ e^prior_logvar - 1)")
    big = gaussian_kl(torch.full((1, 5), 3.0, dtype=D), torch.full((1, 5), -2.0, dtype=D),
                      torch.zeros(1, 5, dtype=D), torch.zeros(1, 5, dtype=D))
    expect_close(big, reference_kl(torch.full((1, 5), 3.0, dtype=D), torch.full((1, 5), -2.0, dtype=D)),
                 what="the KL summed over 5 dimensions", hint="sum over the last dimension", atol=1e-6)


@exercise("01.reparameterize")
def check_reparameterize(reparameterize) -> None:
    """z = mu + exp(logvar / 2) * eps, and gradients flow to mu and logvar."""
    mu = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(4.0), math.log(0.25)], requires_grad=True)
    eps = torch.tensor([1.0, -1.0, 2.0])
    z = reparameterize(mu, logvar, eps)
    expect_shape(z, (3,), "reparameterize(mu, logvar, eps) for 3-vectors")
    want = torch.tensor([1.5, -3.0, 3.0])
    if not torch.allclose(z.detach(), want, atol=1e-5):
        cases = [(mu + logvar.exp() * eps, "you scaled eps by the variance exp(logvar); scale it by the "
                  "standard deviation exp(logvar / 2)"),
                 (mu + logvar * eps, "logvar is log sigma^2, not sigma: sigma = exp(logvar / 2)"),
                 (logvar.mul(0.5).exp() * eps, "the mean is missing: z = mu + sigma * eps")]
        for value, hint in cases:
            if torch.allclose(z.detach(), value.detach(), atol=1e-5):
                expect(False, f"reparameterize gives {z.tolist()}, expected {want.tolist()}: {hint}.")
        expect_close(z, want, what="z = mu + exp(logvar / 2) * eps")
    expect(z.requires_grad, "z carries no gradient: build it from mu and logvar with torch operations "
                            "(no .detach(), no torch.no_grad(), no new tensor from .tolist())")
    z.sum().backward()
    expect_close(mu.grad, torch.ones(3), what="dz/dmu", hint="dz/dmu should be 1")
    expect_close(logvar.grad, 0.5 * torch.tensor([1.0, 2.0, 0.5]) * eps, what="dz/dlogvar",
                 hint="dz/dlogvar = 0.5 * sigma * eps")


@exercise("01.score_function_gradient")
def check_score_function_gradient(score_function_gradient) -> None:
    """Per-sample REINFORCE estimates f(z) * d/dmu log q(z) for scalar z ~ N(mu, e^logvar)."""
    mu, logvar = torch.tensor(0.5, dtype=D), torch.tensor(math.log(4.0), dtype=D)
    z = torch.tensor([1.0, -1.5, 4.5, 0.5], dtype=D)
    f_values = torch.tensor([2.0, -1.0, 3.0, 5.0], dtype=D)
    got = score_function_gradient(f_values, z, mu, logvar)
    expect_shape(got, (4,), "score_function_gradient for 4 samples (one estimate per sample)")
    want = f_values * (z - mu) / 4.0
    if not torch.allclose(got.to(D), want, atol=1e-6):
        cases = [(f_values * (z - mu) / 2.0, "divide by the variance sigma^2 = exp(logvar), not by sigma"),
                 (f_values * (z - mu), "d/dmu log N(z; mu, sigma^2) = (z - mu) / sigma^2: the 1/sigma^2 "
                  "is missing"),
                 (-want, "the sign is flipped: d/dmu log q = +(z - mu) / sigma^2"),
                 ((z - mu) / 4.0, "multiply the score by f(z): the estimator is f(z) * score")]
        for value, hint in cases:
            if torch.allclose(got.to(D), value, atol=1e-6):
                expect(False, f"got {got.tolist()}, expected {want.tolist()}: {hint}.")
        expect_close(got, want, what="f(z) * (z - mu) / sigma^2", atol=1e-6)
    # unbiased: the average over many samples approaches dJ/dmu = 2 (mu - 2) for f(z) = (z - 2)^2
    g = torch.Generator().manual_seed(0)
    zs = mu + 2.0 * torch.randn(400_000, generator=g, dtype=D)
    est = score_function_gradient((zs - 2) ** 2, zs, mu, logvar).to(D)
    se = est.std() / math.sqrt(len(zs))
    expect(abs(est.mean() - 2 * (mu - 2)) < 5 * se,
           f"averaged over 400,000 samples your estimator gives {est.mean():.3f}, but dJ/dmu = "
           f"{2 * (mu - 2):.3f} for f(z) = (z - 2)^2: the estimator should be unbiased")
