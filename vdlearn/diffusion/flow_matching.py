"""Flow matching / rectified flow: a straight path from data to noise, and a network that learns its velocity (lesson 05).

The path of rectified flow (Liu et al. 2023) and of flow matching with optimal-transport paths
(Lipman et al. 2023, with :math:`\\sigma_\\min = 0`), written as Esser et al. (2024, sec. 2) write it,
joins a data point :math:`x_0` to a noise draw :math:`\\varepsilon\\sim\\mathcal N(0, I)` by a straight line,

.. math:: x_t = (1-t)\\,x_0 + t\\,\\varepsilon,\\qquad t\\in[0, 1],\\qquad
          \\frac{d x_t}{dt} = \\varepsilon - x_0 ,

with **t = 0 at the data and t = 1 at the noise**, as in diffusion and SD3 (Lipman et al. and Liu et al.
put the data at t = 1: mind the convention when reading them).
A network :math:`u_\\theta(x, t)` regresses the *conditional* velocity :math:`\\varepsilon - x_0`
(:func:`flow_matching_loss`); the minimiser is the *marginal* velocity
:math:`u(x, t) = \\mathbb E[\\varepsilon - x_0\\mid x_t = x]`, whose ODE :math:`dx/dt = u(x, t)`, run from
t = 1 to t = 0, carries :math:`\\mathcal N(0, I)` to the data (:func:`flow_euler_sample`,
:func:`flow_heun_sample`). For a Gaussian mixture :math:`u` is exact (:func:`mixture_velocity`).

**Conversions.** Given :math:`x_t` and :math:`t`, a velocity determines the clean data and the noise:
:math:`\\hat x_0 = x_t - t\\,u`, :math:`\\hat\\varepsilon = x_t + (1-t)\\,u`. A diffusion state
:math:`z = \\alpha x_0 + \\sigma\\varepsilon` of a :class:`NoiseSchedule` is the flow state
:math:`x = z/(\\alpha+\\sigma)` at :math:`t = \\sigma/(\\alpha+\\sigma)`: the same point, rescaled. So a flow velocity
and a diffusion model's eps / x0 / v turn into each other exactly (:func:`velocity_from_output`,
:func:`output_from_velocity`); for v-prediction :math:`u = (\\sigma-\\alpha)\\,z + (\\alpha+\\sigma)\\,v`.

**Samplers** share the calling convention of :mod:`.samplers`: ``sampler(model, x, schedule, **options)``.
With ``schedule=None`` the model is a velocity model ``model(x, t)`` with ``t`` a float tensor (B,) in
[0, 1], and the steps run on the grid of :func:`flow_sampling_times`. With a :class:`NoiseSchedule` the
steps run on the flow times of that schedule's timesteps, so a diffusion model (``prediction_type``
"eps", "x0" or "v", called at integer timesteps) is sampled along the flow ODE; DDIM is then exactly
:func:`flow_euler_sample`. The reverse, a velocity model in DDPM / DDIM / DPM-Solver++, goes through
:func:`diffusion_model_from_velocity` (``sample(..., prediction_type="velocity")`` does it for you).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .objectives import Model, check_prediction_type, x0_eps_from_output
from .schedules import NoiseSchedule

__all__ = [
    "TIME_DISTRIBUTIONS", "flow_path", "velocity_target", "x0_noise_from_velocity", "sample_time",
    "logit_normal_density", "shift_time", "size_shift", "flow_matching_loss", "mixture_velocity",
    "flow_time", "diffusion_to_flow", "velocity_from_output", "output_from_velocity",
    "diffusion_model_from_velocity", "flow_sampling_times", "flow_euler_sample", "flow_heun_sample",
]

#: How :func:`sample_time` draws training times.
TIME_DISTRIBUTIONS = ("uniform", "logit_normal")

Callback = Callable[[dict[str, Any]], None]


# ---- checks ----------------------------------------------------------------------------------------
def _check_t(t: torch.Tensor | float, like: torch.Tensor | None = None) -> torch.Tensor:
    """``t`` as a float tensor shaped to broadcast against ``like`` (B, ...), or a clear error."""
    t = torch.as_tensor(t, dtype=like.dtype if like is not None and like.is_floating_point() else None,
                        device=like.device if like is not None else None)
    if not t.is_floating_point():
        t = t.double()
    if t.numel() and (torch.isnan(t).any() or t.min() < 0 or t.max() > 1):
        raise ValueError(f"flow times t must lie in [0, 1] (0: data, 1: noise), got values from "
                         f"{t.min().item():.4g} to {t.max().item():.4g}; for a NoiseSchedule's integer "
                         "timesteps use flow_time(schedule, timesteps)")
    return t if like is None else _broadcast(t, like)


def _broadcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` (B,) reshaped to (B, 1, ...) to broadcast against ``like`` (a number stays as it is)."""
    if t.ndim == 0:
        return t
    if t.shape != (like.shape[0],):
        raise ValueError(f"t must be one number or one per sample, shape ({like.shape[0]},); got "
                         f"{tuple(t.shape)} for x of shape {tuple(like.shape)}")
    return t.reshape((-1,) + (1,) * (like.ndim - 1))


