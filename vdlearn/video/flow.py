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

A class-conditional model (``VideoDiT(num_classes=K)``, its label dropped to the null label ``K``
with probability ``p_uncond`` in training) is sampled with classifier-free guidance of scale ``s``:

.. math:: \\tilde v = v(x_t, t, c, \\varnothing) + s\\,\\bigl(v(x_t, t, c, y) - v(x_t, t, c, \\varnothing)\\bigr)
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from ..diffusion import flow_matching as fm
from ..diffusion.guidance import _null_label, drop_labels, guided_output
from .masks import check_mask, random_masks

__all__ = ["condition_channels", "masked_flow_loss", "guided_velocity", "sample_masked_flow"]


def condition_channels(known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[m ⊙ known, m]: (B, C + 1, T, H, W) from clips (B, C, T, H, W) and a bool mask (B, T)."""
    m = mask.to(known.dtype)[:, None, :, None, None]
    return torch.cat([known * m, m.expand(-1, 1, -1, *known.shape[3:])], dim=1)


def masked_flow_loss(model: nn.Module | Callable, clips: torch.Tensor, *, probs: Mapping[str, float] | None = None,
                     max_k: int | None = None, time_distribution: str = "logit_normal",
                     labels: torch.Tensor | None = None, p_uncond: float = 0.1, mirror: float = 0.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The loss above, a task per clip drawn with ``probs`` (see :func:`.masks.random_masks`).

    Every task but generation gives frames at the *start* (the first k, the first, the first and the
    last), so frame 0 is learned in fewer clips than the others and the model draws it worst. With
    ``mirror`` a fraction of the clips get their task mirrored in time (the last k frames given:
    predicting the past), which evens that out; right for data that may run backwards.

    ``model(x_t, t, cond)`` takes t (B,) in [0, 1] and the condition of :func:`condition_channels`.
    With ``labels`` (B,) it is called ``model(x_t, t, cond, y)``, each label replaced by the model's
    null label with probability ``p_uncond`` (so that it can be sampled with guidance).
    """
    b, _, frames = clips.shape[:3]
    if labels is not None:
        y = drop_labels(labels, p_uncond, _null_label(model, None), generator=generator)
        net = model
        model = lambda x, t, c: net(x, t, c, y)  # noqa: E731
    if not 0.0 <= mirror <= 1.0:
        raise ValueError(f"mirror is the fraction of clips whose task is mirrored in time, in [0, 1]; got {mirror!r}")
    mask = random_masks(b, frames, probs, max_k=max_k, generator=generator, device=clips.device)
    if mirror > 0:
        flip = torch.rand(b, generator=generator, device=clips.device) < mirror
        mask = torch.where(flip[:, None], mask.flip(1), mask)
    t = fm.sample_time(b, time_distribution, generator=generator, device=clips.device, dtype=clips.dtype)
    noise = torch.randn(clips.shape, generator=generator, device=clips.device, dtype=clips.dtype)
    x_t = fm.flow_path(clips, noise, t, check=False)
    velocity = model(x_t, t, condition_channels(clips, mask))
    weight = (~mask).to(clips.dtype)[:, None, :, None, None].expand_as(clips)
    return ((velocity - fm.velocity_target(clips, noise)) ** 2 * weight).sum() / weight.sum().clamp_min(1)


def guided_velocity(model: nn.Module | Callable, cond: torch.Tensor, labels: torch.Tensor | None = None,
                    guidance_scale: float = 1.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``v(x_t, t)`` for the samplers: the model with its condition channels, and with ``labels`` (B,)
    guided by scale ``s`` (equation above; ``s = 1`` the conditional model alone, one call a step)."""
    if labels is None:
        return lambda x_t, t: model(x_t, t, cond)
    if not isinstance(guidance_scale, (int, float)) or guidance_scale < 0:
        raise ValueError(f"guidance_scale must be a number >= 0 (1: no guidance), got {guidance_scale!r}")
    null = torch.full_like(labels, _null_label(model, None))

    def velocity(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if guidance_scale == 1.0:
            return model(x_t, t, cond, labels)
        t = torch.as_tensor(t, device=x_t.device).expand(x_t.shape[0])
        both = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, cond]), torch.cat([labels, null]))
        with_label, without = both.chunk(2)
        return guided_output(without, with_label, guidance_scale)
    return velocity


@torch.no_grad()
def sample_masked_flow(model: nn.Module | Callable, known: torch.Tensor, mask: torch.Tensor, *, steps: int = 20,
                       shift: float = 1.0, labels: torch.Tensor | None = None, guidance_scale: float = 1.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Clips like ``known`` whose frames with ``mask`` True are the given ones and the rest are generated.

    ``known`` (B, C, T, H, W) holds the given frames (anything elsewhere); ``mask`` (B, T) or (T,).
    An all-False mask samples unconditionally. A class-conditional model takes ``labels`` (B,) and a
    ``guidance_scale`` (see :func:`guided_velocity`).
    """
    b, _, frames = known.shape[:3]
    mask = check_mask(mask, b, frames).to(known.device)
    cond = condition_channels(known, mask)
    if labels is not None:
        labels = torch.as_tensor(labels, device=known.device).long()
        if labels.shape != (b,):
            raise ValueError(f"labels must be ({b},), one class per clip; got shape {tuple(labels.shape)}")
    noise = torch.randn(known.shape, generator=generator, device=known.device, dtype=known.dtype)
    x = fm.flow_euler_sample(guided_velocity(model, cond, labels, guidance_scale), noise, steps=steps, shift=shift)
    m = mask[:, None, :, None, None]
    return torch.where(m, known, x)
