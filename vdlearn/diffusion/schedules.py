"""Noise schedules of discrete-time diffusion (lesson 05), every quantity named as in the papers.

The forward process adds Gaussian noise in ``T`` small steps (Ho et al. 2020, eq. 2)

.. math:: q(x_t \\mid x_{t-1}) = \\mathcal N\\bigl(\\sqrt{1-\\beta_t}\\,x_{t-1},\\ \\beta_t I\\bigr),

so with :math:`\\alpha_t = 1-\\beta_t` and :math:`\\bar\\alpha_t = \\prod_{s\\le t}\\alpha_s` it jumps
in closed form (eq. 4): :math:`q(x_t \\mid x_0) = \\mathcal N(\\sqrt{\\bar\\alpha_t}\\,x_0,\\,(1-\\bar\\alpha_t) I)`.
We write :math:`\\alpha(t) = \\sqrt{\\bar\\alpha_t}` and :math:`\\sigma(t) = \\sqrt{1-\\bar\\alpha_t}` for the
signal and noise scales, and :math:`\\mathrm{SNR}(t) = \\alpha(t)^2/\\sigma(t)^2`.

Timesteps are integers ``0 .. T-1`` (index ``t`` here is step ``t+1`` of the paper). Every
tensor is computed once, in float64, and gathered per sample with :meth:`NoiseSchedule.gather`,
which broadcasts over any data shape: images (B, C, H, W), videos (B, C, T, H, W), points (B, 2).
"""
from __future__ import annotations

import math

import torch

__all__ = ["NoiseSchedule", "linear_schedule", "cosine_schedule", "make_schedule", "SCHEDULES"]


class NoiseSchedule:
    """All the per-timestep constants of a DDPM, from its betas (improved-diffusion style).

    Attributes (each a float64 tensor of length ``num_timesteps``):
    ``betas``, ``alphas``, ``alphas_cumprod`` (:math:`\\bar\\alpha_t`), ``alphas_cumprod_prev``
    (:math:`\\bar\\alpha_{t-1}`, with :math:`\\bar\\alpha_{-1} = 1`), ``sqrt_alphas_cumprod``,
    ``sqrt_one_minus_alphas_cumprod``, and the posterior
    :math:`q(x_{t-1}\\mid x_t, x_0) = \\mathcal N(\\tilde\\mu_t, \\tilde\\beta_t I)` (Ho et al. eq. 6-7):
    ``posterior_variance`` :math:`\\tilde\\beta_t = \\beta_t (1-\\bar\\alpha_{t-1})/(1-\\bar\\alpha_t)`,
    ``posterior_mean_coef1`` :math:`\\sqrt{\\bar\\alpha_{t-1}}\\beta_t/(1-\\bar\\alpha_t)` (times
    :math:`x_0`) and ``posterior_mean_coef2`` :math:`\\sqrt{\\alpha_t}(1-\\bar\\alpha_{t-1})/(1-\\bar\\alpha_t)`
    (times :math:`x_t`).
    """

    def __init__(self, betas: torch.Tensor, name: str = "custom"):
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if len(betas) < 1 or not torch.all((betas > 0) & (betas < 1)):
            raise ValueError("betas must be a non-empty 1-D sequence of numbers in (0, 1)")
        self.name = name
        self.num_timesteps = len(betas)
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.alphas_cumprod_prev = torch.cat([betas.new_ones(1), self.alphas_cumprod[:-1]])
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - self.alphas_cumprod).sqrt()
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef1 = betas * self.alphas_cumprod_prev.sqrt() / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = ((1.0 - self.alphas_cumprod_prev) * self.alphas.sqrt()
                                     / (1.0 - self.alphas_cumprod))

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.name!r}, num_timesteps={self.num_timesteps})"

    def __len__(self) -> int:
        return self.num_timesteps

    # ---- per-timestep quantities -------------------------------------------------------------
    def check_timesteps(self, t: torch.Tensor | int) -> torch.Tensor:
        """``t`` as a long tensor, or a clear error if it is not an integer in [0, T-1]."""
        t = torch.as_tensor(t)
        if t.is_floating_point() or t.is_complex():
            if not torch.equal(t, t.round()):
                raise ValueError(f"timesteps must be integers in [0, {self.num_timesteps - 1}], "
                                 f"got non-integer values such as {t.flatten()[0].item()}")
        t = t.long()
        if t.numel() and (t.min() < 0 or t.max() >= self.num_timesteps):
            raise ValueError(
                f"timesteps must lie in [0, {self.num_timesteps - 1}] for this {self.num_timesteps}-step "
                f"schedule, got values from {t.min().item()} to {t.max().item()}")
        return t

    def gather(self, values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor,
               check: bool = True) -> torch.Tensor:
        """``values[t]`` shaped (B, 1, 1, ...) to broadcast against ``like`` (B, ...), in its dtype.

        ``check=False`` skips the range check (which waits for the GPU) for timesteps known to be
        valid, e.g. drawn by ``torch.randint(T)``.
        """
        t = self.check_timesteps(t) if check else torch.as_tensor(t).long()
        dtype = like.dtype if like.is_floating_point() else torch.float32
        out = values.to(device=like.device, dtype=dtype)[t.to(like.device)]
        if out.ndim == 0:
            return out
        return out.reshape(out.shape + (1,) * (like.ndim - out.ndim))

    def alpha(self, t: torch.Tensor | int) -> torch.Tensor:
        """Signal scale :math:`\\alpha(t) = \\sqrt{\\bar\\alpha_t}` (float64)."""
        return self.sqrt_alphas_cumprod[self.check_timesteps(t)]

    def sigma(self, t: torch.Tensor | int) -> torch.Tensor:
        """Noise scale :math:`\\sigma(t) = \\sqrt{1-\\bar\\alpha_t}` (float64)."""
        return self.sqrt_one_minus_alphas_cumprod[self.check_timesteps(t)]

    def snr(self, t: torch.Tensor | int) -> torch.Tensor:
        """Signal-to-noise ratio :math:`\\bar\\alpha_t / (1-\\bar\\alpha_t)` (Kingma et al. 2021, eq. 1)."""
        ab = self.alphas_cumprod[self.check_timesteps(t)]
        return ab / (1.0 - ab)

    def log_snr(self, t: torch.Tensor | int) -> torch.Tensor:
        """:math:`\\lambda(t) = \\log \\mathrm{SNR}(t)`, what DPM-Solver steps in."""
        return self.snr(t).log()


