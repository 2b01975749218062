"""What a diffusion model is trained to predict, and the loss (lessons 05-06).

Noising in closed form (Ho et al. 2020, eq. 4), with :math:`\\alpha_t=\\sqrt{\\bar\\alpha_t}`,
:math:`\\sigma_t=\\sqrt{1-\\bar\\alpha_t}`:

.. math:: x_t = \\alpha_t x_0 + \\sigma_t \\varepsilon, \\qquad \\varepsilon \\sim \\mathcal N(0, I).

A network may predict any one of three equivalent targets (``prediction_type``):

- ``"eps"``: the noise :math:`\\varepsilon` (DDPM), then :math:`x_0 = (x_t - \\sigma_t\\varepsilon)/\\alpha_t`;
- ``"x0"``: the clean data :math:`x_0`, then :math:`\\varepsilon = (x_t - \\alpha_t x_0)/\\sigma_t`;
- ``"v"``: the velocity :math:`v = \\alpha_t\\varepsilon - \\sigma_t x_0` (Salimans & Ho 2022), then
  :math:`x_0 = \\alpha_t x_t - \\sigma_t v` and :math:`\\varepsilon = \\sigma_t x_t + \\alpha_t v`.

The score is :math:`\\nabla_{x_t}\\log q(x_t) = -\\mathbb E[\\varepsilon\\mid x_t]/\\sigma_t`.
Every function works for any data shape (B, ...): points, images or videos.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .schedules import NoiseSchedule

__all__ = [
    "PREDICTION_TYPES",
    "q_sample",
    "q_posterior",
    "v_from_x0_eps",
    "x0_eps_from_output",
    "training_target",
    "loss_weight",
    "diffusion_loss",
    "check_model_output",
    "check_prediction_type",
]

#: What a model may predict.
PREDICTION_TYPES = ("eps", "x0", "v")

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_prediction_type(prediction_type: str) -> str:
    """``prediction_type`` itself, or a clear error if it is not one of :data:`PREDICTION_TYPES`."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of "
                         f"{PREDICTION_TYPES} (what the network outputs: the noise, the clean data, "
                         "or the velocity v)")
    return prediction_type


def check_model_output(output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The model's output, or a clear error unless it is a tensor shaped like its input ``x``."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"the model must return a tensor, got {type(output).__name__}")
    if output.shape != x.shape:
        raise ValueError(
            f"the model returned shape {tuple(output.shape)} for an input x_t of shape "
            f"{tuple(x.shape)}; a diffusion model predicts eps, x0 or v, each shaped like x_t "
            "(check out_channels, and that model(x, t) gets t of shape (B,))")
    return output


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor | None = None, *, check: bool = True) -> torch.Tensor:
    """Sample :math:`x_t \\sim q(x_t\\mid x_0)`: :math:`x_t = \\sqrt{\\bar\\alpha_t}x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon` (eq. 4)."""
    if noise is None:
        noise = torch.randn_like(x0)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise has shape {tuple(noise.shape)} but x0 has {tuple(x0.shape)}")
    return (schedule.gather(schedule.sqrt_alphas_cumprod, t, x0, check) * x0
            + schedule.gather(schedule.sqrt_one_minus_alphas_cumprod, t, x0, check) * noise)


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor,
                t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of :math:`q(x_{t-1}\\mid x_t, x_0)` (Ho et al. eq. 6-7).

    :math:`\\tilde\\mu_t = \\frac{\\sqrt{\\bar\\alpha_{t-1}}\\beta_t}{1-\\bar\\alpha_t}x_0 + \\frac{\\sqrt{\\alpha_t}(1-\\bar\\alpha_{t-1})}{1-\\bar\\alpha_t}x_t`,
    :math:`\\tilde\\beta_t = \\frac{1-\\bar\\alpha_{t-1}}{1-\\bar\\alpha_t}\\beta_t`.
    """
    mean = (schedule.gather(schedule.posterior_mean_coef1, t, x_t) * x0
            + schedule.gather(schedule.posterior_mean_coef2, t, x_t) * x_t)
    return mean, schedule.gather(schedule.posterior_variance, t, x_t)


def v_from_x0_eps(schedule: NoiseSchedule, x0: torch.Tensor, eps: torch.Tensor,
                  t: torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """The velocity :math:`v = \\alpha_t\\varepsilon - \\sigma_t x_0` (Salimans & Ho 2022, sec. 4)."""
    return (schedule.gather(schedule.sqrt_alphas_cumprod, t, x0, check) * eps
            - schedule.gather(schedule.sqrt_one_minus_alphas_cumprod, t, x0, check) * x0)


def x0_eps_from_output(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor,
                       output: torch.Tensor, prediction_type: str = "eps"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a model's prediction of any type into both :math:`\\hat x_0` and :math:`\\hat\\varepsilon`."""
    check_prediction_type(prediction_type)
    output = check_model_output(output, x_t).to(x_t.dtype)
    a = schedule.gather(schedule.sqrt_alphas_cumprod, t, x_t)
    s = schedule.gather(schedule.sqrt_one_minus_alphas_cumprod, t, x_t)
    if prediction_type == "eps":
        return (x_t - s * output) / a, output
    if prediction_type == "x0":
        return output, (x_t - a * output) / s
    return a * x_t - s * output, s * x_t + a * output


