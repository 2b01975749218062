"""The video diffusion loss, with joint image-and-video training (lessons 07 and 09).

The loss is the denoising loss of :func:`vdlearn.diffusion.diffusion_loss` on whole clips
(B, C, T, H, W): one timestep and one noise draw per clip, every frame noised alike. Video Diffusion
Models (Ho et al. 2022, sec. 3.2) also train on *images*: with probability ``p_image`` a clip of
the batch is replaced by a stack of T unrelated images, flagged ``independent`` so the
:class:`~vdlearn.nn.spacetime_unet.SpaceTimeUNet` skips its temporal layers for it. The image
layers then see far more variety than the clips alone give them.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..data.clips import check_clips, frames_to_batch
from ..diffusion.objectives import diffusion_loss
from ..diffusion.schedules import NoiseSchedule
from ..nn.spacetime_unet import SpaceTimeUNet

__all__ = ["video_diffusion_loss"]


def _image_stacks(images: torch.Tensor, count: int, frames: int, generator: torch.Generator | None) -> torch.Tensor:
    """``count`` stacks of ``frames`` images drawn at random from ``images`` (N, C, H, W): (count, C, T, H, W)."""
    pick = torch.randint(0, images.shape[0], (count * frames,), generator=generator, device=images.device)
    return images[pick].unflatten(0, (count, frames)).transpose(1, 2)


def video_diffusion_loss(model: SpaceTimeUNet | Callable, clips: torch.Tensor, schedule: NoiseSchedule, *,
                         p_image: float = 0.0, images: torch.Tensor | None = None,
                         prediction_type: str = "eps", min_snr_gamma: float | None = None,
                         y: torch.Tensor | None = None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """The denoising loss of :func:`vdlearn.diffusion.diffusion_loss` on clips, with joint image training.

    With probability ``p_image`` each clip of the batch is replaced by a stack of T independent
    images, flagged ``independent`` so the model skips its temporal layers for it (Ho et al. 2022,
    sec. 3.2). The images come from ``images`` (N, C, H, W) when given (e.g. an image dataset),
    else they are frames picked at random from the whole batch. ``clips`` must be in [-1, 1].
    ``generator`` (on the clips' device) seeds which clips become images, and which images.
    """
    check_clips(clips, getattr(model, "in_channels", None))
    if not 0.0 <= p_image <= 1.0:
        raise ValueError(f"p_image must be a probability in [0, 1], got {p_image}")
    b, c, frames, h, w = clips.shape
    independent = None
    if p_image > 0:
        device = clips.device
        independent = torch.rand(b, generator=generator, device=device) < p_image
        pool = frames_to_batch(clips) if images is None else images.to(clips)
        if pool.ndim != 4 or pool.shape[1:] != (c, h, w):
            raise ValueError(f"images must be (N, {c}, {h}, {w}) to mix with clips {tuple(clips.shape)}, "
                             f"got {tuple(pool.shape)}")
        if images is not None:
            check_clips(pool.unsqueeze(2), c, "images")
        stacks = _image_stacks(pool, b, frames, generator)
        clips = torch.where(independent.view(b, 1, 1, 1, 1), stacks, clips)
    return diffusion_loss(lambda x, t: model(x, t, y=y, independent=independent), clips, schedule,
                          prediction_type=prediction_type, min_snr_gamma=min_snr_gamma)