def linear_schedule(num_timesteps: int = 1000, beta_start: float = 1e-4,
                    beta_end: float = 0.02) -> NoiseSchedule:
    """DDPM's betas, linear from ``beta_start`` to ``beta_end`` (Ho et al. 2020, sec. 4).

    For ``num_timesteps != 1000`` both ends are rescaled by ``1000 / num_timesteps`` so that
    :math:`\\bar\\alpha_T` stays near 0 (as improved-diffusion does).
    """
    _check_num_timesteps(num_timesteps)
    scale = 1000.0 / num_timesteps
    betas = torch.linspace(beta_start * scale, min(beta_end * scale, 0.999), num_timesteps,
                           dtype=torch.float64)
    return NoiseSchedule(betas, "linear")


def cosine_schedule(num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """Nichol & Dhariwal's cosine schedule (2021, eq. 17):

    .. math:: \\bar\\alpha_t = f(t)/f(0),\\quad f(t) = \\cos^2\\!\\Bigl(\\frac{t/T + s}{1+s}\\cdot\\frac{\\pi}{2}\\Bigr),
              \\quad \\beta_t = \\min\\bigl(1 - \\bar\\alpha_t/\\bar\\alpha_{t-1},\\ \\text{max\\_beta}\\bigr).
    """
    _check_num_timesteps(num_timesteps)
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    betas = (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(max=max_beta)
    return NoiseSchedule(betas, "cosine")


#: name -> constructor, for :func:`make_schedule`.
SCHEDULES = {"linear": linear_schedule, "cosine": cosine_schedule}


def make_schedule(name: str = "cosine", num_timesteps: int = 1000) -> NoiseSchedule:
    """The schedule called ``name`` ("linear" or "cosine") with ``num_timesteps`` steps."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; expected one of {sorted(SCHEDULES)}, "
                         "or build NoiseSchedule(betas) from your own betas")
    return SCHEDULES[name](num_timesteps)


def _check_num_timesteps(num_timesteps: int) -> None:
    if not isinstance(num_timesteps, int) or num_timesteps < 1:
        raise ValueError(f"num_timesteps must be a positive int, got {num_timesteps!r}")
