"""Clips in the course's convention: (B, C, T, H, W) float tensors in [-1, 1].

One place for what every video module needs of a clip:

- :func:`check_clips`: the one validator, with errors that say what was expected and what to do;
- :func:`frames_to_batch` / :func:`batch_to_frames`: fold the frame axis into the batch, so that
  image layers run on every frame at once, and back;
- :func:`gaussian_blur`: a separable Gaussian filter of every frame (or image),

  .. math:: (G_\\sigma * x)(i, j) = \\sum_{u, v} g_\\sigma(u)\\, g_\\sigma(v)\\, x(i - u, j - v),
            \\qquad g_\\sigma(u) \\propto e^{-u^2 / 2\\sigma^2},

  used by optical flow (lesson 00), SSIM (lesson 08) and FVD-lite's training corruptions;
- :func:`reverse_some`: play some clips backwards. Elastic bouncing is time-reversible, so a
  reversed clip of the course's datasets is another lawful clip: twice the data, and the first
  and last frames of a clip are seen in every role equally often.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["check_clips", "frames_to_batch", "batch_to_frames", "gaussian_kernel", "gaussian_blur", "reverse_some"]

_RANGE_HINT = ("clamp model samples with .clamp(-1, 1), map uint8 pixels with x / 127.5 - 1 "
               "and [0, 1] values with 2 * x - 1")


def check_clips(clips: torch.Tensor, channels: int | None = None, what: str = "clips", *,
                min_frames: int = 1, value_range: tuple[float, float] | None = (-1.0, 1.0)) -> torch.Tensor:
    """``clips`` itself, or a clear error unless it is a float (B, C, T, H, W) batch.

    ``channels`` fixes C; ``min_frames`` is the fewest frames that make sense (2 to show motion);
    ``value_range`` is where the values must lie (``None`` for latents, which have no fixed range).
    NaN or inf values are always an error.
    """
    if not isinstance(clips, torch.Tensor) or clips.ndim != 5 or not clips.is_floating_point():
        shape = tuple(clips.shape) if isinstance(clips, torch.Tensor) else type(clips).__name__
        hint = (" (one clip? add a batch axis with x.unsqueeze(0))"
                if isinstance(clips, torch.Tensor) and clips.ndim == 4 else "")
        raise ValueError(f"{what} must be a float tensor of videos (B, C, T, H, W), got {shape}{hint}")
    if clips.shape[0] < 1:
        raise ValueError(f"{what} are an empty batch (shape {tuple(clips.shape)})")
    if channels is not None and clips.shape[1] != channels:
        raise ValueError(f"{what} have {clips.shape[1]} channels but {channels} are expected "
                         f"(shape {tuple(clips.shape)}, channel axis second: (B, C, T, H, W))")
    if clips.shape[2] < min_frames:
        raise ValueError(f"{what} need at least {min_frames} frames, got {clips.shape[2]} "
                         f"(shape {tuple(clips.shape)}; the frame axis is the third: (B, C, T, H, W))")
    if clips.numel() and not torch.compiler.is_compiling():
        lo, hi = clips.min().item(), clips.max().item()
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{what} contain NaN or inf values; did training or sampling diverge?")
        if value_range is not None and (lo < value_range[0] - 1e-3 or hi > value_range[1] + 1e-3):
            raise ValueError(f"{what} should hold values in [{value_range[0]:g}, {value_range[1]:g}], "
                             f"but they range over [{lo:.3g}, {hi:.3g}]; {_RANGE_HINT}")
    return clips


def frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) videos -> (B·T, C, H, W) frames, the frames of a clip next to each other."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def batch_to_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B·T, C, H, W) frames -> (B, C, T, H, W) videos: the inverse of :func:`frames_to_batch`."""
    return x.unflatten(0, (-1, frames)).transpose(1, 2)


def gaussian_kernel(sigma: float, radius: int | None = None, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The 1-D Gaussian :math:`g_\\sigma(u), u = -r..r`, normalised to sum 1 (``radius`` r: ⌈2.5σ⌉ by default)."""
    if not sigma > 0:
        raise ValueError(f"sigma is a standard deviation in pixels and must be > 0, got {sigma!r}")
    radius = max(1, math.ceil(2.5 * sigma)) if radius is None else int(radius)
    u = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (u / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float, *, radius: int | None = None,
                  padding: str = "replicate") -> torch.Tensor:
    """Blur images (N, C, H, W) or clips (B, C, T, H, W) frame by frame with a Gaussian of ``sigma`` pixels.

    ``padding="replicate"`` keeps the size (edges repeated); ``"valid"`` keeps only the pixels whose
    whole window lies inside the frame (SSIM's reference code does this), shrinking H and W by 2r.
    """
    if x.ndim == 5:
        frames = x.shape[2]
        return batch_to_frames(gaussian_blur(frames_to_batch(x), sigma, radius=radius, padding=padding), frames)
    if x.ndim != 4:
        raise ValueError(f"gaussian_blur takes images (N, C, H, W) or clips (B, C, T, H, W), got {tuple(x.shape)}")
    if padding not in ("replicate", "valid"):
        raise ValueError(f"padding must be 'replicate' or 'valid', got {padding!r}")
    k = gaussian_kernel(sigma, radius, dtype=x.dtype, device=x.device)
    r, c = (len(k) - 1) // 2, x.shape[1]
    if padding == "replicate":
        x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def reverse_some(clips: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Clips (B, C, T, ...) with each one's frames put in reverse order with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    flip = torch.rand(clips.shape[0], generator=generator, device=generator.device if generator else "cpu") < p
    flip = flip.to(clips.device).view(-1, *([1] * (clips.ndim - 1)))
    return torch.where(flip, clips.flip(2), clips)
