"""Latent video diffusion: a video diffusion model that works on FrameVAE latents (lesson 09).

Latent diffusion (Rombach et al. 2022; for video Blattmann et al. 2023, "Align your Latents") splits
generation in two. A frame autoencoder :class:`~vdlearn.vae.FrameVAE` compresses every frame
:math:`x_t \\in \\mathbb R^{C\\times H\\times W}` to a latent grid :math:`z_t \\in \\mathbb R^{c\\times H/f\\times W/f}`
once; the diffusion model then learns the distribution of whole *latent clips*

.. math:: z = s\\,\\bigl(\\mu_\\phi(x_1), \\dots, \\mu_\\phi(x_T)\\bigr) \\in \\mathbb R^{c\\times T\\times H/f\\times W/f},

where :math:`s` is the VAE's ``scaling_factor`` (:math:`1/\\operatorname{std}(z)`, set by
:func:`vdlearn.vae.calibrate_scaling_factor`), so that the latents have the unit variance the noise
schedule assumes. Training is the usual denoising loss on :math:`z`; sampling draws :math:`z` with any
sampler of :mod:`vdlearn.diffusion` and decodes it frame by frame, :math:`\\hat x_t = D_\\phi(z_t / s)`.

With :math:`f = 4` the U-Net sees 16× fewer positions per frame, which is where the speed comes
from; the latents of a dataset are computed once (:func:`encode_dataset`) and reused every epoch.

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
from ..vae.models import FrameVAE

__all__ = [
    "encode_clips",
    "decode_clips",
    "encode_dataset",
    "latent_stats",
    "latent_diffusion_loss",
    "sample_latent_clips",
]


def _check_vae(vae: Any) -> FrameVAE:
    if not isinstance(vae, FrameVAE):
        raise TypeError(f"latent diffusion needs a vdlearn FrameVAE (a frame compressor with a spatial "
                        f"latent and a scaling_factor), got {type(vae).__name__}; build one with "
                        "vdlearn.vae.FrameVAE(in_channels, latent_channels, downsample) and train it")
    return vae


@torch.no_grad()
def encode_clips(vae: FrameVAE, clips: torch.Tensor, *, sample: bool = False, chunk_size: int = 256,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Clips (B, C, T, H, W) in [-1, 1] -> scaled latents :math:`s\\,\\mu_\\phi(x_t)` (B, c, T, H/f, W/f).

    Frame by frame through the frozen VAE (no gradients); ``sample=True`` draws
    :math:`z_t \\sim q(z_t\\mid x_t)` instead of taking the posterior mean.
    """
    vae = _check_vae(vae)
    check_clips(clips, vae.in_channels)
    f = vae.downsample
    if clips.shape[-1] % f or clips.shape[-2] % f:
        raise ValueError(f"frames of {clips.shape[-2]}x{clips.shape[-1]} pixels cannot be compressed {f}x by this "
                         f"FrameVAE: height and width must be multiples of {f}; crop or resize the clips")
    device = next(vae.parameters()).device
    return vae.encode_video(clips.to(device), sample=sample, chunk_size=chunk_size, generator=generator)


@torch.no_grad()
def decode_clips(vae: FrameVAE, latents: torch.Tensor, *, chunk_size: int = 256) -> torch.Tensor:
    """Scaled latents (B, c, T, h, w) -> clips (B, C, T, h·f, w·f) in [-1, 1]: :math:`\\hat x_t = D_\\phi(z_t/s)`."""
    vae = _check_vae(vae)
    check_clips(latents, vae.latent_channels, "latents", value_range=None)
    device = next(vae.parameters()).device
    return vae.decode_video(latents.to(device).float(), chunk_size=chunk_size)


@torch.no_grad()
def encode_dataset(vae: FrameVAE, data: Any, *, batch_size: int = 64, num_examples: int | None = None,
                   sample: bool = False) -> torch.Tensor:
    """The scaled latents (N, c, T, h, w) of the first ``num_examples`` clips of ``data``, on the CPU.

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
def sample_latent_clips(model: nn.Module | Callable, vae: FrameVAE, num_clips: int, frames: int, size: int | tuple[int, int],
                        schedule: NoiseSchedule, *, sampler: str = "dpm++2m", steps: int = 20,
                        prediction_type: str = "v", generator: torch.Generator | None = None,
                        return_latents: bool = False, **options: Any) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Draw ``num_clips`` clips of ``frames`` frames of ``size`` pixels: noise -> latents -> frames.

    The latent noise is (num_clips, c, frames, size/f, size/f); ``generator`` (a CPU generator) seeds
    it, and ``options`` go to the sampler. Returns the decoded clips in [-1, 1] (and the latents
    with ``return_latents=True``).
    """
    vae = _check_vae(vae)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    f = vae.downsample
    if h % f or w % f or h < f or w < f:
        raise ValueError(f"size {h}x{w} must be a positive multiple of the VAE's downsampling factor {f}")
    if int(num_clips) != num_clips or num_clips < 1 or int(frames) != frames or frames < 1:
        raise ValueError(f"num_clips and frames must be positive integers, got {num_clips!r} and {frames!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {sorted(SAMPLERS)}")
    device = next(vae.parameters()).device
    noise = torch.randn((num_clips, vae.latent_channels, frames, h // f, w // f), generator=generator).to(device)
    latents = sample(sampler, model, noise, schedule, steps=steps, prediction_type=prediction_type, **options)
    clips = decode_clips(vae, latents.float())
    return (clips, latents) if return_latents else clips
