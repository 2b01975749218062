"""Flow matching for video with given frames: one velocity model for every task (lessons 07-09).

Every frame follows the straight path :math:`x_t = (1-t)\\,x_0 + t\\,\\varepsilon`; the model sees the
noisy clip, and as extra channels the given frames :math:`m \\odot x_0` and the mask :math:`m`:

.. math:: \\mathcal{L} = \\mathbb{E}\\,\\bigl\\| (1-m) \\odot \\bigl(v_\\theta(x_t, t, [m \\odot x_0, m])
          - (\\varepsilon - x_0)\\bigr) \\bigr\\|^2 \\big/ \\textstyle\\sum (1-m)

so only the frames to generate are learned. With ``m = 0`` this is plain flow matching of whole
clips (unconditional generation); the masks of :mod:`.masks` give prediction, image to video and
interpolation from the same weights. Sampling integrates the ODE dx/dt = v from t = 1 to 0 with
Euler steps (:func:`vdlearn.diffusion.flow_matching.flow_euler_sample`) and puts the given frames
back at the end.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from ..diffusion import flow_matching as fm
from .masks import check_mask, random_masks

__all__ = ["condition_channels", "masked_flow_loss", "sample_masked_flow"]


def condition_channels(known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[m ⊙ known, m]: (B, C + 1, T, H, W) from clips (B, C, T, H, W) and a bool mask (B, T)."""
    m = mask.to(known.dtype)[:, None, :, None, None]
    return torch.cat([known * m, m.expand(-1, 1, -1, *known.shape[3:])], dim=1)


def masked_flow_loss(model: nn.Module | Callable, clips: torch.Tensor, *, probs: Mapping[str, float] | None = None,
                     max_k: int | None = None, time_distribution: str = "logit_normal",
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The loss above, a task per clip drawn with ``probs`` (see :func:`.masks.random_masks`).

    ``model(x_t, t, cond)`` takes t (B,) in [0, 1] and the condition of :func:`condition_channels`.
    """
    b, _, frames = clips.shape[:3]
    mask = random_masks(b, frames, probs, max_k=max_k, generator=generator, device=clips.device)
    t = fm.sample_time(b, time_distribution, generator=generator, device=clips.device, dtype=clips.dtype)
    noise = torch.randn(clips.shape, generator=generator, device=clips.device, dtype=clips.dtype)
    x_t = fm.flow_path(clips, noise, t, check=False)
    velocity = model(x_t, t, condition_channels(clips, mask))
    weight = (~mask).to(clips.dtype)[:, None, :, None, None].expand_as(clips)
    return ((velocity - fm.velocity_target(clips, noise)) ** 2 * weight).sum() / weight.sum().clamp_min(1)


@torch.no_grad()
def sample_masked_flow(model: nn.Module | Callable, known: torch.Tensor, mask: torch.Tensor, *, steps: int = 20,
                       shift: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Clips like ``known`` whose frames with ``mask`` True are the given ones and the rest are generated.

    ``known`` (B, C, T, H, W) holds the given frames (anything elsewhere); ``mask`` (B, T) or (T,).
    An all-False mask samples unconditionally.
    """
    b, _, frames = known.shape[:3]
    mask = check_mask(mask, b, frames).to(known.device)
    cond = condition_channels(known, mask)
    noise = torch.randn(known.shape, generator=generator, device=known.device, dtype=known.dtype)
    x = fm.flow_euler_sample(lambda x_t, t: model(x_t, t, cond), noise, steps=steps, shift=shift)
    m = mask[:, None, :, None, None]
    return torch.where(m, known, x)
