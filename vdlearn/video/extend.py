"""Videos longer than the training clips: autoregressive extension, window by window (lesson 08).

A model trained on T-frame clips makes a longer video by sliding its window: each new window
is a *prediction* task whose first ``overlap`` frames are the last ``overlap`` frames made so far,

.. math:: x_{[s, s+T)} \\sim p_\\theta\\bigl(x_{[s, s+T)} \\,\\big|\\, x_{[s, s+o)}\\bigr), \\qquad s \\leftarrow s + T - o,

as in MCVD's block-autoregressive generation and Video LDM's prediction model. Two frames of
overlap carry the velocity, not only the position. The conditioning frames are the model's own
output, so small artefacts could compound; noise augmentation (``aug_level``) lets the model
treat them as "roughly this" instead of copying them (Blattmann et al. 2023).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..data.clips import check_clips
from ..diffusion.schedules import NoiseSchedule
from .masks import task_mask
from .tasks import sample_video

__all__ = ["extend_video"]


@torch.no_grad()
def extend_video(model: Callable, start: torch.Tensor, schedule: NoiseSchedule, total_frames: int, *,
                 window: int | None = None, overlap: int = 2, generator: torch.Generator | None = None,
                 **options: Any) -> torch.Tensor:
    """Extend clips ``start`` (B, C, k, H, W) (or images (B, C, H, W)) to ``total_frames`` frames.

    Every step samples a ``window``-frame clip (default ``model.frames``) given the last
    ``overlap`` frames so far (fewer if only fewer exist: a single image starts as image-to-video)
    and appends its new frames. ``options`` go to :func:`~vdlearn.video.tasks.sample_video`
    (``guidance_scale``, ``aug_level``, ``sampler``, ``steps``, ...). Returns (B, C, total_frames, H, W).
    """
    if isinstance(start, torch.Tensor) and start.ndim == 4:
        start = start.unsqueeze(2)
    check_clips(start, getattr(model, "channels", None), "start frames")
    window = int(getattr(model, "frames", 0) if window is None else window)
    if window < 2:
        raise ValueError(f"window must be at least 2 frames, got {window}; pass window=... or use a model with .frames")
    if not 1 <= overlap < window:
        raise ValueError(f"overlap must be in [1, {window - 1}] for {window}-frame windows, got {overlap}")
    if int(total_frames) != total_frames or total_frames < start.shape[2]:
        raise ValueError(f"total_frames must be an int >= the {start.shape[2]} given frames, got {total_frames!r}")
    video = start.float()
    while video.shape[2] < total_frames:
        k = min(overlap, video.shape[2])
        context = video[:, :, -k:]
        known = torch.cat([context, context[:, :, -1:].expand(-1, -1, window - k, -1, -1)], dim=2)
        mask = task_mask("prediction", window, k=k, batch=video.shape[0], device=video.device)
        clip = sample_video(model, known, mask, schedule, generator=generator, **options)
        new = clip[:, :, k:k + total_frames - video.shape[2]]
        video = torch.cat([video, new], dim=2)
    return video
