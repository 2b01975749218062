"""Checks for lesson 05, the mathematics of diffusion."""
from __future__ import annotations

import math

import torch

from ..diffusion import flow_euler_sample, linear_schedule, shift_time
from . import exercise, expect, expect_close, expect_shape

__all__ = ["check_q_sample", "check_posterior_mean_variance", "check_x0_eps_from_v", "check_ddim_step",
           "check_flow_path_and_target", "check_training_times", "check_euler_trajectory"]

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


# ---- flow matching (section 8) ---------------------------------------------------------------------
@exercise("05.flow_path_and_target")
def check_flow_path_and_target(flow_path_and_target) -> None:
    """x_t on the straight path from the data (t = 0) to the noise (t = 1), and its velocity."""
    g = torch.Generator().manual_seed(4)
    x0, noise = torch.randn(3, 2, generator=g, dtype=D), torch.randn(3, 2, generator=g, dtype=D)
    t = torch.tensor([0.1, 0.35, 0.8], dtype=D)
    out = flow_path_and_target(x0, noise, t)
    expect(isinstance(out, tuple) and len(out) == 2,
           "flow_path_and_target should return a tuple (x_t, target).")
    x_t, target = out
    expect_shape(x_t, (3, 2), "x_t (for x0 of shape (3, 2) and t of shape (3,))")
    expect_shape(target, (3, 2), "the target")
    tb = t[:, None]
    want_xt, want_u = (1 - tb) * x0 + tb * noise, noise - x0
    if not _matches(x_t, want_xt):
        slip = _first_slip(x_t, {
            "the noise at t = 0 and the data at t = 1: the path is reversed. In this course (as in SD3) "
            "t = 0 is the data and t = 1 the noise, like diffusion's timesteps; Lipman et al. and Liu et al. "
            "write it the other way round, so watch which paper you copy from":
                tb * x0 + (1 - tb) * noise,
            "a variance-preserving mix with square roots (that is diffusion's x_t); the flow path is the "
            "straight line between x0 and the noise, with weights linear in t":
                (1 - tb).sqrt() * x0 + tb.sqrt() * noise,
        })
        expect(slip is None, f"your x_t is {slip}.")
        expect_close(x_t, want_xt, what="x_t", hint="at t = 0 it must be x0, at t = 1 the noise, and a straight "
                     "line in between; shape t as (B, 1) so it broadcasts over the coordinates.")
    if not _matches(target, want_u):
        slip = _first_slip(target, {
            "the velocity with its sign flipped: it points from the noise to the data. The target is the "
            "derivative of x_t with respect to t, and t grows from the data to the noise":
                x0 - noise,
            "the noise itself (DDPM's eps target); the flow's target is the velocity of x_t along t": noise,
            "x0 (the clean-data target); the flow's target is the velocity of x_t along t": x0,
            "scaled by t: along one straight line the velocity is the same at every t": tb * (noise - x0),
        })
        expect(slip is None, f"your target is {slip}.")
        expect_close(target, want_u, what="the target", hint="differentiate your x_t with respect to t.")


@exercise("05.training_times")
def check_training_times(training_times) -> None:
    """Logit-normal times t = sigmoid(n) for standard normal draws n, then SD3's shift."""
    n = torch.tensor([-2.5, -1.0, -0.2, 0.0, 0.6, 1.5, 3.0], dtype=D)
    for shift in (1.0, 3.0, 0.5):
        got = training_times(n, shift)
        expect_shape(got, (7,), f"training_times(normal draws of shape (7,), shift={shift})")
        base = torch.sigmoid(n)
        want = shift_time(base, shift)
        if _matches(got, want):
            continue
        expect(bool(torch.all((got >= 0) & (got <= 1))),
               f"with shift={shift} some times fall outside [0, 1]: squash the normal draws with a "
               "sigmoid first (a logit-normal t), and use a shift that keeps 0 and 1 where they are.")
        slip = _first_slip(got, {
            "the times without the shift: they come out the same for every shift value":
                base,
            "shifted the wrong way, toward the data (t = 0): a shift above 1 must move every time "
            "toward the noise (t = 1). Check that s and 1/s are not swapped, and that t counts from the data":
                shift_time(base, 1 / shift),
            "mirrored (1 - t): t must count from the data (t = 0) to the noise (t = 1)": 1 - want,
            "scaled by the shift (s * t): SD3's shift is a ratio that keeps t = 0 and t = 1 fixed":
                shift * base,
        })
        expect(slip is None, f"with shift={shift} your times are {slip}.")
        expect_close(got, want, what=f"t (with shift={shift})",
                     hint="a larger shift moves each time toward 1 while keeping 0 and 1 fixed.")


