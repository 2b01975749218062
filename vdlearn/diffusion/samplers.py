"""Samplers: short pure functions that turn noise into data with a trained ``model(x, t)`` (lessons 05-06).

Each sampler takes the model, the starting noise ``x`` (any shape (B, ...)), the
:class:`~vdlearn.diffusion.schedules.NoiseSchedule` and keyword options, and returns the sample.
The model is called ``steps`` times, at the integer timesteps of :func:`sampling_timesteps`
(from ``T-1`` down to ``0``); after the last call the sampler returns clean data.

- :func:`ddpm_sample`: ancestral sampling from :math:`p_\\theta(x_{t-1}\\mid x_t)` (Ho et al. 2020, Alg. 2),
  on a subsequence of timesteps when ``steps < T`` (Nichol & Dhariwal 2021, sec. 4).
- :func:`ddim_sample`: DDIM (Song et al. 2021, eq. 12), deterministic for ``eta=0``; ``eta=1`` is DDPM.
- :func:`dpm_solver_pp_sample`: DPM-Solver++(2M) (Lu et al. 2022, Alg. 2), good samples in 10-25 steps;
  with ``eta=1`` (:func:`dpm_solver_pp_sde_sample`) its stochastic SDE version.
- ``"flow-euler"`` and ``"flow-heun"``: Euler and Heun on the flow-matching ODE
  (:mod:`.flow_matching`); they also take ``schedule=None`` for a velocity model on t in [0, 1].

Options they share: ``prediction_type`` ("eps", "x0" or "v": what the model outputs),
``clip_x0`` (clamp the predicted clean data to [-1, 1], for images), ``generator`` (a
``torch.Generator`` on ``x``'s device, for seeded noise), ``spacing`` (of the timesteps:
"uniform" or "quadratic"), ``t_start`` (start from a partly noised
``x`` at that timestep, as SDEdit does), ``callback`` (called after every step with a dict
``i, t, x, x0``) and ``progress`` (a tqdm bar). Condition or guide the model by wrapping it
(:func:`vdlearn.diffusion.guidance.classifier_free_guidance`).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from .flow_matching import diffusion_model_from_velocity, flow_euler_sample, flow_heun_sample
from .objectives import Model, check_prediction_type, x0_eps_from_output
from .schedules import NoiseSchedule

__all__ = ["SPACINGS", "sampling_timesteps", "denoise", "ddpm_sample", "ddim_sample", "dpm_solver_pp_sample",
           "dpm_solver_pp_sde_sample", "SAMPLERS", "FLOW_SAMPLERS", "sample"]

Callback = Callable[[dict[str, Any]], None]


#: How the sampling timesteps are spread between ``t_start`` and 0.
SPACINGS = ("uniform", "quadratic")


def sampling_timesteps(schedule: NoiseSchedule, steps: int, t_start: int | None = None,
                       spacing: str = "uniform") -> torch.Tensor:
    """``steps`` distinct integer timesteps from ``t_start`` (default ``T-1``) down to 0.

    ``"uniform"`` spaces them evenly in t; ``"quadratic"`` evenly in :math:`\\sqrt t`, so they are
    denser near the data, where the trajectory bends most (DDIM's choice for CIFAR-10,
    DPM-Solver's ``time_quadratic``).
    """
    t_start = schedule.num_timesteps - 1 if t_start is None else t_start
    if not isinstance(t_start, int) or not 0 <= t_start < schedule.num_timesteps:
        raise ValueError(f"t_start must be an int in [0, {schedule.num_timesteps - 1}], got {t_start!r}")
    if not isinstance(steps, int) or not 1 <= steps <= t_start + 1:
        raise ValueError(f"steps must be an int between 1 and {t_start + 1} (the timesteps from "
                         f"t_start={t_start} down to 0), got {steps!r}")
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; expected one of {SPACINGS}")
    if steps == 1:
        return torch.tensor([t_start])
    if spacing == "uniform":
        return torch.linspace(t_start, 0, steps, dtype=torch.float64).round().long()
    ts = (torch.linspace(t_start ** 0.5, 0, steps, dtype=torch.float64) ** 2).round().long().tolist()
    for k in range(steps - 2, -1, -1):  # rounding can repeat small timesteps: keep them distinct
        ts[k] = max(ts[k], ts[k + 1] + 1)
    return torch.tensor(ts)


def denoise(model: Model, x: torch.Tensor, t: int, schedule: NoiseSchedule,
            prediction_type: str = "eps", clip_x0: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Call the model once at timestep ``t`` and return its :math:`(\\hat x_0, \\hat\\varepsilon)`.

    With ``clip_x0``, :math:`\\hat x_0` is clamped to [-1, 1] and :math:`\\hat\\varepsilon` recomputed
    from it, so that both stay consistent with ``x``.
    """
    tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
    x0, eps = x0_eps_from_output(schedule, x, tt, model(x, tt), prediction_type)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        a, s = schedule.alpha(t).item(), schedule.sigma(t).item()
        eps = (x - a * x0) / s
    return x0, eps


def _setup(x: torch.Tensor, schedule: NoiseSchedule, steps: int | None, t_start: int | None,
           spacing: str, prediction_type: str, progress: bool):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise ValueError("x must be a floating-point tensor of noise shaped (B, ...), e.g. "
                         "torch.randn(16, 1, 28, 28)")
    check_prediction_type(prediction_type)
    if steps is None:  # every timestep from t_start down to 0
        steps = (schedule.num_timesteps - 1 if t_start is None else t_start) + 1
    timesteps = sampling_timesteps(schedule, steps, t_start, spacing).tolist()
    if progress:
        from tqdm.auto import tqdm
        return timesteps, tqdm(timesteps, desc="sampling", leave=False)
    return timesteps, timesteps


def _alpha_bar(schedule: NoiseSchedule, t: int) -> float:
    """:math:`\\bar\\alpha_t`, with :math:`\\bar\\alpha_{-1} = 1` for 'clean'."""
    return 1.0 if t < 0 else schedule.alphas_cumprod[t].item()


@torch.no_grad()
def ddpm_sample(model: Model, x: torch.Tensor, schedule: NoiseSchedule, *, steps: int | None = None,
                prediction_type: str = "eps", clip_x0: bool = False,
                generator: torch.Generator | None = None, t_start: int | None = None,
                spacing: str = "uniform", callback: Callback | None = None,
                progress: bool = False) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020, Alg. 2): :math:`x_{t'} \\sim q(x_{t'}\\mid x_t, \\hat x_0)`.

    Between consecutive timesteps :math:`t > t'` of the (sub)sequence,
    :math:`\\beta = 1 - \\bar\\alpha_t/\\bar\\alpha_{t'}` and the posterior of eq. 6-7 gives

    .. math:: x_{t'} = \\frac{\\sqrt{\\bar\\alpha_{t'}}\\beta}{1-\\bar\\alpha_t}\\hat x_0
                     + \\frac{\\sqrt{1-\\beta}(1-\\bar\\alpha_{t'})}{1-\\bar\\alpha_t}x_t
                     + \\sqrt{\\frac{1-\\bar\\alpha_{t'}}{1-\\bar\\alpha_t}\\beta}\\; z.

    ``steps=None`` uses every timestep (from ``t_start``); fewer steps respace the chain.
    """
    timesteps, loop = _setup(x, schedule, steps, t_start, spacing, prediction_type, progress)
    for i, t in enumerate(loop):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        ab, ab_prev = _alpha_bar(schedule, t), _alpha_bar(schedule, t_prev)
        beta = 1.0 - ab / ab_prev
        x0, _ = denoise(model, x, t, schedule, prediction_type, clip_x0)
        mean = (math.sqrt(ab_prev) * beta / (1 - ab)) * x0 + (math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)) * x
        if t_prev >= 0:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = mean + math.sqrt(beta * (1 - ab_prev) / (1 - ab)) * noise
        else:
            x = mean
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "x0": x0})
    return x


@torch.no_grad()
def ddim_sample(model: Model, x: torch.Tensor, schedule: NoiseSchedule, *, steps: int = 50,
                eta: float = 0.0, prediction_type: str = "eps", clip_x0: bool = False,
                generator: torch.Generator | None = None, t_start: int | None = None,
                spacing: str = "uniform", callback: Callback | None = None,
                progress: bool = False) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12): from :math:`x_t` to :math:`x_{t'}` with :math:`t' < t`,

    .. math:: x_{t'} = \\sqrt{\\bar\\alpha_{t'}}\\,\\hat x_0 + \\sqrt{1-\\bar\\alpha_{t'}-\\sigma^2}\\,\\hat\\varepsilon + \\sigma z,
              \\qquad \\sigma = \\eta\\sqrt{\\frac{1-\\bar\\alpha_{t'}}{1-\\bar\\alpha_t}}\\sqrt{1-\\frac{\\bar\\alpha_t}{\\bar\\alpha_{t'}}}.

    ``eta=0`` is deterministic (an ODE solver in disguise); ``eta=1`` is :func:`ddpm_sample`.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM), got {eta}")
    timesteps, loop = _setup(x, schedule, steps, t_start, spacing, prediction_type, progress)
    for i, t in enumerate(loop):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        ab, ab_prev = _alpha_bar(schedule, t), _alpha_bar(schedule, t_prev)
        x0, eps = denoise(model, x, t, schedule, prediction_type, clip_x0)
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "x0": x0})
    return x


@torch.no_grad()
def dpm_solver_pp_sample(model: Model, x: torch.Tensor, schedule: NoiseSchedule, *, steps: int = 20,
                         eta: float = 0.0, prediction_type: str = "eps", clip_x0: bool = False,
                         generator: torch.Generator | None = None, t_start: int | None = None,
                         spacing: str = "quadratic", callback: Callback | None = None,
                         progress: bool = False) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): a second-order multistep solver of the diffusion ODE.

    With :math:`\\lambda = \\log(\\alpha/\\sigma)`, :math:`h_i = \\lambda_{i} - \\lambda_{i-1}` and the
    model's clean-data prediction :math:`D_i = \\hat x_0(x_{i-1}, t_{i-1})`:

    .. math:: x_i = \\frac{\\sigma_i}{\\sigma_{i-1}} x_{i-1} - \\alpha_i (e^{-h_i} - 1)
                    \\Bigl[\\bigl(1 + \\tfrac{1}{2r_i}\\bigr) D_i - \\tfrac{1}{2r_i} D_{i-1}\\Bigr],
              \\qquad r_i = h_{i-1}/h_i,

    first order (:math:`D_i` alone) on the first step and on the last, which lands on clean data.
    ``eta > 0`` gives the stochastic SDE-DPM-Solver++(2M) of the same paper (``eta=1``: the reverse
    SDE), which injects fresh noise like DDPM and corrects some of the model's errors:

    .. math:: x_i = \\frac{\\sigma_i}{\\sigma_{i-1}} e^{-\\eta h_i} x_{i-1}
                    + \\alpha_i \\bigl(1 - e^{-(1+\\eta) h_i}\\bigr) \\Bigl[D_i + \\tfrac{1}{2r_i}(D_i - D_{i-1})\\Bigr]
                    + \\sigma_i \\sqrt{1 - e^{-2\\eta h_i}}\\; z .
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0: the ODE solver, 1: the SDE solver), got {eta}")
    timesteps, loop = _setup(x, schedule, steps, t_start, spacing, prediction_type, progress)
    x0_prev, h_prev = None, None
    for i, t in enumerate(loop):
        t_next = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        x0, _ = denoise(model, x, t, schedule, prediction_type, clip_x0)
        if t_next < 0:  # the last step: sigma -> 0, lambda -> inf, the update is x = D
            x = x0
        else:
            a, s = schedule.alpha(t).item(), schedule.sigma(t).item()
            a_next, s_next = schedule.alpha(t_next).item(), schedule.sigma(t_next).item()
            h = math.log(a_next / s_next) - math.log(a / s)
            d = x0
            if x0_prev is not None:
                d = x0 + (x0 - x0_prev) * (h / (2 * h_prev))     # 1/(2r) = h / (2 h_prev)
            x = (s_next / s) * math.exp(-eta * h) * x - a_next * math.expm1(-(1 + eta) * h) * d
            if eta > 0:
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = x + s_next * math.sqrt(-math.expm1(-2 * eta * h)) * noise
            x0_prev, h_prev = x0, h
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "x0": x0})
    return x


def dpm_solver_pp_sde_sample(model: Model, x: torch.Tensor, schedule: NoiseSchedule, **options: Any) -> torch.Tensor:
    """SDE-DPM-Solver++(2M): :func:`dpm_solver_pp_sample` with ``eta=1``."""
    return dpm_solver_pp_sample(model, x, schedule, **{"eta": 1.0, **options})


#: name -> sampler, for loops that compare them.
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": ddpm_sample,
    "ddim": ddim_sample,
    "dpm++2m": dpm_solver_pp_sample,
    "dpm++2m-sde": dpm_solver_pp_sde_sample,
    "flow-euler": flow_euler_sample,
    "flow-heun": flow_heun_sample,
}
#: The samplers of the flow ODE, which also run a velocity model with ``schedule=None``.
FLOW_SAMPLERS = ("flow-euler", "flow-heun")


def sample(name: str, model: Model, x: torch.Tensor, schedule: NoiseSchedule | None,
           **options: Any) -> torch.Tensor:
    """Run the sampler called ``name`` (a key of :data:`SAMPLERS`) with ``options``.

    ``prediction_type`` names what ``model`` outputs, so one word swaps the objective: "eps", "x0",
    "v", or "velocity" for a flow-matching model ``model(x, t)`` with t in [0, 1]. Such a model runs
    in the diffusion samplers through :func:`~vdlearn.diffusion.flow_matching.diffusion_model_from_velocity`
    (DDPM then is the stochastic sampler of the flow), and in the flow samplers directly, where
    ``schedule=None`` gives continuous times (see :func:`~vdlearn.diffusion.flow_matching.flow_euler_sample`).
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    if name not in FLOW_SAMPLERS:
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"the sampler {name!r} steps through the timesteps of a NoiseSchedule, got "
                             f"{type(schedule).__name__}; pass one (make_schedule('linear', 1000)), or use "
                             f"one of {FLOW_SAMPLERS} with schedule=None")
        if options.get("prediction_type") == "velocity":
            model = diffusion_model_from_velocity(model, schedule, "v")
            options = {**options, "prediction_type": "v"}
    return SAMPLERS[name](model, x, schedule, **options)
