"""A masked-conditional video diffusion model: one network for every task of lesson 08.

The known frames and the per-frame mask enter the denoiser as **extra input channels** (the
"concatenation" conditioning of MCVD and RaMViD, and of Stable Video Diffusion's image condition):

.. math:: \\mathrm{input} = \\bigl[\\,x_t,\\ \\mathrm{nearest}_m(\\tilde c),\\ m,\\ m\\,\\sigma_{aug}\\,\\bigr]
          \\in \\mathbb R^{(2C + 2) \\times T \\times H \\times W},

with :math:`x_t` the noisy clip, :math:`m` the mask broadcast over pixels, :math:`\\tilde c` the known
frames and :math:`\\sigma_{aug}` their noise-augmentation level. :math:`\\mathrm{nearest}_m(\\tilde c)_\\tau`
is the given frame nearest to frame :math:`\\tau` (the last given one at or before it, else the first
after it; zeros when nothing is given): every frame sees the appearance of the condition through
the U-Net's *spatial* layers at once, as Stable Video Diffusion copies its conditioning image to
every frame, while nothing of the frames that are not given leaks in. The network (a
:class:`~vdlearn.nn.spacetime_unet.SpaceTimeUNet`) predicts ε, x0 or v of the *whole* clip.

**Noise augmentation** (Ho et al. 2022 "Cascaded diffusion"; Blattmann et al. 2023, SVD sec. 4):
during training the conditioning frames are corrupted, :math:`\\tilde c = c + \\sigma_{aug}\\,\\varepsilon`
with :math:`\\sigma_{aug} \\sim U[0, \\sigma_{max}]`, and the model is told :math:`\\sigma_{aug}`. The
model then does not copy pixel noise or artefacts of the condition verbatim, which matters when the
condition is its *own* output (long videos) or an image unlike the training data.

**Condition dropout** for classifier-free guidance: with probability ``p_uncond`` a clip's whole
mask is cleared, so the same network is also the unconditional model :math:`\\hat v(x_t, t, \\varnothing)`.

The loss is the denoising loss on the frames to be *generated* (the given ones are copied at
sampling time anyway):

.. math:: L = \\frac{\\sum_{\\tau} (1 - m_\\tau) \\lVert f_\\theta(x_t, t, \\tilde c, m)_\\tau - \\mathrm{target}_\\tau \\rVert^2}{\\sum_\\tau (1 - m_\\tau)}.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..data.clips import check_clips
from ..diffusion.objectives import check_prediction_type, q_sample, training_target
from ..diffusion.schedules import NoiseSchedule
from ..nn.spacetime_unet import SpaceTimeUNet
from .masks import check_mask, mask_to_channel, random_masks

__all__ = ["nearest_given", "model_input", "augment_condition", "MaskedVideoDiffusion", "masked_diffusion_loss"]


def _levels(aug_level: float | torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
    """The noise-augmentation level as a (B,) tensor on ``like``'s device."""
    level = torch.as_tensor(0.0 if aug_level is None else aug_level, dtype=like.dtype, device=like.device)
    if level.ndim == 0:
        level = level.expand(batch)
    if level.shape != (batch,):
        raise ValueError(f"aug_level must be a number or one level per clip ({batch},), got {tuple(level.shape)}")
    if (level < 0).any():
        raise ValueError(f"aug_level is a noise standard deviation and must be >= 0, got {level.min().item()}")
    return level


