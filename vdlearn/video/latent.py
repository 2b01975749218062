"""Latent video diffusion: a video diffusion model that works on the latents of a video autoencoder (lesson 09).

Latent diffusion (Rombach et al. 2022; for video Blattmann et al. 2023, "Align your Latents") splits
generation in two. An autoencoder compresses every clip once; the diffusion model then learns the
distribution of whole *latent clips*, and its samples are decoded back to pixels. Two autoencoders fit:

* a :class:`~vdlearn.vae.FrameVAE` compresses each frame :math:`x_t \\in \\mathbb R^{C\\times H\\times W}`
  alone to a latent grid :math:`z_t \\in \\mathbb R^{c\\times H/f\\times W/f}`, so T frames keep T latent frames,

  .. math:: z = s\\,\\bigl(\\mu_\\phi(x_1), \\dots, \\mu_\\phi(x_T)\\bigr) \\in \\mathbb R^{c\\times T\\times H/f\\times W/f};

* a :class:`~vdlearn.vae.CausalVideoVAE` compresses time too: the first frame alone, then
  :math:`s_t` frames per latent frame, so T frames give ``vae.latent_frames(T)``
  :math:`= 1 + \\lceil (T-1)/s_t \\rceil` latent frames,

  .. math:: z = s\\,\\mu_\\phi(x_{1..T}) \\in \\mathbb R^{c\\times (1 + \\lceil (T-1)/s_t\\rceil)\\times H/f\\times W/f},

  and a latent clip decodes to :math:`1 + s_t(t-1)` frames, cropped to the T asked for.

:math:`s` is the VAE's ``scaling_factor`` (:math:`1/\\operatorname{std}(z)`, set by
:func:`vdlearn.vae.calibrate_scaling_factor`), so that the latents have the unit variance the noise
schedule assumes. Training is the usual denoising loss on :math:`z`; sampling draws :math:`z` with any
sampler of :mod:`vdlearn.diffusion` and decodes it, :math:`\\hat x = D_\\phi(z / s)`.

With :math:`f = 4` the U-Net sees 16× fewer positions per frame, which is where the speed comes
from (and :math:`s_t` times fewer frames with the causal VAE); the latents of a dataset are computed
once (:func:`encode_dataset`) and reused every epoch.

- :func:`encode_clips`, :func:`decode_clips`: clips (B, C, T, H, W) in [-1, 1] <-> scaled latents;
- :func:`encode_dataset`: every clip of a dataset, encoded once, as one tensor ``fit`` can train on;
- :func:`latent_stats`: mean and standard deviation, overall and per channel;
- :func:`latent_diffusion_loss`: the denoising loss on latent clips (a ``loss_fn`` body for ``fit``);
- :func:`sample_latent_clips`: noise -> latent clips -> decoded clips.

What a training step costs (to compare pixel and latent models) is measured by
:func:`vdlearn.train.train_step_cost`.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..data.batches import make_batch
from ..data.clips import check_clips
from ..diffusion.objectives import diffusion_loss
from ..diffusion.samplers import SAMPLERS, sample
from ..diffusion.schedules import NoiseSchedule
from ..vae.causal import CausalVideoVAE
from ..vae.models import FrameVAE

__all__ = [
    "latent_frames",
    "known_latent_frames",
    "encode_clips",
    "decode_clips",
    "encode_dataset",
    "latent_stats",
    "latent_diffusion_loss",
    "sample_latent_clips",
]


VideoAutoencoder = FrameVAE | CausalVideoVAE  # what compresses clips for latent diffusion


def _check_vae(vae: Any) -> VideoAutoencoder:
    if not isinstance(vae, (FrameVAE, CausalVideoVAE)):
        raise TypeError(f"latent diffusion needs a vdlearn video autoencoder with a scaling_factor: a FrameVAE "
                        f"(each frame compressed alone) or a CausalVideoVAE (time compressed too); got "
                        f"{type(vae).__name__}. Build one with vdlearn.vae.FrameVAE(in_channels, latent_channels, "
                        "downsample) or vdlearn.vae.CausalVideoVAE(in_channels, latent_channels) and train it")
    return vae


def latent_frames(vae: VideoAutoencoder, frames: int) -> int:
    """Latent frames of a clip of ``frames`` frames: T for a FrameVAE, :math:`1 + \\lceil (T-1)/s_t \\rceil`
    for a CausalVideoVAE."""
    return _check_vae(vae).latent_frames(frames) if isinstance(vae, CausalVideoVAE) else frames


def known_latent_frames(vae: VideoAutoencoder, mask: torch.Tensor) -> torch.Tensor:
    """Which latent frames (B, t) are known when the frames ``mask`` (B, T, bool) are given.

    A FrameVAE keeps one latent frame per frame: the same mask. A CausalVideoVAE's latent frame 0 is
    frame 0 alone and latent frame j >= 1 holds frames :math:`(j-1)s_t+1 \\dots js_t`; because its encoder is
    causal, the latent of a given beginning of a clip is the same whatever follows, so latent frame j is
    known when all of its frames are given (a frame past the clip's end is not)."""
    if not isinstance(_check_vae(vae), CausalVideoVAE):
        return mask
    b, frames = mask.shape
    stride, latent = vae.temporal_down, vae.latent_frames(frames)
    padded = torch.cat([mask, mask.new_zeros(b, 1 + stride * (latent - 1) - frames)], dim=1)
    rest = padded[:, 1:].reshape(b, latent - 1, stride).all(dim=2)
    return torch.cat([padded[:, :1], rest], dim=1)


@torch.no_grad()
def encode_clips(vae: VideoAutoencoder, clips: torch.Tensor, *, sample: bool = False, chunk_size: int = 256,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Clips (B, C, T, H, W) in [-1, 1] -> scaled latents :math:`s\\,\\mu_\\phi(x)` (B, c, t, H/f, W/f).

    Through the frozen VAE (no gradients), with t = :func:`latent_frames` (T for a FrameVAE, which
    encodes frame by frame; :math:`1 + \\lceil (T-1)/s_t \\rceil` for a CausalVideoVAE, which encodes
    whole clips). ``sample=True`` draws :math:`z \\sim q(z\\mid x)` instead of taking the posterior
    mean. ``chunk_size`` bounds the frames per forward pass.
    """
    vae = _check_vae(vae)
    check_clips(clips, vae.in_channels)
    f = vae.downsample
    if clips.shape[-1] % f or clips.shape[-2] % f:
        raise ValueError(f"frames of {clips.shape[-2]}x{clips.shape[-1]} pixels cannot be compressed {f}x by this "
                         f"{type(vae).__name__}: height and width must be multiples of {f}; crop or resize the clips")
    device = next(vae.parameters()).device
    return vae.encode_video(clips.to(device), sample=sample, chunk_size=chunk_size, generator=generator)


@torch.no_grad()
def decode_clips(vae: VideoAutoencoder, latents: torch.Tensor, *, frames: int | None = None,
                 chunk_size: int = 256) -> torch.Tensor:
    """Scaled latents (B, c, t, h, w) -> clips (B, C, T, h·f, w·f) in [-1, 1]: :math:`\\hat x = D_\\phi(z/s)`.

    A FrameVAE decodes frame by frame, T = t. A CausalVideoVAE decodes :math:`1 + s_t(t-1)` frames,
    cropped to ``frames`` when given (a 16-frame clip has 9 latent frames for :math:`s_t = 2`, which
    decode to 17: pass ``frames=16`` to get the clip's own length back).
    """
    vae = _check_vae(vae)
    check_clips(latents, vae.latent_channels, "latents", value_range=None)
    device = next(vae.parameters()).device
    latents = latents.to(device).float()
    if isinstance(vae, CausalVideoVAE):
        return vae.decode_video(latents, frames=frames, chunk_size=chunk_size)
    if frames is not None and frames != latents.shape[2]:
        raise ValueError(f"a FrameVAE decodes each latent frame to one frame: {latents.shape[2]} latent frames give "
                         f"{latents.shape[2]} frames, not frames={frames!r}; leave frames out, or use a "
                         "CausalVideoVAE, which compresses time")
    return vae.decode_video(latents, chunk_size=chunk_size)


@torch.no_grad()
def encode_dataset(vae: VideoAutoencoder, data: Any, *, batch_size: int = 64, num_examples: int | None = None,
                   sample: bool = False) -> torch.Tensor:
    """The scaled latents (N, c, t, h, w) of the first ``num_examples`` clips of ``data``, on the CPU.

    ``data`` is a clip Dataset (its ``get_batch`` is used when present) or a tensor of clips.
    Encoding once and training on the result is what makes a latent model cheap to train: the
    VAE's cost is paid once per clip, not once per step.
    """

    vae = _check_vae(vae)
    n = len(data) if num_examples is None else min(len(data), int(num_examples))
    if n < 1:
        raise ValueError("encode_dataset needs at least one clip; the data (or num_examples) is empty")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    vae.eval()
    out = []
    for start in range(0, n, batch_size):
        batch = make_batch(data, torch.arange(start, min(start + batch_size, n)))
        clips = batch[0] if isinstance(batch, (tuple, list)) else batch
        out.append(encode_clips(vae, clips, sample=sample).float().cpu())
    return torch.cat(out)


def latent_stats(latents: torch.Tensor) -> dict[str, Any]:
    """``mean``, ``std`` over everything, and ``channel_std`` (a list, one per latent channel)."""
    check_clips(latents, what="latents", value_range=None)
    z = latents.detach().float()
    return {"mean": z.mean().item(), "std": z.std().item(),
            "channel_std": z.transpose(0, 1).flatten(1).std(dim=1).tolist()}


def latent_diffusion_loss(model: nn.Module | Callable, latents: torch.Tensor, schedule: NoiseSchedule, *,
                          prediction_type: str = "v", min_snr_gamma: float | None = None,
                          y: torch.Tensor | None = None) -> torch.Tensor:
    """The denoising loss :math:`\\mathbb E_{t,\\varepsilon}\\lVert f_\\theta(\\alpha_t z + \\sigma_t\\varepsilon, t) - \\text{target}\\rVert^2`
    on scaled latent clips ``z`` (B, c, T, h, w).

    Unlike pixels, latents are not confined to [-1, 1]; instead their scale must be about 1 (the
    schedule's :math:`\\alpha_t, \\sigma_t` assume it), which is checked on every batch.
    """
    check_clips(latents, getattr(model, "in_channels", None), "latents", value_range=None)
    if not torch.compiler.is_compiling() and latents.numel() > 1:
        std = latents.detach().float().std().item()
        if not 0.2 <= std <= 5.0:  # also catches NaN
            raise ValueError(
                f"these latents have standard deviation {std:.3g}, but a diffusion model expects about 1; "
                "scale them: calibrate_scaling_factor(vae, data) once, then encode_clips(vae, clips) "
                "multiplies by vae.scaling_factor")
    return diffusion_loss(lambda x, t: model(x, t, y=y) if y is not None else model(x, t), latents, schedule,
                          prediction_type=prediction_type, min_snr_gamma=min_snr_gamma)


@torch.no_grad()
def sample_latent_clips(model: nn.Module | Callable, vae: VideoAutoencoder, num_clips: int, frames: int,
                        size: int | tuple[int, int],
                        schedule: NoiseSchedule, *, sampler: str = "dpm++2m", steps: int = 20,
                        prediction_type: str = "v", generator: torch.Generator | None = None,
                        return_latents: bool = False, **options: Any) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Draw ``num_clips`` clips of ``frames`` frames of ``size`` pixels: noise -> latents -> frames.

    The latent noise is (num_clips, c, t, size/f, size/f) with t = :func:`latent_frames` (``frames``
    for a FrameVAE, ``vae.latent_frames(frames)`` for a CausalVideoVAE), so ``model`` must take clips
    of t latent frames; ``generator`` (a CPU generator) seeds it, and ``options`` go to the sampler.
    Returns the decoded clips (num_clips, C, frames, H, W) in [-1, 1] (and the latents with
    ``return_latents=True``).
    """
    vae = _check_vae(vae)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    f = vae.downsample
    if h % f or w % f or h < f or w < f:
        raise ValueError(f"size {h}x{w} must be a positive multiple of the VAE's downsampling factor {f}")
    if int(num_clips) != num_clips or num_clips < 1 or int(frames) != frames or frames < 1:
        raise ValueError(f"num_clips and frames must be positive integers, got {num_clips!r} and {frames!r}")
    num_clips, frames = int(num_clips), int(frames)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {sorted(SAMPLERS)}")
    device = next(vae.parameters()).device
    t = latent_frames(vae, frames)
    noise = torch.randn((num_clips, vae.latent_channels, t, h // f, w // f), generator=generator).to(device)
    latents = sample(sampler, model, noise, schedule, steps=steps, prediction_type=prediction_type, **options)
    clips = decode_clips(vae, latents.float(), frames=frames)
    return (clips, latents) if return_latents else clips
