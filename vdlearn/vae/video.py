"""From a trained VAE to video (lesson 02): load frames, interpolate latents, walk the latent space.

The pipeline the course makes work end to end:

1. :func:`vdlearn.videoio.load_frames` reads a folder of images or a video file into frames (N, C, H, W) in [-1, 1];
2. a VAE is trained on those frames with :func:`vdlearn.train.fit` and :func:`~vdlearn.vae.vae_loss`;
3. :func:`latent_interpolation_video` and :func:`latent_walk_video` decode a path through the latent
   space into a new video (C, T, H, W), saved with :func:`vdlearn.videoio.write_video`.

Interpolation between two Gaussian latents is spherical (slerp, Shoemake 1985; White 2016):

.. math::
    \\mathrm{slerp}(z_0, z_1; t) = \\frac{\\sin((1-t)\\Omega)}{\\sin\\Omega} z_0
                                 + \\frac{\\sin(t\\Omega)}{\\sin\\Omega} z_1,\\qquad
    \\cos\\Omega = \\frac{z_0\\cdot z_1}{\\lVert z_0\\rVert\\,\\lVert z_1\\rVert}

which keeps the norm near :math:`\\sqrt d`, where a standard normal's samples live; a straight line
passes through the low-norm middle the decoder rarely saw.
"""
from __future__ import annotations


import torch

from .models import VAE

__all__ = [
    "slerp",
    "interpolate_latents",
    "pixel_crossfade",
    "latent_interpolation_video",
    "latent_traversal",
    "latent_walk_video",
    "reconstruct_video",
]


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation between ``z0`` and ``z1`` at ``t`` in [0, 1] (equation above).

    ``z0``, ``z1`` are single latents of any shape (flattened for the angle); ``t`` a number or a
    1-D tensor (then the result has a leading dimension ``len(t)``). Falls back to a straight line
    when the two are (nearly) parallel.
    """
    if z0.shape != z1.shape:
        raise ValueError(f"z0 {tuple(z0.shape)} and z1 {tuple(z1.shape)} must have one shape")
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    a, b = z0.flatten(), z1.flatten()
    cos = (a @ b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    tt = t.reshape(-1, *([1] * z0.ndim)) if t.ndim else t
    if omega.abs() < 1e-4:
        out = (1 - tt) * z0 + tt * z1
    else:
        out = (torch.sin((1 - tt) * omega) * z0 + torch.sin(tt * omega) * z1) / torch.sin(omega)
    return out


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, num_steps: int, *,
                        method: str = "slerp") -> torch.Tensor:
    """``num_steps`` latents from ``z0`` to ``z1`` (both ends included), shape (num_steps, *z0.shape)."""
    if num_steps < 2:
        raise ValueError(f"num_steps must be at least 2 (the two end points), got {num_steps}")
    t = torch.linspace(0, 1, num_steps, dtype=z0.dtype, device=z0.device)
    if method == "slerp":
        return slerp(z0, z1, t)
    if method == "lerp":
        return torch.lerp(z0.unsqueeze(0), z1.unsqueeze(0), t.reshape(-1, *([1] * z0.ndim)))
    raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")


def _check_image(x: torch.Tensor, name: str) -> None:
    if x.ndim != 3:
        raise ValueError(f"{name} must be one image (C, H, W); got shape {tuple(x.shape)}")


def pixel_crossfade(x0: torch.Tensor, x1: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The baseline: blend the pixels, :math:`(1-t)x_0 + t x_1`, as a video (C, T, H, W)."""
    _check_image(x0, "x0")
    if x0.shape != x1.shape:
        raise ValueError(f"x0 {tuple(x0.shape)} and x1 {tuple(x1.shape)} must have one shape")
    return interpolate_latents(x0, x1, num_frames, method="lerp").transpose(0, 1)


@torch.no_grad()
def latent_interpolation_video(model: VAE, x0: torch.Tensor, x1: torch.Tensor, num_frames: int = 16,
                               *, method: str = "slerp") -> torch.Tensor:
    """Encode two frames (C, H, W), interpolate their posterior means, decode: a video (C, T, H, W)."""
    _check_image(x0, "x0")
    _check_image(x1, "x1")
    model.eval()
    device = next(model.parameters()).device
    mu, _ = model.encode(torch.stack([x0, x1]).to(device))
    path = interpolate_latents(mu[0], mu[1], num_frames, method=method)
    return model.decode_mean(path).clamp(-1, 1).transpose(0, 1).cpu()


@torch.no_grad()
def latent_traversal(model: VAE, z: torch.Tensor, dim: int, values: torch.Tensor) -> torch.Tensor:
    """Decode ``z`` with coordinate ``dim`` set to each of ``values``: images (len(values), C, H, W)."""
    if z.ndim != 1:
        raise ValueError(f"z must be one vector latent (L,); got shape {tuple(z.shape)}")
    if not 0 <= dim < z.shape[0]:
        raise ValueError(f"dim must be in [0, {z.shape[0]}); got {dim}")
    model.eval()
    device = next(model.parameters()).device
    zs = z.to(device).repeat(len(values), 1)
    zs[:, dim] = torch.as_tensor(values, dtype=zs.dtype, device=device)
    return model.decode_mean(zs).clamp(-1, 1).cpu()


@torch.no_grad()
def latent_walk_video(model: VAE, num_frames: int = 48, num_keyframes: int = 4, *,
                      generator: torch.Generator | None = None, temperature: float = 1.0,
                      keyframes: torch.Tensor | None = None, loop: bool = True) -> torch.Tensor:
    """A new video (C, T, H, W): slerp through ``num_keyframes`` latents drawn from the prior
    (or given as ``keyframes``), decoded frame by frame; ``loop`` returns to the first keyframe."""
    model.eval()
    device = next(model.parameters()).device
    if keyframes is None:
        keyframes = torch.randn((num_keyframes, *model.latent_shape), generator=generator) * temperature
    keyframes = keyframes.to(device)
    if loop:
        keyframes = torch.cat([keyframes, keyframes[:1]])
    segments = len(keyframes) - 1
    if segments < 1 or num_frames < 2:
        raise ValueError(f"need at least 2 keyframes and 2 frames; got {len(keyframes)} keyframes "
                         f"and num_frames={num_frames}")
    # position along the path for each frame: [0, segments) for a loop, [0, segments] otherwise
    pos = (torch.arange(num_frames, dtype=torch.float64) * segments / num_frames if loop
           else torch.linspace(0, segments, num_frames, dtype=torch.float64))
    seg = pos.floor().long().clamp(max=segments - 1)
    z = torch.stack([slerp(keyframes[i], keyframes[i + 1], float(p - i))
                     for i, p in zip(seg.tolist(), pos.tolist())])
    return model.decode_mean(z).clamp(-1, 1).transpose(0, 1).cpu()


@torch.no_grad()
def reconstruct_video(model: VAE, video: torch.Tensor, chunk_size: int = 256) -> torch.Tensor:
    """Encode and decode a video (C, T, H, W) frame by frame (posterior means): (C, T, H, W)."""
    if video.ndim != 4:
        raise ValueError(f"video must be (C, T, H, W); got shape {tuple(video.shape)}")
    model.eval()
    device = next(model.parameters()).device
    frames = video.transpose(0, 1).to(device)
    out = torch.cat([model.reconstruct(c) for c in frames.split(chunk_size)])
    return out.clamp(-1, 1).transpose(0, 1).cpu()