def nearest_given(known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Every frame replaced by the nearest *given* frame of ``known`` (B, C, T, H, W); zeros if none is given.

    Frame :math:`\\tau` takes the last given frame at or before :math:`\\tau`, or, if there is none, the
    first given frame after it. Given frames stay as they are.
    """
    b, _, t = known.shape[:3]
    mask = check_mask(mask, b, t, allow_all=True).to(known.device)
    idx = torch.arange(t, device=known.device).expand(b, t)
    before = torch.where(mask, idx, torch.full_like(idx, -1)).cummax(dim=1).values
    after = torch.where(mask, idx, torch.full_like(idx, t)).flip(1).cummin(dim=1).values.flip(1)
    source = torch.where(before >= 0, before, after).clamp(max=t - 1)  # (B, T): which frame to copy
    out = known.gather(2, source.view(b, 1, t, 1, 1).expand_as(known))
    return out * mask.any(dim=1).to(known.dtype).view(b, 1, 1, 1, 1)


def model_input(x_t: torch.Tensor, known: torch.Tensor, mask: torch.Tensor,
                aug_level: float | torch.Tensor | None = None) -> torch.Tensor:
    """The network input :math:`[x_t,\\ \\mathrm{nearest}_m(\\tilde c),\\ m,\\ m\\,\\sigma_{aug}]`, (B, 2C+2, T, H, W).

    ``x_t`` and ``known`` are (B, C, T, H, W), ``mask`` (B, T) bool, ``aug_level`` a number or (B,).
    """
    if known.shape != x_t.shape:
        raise ValueError(f"known frames {tuple(known.shape)} must be shaped like the clip x_t {tuple(x_t.shape)} "
                         "(put the given frames at their places; the others may hold anything)")
    m = mask_to_channel(check_mask(mask, x_t.shape[0], x_t.shape[2], allow_all=True), x_t)
    level = _levels(aug_level, x_t.shape[0], x_t).view(-1, 1, 1, 1, 1)
    return torch.cat([x_t, nearest_given(known.to(x_t.dtype), mask), m, m * level], dim=1)


def augment_condition(known: torch.Tensor, aug_level: float | torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise augmentation of the conditioning frames: :math:`\\tilde c = c + \\sigma_{aug}\\,\\varepsilon`."""
    level = _levels(aug_level, known.shape[0], known).view(-1, 1, 1, 1, 1)
    if not (level > 0).any():
        return known
    noise = torch.randn(known.shape, generator=generator, device=known.device, dtype=known.dtype)
    return known + level * noise


class MaskedVideoDiffusion(nn.Module):
    """``MaskedVideoDiffusion(channels, frames, **unet)(x_t, t, known=None, mask=None, aug_level=None)``.

    A :class:`~vdlearn.nn.spacetime_unet.SpaceTimeUNet` with ``2·channels + 2`` input channels
    (see :func:`model_input`) and ``channels`` output channels. ``frames`` is the clip length it
    is trained on (its *window*; longer videos are made window by window, :mod:`.extend`);
    ``max_frames`` of the U-Net defaults to it. Other keyword arguments go to the U-Net
    (``base_channels``, ``channel_mults``, ``num_res_blocks``, ``attention_levels``,
    ``patch_size``, ...). Without ``known``/``mask`` it is the unconditional model.
    """

    def __init__(self, channels: int = 3, frames: int = 8, **unet_kwargs):
        super().__init__()
        if int(frames) != frames or frames < 2:
            raise ValueError(f"frames (the training clip length) must be an int >= 2, got {frames!r}")
        unet_kwargs.setdefault("max_frames", int(frames))
        for bad in ("in_channels", "out_channels", "num_classes"):
            if bad in unet_kwargs:
                raise ValueError(f"{bad} is set by MaskedVideoDiffusion (from channels={channels}); leave it out")
        self.channels, self.frames = int(channels), int(frames)
        self.net = SpaceTimeUNet(in_channels=2 * self.channels + 2, out_channels=self.channels, **unet_kwargs)

    @property
    def in_channels(self) -> int:
        """Channels of the clips it denoises (not of the U-Net's input)."""
        return self.channels

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, known: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, aug_level: float | torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x_t, torch.Tensor) or x_t.ndim != 5 or x_t.shape[1] != self.channels:
            shape = tuple(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise ValueError(f"this model denoises clips (B, {self.channels}, T, H, W), got {shape}")
        b, _, frames = x_t.shape[:3]
        if (known is None) != (mask is None):
            raise ValueError("give both known (the clip with the given frames in place) and mask (B, T), or neither "
                             "(unconditional)")
        if mask is None:
            known = torch.zeros_like(x_t)
            mask = torch.zeros(b, frames, dtype=torch.bool, device=x_t.device)
        return self.net(model_input(x_t, known, mask, aug_level), t)


def masked_diffusion_loss(model: MaskedVideoDiffusion, clips: torch.Tensor, schedule: NoiseSchedule, *,
                          probs: Mapping[str, float] | None = None, max_k: int | None = None,
                          p_uncond: float = 0.1, max_aug: float = 0.1, prediction_type: str = "v",
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """The masked-conditional denoising loss on a batch of clips (B, C, T, H, W) in [-1, 1].

    For every clip: a task mask from :func:`~vdlearn.video.masks.random_masks` (``probs``,
    ``max_k``), cleared with probability ``p_uncond`` (condition dropout), a noise-augmentation
    level :math:`\\sigma_{aug} \\sim U[0, \\sigma_{max}]` (``max_aug``; 0 turns it off), a timestep and
    noise; the loss averages the squared error over the frames that were *not* given.
    """
    check_clips(clips, model.channels)
    check_prediction_type(prediction_type)
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be a probability in [0, 1], got {p_uncond}")
    if max_aug < 0:
        raise ValueError(f"max_aug is the largest noise-augmentation std and must be >= 0, got {max_aug}")
    b, _, frames = clips.shape[:3]
    device = clips.device
    mask = random_masks(b, frames, probs, max_k, generator, device)
    drop = torch.rand(b, generator=generator, device=device) < p_uncond
    mask = mask & ~drop[:, None]
    level = torch.rand(b, generator=generator, device=device) * max_aug
    known = augment_condition(clips, level, generator)
    t = torch.randint(0, schedule.num_timesteps, (b,), generator=generator, device=device)
    noise = torch.randn(clips.shape, generator=generator, device=device, dtype=clips.dtype)
    x_t = q_sample(schedule, clips, t, noise, check=False)
    out = model(x_t, t, known, mask, level)
    target = training_target(schedule, clips, noise, t, prediction_type, check=False)
    se = F.mse_loss(out.float(), target.float(), reduction="none").mean(dim=(1, 3, 4))  # (B, T)
    weight = (~mask).float()
    return (se * weight).sum() / weight.sum().clamp(min=1.0)
