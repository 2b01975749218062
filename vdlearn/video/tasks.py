"""The video tasks of one masked model: image to video, prediction, interpolation (lesson 08).

:func:`sample_video` samples clips whose masked frames are given: the samplers of
:mod:`vdlearn.diffusion.samplers` take any ``model(x, t)``, and the condition (known frames and
mask, with classifier-free guidance: :func:`vdlearn.diffusion.guidance.conditional_model`) is a
closure over it. After the last step the given frames are put back exactly (``keep_given``):
generated frames fill in around them.

Shortcuts for the tasks: :func:`animate` (a still image becomes a clip), :func:`predict`
(continue k frames), :func:`interpolate` (fill in between a first and a last frame).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..data.clips import check_clips
from ..diffusion.guidance import conditional_model
from ..diffusion.samplers import sample
from ..diffusion.schedules import NoiseSchedule
from .masked_model import augment_condition
from .masks import check_mask, task_mask

__all__ = ["sample_video", "animate", "predict", "interpolate"]


@torch.no_grad()
def sample_video(model: Callable, known: torch.Tensor, mask: torch.Tensor, schedule: NoiseSchedule, *,
                 sampler: str = "dpm++2m", steps: int = 20, guidance_scale: float = 1.0, aug_level: float = 0.0,
                 prediction_type: str = "v", noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, keep_given: bool = True, clip_x0: bool = True,
                 **options: Any) -> torch.Tensor:
    """Sample clips (B, C, T, H, W) whose frames ``mask`` (B, T) are the frames of ``known``.

    ``known`` (B, C, T, H, W) in [-1, 1] holds the given frames at their places (the other frames
    are ignored). ``aug_level`` noise-augments them as in training (the returned clip keeps the
    clean ones). ``noise`` (default: drawn with ``generator``) is the starting point; ``sampler``
    and ``steps`` pick a sampler of :mod:`vdlearn.diffusion.samplers`; ``options`` go to it.
    A mask that gives every frame is an error (nothing to generate); an empty mask samples
    unconditionally.
    """
    check_clips(known, getattr(model, "channels", None), "known frames")
    b, _, frames = known.shape[:3]
    mask = check_mask(mask, b, frames).to(known.device)
    if noise is None:
        noise = torch.randn(known.shape, generator=generator, device=known.device, dtype=known.dtype)
    elif noise.shape != known.shape:
        raise ValueError(f"noise {tuple(noise.shape)} must be shaped like the clips {tuple(known.shape)}")
    cond = augment_condition(known, aug_level, generator)
    guided = conditional_model(model, cond, mask, guidance_scale=guidance_scale, aug_level=aug_level)
    x = sample(sampler, guided, noise, schedule, steps=steps, prediction_type=prediction_type,
               clip_x0=clip_x0, generator=generator, **options).float()
    if clip_x0:
        x = x.clamp(-1, 1)
    if keep_given:
        x = torch.where(mask.view(b, 1, frames, 1, 1), known.float(), x)
    return x


def _check_frames(model: Callable, frames: int | None) -> int:
    frames = getattr(model, "frames", None) if frames is None else frames
    if frames is None:
        raise ValueError("say how many frames to make (frames=...); the model has no .frames to default to")
    return int(frames)


def animate(model: Callable, image: torch.Tensor, schedule: NoiseSchedule, frames: int | None = None,
            **options: Any) -> torch.Tensor:
    """Image to video: clips (B, C, T, H, W) that start with ``image`` (B, C, H, W) and move on."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a batch of images (B, C, H, W), got {shape}; add a batch axis with "
                         "image[None], or load a file with vdlearn.videoio.load_image")
    frames = _check_frames(model, frames)
    known = image.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()
    mask = task_mask("image_to_video", frames, batch=image.shape[0], device=image.device)
    return sample_video(model, known, mask, schedule, **options)


def predict(model: Callable, context: torch.Tensor, schedule: NoiseSchedule, frames: int | None = None,
            **options: Any) -> torch.Tensor:
    """Future prediction: clips (B, C, T, H, W) whose first k frames are ``context`` (B, C, k, H, W)."""
    check_clips(context, getattr(model, "channels", None), "context")
    frames = _check_frames(model, frames)
    k = context.shape[2]
    mask = task_mask("prediction", frames, k=k, batch=context.shape[0], device=context.device)
    known = torch.cat([context, context[:, :, -1:].expand(-1, -1, frames - k, -1, -1)], dim=2)
    return sample_video(model, known, mask, schedule, **options)


def interpolate(model: Callable, first: torch.Tensor, last: torch.Tensor, schedule: NoiseSchedule,
                frames: int | None = None, **options: Any) -> torch.Tensor:
    """Interpolation: clips (B, C, T, H, W) from ``first`` to ``last`` (each (B, C, H, W))."""
    if first.shape != last.shape or first.ndim != 4:
        raise ValueError(f"first and last must be images (B, C, H, W) of one shape, got {tuple(first.shape)} "
                         f"and {tuple(last.shape)}")
    frames = _check_frames(model, frames)
    mask = task_mask("interpolation", frames, batch=first.shape[0], device=first.device)
    known = torch.stack([first] * (frames - 1) + [last], dim=2)
    return sample_video(model, known, mask, schedule, **options)
