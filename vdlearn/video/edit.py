"""Video editing by partial noising and denoising: SDEdit (Meng et al. 2022), lesson 08.

Noise a real clip :math:`x` part of the way, to the timestep :math:`t_s = \\mathrm{round}(s\\,(T-1))`
of an *editing strength* :math:`s \\in [0, 1]`,

.. math:: x_{t_s} = \\alpha_{t_s}\\, x + \\sigma_{t_s}\\, \\varepsilon,

and run the sampler from :math:`t_s` down to 0, optionally under another condition — here a
different first frame (the "style" the clip should take on). Small :math:`s` keeps the clip
(faithful, little change); :math:`s = 1` forgets it (free generation from the new condition);
in between, the coarse layout and motion survive the noise while the details follow the model
and its condition. :math:`s = 0` returns the clip unchanged.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..data.clips import check_clips
from ..diffusion.objectives import q_sample
from ..diffusion.schedules import NoiseSchedule
from .masks import task_mask
from .tasks import sample_video

__all__ = ["check_strength", "sdedit_start", "sdedit"]


def check_strength(strength: float) -> float:
    """``strength`` as a float, or a clear error unless it is a number in [0, 1]."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"the editing strength must be a number in [0, 1] (0: keep the clip, 1: regenerate it "
                         f"from pure noise), got {strength!r}")
    return float(strength)


def sdedit_start(video: torch.Tensor, strength: float, schedule: NoiseSchedule,
                 noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """The partly noised clip :math:`x_{t_s}` and its timestep :math:`t_s = \\mathrm{round}(s\\,(T-1))`.

    For ``strength == 0`` it is the clip itself, unnoised, at ``t_s = 0``.
    """
    strength = check_strength(strength)
    t_start = int(round(strength * (schedule.num_timesteps - 1)))
    if noise is None:
        noise = torch.randn(video.shape, generator=generator, device=video.device, dtype=video.dtype)
    if strength == 0:
        return video.clone(), 0
    t = torch.full((video.shape[0],), t_start, device=video.device, dtype=torch.long)
    return q_sample(schedule, video, t, noise), t_start


@torch.no_grad()
def sdedit(model: Callable, video: torch.Tensor, strength: float, schedule: NoiseSchedule, *,
           first_frame: torch.Tensor | None = None, steps: int = 20, sampler: str = "ddim",
           noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
           **options: Any) -> torch.Tensor:
    """Edit clips ``video`` (B, C, T, H, W) in [-1, 1] with SDEdit at ``strength`` in [0, 1].

    ``first_frame`` (B, C, H, W), if given, is the new first frame: the denoising is conditioned on
    it (image-to-video mask) and the result starts with it; otherwise the model runs
    unconditionally. The sampler takes ``max(1, round(steps · strength))`` steps from
    :math:`t_s` to 0; ``options`` go to :func:`~vdlearn.video.tasks.sample_video`
    (``guidance_scale``, ``aug_level``, ``prediction_type``, ...).
    """
    strength = check_strength(strength)
    check_clips(video, getattr(model, "channels", None), "the clip to edit")
    b, c, frames, h, w = video.shape
    if first_frame is not None and (not isinstance(first_frame, torch.Tensor) or first_frame.shape != (b, c, h, w)):
        shape = tuple(first_frame.shape) if isinstance(first_frame, torch.Tensor) else type(first_frame).__name__
        raise ValueError(f"first_frame must be (B, C, H, W) = {(b, c, h, w)} like the clip's frames, got {shape}; "
                         "load and resize an image with vdlearn.videoio.load_image")
    if strength == 0:
        return video.clone() if first_frame is None else torch.cat([first_frame.unsqueeze(2), video[:, :, 1:]], 2)
    x_t, t_start = sdedit_start(video, strength, schedule, noise, generator)
    if first_frame is None:
        known = video
        mask = torch.zeros(b, frames, dtype=torch.bool, device=video.device)
    else:
        known = torch.cat([first_frame.unsqueeze(2).to(video), video[:, :, 1:]], dim=2)
        mask = task_mask("image_to_video", frames, batch=b, device=video.device)
    n = max(1, min(t_start + 1, round(steps * strength)))
    return sample_video(model, known, mask, schedule, sampler=sampler, steps=n, noise=x_t, t_start=t_start,
                        generator=generator, **options)
