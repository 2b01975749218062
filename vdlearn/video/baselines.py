"""Classical ways to continue a video or animate a still image, with no learning (lesson 00).

These are the "motion-based" and "rule-based" methods that came before generative models, and
the baselines every later lesson must beat:

- :func:`copy_last_frame`: the future looks like the present (the strongest naive baseline for
  slow videos);
- :func:`constant_velocity`: the scene's centre of brightness keeps moving at the velocity it had
  between the last two frames (a whole-frame translation);
- :func:`flow_warp`: a dense optical-flow field (Lucas–Kanade, coarse to fine) estimated between
  the last two frames is applied again and again;
- :func:`affine_video` and :func:`animate_with_flow`: a still image is moved by a motion that a
  person designs (pan, rotate, zoom, or any flow field) — the "rule-based" animation;
- :func:`ken_burns`: a still image moved by a named camera motion of :mod:`vdlearn.data.camera`
  (the documentary "Ken Burns" effect), the part of each frame the image does not hold filled with
  black, the nearest edge pixel, or classical inpainting (biharmonic, Damelin & Hoang 2018) — the
  baselines a camera-controlled image-to-video model must beat (lesson 08).

Videos are ``(B, C, T, H, W)`` in [-1, 1]; flows are ``(B, 2, H, W)`` in pixels, channel 0 the
horizontal (x, column) and channel 1 the vertical (y, row) displacement.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.camera import CAMERA_MOTIONS, motion_warp
from ..data.clips import gaussian_blur

__all__ = [
    "copy_last_frame",
    "centroid",
    "constant_velocity",
    "shift",
    "warp",
    "lucas_kanade",
    "flow_warp",
    "affine_flow",
    "animate_with_flow",
    "affine_video",
    "KEN_BURNS_FILLS",
    "ken_burns",
]

#: How :func:`ken_burns` fills what comes into view.
KEN_BURNS_FILLS = ("black", "edge", "inpaint")


def _check_context(context: torch.Tensor, min_frames: int) -> None:
    if context.dim() != 5:
        raise ValueError(f"context should be a video batch (B, C, T, H, W), got shape {tuple(context.shape)}")
    if context.shape[2] < min_frames:
        raise ValueError(f"this baseline needs at least {min_frames} context frame(s), got {context.shape[2]}")


def copy_last_frame(context: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Predict ``num_frames`` frames by repeating the last context frame: x̂_{t+k} = x_t."""
    _check_context(context, 1)
    return context[:, :, -1:].expand(-1, -1, num_frames, -1, -1).clone()


def centroid(frames: torch.Tensor) -> torch.Tensor:
    """Centre of brightness of ``(B, C, H, W)`` frames in pixels, as (x, y).

    With weights w = (frame + 1) / 2 summed over channels: c = Σ w·p / Σ w over pixel positions p.
    """
    w = ((frames + 1) / 2).clamp(min=0).sum(1)  # (B, H, W)
    h, wd = w.shape[-2:]
    ys = torch.arange(h, dtype=w.dtype, device=w.device)
    xs = torch.arange(wd, dtype=w.dtype, device=w.device)
    mass = w.sum((-2, -1)).clamp(min=1e-8)
    cx = (w.sum(-2) * xs).sum(-1) / mass
    cy = (w.sum(-1) * ys).sum(-1) / mass
    return torch.stack([cx, cy], dim=-1)


def shift(frames: torch.Tensor, offset: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Translate ``(B, C, H, W)`` frames by ``offset`` (B, 2) pixels (x, y), filling with -1 (black)."""
    b, _, h, w = frames.shape
    flow = offset.to(frames.dtype)[:, :, None, None].expand(b, 2, h, w)
    return warp(frames, flow, mode=mode)


def constant_velocity(context: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Move the last frame along the velocity of its centre of brightness.

    v = c(x_t) − c(x_{t−1}); x̂_{t+k} = shift(x_t, k·v).
    """
    _check_context(context, 2)
    last = context[:, :, -1]
    velocity = centroid(last) - centroid(context[:, :, -2])
    frames = [shift(last, velocity * k) for k in range(1, num_frames + 1)]
    return torch.stack(frames, dim=2)


def warp(frames: torch.Tensor, flow: torch.Tensor, fill: float = -1.0, mode: str = "bilinear") -> torch.Tensor:
    """Move the content of ``frames`` (B, C, H, W) along ``flow`` (B, 2, H, W) by backward sampling.

    out(p) = frames(p − flow(p)), interpolated by ``mode`` (grid_sample's "bilinear", "bicubic" or "nearest");
    what comes from outside the frame is ``fill`` (-1: black). For smooth flows this is content moving by +flow.
    """
    if flow.shape[0] != frames.shape[0] or flow.shape[1] != 2 or flow.shape[-2:] != frames.shape[-2:]:
        raise ValueError(f"flow should be (B, 2, H, W) = {(frames.shape[0], 2, *frames.shape[-2:])}, "
                         f"got {tuple(flow.shape)}")
    b, _, h, w = frames.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=frames.device, dtype=frames.dtype),
                            torch.arange(w, device=frames.device, dtype=frames.dtype), indexing="ij")
    src_x = xs - flow[:, 0]
    src_y = ys - flow[:, 1]
    grid = torch.stack([2 * src_x / max(w - 1, 1) - 1, 2 * src_y / max(h - 1, 1) - 1], dim=-1)
    out = F.grid_sample(frames - fill, grid, mode=mode, padding_mode="zeros", align_corners=True)
    return out + fill