def _one_gaussian_velocity(mu: torch.Tensor, s: float):
    """The exact velocity for data N(mu, s^2 I): its ODE ends at mu + s * noise."""
    calls: list[float] = []

    def velocity(x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=D)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t.reshape(-1)
        if t.min() < 0 or t.max() > 1:
            raise ValueError(f"the velocity was asked for t = {t.min().item():.3g}..{t.max().item():.3g}, "
                             "outside [0, 1]")
        calls.append(t[0].item())
        tb = t[:, None]
        var, dvar = (1 - tb) ** 2 * s ** 2 + tb ** 2, -2 * (1 - tb) * s ** 2 + 2 * tb
        return -mu + dvar / (2 * var) * (x.to(D) - (1 - tb) * mu)

    return velocity, calls


@exercise("05.euler_trajectory")
def check_euler_trajectory(euler_trajectory) -> None:
    """Euler's method on the flow ODE from t = 1 to t = 0, on a shifted grid, returning every state."""
    mu, s = torch.tensor([[1.0, -0.5]], dtype=D), 0.3
    noise = torch.randn(4, 2, generator=torch.Generator().manual_seed(5), dtype=D)
    steps = 5
    for shift in (2.0, 1.0):
        velocity, calls = _one_gaussian_velocity(mu, s)
        path = euler_trajectory(velocity, noise.clone(), steps, shift)
        yours = list(calls)   # the times your sampler asked for (the references below add their own)
        expect_shape(path, (steps + 1, 4, 2), f"the trajectory for steps={steps} and x of shape (4, 2) (every "
                     "state from the starting noise to the end, stacked)")
        expect(_matches(path[0], noise), "the trajectory should start with the noise x you were given, at t = 1.")

        def reference(shift=shift, **options):
            states = [noise]
            flow_euler_sample(velocity, noise, steps=steps, shift=shift,
                              callback=lambda d: states.append(d["x"]), **options)
            return torch.stack(states)

        want = reference()
        if _matches(path, want):
            expect(len(yours) == steps, f"your sampler called the velocity {len(yours)} times for {steps} "
                   "steps; Euler needs one call per step.")
            continue
        times = [shift_time(1 - k / steps, shift).item() for k in range(steps + 1)]
        late, wrong_sign = [noise], [noise]
        for k in range(steps):
            h = times[k + 1] - times[k]
            late.append(late[-1] + h * velocity(late[-1], times[k + 1]))
            wrong_sign.append(wrong_sign[-1] - h * velocity(wrong_sign[-1], times[k]))
        slips = {
            "each step goes the wrong way: t decreases from 1 to 0, so (t_next - t) is negative and the "
            "step follows minus the velocity": torch.stack(wrong_sign),
            "the velocity taken at the end of each step; Euler's method uses the slope at the start (t, "
            "not t_next)": torch.stack(late),
        }
        if shift != 1:
            slips["on a grid without the shift: the times must be shifted like the training times"] = reference(1.0)
            slips["on a grid shifted the wrong way (toward the data): a shift above 1 spends more steps "
                  "near the noise"] = reference(1 / shift)
        slip = _first_slip(path, slips)
        expect(slip is None, f"with shift={shift} your trajectory is {slip}.")
        expect(len(yours) > 0 and yours[0] > 0.99,
               "your sampler's first velocity call is not at t = 1: it must start at the noise (t = 1) and "
               "step down to the data (t = 0)" + (f"; it started at t = {yours[0]:.3g}." if yours else "."))
        expect_close(path, want, what=f"the trajectory with shift={shift}",
                     hint="start at t = 1, step down to t = 0 on the shifted grid, one velocity call per step.")