def _check_shift(shift: float) -> float:
    if not isinstance(shift, (int, float)) or not math.isfinite(shift) or shift <= 0:
        raise ValueError(f"shift must be a number > 0 (1: no shift; above 1 moves times toward the noise, "
                         f"as SD3 does at high resolution), got {shift!r}")
    return float(shift)


def _check_velocity(velocity: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(velocity, torch.Tensor):
        raise TypeError(f"a velocity must be a tensor, got {type(velocity).__name__}")
    if velocity.shape != x.shape:
        raise ValueError(f"the velocity has shape {tuple(velocity.shape)} but x_t has {tuple(x.shape)}; a "
                         "velocity points along the path, so it is shaped like x_t (check the model's "
                         "output channels, and that model(x, t) gets t of shape (B,))")
    return velocity


# ---- the path, its target, and the loss ------------------------------------------------------------
def flow_path(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | float, *, check: bool = True) -> torch.Tensor:
    """The straight path :math:`x_t = (1-t)\\,x_0 + t\\,\\varepsilon` (Esser et al. 2024, sec. 2); ``t`` (B,) or a number.

    ``check=False`` skips the range check of ``t`` (which waits for the GPU) for times known to be valid.
    """
    if noise.shape != x0.shape:
        raise ValueError(f"noise has shape {tuple(noise.shape)} but x0 has {tuple(x0.shape)}")
    t = _check_t(t, x0) if check else _broadcast(torch.as_tensor(t, device=x0.device, dtype=x0.dtype), x0)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The conditional velocity :math:`\\frac{d}{dt}x_t = \\varepsilon - x_0` (from data toward noise)."""
    if noise.shape != x0.shape:
        raise ValueError(f"noise has shape {tuple(noise.shape)} but x0 has {tuple(x0.shape)}")
    return noise - x0


def x0_noise_from_velocity(x_t: torch.Tensor, t: torch.Tensor | float,
                           velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`\\hat x_0 = x_t - t\\,u` and :math:`\\hat\\varepsilon = x_t + (1-t)\\,u`: where the straight line through x_t ends."""
    velocity = _check_velocity(velocity, x_t)
    t = _check_t(t, x_t)
    return x_t - t * velocity, x_t + (1 - t) * velocity


def shift_time(t: torch.Tensor | float, shift: float) -> torch.Tensor:
    """SD3's time shift (Esser et al. 2024, sec. 5.3.2): :math:`t' = \\frac{s\\,t}{1 + (s-1)\\,t}`.

    It keeps 0 and 1 fixed and, for ``shift`` :math:`s > 1`, spends more of training and sampling at
    high noise, which larger images and longer videos need (they keep more signal at the same t).
    :math:`s` and :math:`1/s` undo each other.
    """
    s, t = _check_shift(shift), _check_t(t)
    return s * t / (1 + (s - 1) * t)


def size_shift(num_values: int, base_num_values: int) -> float:
    """The resolution/length-dependent shift :math:`s = \\sqrt{m/n}` (Esser et al. 2024, sec. 5.3.2).

    ``num_values`` (m) counts what the model denoises (pixels, or latent values over all frames),
    ``base_num_values`` (n) the size at which :math:`s = 1` worked: an image with 4x the pixels, or a
    video with 4x the frames, gets :math:`s = 2`.
    """
    if not (num_values > 0 and base_num_values > 0):
        raise ValueError(f"num_values and base_num_values must be positive sizes, got {num_values!r} "
                         f"and {base_num_values!r}")
    return math.sqrt(num_values / base_num_values)


def sample_time(batch_size: int, distribution: str = "uniform", *, loc: float = 0.0, scale: float = 1.0,
                shift: float = 1.0, generator: torch.Generator | None = None,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``batch_size`` training times in [0, 1]: ``"uniform"``, or ``"logit_normal"`` (SD3 sec. 3.1),

    .. math:: t = \\mathrm{sigmoid}(n),\\ n\\sim\\mathcal N(\\text{loc}, \\text{scale}^2),\\qquad
              \\pi_{ln}(t) = \\frac{1}{\\text{scale}\\sqrt{2\\pi}}\\,\\frac{1}{t(1-t)}
              \\exp\\Bigl(-\\frac{(\\mathrm{logit}\\,t - \\text{loc})^2}{2\\,\\text{scale}^2}\\Bigr),

    which puts more training on the middle times; then :func:`shift_time` with ``shift``.
    """
    if distribution not in TIME_DISTRIBUTIONS:
        raise ValueError(f"unknown time distribution {distribution!r}; expected one of {TIME_DISTRIBUTIONS}")
    if not scale > 0:
        raise ValueError(f"scale (the std of logit t) must be > 0, got {scale!r}")
    _check_shift(shift)
    if distribution == "uniform":
        t = torch.rand(batch_size, generator=generator, device=device, dtype=dtype)
    else:
        t = torch.sigmoid(loc + scale * torch.randn(batch_size, generator=generator, device=device, dtype=dtype))
    return t if shift == 1 else shift_time(t, shift)


def logit_normal_density(t: torch.Tensor, loc: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """The density :math:`\\pi_{ln}(t; \\text{loc}, \\text{scale})` of SD3 (sec. 3.1) at ``t`` in (0, 1)."""
    t = _check_t(t)
    logit = torch.log(t) - torch.log1p(-t)
    return torch.exp(-(logit - loc) ** 2 / (2 * scale ** 2)) / (scale * math.sqrt(2 * math.pi) * t * (1 - t))


def flow_matching_loss(model: Model, x0: torch.Tensor, *, time_distribution: str = "uniform",
                       loc: float = 0.0, scale: float = 1.0, shift: float = 1.0,
                       t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                       reduction: str = "mean") -> torch.Tensor:
    """Conditional flow matching (Lipman et al. 2023, sec. 3.2; Liu et al. 2023, eq. 1), with t = 0 at the data:

    .. math:: \\mathcal L = \\mathbb E_{t, x_0, \\varepsilon}\\,
              \\bigl\\lVert u_\\theta\\bigl((1-t)x_0 + t\\varepsilon,\\ t\\bigr) - (\\varepsilon - x_0)\\bigr\\rVert^2 .

    ``t`` defaults to :func:`sample_time` with ``time_distribution``, ``loc``, ``scale`` and ``shift``;
    the model is called as ``model(x_t, t)`` with ``t`` of shape (B,) in [0, 1] (scale it inside the
    model if its time embedding expects diffusion's 0..999). ``reduction="none"``: per-sample losses (B,).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if t is None:
        t = sample_time(x0.shape[0], time_distribution, loc=loc, scale=scale, shift=shift, device=x0.device,
                        dtype=x0.dtype if x0.is_floating_point() else torch.float32)
    else:
        _check_t(t, x0)
        t = torch.as_tensor(t, device=x0.device, dtype=x0.dtype)
    if noise is None:
        noise = torch.randn_like(x0)
    x_t = flow_path(x0, noise, t, check=False)
    output = _check_velocity(model(x_t, t), x_t)
    per_sample = F.mse_loss(output.float(), velocity_target(x0, noise).float(), reduction="none").flatten(1).mean(1)
    return per_sample.mean() if reduction == "mean" else per_sample


# ---- the exact marginal velocity of a Gaussian mixture ---------------------------------------------
def mixture_velocity(x: torch.Tensor, t: torch.Tensor | float, means: torch.Tensor, std: float,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """:math:`u(x, t) = \\mathbb E[\\varepsilon - x_0\\mid x_t = x]` for data :math:`\\sum_k \\pi_k\\mathcal N(\\mu_k, s^2 I)`, exactly.

    On the path, component k becomes :math:`\\mathcal N((1-t)\\mu_k,\\ v_t I)` with :math:`v_t = (1-t)^2 s^2 + t^2`;
    within it :math:`(x_0, x_t)` are jointly Gaussian, so

    .. math:: u_k(x) = \\frac{t - (1-t)s^2}{v_t}\\,\\bigl(x - (1-t)\\mu_k\\bigr) - \\mu_k,\\qquad
              u(x, t) = \\sum_k r_k(x)\\,u_k(x),\\quad r_k \\propto \\pi_k\\,\\mathcal N\\bigl(x; (1-t)\\mu_k, v_t I\\bigr).

    ``x`` (B, D), ``t`` (B,) or a number, ``means`` (K, D), ``std`` :math:`s > 0`, ``weights`` (K,)
    (default equal). For the course's toys: ``means=mixture_modes(name)``, ``std=mixture_std(name)``.
    """
    if x.ndim != 2 or means.ndim != 2 or means.shape[1] != x.shape[1]:
        raise ValueError(f"x must be (B, D) and means (K, D) with the same D, got {tuple(x.shape)} and "
                         f"{tuple(means.shape)}")
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std!r}")
    means = means.to(x)
    log_w = torch.zeros(len(means), dtype=x.dtype, device=x.device) if weights is None else \
        torch.as_tensor(weights, dtype=x.dtype, device=x.device).log()
    t = _check_t(t, x)                                            # (B, 1) or a number
    t = t if t.ndim else t.expand(x.shape[0], 1)
    var = (1 - t) ** 2 * std ** 2 + t ** 2                        # (B, 1)
    diff = x[:, None, :] - (1 - t)[:, None] * means[None]         # (B, K, D): x - (1 - t) mu_k
    resp = torch.softmax(log_w - (diff ** 2).sum(-1) / (2 * var), dim=1)          # (B, K)
    per_component = ((t - (1 - t) * std ** 2) / var)[:, None] * diff - means[None]  # (B, K, D)
    return (resp[..., None] * per_component).sum(1)


# ---- conversions to and from a NoiseSchedule -------------------------------------------------------
def flow_time(schedule: NoiseSchedule, timesteps: torch.Tensor | int) -> torch.Tensor:
    """The flow time :math:`t = \\sigma_\\tau / (\\alpha_\\tau + \\sigma_\\tau)` of integer diffusion timesteps :math:`\\tau` (float64)."""
    a, s = schedule.alpha(timesteps), schedule.sigma(timesteps)
    return s / (a + s)


def diffusion_to_flow(schedule: NoiseSchedule, x_t: torch.Tensor,
                      timesteps: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    """A diffusion state :math:`z = \\alpha x_0 + \\sigma\\varepsilon` as the flow state :math:`z/(\\alpha+\\sigma)` and its time (B,)."""
    a = schedule.gather(schedule.sqrt_alphas_cumprod, timesteps, x_t)
    s = schedule.gather(schedule.sqrt_one_minus_alphas_cumprod, timesteps, x_t)
    t = flow_time(schedule, timesteps).to(x_t)
    return x_t / (a + s), t.expand(x_t.shape[0]) if t.ndim == 0 else t


def velocity_from_output(schedule: NoiseSchedule, x_t: torch.Tensor, timesteps: torch.Tensor,
                         output: torch.Tensor, prediction_type: str = "eps") -> torch.Tensor:
    """The flow velocity :math:`u = \\hat\\varepsilon - \\hat x_0` of a diffusion model's eps / x0 / v ``output`` at :math:`z` = ``x_t``.

    For v-prediction this is :math:`u = (\\sigma-\\alpha)\\,z + (\\alpha+\\sigma)\\,v`.
    """
    x0, eps = x0_eps_from_output(schedule, x_t, timesteps, output, prediction_type)
    return eps - x0


def output_from_velocity(schedule: NoiseSchedule, x_t: torch.Tensor, timesteps: torch.Tensor,
                         velocity: torch.Tensor, prediction_type: str = "eps") -> torch.Tensor:
    """The eps / x0 / v a diffusion model would output at :math:`z` = ``x_t``, from the flow velocity there.

    ``velocity`` is :math:`u(x, t)` at the flow state :math:`x = z/(\\alpha+\\sigma)`,
    :math:`t = \\sigma/(\\alpha+\\sigma)`; then :math:`\\hat x_0 = x - t u`, :math:`\\hat\\varepsilon = x + (1-t)u`,
    and :math:`v = \\alpha\\hat\\varepsilon - \\sigma\\hat x_0`.
    """
    check_prediction_type(prediction_type)
    x, t = diffusion_to_flow(schedule, x_t, timesteps)
    x0, eps = x0_noise_from_velocity(x, t, _check_velocity(velocity, x).to(x))
    if prediction_type == "eps":
        return eps
    if prediction_type == "x0":
        return x0
    a = schedule.gather(schedule.sqrt_alphas_cumprod, timesteps, x_t)
    s = schedule.gather(schedule.sqrt_one_minus_alphas_cumprod, timesteps, x_t)
    return a * eps - s * x0


def diffusion_model_from_velocity(velocity_model: Model, schedule: NoiseSchedule,
                                  prediction_type: str = "eps") -> Model:
    """Wrap a velocity model ``u(x, t)`` as a diffusion model ``model(z, timesteps)`` that predicts ``prediction_type``.

    The result runs in DDPM, DDIM and DPM-Solver++ like any eps / x0 / v model of ``schedule``.
    """
    check_prediction_type(prediction_type)

    def model(x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        x, t = diffusion_to_flow(schedule, x_t, timesteps)
        return output_from_velocity(schedule, x_t, timesteps, velocity_model(x, t), prediction_type)

    return model


# ---- samplers --------------------------------------------------------------------------------------
def flow_sampling_times(steps: int, *, shift: float = 1.0, t_start: float = 1.0,
                        spacing: str = "uniform") -> torch.Tensor:
    """The ``steps + 1`` times (float64) a flow sampler visits, from ``t_start`` down to 0.

    ``"uniform"`` spaces them evenly, ``"quadratic"`` evenly in :math:`\\sqrt t`, and then
    :func:`shift_time` moves them (SD3 samples with the shift it trained with); the first time stays
    ``t_start``.
    """
    from .samplers import SPACINGS
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int (the number of ODE steps), got {steps!r}")
    if not isinstance(t_start, (int, float)) or not 0 < t_start <= 1:
        raise ValueError(f"t_start must be a flow time in (0, 1] (1: pure noise), got {t_start!r}")
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; expected one of {SPACINGS}")
    s = _check_shift(shift)
    start = t_start / (s - (s - 1) * t_start)                      # the unshifted time that shifts to t_start
    grid = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    grid = start * (grid if spacing == "uniform" else grid ** 2)
    times = shift_time(grid, s)
    times[0] = t_start
    return times


def _grid(schedule: NoiseSchedule | None, steps: int | None, shift: float, t_start: Any,
          spacing: str) -> tuple[list[float], list[int] | None]:
    """Flow times (and, with a schedule, their integer timesteps) from the start down to t = 0."""
    if schedule is None:
        steps = 50 if steps is None else steps
        return flow_sampling_times(steps, shift=shift, t_start=1.0 if t_start is None else t_start,
                                   spacing=spacing).tolist(), None
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule or None (a velocity model on t in [0, 1]), got "
                        f"{type(schedule).__name__}")
    if shift != 1:
        raise ValueError("shift moves the continuous times of schedule=None; with a NoiseSchedule the "
                         "times are its timesteps (choose them with steps and spacing)")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive int (the number of ODE steps), got {steps!r}")
    from .samplers import sampling_timesteps  # samplers.py registers these samplers, so import late
    steps = (schedule.num_timesteps if t_start is None else t_start + 1) if steps is None else steps
    taus = sampling_timesteps(schedule, steps, t_start, spacing).tolist()
    return flow_time(schedule, torch.tensor(taus)).tolist() + [0.0], taus


def _setup(model: Model, x: torch.Tensor, schedule: NoiseSchedule | None, steps: int | None, shift: float,
           t_start: Any, spacing: str, prediction_type: str, clip_x0: bool, progress: bool):
    """The time grid, the starting flow state, ``velocity(x, i) -> (u, x0_hat)`` at grid point i, and
    the step indices (with a progress bar if asked); ``taus`` are the timesteps of a diffusion model."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise ValueError("x must be a floating-point tensor of noise shaped (B, ...), e.g. torch.randn(16, 2)")
    if prediction_type != "velocity":
        check_prediction_type(prediction_type)
        if schedule is None:
            raise ValueError(f"a model that predicts {prediction_type!r} is called at the integer timesteps "
                             "of its NoiseSchedule: pass that schedule (or prediction_type='velocity' for a "
                             "flow-matching model)")
    times, taus = _grid(schedule, steps, shift, t_start, spacing)

    def velocity(x: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        t = times[i]
        if prediction_type == "velocity":
            u = _check_velocity(model(x, torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)), x)
        else:
            tau = torch.full((x.shape[0],), taus[i], device=x.device, dtype=torch.long)
            z = (schedule.alpha(taus[i]).item() + schedule.sigma(taus[i]).item()) * x
            u = velocity_from_output(schedule, z, tau, model(z, tau), prediction_type)
        u = u.to(x.dtype)
        x0 = x - t * u
        if clip_x0 and t > 0:  # clamp the predicted data and recompute the velocity from it
            x0 = x0.clamp(-1, 1)
            u = (x - x0) / t
        return u, x0

    if taus is not None:  # the noise x is the diffusion state at taus[0]: rescale it onto the path
        x = x / (schedule.alpha(taus[0]).item() + schedule.sigma(taus[0]).item())
    loop = range(len(times) - 1)
    if progress:
        from tqdm.auto import tqdm
        loop = tqdm(loop, desc="sampling", leave=False)
    return times, (taus if prediction_type != "velocity" else None), x, velocity, loop


@torch.no_grad()
def flow_euler_sample(model: Model, x: torch.Tensor, schedule: NoiseSchedule | None = None, *,
                      steps: int | None = None, shift: float = 1.0, prediction_type: str = "velocity",
                      clip_x0: bool = False, generator: torch.Generator | None = None,
                      t_start: float | int | None = None, spacing: str = "uniform",
                      callback: Callback | None = None, progress: bool = False) -> torch.Tensor:
    """Euler's method on the flow ODE, from noise (t = 1) to data (t = 0), one model call per step:

    .. math:: x_{t_{i+1}} = x_{t_i} + (t_{i+1} - t_i)\\,u_\\theta(x_{t_i}, t_i),\\qquad t_{i+1} < t_i .

    ``schedule=None``: ``model`` is a velocity model, ``steps`` (default 50) on the grid of
    :func:`flow_sampling_times` with ``shift``, ``t_start`` a flow time. With a :class:`NoiseSchedule`,
    ``model`` predicts ``prediction_type`` ("velocity", "eps", "x0" or "v") and the steps visit the flow
    times of :func:`~vdlearn.diffusion.samplers.sampling_timesteps` (``steps``, ``t_start``, ``spacing``
    as in DDIM), ``x`` being the diffusion's noise; this *is* DDIM with ``eta=0``. The sampler is
    deterministic (``generator`` is accepted and unused); ``callback`` gets ``i, t`` (the flow time
    reached), ``x`` (the flow state) and ``x0`` after every step.
    """
    times, _, x, velocity, loop = _setup(model, x, schedule, steps, shift, t_start, spacing, prediction_type,
                                         clip_x0, progress)
    for i in loop:
        u, x0 = velocity(x, i)
        x = x + (times[i + 1] - times[i]) * u
        if callback is not None:
            callback({"i": i, "t": times[i + 1], "x": x, "x0": x0})
    return x


@torch.no_grad()
def flow_heun_sample(model: Model, x: torch.Tensor, schedule: NoiseSchedule | None = None, *,
                     steps: int | None = None, shift: float = 1.0, prediction_type: str = "velocity",
                     clip_x0: bool = False, generator: torch.Generator | None = None,
                     t_start: float | int | None = None, spacing: str = "uniform",
                     callback: Callback | None = None, progress: bool = False) -> torch.Tensor:
    """Heun's method (Karras et al. 2022, Alg. 1): an Euler step, then the average of the two slopes,

    .. math:: \\tilde x = x_{t_i} + h\\,u_\\theta(x_{t_i}, t_i),\\qquad
              x_{t_{i+1}} = x_{t_i} + \\tfrac h2\\bigl(u_\\theta(x_{t_i}, t_i) + u_\\theta(\\tilde x, t_{i+1})\\bigr),
              \\qquad h = t_{i+1} - t_i ,

    second order: its error falls as :math:`h^2` where Euler's falls as :math:`h`. Two model calls a
    step (compare samplers at equal calls). A diffusion model of a :class:`NoiseSchedule` has no
    timestep at t = 0, so with one its last step is an Euler step. Options as in :func:`flow_euler_sample`.
    """
    times, taus, x, velocity, loop = _setup(model, x, schedule, steps, shift, t_start, spacing, prediction_type,
                                            clip_x0, progress)
    for i in loop:
        h = times[i + 1] - times[i]
        u, x0 = velocity(x, i)
        x_euler = x + h * u
        if taus is not None and i + 1 == len(taus):
            x = x_euler   # t = 0: a diffusion model has no timestep there to be called at
        else:
            x = x + 0.5 * h * (u + velocity(x_euler, i + 1)[0])
        if callback is not None:
            callback({"i": i, "t": times[i + 1], "x": x, "x0": x0})
    return x