def _lk_step(f0: torch.Tensor, f1: torch.Tensor, window: float, eps: float) -> torch.Tensor:
    """One Lucas–Kanade solve: per pixel, the 2×2 least squares A u = b over a Gaussian window.

    Brightness constancy I_x u + I_y v + I_t = 0, so
    [ΣI_x² ΣI_xI_y; ΣI_xI_y ΣI_y²] [u; v] = −[ΣI_xI_t; ΣI_yI_t].
    """
    g0 = f0.mean(1, keepdim=True)
    g1 = f1.mean(1, keepdim=True)
    avg = (g0 + g1) / 2
    ix = (F.pad(avg, (1, 1, 0, 0), mode="replicate")[..., :, 2:] - F.pad(avg, (1, 1, 0, 0), mode="replicate")[..., :, :-2]) / 2
    iy = (F.pad(avg, (0, 0, 1, 1), mode="replicate")[..., 2:, :] - F.pad(avg, (0, 0, 1, 1), mode="replicate")[..., :-2, :]) / 2
    it = g1 - g0
    sxx, syy, sxy = (gaussian_blur(v, window) for v in (ix * ix, iy * iy, ix * iy))
    sxt, syt = (gaussian_blur(v, window) for v in (ix * it, iy * it))
    det = sxx * syy - sxy * sxy + eps
    u = -(syy * sxt - sxy * syt) / det
    v = -(sxx * syt - sxy * sxt) / det
    return torch.cat([u, v], dim=1)


def lucas_kanade(frame0: torch.Tensor, frame1: torch.Tensor, levels: int = 3, iterations: int = 3,
                 window: float = 2.0, eps: float = 1e-3) -> torch.Tensor:
    """Dense optical flow from ``frame0`` to ``frame1`` (both (B, C, H, W)): coarse-to-fine Lucas–Kanade.

    Returns (B, 2, H, W) in pixels: content at p in frame0 is at p + flow(p) in frame1.
    """
    if frame0.shape != frame1.shape or frame0.dim() != 4:
        raise ValueError(f"frames should both be (B, C, H, W), got {tuple(frame0.shape)} and {tuple(frame1.shape)}")
    pyramid = [(frame0, frame1)]
    for _ in range(levels - 1):
        a, b = pyramid[-1]
        if min(a.shape[-2:]) < 16:
            break
        pyramid.append((F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)))
    flow = torch.zeros(frame0.shape[0], 2, *pyramid[-1][0].shape[-2:], dtype=frame0.dtype, device=frame0.device)
    for a, b in reversed(pyramid):
        if flow.shape[-2:] != a.shape[-2:]:
            flow = 2 * F.interpolate(flow, size=a.shape[-2:], mode="bilinear", align_corners=False)
        for _ in range(iterations):
            # bring frame1 back onto frame0 with the current flow, then solve for what is left
            b_back = warp(b, -flow)
            flow = flow + _lk_step(a, b_back, window, eps)
    return flow


def flow_warp(context: torch.Tensor, num_frames: int, **lk_options) -> torch.Tensor:
    """Estimate the flow between the last two frames and keep applying it: x̂_{t+k} = warp(x̂_{t+k−1}, flow)."""
    _check_context(context, 2)
    prev, last = context[:, :, -2], context[:, :, -1]
    flow = lucas_kanade(prev, last, **lk_options)
    # the flow is attached to frame t-1's pixels; move it along itself to sit on frame t's pixels
    flow = warp(flow, flow, fill=0.0)
    frames, current = [], last
    for _ in range(num_frames):
        current = warp(current, flow)
        frames.append(current)
    return torch.stack(frames, dim=2)


def affine_flow(height: int, width: int, translate: tuple[float, float] = (0.0, 0.0),
                rotate_degrees: float = 0.0, zoom: float = 1.0) -> torch.Tensor:
    """A (1, 2, H, W) flow for one frame of a pan / rotation / zoom about the image centre.

    p' = c + zoom·R(θ)(p − c) + translate, flow(p) = p' − p.
    """
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                            torch.arange(width, dtype=torch.float32), indexing="ij")
    cx, cy = (width - 1) / 2, (height - 1) / 2
    th = math.radians(rotate_degrees)
    dx, dy = xs - cx, ys - cy
    nx = cx + zoom * (math.cos(th) * dx - math.sin(th) * dy) + translate[0]
    ny = cy + zoom * (math.sin(th) * dx + math.cos(th) * dy) + translate[1]
    return torch.stack([nx - xs, ny - ys])[None]