def training_target(schedule: NoiseSchedule, x0: torch.Tensor, eps: torch.Tensor,
                    t: torch.Tensor, prediction_type: str = "eps", *,
                    check: bool = True) -> torch.Tensor:
    """What the network should output for this :math:`(x_0, \\varepsilon, t)`: eps, x0 or v."""
    check_prediction_type(prediction_type)
    if prediction_type == "eps":
        return eps
    if prediction_type == "x0":
        return x0
    return v_from_x0_eps(schedule, x0, eps, t, check=check)


def loss_weight(schedule: NoiseSchedule, t: torch.Tensor, prediction_type: str = "eps",
                min_snr_gamma: float | None = None, *, check: bool = True) -> torch.Tensor:
    """Per-sample weight (B,) of the MSE; 1 unless ``min_snr_gamma`` is set.

    Min-SNR-γ (Hang et al. 2023) weights every timestep like an :math:`x_0`-loss capped at γ:
    :math:`w = \\min(\\mathrm{SNR},\\gamma)/\\mathrm{SNR}` for ε, :math:`\\min(\\mathrm{SNR},\\gamma)` for
    :math:`x_0` and :math:`\\min(\\mathrm{SNR},\\gamma)/(\\mathrm{SNR}+1)` for v.
    """
    check_prediction_type(prediction_type)
    t = schedule.check_timesteps(t) if check else torch.as_tensor(t).long()
    if min_snr_gamma is None:
        return torch.ones(t.shape, dtype=torch.float32, device=t.device)
    if min_snr_gamma <= 0:
        raise ValueError(f"min_snr_gamma must be positive (5 is usual), got {min_snr_gamma}")
    ab = schedule.alphas_cumprod
    snr = (ab / (1 - ab)).to(t.device)[t]
    capped = snr.clamp(max=min_snr_gamma)
    w = {"eps": capped / snr, "x0": capped, "v": capped / (snr + 1)}[prediction_type]
    return w.float()


def diffusion_loss(model: Model, x0: torch.Tensor, schedule: NoiseSchedule, *,
                   prediction_type: str = "eps", min_snr_gamma: float | None = None,
                   t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                   reduction: str = "mean") -> torch.Tensor:
    """The denoising loss :math:`\\mathbb E_{t,\\varepsilon}\\, w_t \\lVert f_\\theta(x_t, t) - \\text{target}\\rVert^2`.

    ``t`` defaults to uniform integers in [0, T-1] and ``noise`` to standard normal noise; with
    ``prediction_type="eps"`` and no weighting this is DDPM's :math:`L_\\text{simple}` (eq. 14).
    ``reduction="none"`` returns the per-sample losses (B,). Condition a model by closing over
    its extra inputs: ``diffusion_loss(lambda x, t: net(x, t, y), x0, schedule)``.
    """
    check_prediction_type(prediction_type)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if t is None:  # valid by construction: skip the range check, which would wait for the GPU
        t = torch.randint(0, schedule.num_timesteps, (x0.shape[0],), device=x0.device)
    else:
        t = schedule.check_timesteps(t).to(x0.device)
    if t.shape != (x0.shape[0],):
        raise ValueError(f"t must have shape ({x0.shape[0]},), one timestep per sample; got "
                         f"{tuple(t.shape)}")
    if noise is None:
        noise = torch.randn_like(x0)
    x_t = q_sample(schedule, x0, t, noise, check=False)
    output = check_model_output(model(x_t, t), x_t)
    target = training_target(schedule, x0, noise, t, prediction_type, check=False)
    per_sample = F.mse_loss(output.float(), target.float(), reduction="none").flatten(1).mean(1)
    if min_snr_gamma is not None:
        per_sample = per_sample * loss_weight(schedule, t, prediction_type, min_snr_gamma,
                                              check=False)
    return per_sample.mean() if reduction == "mean" else per_sample
