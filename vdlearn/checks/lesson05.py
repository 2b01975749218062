"""Checks for lesson 05, the mathematics of diffusion."""
from __future__ import annotations

import math

import torch

from ..diffusion import linear_schedule
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_q_sample", "check_posterior_mean_variance", "check_x0_eps_from_v", "check_ddim_step"]

D = torch.float64


def _matches(got: torch.Tensor, value: torch.Tensor) -> bool:
    return got.shape == value.shape and torch.allclose(got.to(D), value.to(D), atol=1e-6)


def _first_slip(got: torch.Tensor, slips: dict[str, torch.Tensor]) -> str | None:
    for what, value in slips.items():
        if _matches(got, value):
            return what
    return None


@exercise("05.q_sample")
def check_q_sample(q_sample) -> None:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, with abar_t looked up per sample."""
    s = linear_schedule(1000)
    ab = s.alphas_cumprod
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 2, generator=g, dtype=D), torch.randn(3, 2, generator=g, dtype=D)
    t = torch.tensor([0, 500, 999])
    got = q_sample(x0, t, eps, ab)
    expect_shape(got, (3, 2), "q_sample(x0 of shape (3, 2), t of shape (3,), ...)")
    a, b = ab[t][:, None], (1 - ab[t])[:, None]
    want = a.sqrt() * x0 + b.sqrt() * eps
    if not _matches(got, want):
        slip = _first_slip(got, {
            "abar_t x0 + (1 - abar_t) eps: the scales are the square roots, so that the variance "
            "abar_t Var(x0) + (1 - abar_t) stays 1 for unit-variance data": a * x0 + b * eps,
            "sqrt(1 - abar_t) x0 + sqrt(abar_t) eps: the two scales are swapped; at t = 0 almost "
            "all of x_t should be x0": b.sqrt() * x0 + a.sqrt() * eps,
            "abar at t - 1: index alphas_cumprod with t itself (index t is step t + 1 of the paper)":
                ab[(t - 1).clamp(min=0)][:, None].sqrt() * x0 + (1 - ab[(t - 1).clamp(min=0)])[:, None].sqrt() * eps,
        })
        expect(slip is None, f"your x_t is {slip}.")
        expect_close(got, want, what="x_t", hint="look up abar_t = alphas_cumprod[t] for each sample "
                     "and shape it (B, 1) so it broadcasts over the coordinates.")


@exercise("05.posterior_mean_variance")
def check_posterior_mean_variance(posterior_mean_variance) -> None:
    """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7)."""
    s = linear_schedule(1000)
    betas, ab = s.betas, s.alphas_cumprod
    g = torch.Generator().manual_seed(1)
    x0, xt = torch.randn(3, 2, generator=g, dtype=D), torch.randn(3, 2, generator=g, dtype=D)
    t = torch.tensor([1, 300, 999])
    out = posterior_mean_variance(x0, xt, t, betas, ab)
    expect(isinstance(out, tuple) and len(out) == 2,
           "posterior_mean_variance should return a tuple (mean, variance).")
    mean, var = out
    expect_shape(mean, (3, 2), "the posterior mean")
    expect(isinstance(var, torch.Tensor) and var.numel() == 3,
           f"the posterior variance should hold one number per sample, shape (3, 1) or (3,); got "
           f"{tuple(var.shape) if isinstance(var, torch.Tensor) else type(var).__name__}.")
    var = var.reshape(3)
    b, a_t, ab_t = betas[t], 1 - betas[t], ab[t]
    ab_prev = ab[t - 1]
    want_var = b * (1 - ab_prev) / (1 - ab_t)
    c1, c2 = (ab_prev.sqrt() * b / (1 - ab_t))[:, None], (a_t.sqrt() * (1 - ab_prev) / (1 - ab_t))[:, None]
    want_mean = c1 * x0 + c2 * xt
    if not _matches(mean, want_mean):
        c1_now = (ab_t.sqrt() * b / (1 - ab_t))[:, None]
        slip = _first_slip(mean, {
            "using abar_t where the formula has abar_{t-1} (the coefficient of x0 is "
            "sqrt(abar_{t-1}) beta_t / (1 - abar_t))": c1_now * x0 + c2 * xt,
            "using abar_t where the formula has abar_{t-1}, in both coefficients (abar_{t-1} is "
            "alphas_cumprod[t - 1])": c1_now * x0 + a_t.sqrt()[:, None] * xt,
            "the two coefficients swapped: x0's is sqrt(abar_{t-1}) beta_t / (1 - abar_t)": c2 * x0 + c1 * xt,
            "missing the square root on alpha_t in the coefficient of x_t":
                c1 * x0 + (a_t * (1 - ab_prev) / (1 - ab_t))[:, None] * xt,
        })
        expect(slip is None, f"your mean is {slip}.")
        expect_close(mean, want_mean, what="the posterior mean",
                     hint="mu_tilde = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) "
                          "(1 - abar_{t-1}) / (1 - abar_t) x_t, with abar_{t-1} = alphas_cumprod[t - 1]")
    if not _matches(var, want_var):
        slip = _first_slip(var, {"beta_t: that is the variance of the forward step q(x_t | x_{t-1}); "
                                 "the posterior is narrower by (1 - abar_{t-1}) / (1 - abar_t)": b})
        expect(slip is None, f"your variance is {slip}.")
        expect_close(var, want_var, what="the posterior variance",
                     hint="beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)")


@exercise("05.x0_eps_from_v")
def check_x0_eps_from_v(x0_eps_from_v) -> None:
    """From v = alpha eps - sigma x0 and x_t = alpha x0 + sigma eps back to (x0, eps)."""
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(4, 2, generator=g, dtype=D), torch.randn(4, 2, generator=g, dtype=D)
    ab = torch.tensor([0.999, 0.7, 0.2, 0.001], dtype=D)[:, None]
    alpha, sigma = ab.sqrt(), (1 - ab).sqrt()
    xt, v = alpha * x0 + sigma * eps, alpha * eps - sigma * x0
    out = x0_eps_from_v(xt, v, alpha, sigma)
    expect(isinstance(out, tuple) and len(out) == 2, "x0_eps_from_v should return a tuple (x0, eps).")
    got_x0, got_eps = out
    expect_shape(got_x0, (4, 2), "x0")
    expect_shape(got_eps, (4, 2), "eps")
    if not _matches(got_x0, x0):
        slip = _first_slip(got_x0, {"eps (the two outputs are swapped)": eps,
                                    "alpha x_t + sigma v: the sign of v is wrong": alpha * xt + sigma * v})
        expect(slip is None, f"your x0 equals {slip}.")
        expect_close(got_x0, x0, what="x0", hint="solve the 2x2 rotation: x0 = alpha x_t - sigma v "
                                                 "(use alpha^2 + sigma^2 = 1)")
    expect_close(got_eps, eps, what="eps", hint="eps = sigma x_t + alpha v")


@exercise("05.ddim_step")
def check_ddim_step(ddim_step) -> None:
    """One DDIM step (Song et al. eq. 12) from x_t to x_{t'}, for eta = 0 and eta > 0."""
    g = torch.Generator().manual_seed(3)
    x0, eps, noise = (torch.randn(5, 2, generator=g, dtype=D) for _ in range(3))
    ab_t, ab_prev = 0.3, 0.6
    xt = math.sqrt(ab_t) * x0 + math.sqrt(1 - ab_t) * eps
    x0_hat = (xt - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
    for eta in (0.0, 1.0, 0.5):
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))
        want = (math.sqrt(ab_prev) * x0_hat + math.sqrt(1 - ab_prev - sigma ** 2) * eps + sigma * noise)
        got = ddim_step(xt, eps, ab_t, ab_prev, eta, noise)
        expect_shape(got, (5, 2), f"ddim_step(...) with eta={eta}")
        if _matches(got, want):
            continue
        slip = _first_slip(got, {
            "the direction term uses sqrt(1 - abar_prev) even with noise: it must be "
            "sqrt(1 - abar_prev - sigma^2), or the variance of x_{t'} comes out too large":
                math.sqrt(ab_prev) * x0_hat + math.sqrt(1 - ab_prev) * eps + sigma * noise,
            "x_t is scaled instead of the predicted x0: the first term is sqrt(abar_prev) * x0_hat "
            "with x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)":
                math.sqrt(ab_prev) * xt + math.sqrt(1 - ab_prev - sigma ** 2) * eps + sigma * noise,
            "sigma without the factor sqrt(1 - abar_t / abar_prev)":
                math.sqrt(ab_prev) * x0_hat + math.sqrt(max(1 - ab_prev - (eta ** 2) * (1 - ab_prev) / (1 - ab_t), 0))
                * eps + eta * math.sqrt((1 - ab_prev) / (1 - ab_t)) * noise,
        })
        expect(slip is None, f"with eta={eta}: {slip}.")
        expect_close(got, want, what=f"x_prev with eta={eta}",
                     hint="x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma noise, "
                          "sigma = eta sqrt((1 - abar_prev)/(1 - abar_t)) sqrt(1 - abar_t/abar_prev)")