def animate_with_flow(image: torch.Tensor, flow: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Animate a still ``image`` (B, C, H, W) by applying ``flow`` once per frame; returns (B, C, T, H, W).

    Frame k is the image warped k times (the first frame is the image itself).
    """
    if image.dim() != 4:
        raise ValueError(f"image should be (B, C, H, W), got shape {tuple(image.shape)}")
    flow = flow.to(image).expand(image.shape[0], -1, -1, -1)
    frames, current = [image], image
    for _ in range(num_frames - 1):
        current = warp(current, flow)
        frames.append(current)
    return torch.stack(frames, dim=2)


def affine_video(image: torch.Tensor, num_frames: int, translate: tuple[float, float] = (0.0, 0.0),
                 rotate_degrees: float = 0.0, zoom: float = 1.0) -> torch.Tensor:
    """Pan / rotate / zoom a still ``image`` (B, C, H, W) a little more each frame: (B, C, T, H, W).

    Frame k shows T_k(p) = c + zoom^k R(kθ)(p − c) + k·d, sampled exactly through the inverse map
    p = T_k^{-1}(q), so the image is resampled once per frame and does not blur over time (unlike
    applying a flow again and again, which :func:`animate_with_flow` does for general flows).
    """
    if image.dim() != 4:
        raise ValueError(f"image should be (B, C, H, W), got shape {tuple(image.shape)}")
    b, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=image.dtype, device=image.device),
                            torch.arange(w, dtype=image.dtype, device=image.device), indexing="ij")
    cx, cy = (w - 1) / 2, (h - 1) / 2
    frames = []
    for k in range(num_frames):
        th, s = -math.radians(rotate_degrees) * k, zoom ** (-k)
        dx, dy = xs - cx - k * translate[0], ys - cy - k * translate[1]
        src_x = cx + s * (math.cos(th) * dx - math.sin(th) * dy)
        src_y = cy + s * (math.sin(th) * dx + math.cos(th) * dy)
        flow = torch.stack([xs - src_x, ys - src_y])[None].expand(b, -1, -1, -1)
        frames.append(warp(image, flow))
    return torch.stack(frames, dim=2)


def _inpaint(frame: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Biharmonic inpainting (scikit-image) of ``frame`` (C, H, W) where ``hole`` (H, W) is True."""
    from skimage.restoration import inpaint_biharmonic
    if not hole.any() or hole.all():
        return frame
    filled = inpaint_biharmonic(frame.permute(1, 2, 0).double().numpy(), hole.numpy(), channel_axis=-1)
    return torch.from_numpy(filled).permute(2, 0, 1).to(frame.dtype)


def ken_burns(image: torch.Tensor, motion: str, num_frames: int, *, fill: str = "edge") -> torch.Tensor:
    """Move a still ``image`` (B, C, S, S) along camera motion ``motion`` (one of
    :data:`vdlearn.data.camera.CAMERA_MOTIONS`): (B, C, T, S, S), the first frame the image itself.

    What the image does not hold is filled by ``fill``: ``"black"``, ``"edge"`` (the nearest pixel of
    the image, smeared outwards) or ``"inpaint"`` (biharmonic inpainting of the hole, per frame).
    """
    if image.dim() != 4 or image.shape[-1] != image.shape[-2]:
        raise ValueError(f"image should be square frames (B, C, S, S), got shape {tuple(image.shape)}")
    if fill not in KEN_BURNS_FILLS:
        raise ValueError(f"fill must be one of {KEN_BURNS_FILLS}, got {fill!r}")
    if motion not in CAMERA_MOTIONS:
        raise ValueError(f"unknown camera motion {motion!r}; the motions are {', '.join(CAMERA_MOTIONS)}")
    b, c, s, _ = image.shape
    grid, visible = motion_warp(CAMERA_MOTIONS.index(motion), num_frames, s)
    grid = grid.to(image)
    frames = []
    for t in range(num_frames):
        g = grid[t][None].expand(b, -1, -1, -1)
        padding = "border" if fill == "edge" else "zeros"
        frame = F.grid_sample(image, g, mode="bilinear", padding_mode=padding, align_corners=False)
        if fill == "black":                      # zeros padding blends towards 0 (grey): make it black
            frame = torch.where(visible[t].to(image.device), frame, torch.full_like(frame, -1.0))
        elif fill == "inpaint":
            frame = torch.stack([_inpaint(f.cpu(), ~visible[t]).to(image) for f in frame])
        frames.append(frame)
    return torch.stack(frames, dim=2)
